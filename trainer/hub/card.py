"""The model card, built from what a training run wrote (context, rendering, offline validation, writing README.md).

Everything in the card comes from files in the output directory, never from literals: `config.json` (labels, the
windows the model reads text in), `run_config.json` (base model, data, hyperparameters), `train_results.json` (time,
throughput, versions, data facts), `eval_results.json` (scores, protocol) and `predictions_<split>.jsonl` (widget
examples). So a card regenerated from the same directory (the retry path, `python -m trainer.push`) is the same card.

The card is a `huggingface_hub.ModelCard` rendered from `templates/model_card.md` with `ModelCardData` metadata
(`model-index` built from `EvalResult`s, so the Hub shows the validation and test scores). `RepoCard.validate` asks the
Hub; `validate_card` below checks offline what can be checked offline.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from importlib import resources
from typing import Any, Optional, Sequence

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.repocard_data import model_index_to_eval_results
from huggingface_hub.utils import validate_repo_id

from trainer.config import DATA_SOURCE_FIELDS, RUN_FIELDS, Config
from trainer.hub.widgets import widget_examples
from trainer.outputs import (
    CARD_FILE,
    EVAL_RESULTS_FILE,
    NO_DOCUMENTS,
    RUN_CONFIG_FILE,
    TrainStats,
    learnt_nothing,
    load_json,
    read_predictions,
    read_results,
    read_train_stats,
    write_text,
)
from trainer.reading.labels import entity_types as label_entity_types
from trainer.reading.windows import recorded_window

logger = logging.getLogger(__name__)

TEMPLATE = "model_card.md"
TASK_TYPE = "token-classification"
METRICS = ("precision", "recall", "f1", "accuracy")
METRIC_NAMES = {"precision": "Precision", "recall": "Recall", "f1": "F1", "accuracy": "Accuracy"}
EVAL_SPLITS = ("validation", "test")
SPLIT_NAMES = {"validation": "Validation", "test": "Test", "train": "Train"}
TASK_NAMES = {"ner": "named-entity recognition", "pos": "part-of-speech tagging", "chunk": "chunking"}


class CardError(ValueError):
    """The output directory lacks what the card is built from, or the card would not be valid metadata."""


# --- reading the output directory ---------------------------------------------------------------------------------


def _model_config(output_dir: str) -> dict[str, Any]:
    path = os.path.join(output_dir, "config.json")
    config = load_json(path) if os.path.exists(path) else None
    if not config or "id2label" not in config:
        raise CardError(f"{output_dir}/config.json: missing or without id2label; is this a trained output directory?")
    return config


def _labels(config: dict[str, Any]) -> list[str]:
    return [config["id2label"][k] for k in sorted(config["id2label"], key=int)]


def _is_hub_id(name: Optional[str]) -> bool:
    """Whether `name` names a Hub repository rather than a local directory (only Hub ids belong in metadata)."""
    if not name or os.path.exists(name):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _base_model_license(model: str) -> Optional[str]:
    """The base model's license from its card, read from a local directory or the local Hub cache (no network)."""
    path = os.path.join(model, CARD_FILE) if os.path.isdir(model) else None
    if path is None and _is_hub_id(model):
        try:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(model, CARD_FILE, local_files_only=True)
        except Exception:  # not cached: the license stays unknown rather than guessed
            return None
    if not path or not os.path.exists(path):
        return None
    try:
        return ModelCard.load(path, ignore_metadata_errors=True).data.get("license")
    except Exception:
        return None


def _local_dataset_type(cfg: Config) -> str:
    """A model-index `dataset.type` for local files, which have no Hub id: the data directory's or train file's name."""
    where = cfg.data_dir or cfg.train_file or cfg.validation_file or cfg.test_file or "local"
    base = os.path.basename(os.path.normpath(where))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "local"
    return slug


# --- the card ------------------------------------------------------------------------------------------------------


