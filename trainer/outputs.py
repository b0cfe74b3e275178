"""The files of an output directory: their names, their formats, and the only code that writes or reads them.

What the trainer writes and the Space, the model card and the Hub read:
- `run_config.json`: the run's `Config` (written and read by `trainer.config.Config.save/load`).
- `train_results.json`: a `TrainStats` (time, throughput, log history, data description, versions, device).
- `eval_results.json`: `{split: record}`, one word-level record per evaluated split (`trainer.evaluation.metrics`'s
  `evaluation_record`: overall and per-entity scores, sizes, dataset, protocol, and `model`: the model scored, "."
  for the one saved in the same directory); a new split's record is merged in, never one of another model.
- `predictions_<split>.jsonl`: one sentence a line, `{"doc_id", "sent_idx", "tokens", "gold", "pred"}` (IOB2 tags).

Every file of the package is written through `atomic_path`: to a temporary file of its own beside the target, then
renamed into place, so a reader never sees half a file and no other file (a user's `x.tmp`, say) is ever touched.
Imports nothing from the package and no ML library, so serving code can use it without pulling in training
dependencies.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, TypeVar

RUN_CONFIG_FILE = "run_config.json"
TRAIN_RESULTS_FILE = "train_results.json"
EVAL_RESULTS_FILE = "eval_results.json"
CARD_FILE = "README.md"
# The teachers' word distributions of a distilled run (trainer.training.distill), computed once and kept for a resume.
TEACHER_TARGETS_FILE = "teacher_targets.npz"
# What a checkpoint must match to be resumed (model, data, labels, engine, processes); written when a run starts.
RUN_IDENTITY_FILE = "run_identity.json"
# Written last, after every other file of a run: its absence means the run was interrupted (or is still running).
RUN_COMPLETE_FILE = "run_complete.json"

# The files of a model repository: the model and its tokenizer (the names transformers writes), then the run's
# results and card. The push uploads exactly these (an allow-list, so a stray `.env` or `wandb/` never leaves the
# machine); --overwrite-output-dir removes them, with RUN_STATE_PATTERNS, before a new run.
MODEL_FILE_PATTERNS = (
    "config.json",
    "model.safetensors",
    "model-*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "chat_template.jinja",
)
RESULT_FILE_PATTERNS = (RUN_CONFIG_FILE, TRAIN_RESULTS_FILE, EVAL_RESULTS_FILE, "predictions_*.jsonl", CARD_FILE)
# What a run writes besides: checkpoints, the Trainer's pickled arguments and logs, markers, temporary files.
RUN_STATE_PATTERNS = (
    "checkpoint-*",
    "training_args.bin",
    "runs",
    RUN_IDENTITY_FILE,
    RUN_COMPLETE_FILE,
    TEACHER_TARGETS_FILE,
    "*.tmp",
)


# What train_results.json's data description says of data without document boundaries (-DOCSTART-, doc_id).
NO_DOCUMENTS = "none: the split read in order"

# What a record names as its model when the model is the one saved in the directory the results are in (a training
# run's, or `trainer.evaluate`'s default): relative, so the records still match after the directory is moved, copied
# or pushed.
THIS_MODEL = "."


class ResultsModelError(ValueError):
    """`eval_results.json` holds another model's results: merging would mix two models' scores in one file."""


def predictions_file(split: str) -> str:
    return f"predictions_{split}.jsonl"


def results_model(model: str, output_dir: str) -> str:
    """How records written into `output_dir` name `model` (a local directory or a Hub id): THIS_MODEL for the model
    saved in `output_dir` itself, else its absolute path or its Hub id."""
    if not os.path.isdir(model):
        return model
    path = os.path.realpath(model)
    return THIS_MODEL if path == os.path.realpath(output_dir) else path


def check_results_model(output_dir: str, model: str) -> None:
    """Raise ResultsModelError if `output_dir`'s eval_results.json holds results of a model other than `model` (as
    `results_model` names it). Records written before records named their model count as the directory's own
    model's: by default both training and `trainer.evaluate` wrote there only the model saved there."""
    path = os.path.join(output_dir, EVAL_RESULTS_FILE)
    others = {
        split: rec.get("model", THIS_MODEL)
        for split, rec in (read_results(output_dir) or {}).items()
        if rec.get("model", THIS_MODEL) != model
    }
    if others:
        split, other = next(iter(others.items()))
        other = "the model saved in that directory" if other == THIS_MODEL else other
        model = "the model saved in that directory" if model == THIS_MODEL else model
        raise ResultsModelError(
            f"{path} holds results of another model ({split}: {other}); not merging the results "
            f"of {model} into it: give another --output-dir, or remove that directory's "
            f"{EVAL_RESULTS_FILE} and {predictions_file('*')} first"
        )


