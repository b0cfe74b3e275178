"""Word-level prediction on pre-split sentences, and scoring a model on a split into the result files.

This is the one path that produces `eval_results.json` / `predictions_<split>.jsonl`, after training with either
engine and in `python -m trainer.evaluate`, so both engines report the same metrics for the same saved model.
It runs its own in-order loop rather than `Trainer.predict`: the Trainer may length-group evaluation batches
(transformers 5 under `group_by_length`), and predictions are mapped back to sentences by index.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainer.labels import OUTSIDE, first_subtoken_positions
from trainer.metrics import evaluation_record, write_results

logger = logging.getLogger(__name__)


@torch.inference_mode()
def predict_words(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sequence[str]],
                  max_len: int, batch_size: int = 32) -> list[list[str]]:
    """One predicted tag per word: the label of the word's first sub-token; words cut by `max_len` get O."""
    model.eval()
    id2label = model.config.id2label
    device = next(model.parameters()).device
    # Longest first, so each batch pads little; results are put back in input order by index.
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    out: list[Optional[list[str]]] = [None] * len(sentences)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([list(sentences[i]) for i in idx], is_split_into_words=True, truncation=True,
                        max_length=max_len, padding=True, return_tensors="pt")
        pred = model(**{k: v.to(device) for k, v in enc.items()}).logits.argmax(-1).tolist()
        for row, i in enumerate(idx):
            first = first_subtoken_positions(enc.word_ids(row))
            out[i] = [id2label[pred[row][first[w]]] if w in first else OUTSIDE for w in range(len(sentences[i]))]
    return out  # type: ignore[return-value]


def evaluate_split(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dataset: Dataset, split: str,
                   scheme: str, source: str, output_dir: str, max_len: int, batch_size: int = 32) -> dict[str, Any]:
    """Predict every sentence of `dataset`, score it at word level and write the result files for `split`."""
    tokens, gold = dataset["tokens"], dataset["tags"]
    pred = predict_words(model, tokenizer, tokens, max_len, batch_size)
    record = evaluation_record(gold, pred, scheme, split, source)
    rows = [{"doc_id": d, "sent_idx": s, "tokens": t, "gold": g, "pred": p}
            for d, s, t, g, p in zip(dataset["doc_id"], dataset["sent_idx"], tokens, gold, pred)]
    write_results(output_dir, split, record, rows)
    o = record["overall"]
    logger.info("%s: precision %.4f recall %.4f F1 %.4f accuracy %.4f (%d sentences)", split, o["precision"],
                o["recall"], o["f1"], o["accuracy"], record["num_sentences"])
    return record
