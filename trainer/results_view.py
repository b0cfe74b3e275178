"""What the Space shows, without Gradio: highlighted-text payloads, entity colours, a model's validation results
(read from its directory or Hub repo, or computed on its validation data and cached) as tables, chart data and
text, and the error browser's rows. app.py only wires these to components.

Results are read from `eval_results.json` / `predictions_<split>.jsonl` (trainer.outputs). Computing them is
trainer.evaluation's `evaluate`, imported only when asked for, so serving a model with results never loads the data
readers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zlib
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Sequence

from trainer.error_analysis import error_table
from trainer.inference import Entity, NerTagger
from trainer.labels import tags_to_spans
from trainer.outputs import EVAL_RESULTS_FILE, RUN_CONFIG_FILE, load_json, load_jsonl, predictions_file

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

SPLIT = "validation"

# One colour per entity type, the same on every page load: the CoNLL types get fixed ones, other types a palette
# colour chosen by a hash of the name (not Python's hash(), which changes between processes).
KNOWN_COLORS = {"PER": "#f28b82", "ORG": "#8ab4f8", "LOC": "#81c995", "MISC": "#fdd663"}
PALETTE = ["#c58af9", "#78d9ec", "#fcad70", "#ff8bcb", "#a7c7e7", "#cbe86b", "#e6c9a8", "#9aa0a6"]

ERROR_COLUMNS = ["doc", "sentence #", "kind", "gold", "predicted", "sentence"]
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


def highlighted_words(tokens: Sequence[str], tags: Sequence[str]) -> dict[str, Any]:
    """Words joined by spaces, with their IOB2 tags' spans as character spans: gold or predicted side of a sentence."""
    starts, pos = [], 0
    for tok in tokens:
        starts.append(pos)
        pos += len(tok) + 1
    ents = [{"entity": typ, "start": starts[a], "end": starts[b - 1] + len(tokens[b - 1])}
            for typ, a, b in tags_to_spans(tags)]
    return {"text": " ".join(tokens), "entities": ents}


# --- validation results -----------------------------------------------------------------------------------------


class ModelResults:
    """A model's validation results: from its local directory, its Hub repo, or a cache of computed ones."""

    def __init__(self, source: str, cache_root: Optional[str] = None) -> None:
        self.source = source
        self.local = os.path.isdir(source)
        root = cache_root or os.environ.get("NER_SPACE_CACHE") or os.path.join(
            os.path.expanduser("~"), ".cache", "ner-space")
        # Computed results go into the model directory when it is ours to write, else into a per-model cache.
        if self.local and os.access(source, os.W_OK):
            self.cache_dir = source
        else:
            key = hashlib.sha1(os.path.abspath(source).encode() if self.local else source.encode()).hexdigest()[:12]
            self.cache_dir = os.path.join(root, key)
        self.note = ""  # why results could not be read, for the page

    def _file(self, name: str) -> Optional[str]:
        """Path of a results file: the cache, the model directory, or a download from the Hub repo."""
        for d in dict.fromkeys([self.cache_dir] + ([self.source] if self.local else [])):
            path = os.path.join(d, name)
            if os.path.exists(path):
                return path
        if self.local:
            return None
        try:
            from huggingface_hub import hf_hub_download

            return hf_hub_download(self.source, name)
        except Exception as exc:  # noqa: BLE001 - missing file, offline, no such repo: all mean "not available"
            self.note = f"{name} could not be fetched from the Hub repo {self.source} ({type(exc).__name__})"
            return None

    def results(self) -> Optional[dict[str, Any]]:
        """The validation record of `eval_results.json`, or None."""
        path = self._file(EVAL_RESULTS_FILE)
        return load_json(path).get(SPLIT) if path else None

    def predictions(self) -> list[dict[str, Any]]:
        path = self._file(predictions_file(SPLIT))
        return load_jsonl(path) if path else []

    def compute(self, tagger: NerTagger, progress: Optional[Callable[[float, str], None]] = None,
                batch_size: int = 32) -> dict[str, Any]:
        """Score the tagger's model on the validation split named by the model's run_config.json (CoNLL-2003 for a
        model without one) with trainer.evaluation, and write the result files into the cache directory."""
        from trainer.evaluation import eval_config, evaluate, load_split

        cfg = eval_config(self.source, run_config=self._file(RUN_CONFIG_FILE))
        if progress:
            progress(0.0, "loading the validation data")
        try:
            data = load_split(cfg, SPLIT)
        except Exception as exc:  # noqa: BLE001 - DataError, missing files, Hub unreachable
            where = cfg.data_dir or cfg.validation_file or cfg.dataset_name
            raise RuntimeError(f"The validation data of this model ({where}) could not be loaded: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
        return evaluate(tagger.model, tagger.tokenizer, data, SPLIT, cfg.max_seq_length, batch_size,
                        output_dir=self.cache_dir, progress=progress).record


def per_entity_rows(record: dict[str, Any]) -> list[list[Any]]:
    return [[typ, round(r["precision"], 4), round(r["recall"], 4), round(r["f1"], 4), r["support"]]
            for typ, r in sorted(record["per_entity"].items())]


METRICS = ("precision", "recall", "f1")
METRIC_COLORS = {"precision": "#8ab4f8", "recall": "#fdd663", "f1": "#81c995"}


def chart_order(types: Iterable[str]) -> list[str]:
    """The chart's bars: by type, then precision, recall, F1."""
    return [f"{t} {m}" for t in sorted(types) for m in METRICS]


def chart_frame(record: dict[str, Any]) -> "pd.DataFrame":
    """Data of the bar chart: one bar per (type, metric), next to each other. gr.BarPlot stacks bars that share an
    x value (no grouped bars, gradio issue 10763), so each bar gets its own x label, `PER f1`, in type order."""
    import pandas as pd

    rows = [{"bar": f"{typ} {m}", "type": typ, "metric": m, "value": round(r[m], 4)}
            for typ, r in sorted(record["per_entity"].items()) for m in METRICS]
    return pd.DataFrame(rows, columns=["bar", "type", "metric", "value"])


def summary_markdown(record: dict[str, Any], source: str) -> str:
    o, p = record["overall"], record.get("protocol", {})
    return "\n".join([
        f"**Overall** (micro average over entities): precision **{o['precision']:.4f}**, recall "
        f"**{o['recall']:.4f}**, F1 **{o['f1']:.4f}**, word accuracy {o['accuracy']:.4f}",
        "",
        f"- Model: `{source}`",
        f"- Dataset: {record.get('dataset', '?')}, split **{record.get('split', SPLIT)}** "
        f"({record.get('num_sentences', '?')} sentences, {record.get('num_words', '?')} words)",
        f"- Metric: {p.get('metric', 'seqeval')}, mode {p.get('mode', '?')}, scheme {p.get('scheme', '?')}",
        f"- Level: {p.get('level', '?')}",
    ])


def error_rows(predictions: Sequence[dict[str, Any]], types: Optional[Iterable[str]] = None,
               kinds: Optional[Iterable[str]] = None, limit: int = 500) -> list[dict[str, Any]]:
    """Error-browser records (see trainer.error_analysis.error_table), at most `limit` of them."""
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
