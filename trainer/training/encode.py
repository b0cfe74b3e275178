"""Words and IOB2 tags -> model inputs: windows over documents (or sentences, trainer.reading.windows) with sub-token
label
ids, for training and the engines' per-epoch validation (final scores are computed by trainer.evaluation.word_level)."""

from __future__ import annotations

from typing import Optional, Sequence

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from trainer.data.files import DataError
from trainer.reading.labels import OUTSIDE, align_labels, continuation_map
from trainer.reading.windows import DocumentWindows, Window


def encode(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    label2id: dict[str, int],
    label_all_tokens: bool,
    window: Window,
    sentence_sources: Optional[Sequence[str]] = None,
    what: str = "data",
) -> tuple[Dataset, DocumentWindows]:
    """Tokenize a split into windows (trainer.reading.windows) and align word labels to their sub-tokens: the first
    sub-token
    of a word gets the word's label, continuations its I- label or none (`label_all_tokens`). A window that opens in
    the middle of a word labels none of that word's pieces: the word is learnt, and read, where its first sub-token is.

    With `label_all_tokens=False` only first sub-tokens carry labels, which is what a validation loss compares with
    word-level scores. A tag the model does not know (an evaluation label never seen in training) is encoded as O: it
    only affects the loss, the word-level scores read the gold tags themselves.

    With `sentence_sources` (each row's `file:line`, for messages) every word must get a sub-token: a word the
    tokenizer drops (a word of characters it removes, such as a lone combining accent for an uncased BERT) could not
    be scored, so it raises DataError. Windows cut nothing, so every other word has one.

    Returns the encoded windows (model inputs and `labels`) and the windows' map back to the words.
    """
    b_to_i = continuation_map(label2id)
    fallback = label2id.get(OUTSIDE, 0)
    windows = DocumentWindows.build(tokenizer, list(dataset["tokens"]), list(dataset["doc_id"]), window, what)
    if sentence_sources is not None and (missing := windows.missing_word()) is not None:
        row, w = missing
        word = dataset[row]["tokens"][w]
        raise DataError(
            f"{sentence_sources[row]}: word {w + 1} of the sentence ({word!r}, "
            f"{' '.join(f'U+{ord(c):04X}' for c in word)}) gives no sub-token with this tokenizer "
            f"({tokenizer.name_or_path}): expected a word the tokenizer keeps; remove or replace it, or it could not "
            f"be scored"
        )
    doc_labels: list[list[int]] = []
    for (doc, _, _), tags in zip(windows.sentences, dataset["tags"]):
        if doc == len(doc_labels):
            doc_labels.append([])
        doc_labels[doc].extend(label2id.get(t, fallback) for t in tags)
    labels = []
    for k, doc in enumerate(windows.doc):
        starts = windows.first_subtokens(k)
        # Pieces of a word begun in an earlier window count as special tokens here: no label.
        word_ids = [w if w in starts else None for w in windows.word_ids[k]]
        labels.append(align_labels(doc_labels[doc], word_ids, label_all_tokens, b_to_i))
    return Dataset.from_dict({**windows.inputs, "labels": labels}), windows