def _pct(x: Optional[float]) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _md(text: Any) -> str:
    """A value for a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "not recorded"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    return f"{minutes:.1f} min ({seconds:.0f} s)" if minutes < 90 else f"{minutes / 60:.2f} h ({seconds:.0f} s)"


# run_config.json keys that are not training hyperparameters: the data and where it came from, and the run's own
# bookkeeping (output, logging, checkpoints, the Hub). Everything else is shown, so a field added to Config appears in
# the card without a change here.
NOT_HYPERPARAMETERS = {
    *DATA_SOURCE_FIELDS,
    *RUN_FIELDS,
    "model_name_or_path",
    "task",
    "label_column",
    "tokens_column_name",
    "label_column_name",
    "label_scheme",
    "eval_steps",
    "teacher",  # shown by name in the training section
}


def _eval_log(log_history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows (epoch, step, training loss, validation loss, validation F1) from a Trainer-style log history: each
    evaluation entry with the last training loss logged before it."""
    rows, last_loss = [], None
    for entry in log_history or []:
        if "loss" in entry:
            last_loss = entry["loss"]
        f1 = next((v for k, v in entry.items() if k.startswith("eval_") and k.endswith("f1")), None)
        if f1 is None and "eval_loss" not in entry:
            continue
        rows.append(
            {
                "epoch": entry.get("epoch"),
                "step": entry.get("step"),
                "train_loss": last_loss,
                "eval_loss": entry.get("eval_loss"),
                "f1": f1,
            }
        )
    return rows