T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any], **overrides: Any) -> T:
    """A dataclass from a dict read from JSON, keeping only the fields `cls` knows: files written by an older or newer
    version of the package may hold others."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in {**values, **overrides}.items() if k in known})


@dataclass
class TrainStats:
    """What an engine reports about its training run; `finish` adds the data, versions and device, and the model
    card reads it back from `train_results.json`. Both engines fill the same fields."""

    engine: str = ""
    train_runtime_s: Optional[float] = None
    # Non-padding training sub-tokens per second over the whole run; None when it cannot be measured honestly
    # (a resumed Trainer run timed only its last segment).
    train_tokens_per_s: Optional[float] = None
    train_samples: int = 0
    train_loss: Optional[float] = None
    epochs: float = 0.0
    global_steps: int = 0
    best_checkpoint: Optional[str] = None
    best_validation_f1: Optional[float] = None
    world_size: int = 1
    mixed_precision: str = "no"
    resumed_from: Optional[str] = None
    log_history: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what the run's reader must know (outputs.learnt_nothing)
    data: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    device: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- writing ------------------------------------------------------------------------------------------------------


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """A new temporary path beside `path` (`<path>.<pid>-<random>.tmp`, created empty here) for the block to write;
    renamed onto `path` when the block ends, removed if it raises. The name is this call's own, so two writers never
    share it and an existing file is never overwritten but `path` itself."""
    tmp = f"{path}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    open(tmp, "x").close()  # exclusive: never someone else's file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(path: str, obj: Any) -> None:
    """Write `obj` as JSON to `path` atomically."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False))


def write_jsonl(path: str, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_evaluation(output_dir: str, split: str, record: dict[str, Any], rows: Iterable[dict[str, Any]]) -> None:
    """Merge `record` into `eval_results.json` under `split` and write `predictions_<split>.jsonl`. Raises
    ResultsModelError, writing nothing, if the file holds results of another model than the record's `model`."""
    check_results_model(output_dir, record.get("model", THIS_MODEL))
    os.makedirs(output_dir, exist_ok=True)
    results = read_results(output_dir) or {}
    results[split] = record
    write_jsonl(os.path.join(output_dir, predictions_file(split)), rows)
    write_json(os.path.join(output_dir, EVAL_RESULTS_FILE), results)


def write_train_stats(output_dir: str, stats: TrainStats) -> None:
    write_json(os.path.join(output_dir, TRAIN_RESULTS_FILE), stats.to_dict())


# --- reading: by directory, or by the path of one file (the Space reads files downloaded from the Hub) --------------


def load_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_results(output_dir: str) -> Optional[dict[str, Any]]:
    """`eval_results.json` of a directory, or None when there is none."""
    path = os.path.join(output_dir, EVAL_RESULTS_FILE)
    return load_json(path) if os.path.exists(path) else None


def read_predictions(output_dir: str, split: str) -> Optional[list[dict[str, Any]]]:
    """The rows of `predictions_<split>.jsonl`, or None when there is none."""
    path = os.path.join(output_dir, predictions_file(split))
    return load_jsonl(path) if os.path.exists(path) else None


def read_train_stats(output_dir: str) -> Optional[TrainStats]:
    path = os.path.join(output_dir, TRAIN_RESULTS_FILE)
    return from_dict(TrainStats, load_json(path)) if os.path.exists(path) else None


def learnt_nothing(results: dict[str, Any]) -> Optional[str]:
    """What to say of a model that scores F1 0 on validation (else on the first split scored): it predicts no entity,
    or none right. None for a model that scores above 0. Read by the training summary, the model card and the push,
    which refuses such a model unless told to push it anyway."""
    split = "validation" if "validation" in results else next(iter(results), None)
    if split is None or results[split]["overall"]["f1"] > 0:
        return None
    predicted = results[split].get("num_predicted")
    found = "predicts no entity" if predicted == 0 else f"predicts {predicted} entities, none right"
    return (
        f"This model learnt nothing: on the {split} split it {found} (F1 0). Train longer, with more data, "
        "more optimizer steps (a smaller --per-device-train-batch-size) or a higher --learning-rate."
    )


# An absolute POSIX or home-relative path of two or more parts, not part of a URL or a word (P/R/F1, 1/2).
_LOCAL_PATH = re.compile(r"(?<![\w:/.~-])~?/(?:[^\s\"'\[\]()/]+/)+([^\s\"'\[\]()/,]+)")


def scrub_local_paths(text: str) -> str:
    """`text` with every absolute local path replaced by its last part (`/home/me/data/eng.testa` -> `eng.testa`):
    where a file lay on the training machine means nothing on the Hub or to a Space's visitor, and may say more than
    intended."""
    return _LOCAL_PATH.sub(lambda m: m.group(1), text)


def shown_name(source: str) -> str:
    """How a model or data source is named to others: a Hub id as it is, a local file or directory by its name."""
    return os.path.basename(os.path.normpath(source)) if os.path.exists(source) else source


def is_complete(output_dir: str) -> bool:
    """Whether the run in `output_dir` finished: RUN_COMPLETE_FILE is written after its every other file."""
    return os.path.exists(os.path.join(output_dir, RUN_COMPLETE_FILE))
