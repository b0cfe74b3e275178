"""Hub datasets, CoNLL column files and JSON lines -> one `DatasetDict` with the same columns whatever the source:
`tokens` (words), `tags` (IOB2 strings, or plain tags for POS), `doc_id` and `sent_idx` (the sentence's document, from
`-DOCSTART-` markers or a JSON line's `doc_id`, and its place in it; -1 / the row index where the source has no
documents). Files are read by trainer.data.files; tags are checked and converted by trainer.reading.labels.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from datasets import Dataset, DatasetDict, Features, List, Value, load_dataset

from trainer.config import Config
from trainer.data.files import DataError, Sentence, expected_files, find_split_files, has_chunk_tags, read_file
from trainer.outputs import NO_DOCUMENTS
from trainer.reading.labels import complete_labels, detect_scheme, tag_error, to_iob2

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
FEATURES = Features(
    {
        "tokens": List(Value("string")),
        "tags": List(Value("string")),
        "doc_id": Value("int32"),
        "sent_idx": Value("int32"),
    }
)


@dataclass
class NerData:
    splits: DatasetDict
    labels: list[str]  # model label list, IOB2 (or plain tags)
    scheme: str  # the source's scheme before conversion: IOB1, IOB2, BIOES or none
    source: str  # human-readable description of where the data came from (cards, results)
    files: dict[str, str] = field(default_factory=dict)
    lines: dict[str, list[int]] = field(default_factory=dict)  # per file split: each sentence's first line
    # Per JSON lines split: each document number's id as the file wrote it (a string, or an integer other than the
    # number), which the predictions files show instead of the number.
    doc_names: dict[str, dict[int, str | int]] = field(default_factory=dict)

    @property
    def label2id(self) -> dict[str, int]:
        return {tag: i for i, tag in enumerate(self.labels)}

    def split_source(self, split: str) -> str:
        """Where one split came from, for result files: `source [split: file]`."""
        return f"{self.source} [{split}: {self.files.get(split, self.source)}]"

    def document_ids(self, split: str) -> list[str | int]:
        """Each sentence's document as its source named it (the file's doc_id), or its number; -1: no document."""
        names = self.doc_names.get(split, {})
        return [names.get(d, d) for d in self.splits[split]["doc_id"]]

    def sentence_sources(self, split: str) -> list[str]:
        """Where each sentence of a split came from, for messages: `file:line`, or `source [split] row N`."""
        lines = self.lines.get(split, [])
        return [
            f"{self.files[split]}:{lines[row]}"
            if split in self.files and row < len(lines)
            else f"{self.source} [{split}] row {row}"
            for row in range(len(self.splits[split]))
        ]


# --- conversion ---------------------------------------------------------------------------------------------------


def _resolve_scheme(cfg: Config, tag_lists: list[list[str]]) -> str:
    if cfg.label_scheme != "auto":
        return cfg.label_scheme
    if not has_chunk_tags(cfg):
        return "none"
    scheme = detect_scheme(tag_lists)
    return "IOB2" if scheme == "none" else scheme  # all-O data: nothing to convert


def _to_dataset(rows: list[Sentence]) -> Dataset:
    return Dataset.from_dict(
        {
            "tokens": [r.tokens for r in rows],
            "tags": [r.tags for r in rows],
            "doc_id": [r.doc_id for r in rows],
            "sent_idx": [r.sent_idx for r in rows],
        },
        features=FEATURES,
    )


def _report_unseen(split: str, where: str, rows: list[Sentence], known: set[str]) -> None:
    """Evaluation labels never seen in training stay gold (a model can only miss them); say so, don't crash."""
    unseen: dict[str, tuple[int, int]] = {}
    for r in rows:
        for tag in r.tags:
            if tag not in known:
                count, line = unseen.get(tag, (0, r.line))
                unseen[tag] = (count + 1, line)
    for tag, (count, line) in sorted(unseen.items()):
        logger.warning(
            "%s:%s: %s label %r never occurs in training (%d words); the model cannot predict it and "
            "these words count as missed",
            where,
            line,
            split,
            tag,
            count,
        )


