"""What the Space shows, without Gradio: highlighted-text payloads, entity colours, a model's validation results
(read from its directory or Hub repo, or computed in memory on data that belongs to the model) as tables, chart
data and text, and the error browser's rows. app.py only wires these to components.

Results are read from `eval_results.json` / `predictions_<split>.jsonl` (trainer.outputs). Computing them is
trainer.evaluation.word_level's `evaluate`, imported only when asked for, so serving a model with results never loads
the data readers.
"""

from __future__ import annotations

import html
import logging
import os
import zlib
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Sequence

from trainer.evaluation.errors import KINDS, error_table
from trainer.inference.tagger import Entity, NerTagger
from trainer.outputs import (
    EVAL_RESULTS_FILE,
    RUN_CONFIG_FILE,
    is_complete,
    load_json,
    load_jsonl,
    predictions_file,
    scrub_local_paths,
    shown_name,
)
from trainer.reading.labels import tags_to_spans

if TYPE_CHECKING:
    from trainer.config import Config
    from trainer.evaluation.word_level import Evaluation

logger = logging.getLogger(__name__)

SPLIT = "validation"

# One colour per entity type, the same on every page load: the CoNLL types get fixed ones, other types a palette
# colour chosen by a hash of the name (not Python's hash(), which changes between processes).
KNOWN_COLORS = {"PER": "#f28b82", "ORG": "#8ab4f8", "LOC": "#81c995", "MISC": "#fdd663"}
PALETTE = ["#c58af9", "#78d9ec", "#fcad70", "#ff8bcb", "#a7c7e7", "#cbe86b", "#e6c9a8", "#9aa0a6"]

ERROR_KINDS = list(KINDS)  # the error browser's filter choices
ERROR_COLUMNS = ["doc", "sentence", "kind", "gold", "predicted", "text"]
ENTITY_COLUMNS = ["type", "text", "score", "start", "end"]
PER_ENTITY_COLUMNS = ["type", "precision", "recall", "f1", "support"]


def entity_colors(types: Iterable[str]) -> dict[str, str]:
    return {t: KNOWN_COLORS.get(t) or PALETTE[zlib.crc32(t.encode()) % len(PALETTE)] for t in types}


# --- try it -----------------------------------------------------------------------------------------------------


def highlighted(text: str, entities: Sequence[Entity]) -> dict[str, Any]:
    """The value of a gr.HighlightedText: the text itself and character spans (the component escapes the text)."""
    return {"text": text, "entities": [{"entity": e.type, "start": e.start, "end": e.end} for e in entities]}


def entity_rows(entities: Sequence[Entity]) -> list[list[Any]]:
    return [[e.type, e.text, round(e.score, 3), e.start, e.end] for e in entities]


def predict_or_message(tagger: NerTagger, text: str) -> list[Entity] | str:
    """One text's entities, or a message saying it could not be processed (without the exception's details)."""
    try:
        return tagger.predict(text)
    except Exception:
        logger.exception("prediction failed for one request")
        return "⚠️ This text could not be processed."


def highlighted_words(tokens: Sequence[str], tags: Sequence[str]) -> dict[str, Any]:
    """Words joined by spaces, with their IOB2 tags' spans as character spans: gold or predicted side of a sentence."""
    starts, pos = [], 0
    for tok in tokens:
        starts.append(pos)
        pos += len(tok) + 1
    ents = [
        {"entity": typ, "start": starts[a], "end": starts[b - 1] + len(tokens[b - 1])}
        for typ, a, b in tags_to_spans(tags)
    ]
    return {"text": " ".join(tokens), "entities": ents}


# --- validation results -----------------------------------------------------------------------------------------


