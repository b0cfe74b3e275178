"""Word-level evaluation of a model on one split: the one path behind training's final scores (both engines),
`python -m trainer.evaluate` and the Space's validation results.

`evaluate` predicts every sentence with an in-order loop, scores it with `trainer.metrics` and returns the record of
`eval_results.json` with the rows of `predictions_<split>.jsonl`, writing both (`trainer.outputs`) when given a
directory. It runs its own loop rather than `Trainer.predict`: the Trainer may length-group evaluation batches
(transformers 5 under `group_by_length`), and predictions are mapped back to sentences by index.

(Validation *during* training is scored by `trainer.metrics.validation_scores` on the encoded split, sharded across
processes by each engine; the final scores of the saved model come from here.)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainer.config import Config
from trainer.data import DataError, NerData, load_data
from trainer.labels import OUTSIDE, first_subtoken_positions
from trainer.limits import max_length
from trainer.metrics import evaluation_record
from trainer.outputs import RUN_CONFIG_FILE, write_evaluation

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]  # (fraction done, what is happening)

# Config fields that name the data; a source given for evaluation replaces all of them.
DATA_FIELDS = ("dataset_name", "dataset_config_name", "dataset_revision", "data_dir", "train_file",
               "validation_file", "test_file")


@dataclass
class Evaluation:
    record: dict[str, Any]      # what eval_results.json keeps for the split
    rows: list[dict[str, Any]]  # predictions_<split>.jsonl: doc_id, sent_idx, tokens, gold, pred


def eval_config(model: str, overrides: Optional[dict[str, Any]] = None, run_config: Optional[str] = None) -> Config:
    """The config a model is evaluated with: its training run's (`run_config`, default `<model>/run_config.json`),
    with the given overrides; a new data source replaces the old one entirely. The training run's sample limits do
    not carry over: evaluation scores whole splits unless asked."""
    given = {"max_train_samples": None, "max_eval_samples": None,
             **{k: v for k, v in (overrides or {}).items() if v is not None}}
    saved = run_config or os.path.join(model, RUN_CONFIG_FILE)
    if not os.path.exists(saved):
        return Config(model_name_or_path=model, **given)
    if any(k in given for k in DATA_FIELDS):
        given = {**{k: None for k in DATA_FIELDS}, **given}
    return Config.load(saved, model_name_or_path=model, **given)


def load_split(cfg: Config, split: str) -> NerData:
    data = load_data(cfg)
    if split not in data.splits:
        raise DataError(f"{data.source}: no {split} split (found {', '.join(data.splits)})")
    return data


@torch.inference_mode()
def predict_words(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sentences: Sequence[Sequence[str]],
                  max_len: int, batch_size: int = 32, progress: Optional[Progress] = None) -> list[list[str]]:
    """One predicted tag per word: the label of the word's first sub-token; words cut by `max_len` get O."""
    model.eval()
    id2label = model.config.id2label
    device = next(model.parameters()).device
    # Longest first, so each batch pads little; results are put back in input order by index.
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    out: list[Optional[list[str]]] = [None] * len(sentences)
    for start in range(0, len(order), batch_size):
        if progress:
            progress(start / len(order), f"predicting {start}/{len(order)} sentences")
        idx = order[start:start + batch_size]
        enc = tokenizer([list(sentences[i]) for i in idx], is_split_into_words=True, truncation=True,
                        max_length=max_len, padding=True, return_tensors="pt")
        pred = model(**{k: v.to(device) for k, v in enc.items()}).logits.argmax(-1).tolist()
        for row, i in enumerate(idx):
            first = first_subtoken_positions(enc.word_ids(row))
            out[i] = [id2label[pred[row][first[w]]] if w in first else OUTSIDE for w in range(len(sentences[i]))]
    return out  # type: ignore[return-value]


def evaluate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, data: NerData, split: str,
             max_seq_length: Optional[int] = None, batch_size: int = 32, output_dir: Optional[str] = None,
             progress: Optional[Progress] = None) -> Evaluation:
    """Predict every sentence of `data`'s `split`, score it at word level, and write the result files into
    `output_dir` if given. `max_seq_length` is the requested limit (--max-seq-length); the model's own caps it."""
    dataset = data.splits[split]
    unknown = sorted({t for tags in dataset["tags"] for t in tags} - set(model.config.label2id))
    if unknown:
        logger.warning("%s labels unknown to the model (they can only be missed): %s", split, ", ".join(unknown))
    tokens, gold = dataset["tokens"], dataset["tags"]
    pred = predict_words(model, tokenizer, tokens, max_length(tokenizer, model.config, max_seq_length), batch_size,
                         progress)
    record = evaluation_record(gold, pred, data.scheme, split, data.split_source(split))
    rows = [{"doc_id": d, "sent_idx": s, "tokens": t, "gold": g, "pred": p}
            for d, s, t, g, p in zip(dataset["doc_id"], dataset["sent_idx"], tokens, gold, pred)]
    if output_dir:
        write_evaluation(output_dir, split, record, rows)
    o = record["overall"]
    logger.info("%s: precision %.4f recall %.4f F1 %.4f accuracy %.4f (%d sentences)", split, o["precision"],
                o["recall"], o["f1"], o["accuracy"], record["num_sentences"])
    if progress:
        progress(1.0, "done")
    return Evaluation(record, rows)