def card_context(output_dir: str, hub_model_id: Optional[str] = None) -> dict[str, Any]:
    """Everything the card says, read from the output directory: the metadata and the template's variables."""
    run_config_path = os.path.join(output_dir, RUN_CONFIG_FILE)
    if not os.path.exists(run_config_path):
        raise CardError(f"{run_config_path} not found; is {output_dir} a trained output directory?")
    cfg = Config.load(run_config_path)
    model_config = _model_config(output_dir)
    labels = _labels(model_config)
    results = read_results(output_dir) or {}
    splits = [s for s in EVAL_SPLITS if s in results] + sorted(s for s in results if s not in EVAL_SPLITS)
    if not splits:
        raise CardError(f"{output_dir}/{EVAL_RESULTS_FILE}: no evaluation results; the card reports real scores only")
    train = read_train_stats(output_dir) or TrainStats()
    data = train.data

    repo_id = hub_model_id or cfg.hub_model_id
    model_name = (repo_id or os.path.basename(os.path.abspath(output_dir))).split("/")[-1]
    base_model = cfg.model_name_or_path
    dataset_id, dataset_revision = cfg.hub_dataset
    dataset_type = dataset_id or _local_dataset_type(cfg)
    # train_results' source names the data once; eval_results' `dataset` also names the split's file.
    dataset_pretty = data.get("source") or results[splits[0]].get("dataset") or dataset_type

    eval_results = []
    for split in splits:
        overall = results[split]["overall"]
        for metric in METRICS:
            if metric not in overall:
                continue
            eval_results.append(
                EvalResult(
                    task_type=TASK_TYPE,
                    task_name="Token Classification",
                    dataset_type=dataset_type,
                    dataset_name=dataset_pretty,
                    dataset_config=cfg.dataset_config_name,
                    dataset_split=split,
                    dataset_revision=dataset_revision,
                    metric_type=metric,
                    metric_value=round(float(overall[metric]), 4),
                    metric_name=f"{SPLIT_NAMES.get(split, split)} {METRIC_NAMES[metric]}",
                )
            )

    widget_rows: list[dict[str, Any]] = []
    widget_split = None
    for split in ("validation", "test"):
        rows = read_predictions(output_dir, split)
        if rows is not None:
            widget_rows, widget_split = rows, split
            break
    widgets = widget_examples(widget_rows)

    license_ = cfg.license or _base_model_license(base_model)
    scheme_plain = all(results[s].get("protocol", {}).get("scheme") == "none" for s in splits)
    card_data = ModelCardData(
        base_model=base_model if _is_hub_id(base_model) else None,
        datasets=[dataset_id] if dataset_id else None,
        license=license_,
        library_name="transformers",
        pipeline_tag=TASK_TYPE,
        tags=["token-classification", cfg.task] + (["ner"] if cfg.task == "ner" else []) + ["seqeval"],
        metrics=list(METRICS),
        model_name=model_name,
        eval_results=eval_results,
        widget=[{"text": t} for t in widgets] or None,
    )

    raw_config = load_json(run_config_path)
    hyper = {k: v for k, v in raw_config.items() if k not in NOT_HYPERPARAMETERS and v is not None}
    if not cfg.teacher:  # the distillation settings mean nothing without teachers
        hyper = {k: v for k, v in hyper.items() if not k.startswith("distill_")}
    effective_bs = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    entity_types = sorted(label_entity_types(labels))
    context = {
        "card_data_obj": card_data,
        "model_name": model_name,
        "repo_id": repo_id or f"<user>/{model_name}",
        "pushed": bool(repo_id),
        "base_model": base_model,
        "base_model_is_hub": _is_hub_id(base_model),
        "task": cfg.task,
        "task_name": TASK_NAMES.get(cfg.task, cfg.task),
        "unit": "chunk" if cfg.task == "chunk" else "entity",
        "plain_tags": scheme_plain,
        "dataset_id": dataset_id,
        "dataset_revision": dataset_revision,
        "dataset_pretty": dataset_pretty,
        "data_source": data.get("source") or dataset_pretty,
        "source_scheme": data.get("scheme") or cfg.label_scheme,
        "data_sizes": data.get("sizes") or {},
        "license": license_,
        "labels": labels,
        "entity_types": entity_types,
        "splits": splits,
        "split_names": SPLIT_NAMES,
        "results": results,
        "protocol": results[splits[0]].get("protocol", {}),
        # How the model reads text (trainer.reading.windows), as its config records it; models trained before it was
        # recorded read sentences.
        "window": recorded_window(model_config) or results[splits[0]].get("protocol", {}).get("window"),
        "documents": data.get("documents"),
        "no_documents": data.get("documents") == NO_DOCUMENTS,
        "headline_split": "test" if "test" in results else splits[0],
        "hyperparameters": hyper,
        "effective_batch_size": effective_bs,
        "train": train,
        # A path on the training machine means nothing to readers of the card; the checkpoint's name does.
        "best_checkpoint": os.path.basename(os.path.normpath(train.best_checkpoint)) if train.best_checkpoint else None,
        "runtime": _duration(train.train_runtime_s),
        "tokens_per_s": train.train_tokens_per_s,
        "versions": train.versions,
        "eval_log": _eval_log(train.log_history),
        "widgets": widgets,
        "widget_split": widget_split,
        "example": widgets[0] if widgets else "My name is Wolfgang and I live in Berlin.",
        "learnt_nothing": learnt_nothing(results),
        "teachers": [os.path.basename(os.path.normpath(t)) for t in (cfg.teacher or "").split(",") if t.strip()],
        "quick_run": cfg.max_train_samples is not None,
        "max_train_samples": cfg.max_train_samples,
        # Per split, as each was last scored: a split re-scored in full (trainer.evaluate) is no longer a sample.
        "sampled_splits": {split: r["max_eval_samples"] for split, r in results.items() if r.get("max_eval_samples")},
    }
    return context


def _template_text() -> str:
    # importlib.resources finds the template inside the package however it is run (python -m, installed, zipped).
    return resources.files("trainer").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")