class ModelResults:
    """A model's validation results, read-only: the files shipped with the model (its directory or Hub repo), or
    computed in memory on data that belongs to the model.

    Nothing here writes a file, and nothing reads a path that a model's run_config.json names outside the model: a
    Space may serve someone else's model, whose config could name any file of the machine (a token file, say).
    Computed results live in this object only, so a replaced model never shows the old model's scores.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.local = os.path.isdir(source)
        self.note = ""  # what is wrong with the results, for the page
        self._computed: Optional[Evaluation] = None

    def _fetch(self, name: str) -> Optional[str]:
        """Path of a file of the model: in its directory, or downloaded from its Hub repo; None if it has none."""
        if self.local:
            path = os.path.join(self.source, name)
            return path if os.path.isfile(path) else None
        try:
            from huggingface_hub import hf_hub_download

            return hf_hub_download(self.source, name)
        except Exception as exc:
            self.note = f"{name} could not be fetched from the Hub repo {self.source} ({type(exc).__name__})"
            return None

    def _read(self, name: str, reader: Callable[[str], Any]) -> Any:
        path = self._fetch(name)
        if path is None:
            return None
        try:
            return reader(path)
        except (ValueError, OSError) as exc:  # a file cut short by an interrupted write, or not ours
            self.note = (
                f"{name} of this model cannot be read ({type(exc).__name__}: {scrub_local_paths(str(exc))[:120]})"
            )
            return None

    def results(self) -> Optional[dict[str, Any]]:
        """The validation record: computed here, else the model's `eval_results.json`; None if there is neither."""
        if self._computed:
            return self._computed.record
        results = self._read(EVAL_RESULTS_FILE, load_json)
        if results is not None and not isinstance(results.get(SPLIT) if isinstance(results, dict) else None, dict):
            self.note = f"{EVAL_RESULTS_FILE} of this model holds no {SPLIT} results"
            return None
        if (
            results
            and self.local
            and os.path.exists(os.path.join(self.source, RUN_CONFIG_FILE))
            and not is_complete(self.source)
        ):
            self.note = (
                "the training run of this model did not complete (no run_complete.json): these results may "
                "not belong to its weights"
            )
        return results[SPLIT] if results else None

    def predictions(self) -> list[dict[str, Any]]:
        if self._computed:
            return self._computed.rows
        return self._read(predictions_file(SPLIT), load_jsonl) or []

    def validation_config(self) -> Config:
        """The model's run config, with its validation data limited to what belongs to the model: a Hub dataset, or
        a file inside the model's directory or repo. Raises ValueError for any other local path (not read)."""
        import dataclasses

        from trainer.evaluation.word_level import eval_config

        cfg = eval_config(self.source, run_config=self._fetch(RUN_CONFIG_FILE))
        local = cfg.validation_file or cfg.data_dir
        if not local:
            return cfg  # a Hub dataset (CoNLL-2003 for a model without a run config)
        refusal = ValueError(
            "this model's validation data is a path on the machine it was trained on, which the "
            "Space does not read; ship eval_results.json with the model (`python -m "
            "trainer.evaluate`), or a validation file inside the model repository"
        )
        if cfg.data_dir or os.path.isabs(local) or ".." in local.replace("\\", "/").split("/"):
            raise refusal
        if self.local:
            root = os.path.realpath(self.source)
            path = os.path.realpath(os.path.join(root, local))
            if os.path.commonpath([root, path]) != root:  # e.g. a symlink out of the model directory
                raise refusal
        else:
            path = self._fetch(local)
            if path is None:
                raise refusal
        return dataclasses.replace(cfg, validation_file=path, train_file=None, test_file=None)

    def compute(
        self, tagger: NerTagger, progress: Optional[Callable[[float, str], None]] = None, batch_size: int = 32
    ) -> dict[str, Any]:
        """Score the tagger's model on its validation data (see `validation_config`) with trainer.evaluation.word_level,
        in
        memory; computed once per process, then returned as it is."""
        if self._computed:
            return self._computed.record
        from trainer.data.load import DataError
        from trainer.evaluation.word_level import evaluate, load_split

        if progress:
            progress(0.0, "loading the validation data")
        try:
            cfg = self.validation_config()
            data = load_split(cfg, SPLIT)
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if isinstance(exc, DataError):  # its message quotes the offending line: never shown to visitors
                reason = "the model's validation file is not in a format the trainer reads"
            raise RuntimeError(f"The validation results could not be computed: {scrub_local_paths(reason)}") from exc
        self._computed = evaluate(
            tagger.model, tagger.tokenizer, data, SPLIT, cfg.max_seq_length, batch_size, progress=progress
        )
        self.note = ""
        return self._computed.record


def per_entity_rows(record: dict[str, Any]) -> list[list[Any]]:
    return [
        [typ, round(r["precision"], 4), round(r["recall"], 4), round(r["f1"], 4), r["support"]]
        for typ, r in sorted(record["per_entity"].items())
    ]


METRICS = ("precision", "recall", "f1")
METRIC_COLORS = {"precision": "#8ab4f8", "recall": "#fdd663", "f1": "#81c995"}