def load_files(cfg: Config, only: Optional[Sequence[str]] = None) -> NerData:
    """The configured files; `only`: just these splits (evaluation reads and converts nothing it does not score)."""
    files = (
        find_split_files(cfg.data_dir, require_train=only is None or "train" in only)
        if cfg.data_dir
        else {
            s: p
            for s, p in (("train", cfg.train_file), ("validation", cfg.validation_file), ("test", cfg.test_file))
            if p
        }
    )
    if only is not None:
        for split in only:
            if split not in files:
                raise DataError(
                    f"{cfg.data_dir}: no {split} file: expected one of {expected_files(split)}"
                    if cfg.data_dir
                    else f"no {split} file: expected --{split}-file (given: "
                    f"{', '.join(f'--{s}-file' for s in files) or 'none'})"
                )
        files = {s: p for s, p in files.items() if s in only}
    raw = {split: read_file(path, cfg) for split, path in files.items()}
    # The scheme and labels come from the training split. Evaluation-only use (trainer.evaluate) may have none: the
    # scheme is then read from what there is, and the model brings its own labels.
    label_source = [raw["train"]] if "train" in raw else list(raw.values())
    scheme = _resolve_scheme(cfg, [r.tags for rows in label_source for r in rows])
    for rows in raw.values():
        for r in rows:
            r.tags = to_iob2(r.tags, scheme)
    labels = complete_labels([t for rows in label_source for r in rows for t in r.tags], scheme)
    if "train" in raw:
        for split, rows in raw.items():
            if split != "train":
                _report_unseen(split, files[split], rows, set(labels))
    splits = DatasetDict({split: _to_dataset(rows) for split, rows in raw.items()})
    source = (
        f"CoNLL files in {cfg.data_dir}"
        if cfg.data_dir
        else "local files " + ", ".join(os.path.basename(p) for p in files.values())
    )
    return NerData(
        splits,
        labels,
        scheme,
        source,
        {k: os.path.abspath(v) for k, v in files.items()},
        {split: [r.line for r in rows] for split, rows in raw.items()},
        {
            split: {r.doc_id: r.doc_name for r in rows if r.doc_name is not None}
            for split, rows in raw.items()
            if any(r.doc_name is not None for r in rows)
        },
    )


def load_hub(cfg: Config) -> NerData:
    name, revision = cfg.hub_dataset
    where = f"{name}" + (f"@{revision}" if revision else "")
    try:
        ds = load_dataset(name, cfg.dataset_config_name, revision=revision)
    except (ConnectionError, FileNotFoundError, ValueError) as e:  # offline, no such dataset, no such configuration
        raise DataError(
            f"{where}: the Hub dataset could not be loaded ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "without the Hub, give local files (--data-dir, or --train-file and --validation-file)"
        ) from None
    tag_col, tok_col = cfg.tag_column_name, cfg.tokens_column_name
    for split, d in ds.items():
        missing = [c for c in (tok_col, tag_col) if c not in d.column_names]
        if missing:
            raise DataError(
                f"{where} [{split}]: no column {missing[0]!r}: expected token and tag columns "
                f"(--tokens-column-name / --label-column-name), found {d.column_names}"
            )
    names = getattr(ds[next(iter(ds))].features[tag_col], "feature", None)
    names = getattr(names, "names", None)  # ClassLabel names, if the tags are class ids
    splits: dict[str, list[list[str]]] = {}
    for split, d in ds.items():
        tag_lists = d[tag_col]
        splits[split] = [[names[t] for t in row] for row in tag_lists] if names else tag_lists
    if has_chunk_tags(cfg):
        for split, rows in splits.items():
            for i, row in enumerate(rows):
                for tag in row:
                    if err := tag_error(tag):
                        raise DataError(f"{where} [{split}] row {i}: {err}")
    scheme = _resolve_scheme(cfg, splits.get("train", []))
    splits = {s: [to_iob2(r, scheme) for r in rows] for s, rows in splits.items()}
    if names and scheme in ("IOB2", "none"):
        labels = list(names)  # keep the dataset's own label order
    else:
        labels = complete_labels([t for r in splits.get("train", []) for t in r] + list(names or []), scheme)
    out = {}
    for split, d in ds.items():
        if split not in SPLITS:
            continue
        doc = d["doc_id"] if "doc_id" in d.column_names else [-1] * len(d)
        out[split] = Dataset.from_dict(
            {"tokens": d[tok_col], "tags": splits[split], "doc_id": doc, "sent_idx": list(range(len(d)))},
            features=FEATURES,
        )
    return NerData(DatasetDict(out), labels, scheme, f"{cfg.dataset_name} (Hub: {where})")


def load_data(cfg: Config, only: Optional[Sequence[str]] = None) -> NerData:
    """Load every available split of the configured source (`only`: just these, for evaluation; files need not exist
    for the others), converted to IOB2, truncated by --max-*-samples."""
    data = load_hub(cfg) if cfg.dataset_name else load_files(cfg, only)
    if only is not None:
        data.splits = DatasetDict({s: d for s, d in data.splits.items() if s in only})
    for split, d in list(data.splits.items()):
        limit = cfg.max_train_samples if split == "train" else cfg.max_eval_samples
        if limit is not None and limit < len(d):
            data.splits[split] = d.select(range(limit))
        if len(data.splits[split]) == 0:
            raise DataError(f"{data.files.get(split, data.source)}: the {split} split is empty")
    return data


def describe(data: NerData) -> dict[str, Any]:
    """Facts about the data for results files and the model card; `documents` says where document boundaries came
    from (trainer.reading.windows reads data without them as one stream per split, in order)."""
    bounded = any(doc_id != -1 for d in data.splits.values() for doc_id in d["doc_id"])
    return {
        "source": data.source,
        "files": data.files,
        "scheme": data.scheme,
        "labels": data.labels,
        "sizes": {s: len(d) for s, d in data.splits.items()},
        "documents": "-DOCSTART- / doc_id" if bounded else NO_DOCUMENTS,
    }
