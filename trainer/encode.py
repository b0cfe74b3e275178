"""Words and IOB2 tags -> model inputs: sub-tokens with aligned label ids, for training and the engines' per-epoch
validation (final scores tokenize in trainer.evaluation)."""

from __future__ import annotations

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from trainer.labels import OUTSIDE, align_labels, continuation_map


def encode(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, label2id: dict[str, int], label_all_tokens: bool,
           max_len: int) -> Dataset:
    """Tokenize pre-split words and align word labels to sub-tokens.

    With `label_all_tokens=False` only first sub-tokens carry labels, which is what evaluation needs: the labelled
    positions of a row are then exactly the first sub-tokens of its words (see metrics.word_predictions).
    A tag the model does not know (an evaluation label never seen in training) is encoded as O: it only affects the
    loss, the word-level scores read the gold tags themselves.
    """
    b_to_i = continuation_map(label2id)
    fallback = label2id.get(OUTSIDE, 0)

    def fn(batch):
        enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_len)
        enc["labels"] = [
            align_labels([label2id.get(t, fallback) for t in tags], enc.word_ids(i), label_all_tokens, b_to_i)
            for i, tags in enumerate(batch["tags"])]
        return enc

    return dataset.map(fn, batched=True, remove_columns=dataset.column_names, desc="Tokenizing")