def chart_svg(record: dict[str, Any]) -> str:
    """Precision, recall and F1 per entity type as a grouped bar chart (inline SVG: one group per type, a bar per
    metric, scores from 0 to 1). gr.BarPlot stacks the bars that share an x value instead of grouping them, so the
    chart is drawn here; its only text from outside is the types' names, escaped."""
    types = sorted(record["per_entity"])
    bar, gap, group_gap, height, left, top, bottom = 16, 3, 26, 160, 34, 30, 26
    group = len(METRICS) * (bar + gap) + group_gap
    width = left + max(1, len(types)) * group + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + bottom}" role="img" '
        f'aria-label="Precision, recall and F1 per entity type" font-family="sans-serif" font-size="11">'
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        y = top + height * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4}" text-anchor="end" fill="#666">{tick:g}</text>')
    for i, metric in enumerate(METRICS):  # the legend
        x = left + i * 80
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{METRIC_COLORS[metric]}"/>')
        parts.append(f'<text x="{x + 14}" y="15">{metric}</text>')
    for g, typ in enumerate(types):
        x0 = left + g * group + group_gap / 2
        for j, metric in enumerate(METRICS):
            value = float(record["per_entity"][typ][metric])
            x, h = x0 + j * (bar + gap), height * value
            parts.append(
                f'<rect class="bar" data-type="{html.escape(typ)}" data-metric="{metric}" x="{x}" '
                f'y="{top + height - h}" width="{bar}" height="{h}" fill="{METRIC_COLORS[metric]}">'
                f"<title>{html.escape(typ)} {metric} {value:.3f}</title></rect>"
            )
        center = x0 + (len(METRICS) * (bar + gap) - gap) / 2
        parts.append(f'<text x="{center}" y="{top + height + 16}" text-anchor="middle">{html.escape(typ)}</text>')
    return "".join(parts) + "</svg>"


def summary_markdown(record: dict[str, Any], source: str) -> str:
    o, p = record["overall"], record.get("protocol", {})
    w = p.get("window")
    context = (
        [
            f"- Context: {'whole documents' if w['context'] == 'document' else 'single sentences'}, read in "
            f"windows of {w['max_length']} sub-tokens sharing {w['stride']}",
            "- Decoding: "
            + (
                "the most probable valid IOB2 sequence (Viterbi)"
                if w.get("decoding") == "viterbi"
                else "each word's most probable label (argmax)"
            ),
            "- Case signal: "
            + (
                "capitals flagged in token_type_ids (the tokenizer lower-cases)"
                if w.get("case_signal") == "token_type"
                else "none"
            ),
        ]
        if w
        else []
    )
    return "\n".join(
        [
            f"**Overall** (micro average over entities): precision **{o['precision']:.4f}**, recall "
            f"**{o['recall']:.4f}**, F1 **{o['f1']:.4f}**, word accuracy {o['accuracy']:.4f}",
            "",
            f"- Model: `{shown_name(source)}`",
            f"- Dataset: {scrub_local_paths(str(record.get('dataset', '?')))}, split **{record.get('split', SPLIT)}** "
            f"({record.get('num_sentences', '?')} sentences, {record.get('num_words', '?')} words)",
            f"- Metric: {p.get('metric', 'seqeval')}, mode {p.get('mode', '?')}, scheme {p.get('scheme', '?')}",
            f"- Level: {p.get('level', '?')}",
            *context,
        ]
    )


def error_rows(
    predictions: Sequence[dict[str, Any]],
    types: Optional[Iterable[str]] = None,
    kinds: Optional[Iterable[str]] = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Error-browser records (see trainer.evaluation.errors.error_table), at most `limit` of them."""
    return error_table(predictions, types, kinds)[:limit]


def error_table_rows(records: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [[r["doc_id"], r["sent_idx"], r["kind"], r["gold"], r["pred"], r["sentence"]] for r in records]


def example_sentences(predictions: Sequence[dict[str, Any]], n: int = 3, min_entities: int = 2) -> list[str]:
    """A few real validation sentences with several entities, as text, for the examples of the first tab."""
    out = []
    for row in predictions:
        if len(tags_to_spans(row["gold"])) >= min_entities and 6 <= len(row["tokens"]) <= 40:
            out.append(" ".join(row["tokens"]))
            if len(out) == n:
                break
    return out