def build_model_card(output_dir: str, hub_model_id: Optional[str] = None) -> ModelCard:
    """The card of an output directory, validated offline (see `validate_card`)."""
    import jinja2

    ctx = card_context(output_dir, hub_model_id)
    card_data = ctx.pop("card_data_obj")
    # Rendered like `ModelCard.from_template` (card_data YAML at the top, then the body) but with StrictUndefined:
    # from_template's plain jinja2.Template renders a misspelt or missing variable as an empty string, and a card
    # with silently empty numbers is worse than an error.
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(pct=_pct, md=_md, json_str=lambda s: json.dumps(s, ensure_ascii=False))
    content = env.from_string(_template_text()).render(card_data=card_data.to_yaml(), **ctx)
    card = ModelCard(content)
    # ModelCard re-parses the YAML; keep the EvalResult objects we built so validate_card can compare both.
    validate_card(card, expected=card_data.eval_results or [])
    return card


def validate_card(card: ModelCard, expected: Optional[Sequence[EvalResult]] = None) -> None:
    """Offline checks of the card's metadata: what the Hub's validator rejects and what the Hub needs to show the
    results. (`RepoCard.validate` posts the card to the Hub; there is no offline version of it.)

    - the text parses back into `ModelCardData` without ignoring errors, and `model-index` parses back into the same
      `EvalResult`s (the Hub reads the scores from there), equal to `expected` when given;
    - every result has a task, a dataset type and name, a split, and numeric metric values in [0, 1];
    - `base_model` and `datasets` are valid Hub repository ids; `pipeline_tag` is token-classification;
    - widget examples are non-empty texts.
    """
    try:
        parsed = ModelCard(str(card), ignore_metadata_errors=False)
    except ValueError as e:
        raise CardError(f"model card metadata does not parse: {e}") from e
    meta = parsed.data.to_dict()
    if meta.get("pipeline_tag") != TASK_TYPE:
        raise CardError(f"pipeline_tag must be {TASK_TYPE!r}, got {meta.get('pipeline_tag')!r}")
    index = meta.get("model-index")
    if not index:
        raise CardError("model card has no model-index: the Hub would show no results")
    try:
        name, results = model_index_to_eval_results(index)
    except (KeyError, TypeError) as e:
        raise CardError(f"model-index does not parse: {e!r}") from e
    expected = card.data.eval_results if expected is None else expected
    expected = expected or []
    if len(results) != len(expected) or any(
        a.metric_value != b.metric_value or a.unique_identifier != b.unique_identifier
        for a, b in zip(results, expected)
    ):
        raise CardError("model-index does not round-trip to the evaluation results it was built from")
    for r in results:
        if not (r.task_type and r.dataset_type and r.dataset_name and r.dataset_split):
            raise CardError(f"incomplete model-index result: {r}")
        if not isinstance(r.metric_value, (int, float)) or not 0.0 <= r.metric_value <= 1.0:
            raise CardError(f"metric {r.metric_type} of {r.dataset_split}: value {r.metric_value!r} is not in [0, 1]")
    for key in ("base_model", "datasets"):
        values = meta.get(key) or []
        for value in [values] if isinstance(values, str) else values:
            try:
                validate_repo_id(value)
            except HFValidationError as e:
                raise CardError(f"{key}: {value!r} is not a Hub repository id ({e})") from e
    for w in meta.get("widget") or []:
        if not isinstance(w, dict) or not isinstance(w.get("text"), str) or not w["text"].strip():
            raise CardError(f"widget examples must be {{text: ...}} with text, got {w!r}")


def write_model_card(output_dir: str, hub_model_id: Optional[str] = None, card: Optional[ModelCard] = None) -> str:
    """Write the model card (`card`, else rendered from the output directory's files) to `<output_dir>/README.md`.

    `hub_model_id` (default: run_config's) is the repository the usage example loads from. Returns the path.
    Raises CardError if the directory lacks what the card is built from.
    """
    card = card or build_model_card(output_dir, hub_model_id)
    path = os.path.join(output_dir, CARD_FILE)
    write_text(path, str(card))
    logger.info("Model card written to %s", path)
    return path
