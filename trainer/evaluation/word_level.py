"""Word-level evaluation of a model on one split: the one path behind training's final scores (both engines),
`python -m trainer.evaluate` and the Space's validation results.

`evaluate` reads the split in the windows the model was trained with (documents or sentences, recorded in its config;
trainer.reading.windows), labels each word from the window where its first sub-token has the most context (the rule the
Space applies to long texts), scores every sentence once with `trainer.evaluation.metrics` and returns the record of
`eval_results.json` with the rows of `predictions_<split>.jsonl` (one per sentence, in dataset order), writing both
(`trainer.outputs`) when given a directory. It runs its own loop rather than `Trainer.predict`: the Trainer may
length-group evaluation batches (transformers 5 under `group_by_length`), and predictions are mapped back by index.

(Validation *during* training is scored by `trainer.evaluation.metrics.validation_scores` on the encoded windows,
sharded across processes by each engine, with the same rule; the final scores of the saved model come from here.)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainer.config import DATA_SOURCE_FIELDS, Config
from trainer.data.files import DataError
from trainer.data.load import NerData, load_data
from trainer.evaluation.metrics import evaluation_record
from trainer.inference.backends import Backend, TorchBackend, model_input_names, predict_windows
from trainer.outputs import RUN_CONFIG_FILE, THIS_MODEL, write_evaluation
from trainer.reading.windows import DocumentWindows, Progress, Window, model_window

logger = logging.getLogger(__name__)


@dataclass
class Evaluation:
    record: dict[str, Any]  # what eval_results.json keeps for the split
    rows: list[dict[str, Any]]  # predictions_<split>.jsonl: doc_id, sent_idx, tokens, gold, pred


def eval_config(model: str, overrides: Optional[dict[str, Any]] = None, run_config: Optional[str] = None) -> Config:
    """The config a model is evaluated with: its training run's (`run_config`, default `<model>/run_config.json`),
    with the given overrides; a new data source replaces the old one entirely. The training run's sample limits do
    not carry over: evaluation scores whole splits unless asked, and `max_eval_samples` (--max-eval-samples) limits
    whichever split is scored, the training split too."""
    given = {
        "max_train_samples": None,
        "max_eval_samples": None,
        **{k: v for k, v in (overrides or {}).items() if v is not None},
    }
    given["max_train_samples"] = given["max_eval_samples"]
    saved = run_config or os.path.join(model, RUN_CONFIG_FILE)
    if not os.path.exists(saved):
        return Config(model_name_or_path=model, **given)
    if any(k in given for k in DATA_SOURCE_FIELDS):
        given = {**{k: None for k in DATA_SOURCE_FIELDS}, **given}
    return Config.load(saved, model_name_or_path=model, **given)


def load_split(cfg: Config, split: str) -> NerData:
    """The data of one split only: the source's other splits are not needed (a --data-dir may hold only a test file)
    and not read."""
    data = load_data(cfg, only=(split,))
    if split not in data.splits:
        raise DataError(f"{data.source}: no {split} split (found {', '.join(data.splits)})")
    return data


def predict_words(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sequence[str]],
    window: Window,
    doc_ids: Optional[Sequence[int]] = None,
    batch_size: int = 32,
    progress: Optional[Progress] = None,
    what: str = "data",
    backend: Optional[Backend] = None,
) -> list[list[str]]:
    """One predicted tag per word of each sentence: sentences grouped into documents by `doc_ids` (None: no
    boundaries) as `window.context` says, read in overlapping windows, each word labelled by its first sub-token in the
    window where that has the most context (trainer.reading.windows, the Space's rule), decoded per sentence as
    `window.decoding` says (trainer.reading.decoding). Words the tokenizer gives no sub-token are predicted O.
    `backend`: the forward pass (trainer.inference.backends) to read the windows with; by default the model itself, in
    torch."""
    windows = DocumentWindows.build(tokenizer, sentences, doc_ids, window, what)
    forward = backend or TorchBackend(model, model_input_names(model, tokenizer.model_input_names))
    logprobs = (
        predict_windows(forward, windows.inputs, tokenizer.pad_token_id or 0, batch_size, progress)
        if len(windows)
        else []
    )
    return windows.word_tags(logprobs, model.config.id2label, window.decoding)


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    data: NerData,
    split: str,
    max_seq_length: Optional[int] = None,
    batch_size: int = 32,
    output_dir: Optional[str] = None,
    progress: Optional[Progress] = None,
    window: Optional[Window] = None,
    model_id: Optional[str] = None,
    first_sentences: Optional[int] = None,
) -> Evaluation:
    """Predict every sentence of `data`'s `split`, score it at word level, and write the result files into
    `output_dir` if given. The text is read in the windows the model was trained with (its config's record,
    trainer.reading.windows.model_window), `max_seq_length` (--max-seq-length) or `window` overriding them. The record
    names the model as `model_id` (trainer.outputs.results_model), by default, when written, as the model saved in
    `output_dir` (what a training run scores); writing into a directory holding another model's results raises
    trainer.outputs.ResultsModelError. `first_sentences`: the limit the split was loaded with (--max-eval-samples),
    recorded so that what reads the results (the model card) can say the scores cover only the split's start."""
    dataset = data.splits[split]
    unknown = sorted({t for tags in dataset["tags"] for t in tags} - set(model.config.label2id))
    if unknown:
        logger.warning("%s labels unknown to the model (they can only be missed): %s", split, ", ".join(unknown))
    window = window or model_window(tokenizer, model.config, max_seq_length)
    tokens, gold, doc_ids = list(dataset["tokens"]), list(dataset["tags"]), list(dataset["doc_id"])
    pred = predict_words(model, tokenizer, tokens, window, doc_ids, batch_size, progress, split)
    record = evaluation_record(gold, pred, data.scheme, split, data.split_source(split), window.as_dict())
    if model_id or output_dir:
        record["model"] = model_id or THIS_MODEL
    if first_sentences is not None:
        record["max_eval_samples"] = first_sentences
    # The predictions name documents as the data did (a JSON line's "doc3"), not by the numbers used internally.
    rows = [
        {"doc_id": d, "sent_idx": s, "tokens": t, "gold": g, "pred": p}
        for d, s, t, g, p in zip(data.document_ids(split), dataset["sent_idx"], tokens, gold, pred)
    ]
    if output_dir:
        write_evaluation(output_dir, split, record, rows)
    o = record["overall"]
    logger.info(
        "%s: precision %.4f recall %.4f F1 %.4f accuracy %.4f (%d sentences, %s context, windows of %d "
        "sub-tokens, stride %d, %s decoding)",
        split,
        o["precision"],
        o["recall"],
        o["f1"],
        o["accuracy"],
        record["num_sentences"],
        window.context,
        window.max_length,
        window.stride,
        window.decoding,
    )
    if progress:
        progress(1.0, "done")
    return Evaluation(record, rows)
