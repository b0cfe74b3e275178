"""Words and IOB2 tags -> model inputs: sub-tokens with aligned label ids, for training and the engines' per-epoch
validation (final scores tokenize in trainer.evaluation)."""

from __future__ import annotations

from typing import Optional, Sequence

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from trainer.data import DataError
from trainer.labels import OUTSIDE, align_labels, continuation_map


def word_without_subtoken(word_ids: Sequence[Optional[int]], n_words: int, max_len: int) -> Optional[int]:
    """The first word that the tokenizer gave no sub-token (a word of characters it drops, such as a lone combining
    accent for an uncased BERT), unless only words at the end are missing from a row cut at `max_len` (truncation,
    which metrics.word_predictions pads with O). None if every word has a sub-token."""
    seen = {w for w in word_ids if w is not None}
    if len(seen) == n_words:
        return None
    missing = min(set(range(n_words)) - seen)
    if len(word_ids) >= max_len and max(seen, default=-1) < missing:
        return None
    return missing


def encode(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, label2id: dict[str, int], label_all_tokens: bool,
           max_len: int, sentence_sources: Optional[Sequence[str]] = None) -> Dataset:
    """Tokenize pre-split words and align word labels to sub-tokens.

    With `label_all_tokens=False` only first sub-tokens carry labels, which is what evaluation needs: the labelled
    positions of a row are then exactly the first sub-tokens of its words (see metrics.word_predictions).
    A tag the model does not know (an evaluation label never seen in training) is encoded as O: it only affects the
    loss, the word-level scores read the gold tags themselves.

    With `sentence_sources` (each row's `file:line`, for messages) every word must get a sub-token unless cut at the
    end by `max_len`: a word the tokenizer drops is absent from `word_ids()`, and word-level scoring of the encoded
    rows would pair every later word's prediction with the wrong gold tag. Such a word raises DataError.
    """
    b_to_i = continuation_map(label2id)
    fallback = label2id.get(OUTSIDE, 0)

    def fn(batch, indices):
        enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_len)
        if sentence_sources is not None:
            for i, words in enumerate(batch["tokens"]):
                w = word_without_subtoken(enc.word_ids(i), len(words), max_len)
                if w is not None:
                    raise DataError(
                        f"{sentence_sources[indices[i]]}: word {w + 1} of the sentence ({words[w]!r}, "
                        f"{' '.join(f'U+{ord(c):04X}' for c in words[w])}) gives no sub-token with this tokenizer "
                        f"({tokenizer.name_or_path}): expected a word the tokenizer keeps; remove or replace it, or "
                        f"word-level validation scores would pair later words with the wrong tags")
        enc["labels"] = [
            align_labels([label2id.get(t, fallback) for t in tags], enc.word_ids(i), label_all_tokens, b_to_i)
            for i, tags in enumerate(batch["tags"])]
        return enc

    return dataset.map(fn, batched=True, with_indices=True, remove_columns=dataset.column_names, desc="Tokenizing")
