"""Hub datasets, CoNLL column files and JSON lines -> one `DatasetDict` with the same columns whatever the source:
`tokens` (words), `tags` (IOB2 strings, or plain tags for POS), `doc_id` and `sent_idx` (the sentence's document, from
`-DOCSTART-` markers or a JSON line's `doc_id`, and its place in it; -1 / the row index where the source has no
documents).

Why our own column-file reader and not `datasets`' `conll` builder: that builder pads or cuts rows with a wrong
column count silently, drops `-DOCSTART-` boundaries and cannot say on which line a file is broken. Bad input here
raises `DataError` naming the file, the line and what was expected.
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from datasets import Dataset, DatasetDict, Features, List, Value, load_dataset

from trainer.config import Config
from trainer.labels import complete_labels, detect_scheme, tag_error, to_iob2

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
# File names looked for in --data-dir, per split (original CoNLL-2003 names first).
SPLIT_FILE_STEMS = {"train": ("eng.train", "train"),
                    "validation": ("eng.testa", "validation", "valid", "dev"),
                    "test": ("eng.testb", "test")}
FILE_EXTENSIONS = ("", ".txt", ".conll", ".iob", ".tsv", ".jsonl", ".json")
FEATURES = Features({"tokens": List(Value("string")), "tags": List(Value("string")),
                     "doc_id": Value("int32"), "sent_idx": Value("int32")})


class DataError(ValueError):
    """Input data that cannot be used as it is; the message names the file, the line and what was expected."""


@dataclass
class NerData:
    splits: DatasetDict
    labels: list[str]          # model label list, IOB2 (or plain tags)
    scheme: str                # the source's scheme before conversion: IOB1, IOB2, BIOES or none
    source: str                # human-readable description of where the data came from (cards, results)
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
        return [f"{self.files[split]}:{lines[row]}" if split in self.files and row < len(lines)
                else f"{self.source} [{split}] row {row}" for row in range(len(self.splits[split]))]


@dataclass
class _Sentence:
    tokens: list[str]
    tags: list[str]
    doc_id: int
    sent_idx: int
    line: int  # line of its first word, for messages
    doc_name: Optional[str | int] = None  # the document's id as the file wrote it, where it is not doc_id (JSON lines)


def _chunk_tags(cfg: Config) -> bool:
    """Whether tags must be O / B-I-E-S-TYPE (NER, chunking) rather than plain (POS)."""
    if cfg.label_scheme != "auto":
        return cfg.label_scheme != "none"
    return cfg.task != "pos"


# --- readers ----------------------------------------------------------------------------------------------------


# A line ends with LF, CRLF or a lone CR (old Mac files), all counted alike for line numbers. Not str.splitlines():
# that also breaks at U+2028, U+0085, form feeds etc., which CoNLL and JSON-lines tools do not treat as line ends.
_LINE_END = re.compile(rb"\r\n|\r|\n")
BOM = "\ufeff"
# Categories of characters that are not visible text: space separators, line/paragraph separators, control and
# format characters (soft hyphen, zero-width space, BOM, ...). Tokenizers drop or split on them.
_INVISIBLE_CATEGORIES = ("Zs", "Zl", "Zp", "Cc", "Cf")


def _decoded_lines(path: str):
    """(line number, text) for each line, without its line end; undecodable bytes are an error.

    A UTF-8 byte-order mark (U+FEFF) at the start of any line is removed: at the start of the file it is an encoding
    signature, at the start of a later line it is what joining files (`cat a b > c`) leaves behind; neither is text,
    and left in place it would hide a `-DOCSTART-` or glue itself to a word. A removal after line 1 is logged (once
    per file). A U+FEFF anywhere else in a line is refused rather than removed: there it may be a (deprecated)
    zero-width no-break space the author meant, it is invisible in an editor, and tokenizers disagree about it (BERT's
    drops it, byte-level BPE keeps it), so a word containing one would silently mean different things to different
    models; the user should decide."""
    with open(path, "rb") as f:
        raw = f.read()
    warned = False
    for lineno, bline in enumerate(_LINE_END.split(raw), 1):
        try:
            decoded = bline.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}:{lineno}: undecodable bytes {bline[e.start:e.end]!r} at byte {e.start + 1} of "
                            f"the line: expected UTF-8 text") from None
        text = decoded.lstrip(BOM)
        if len(text) < len(decoded) and lineno > 1 and not warned:
            logger.warning("%s:%d: removed a byte-order mark (U+FEFF) at the start of the line (files joined "
                           "together?); later ones at a line start in this file are removed too", path, lineno)
            warned = True
        if BOM in text:
            column = len(decoded) - len(text) + text.index(BOM) + 1
            raise DataError(f"{path}:{lineno}: byte-order mark (U+FEFF) at character {column} of the line: expected "
                            f"one only at the start of a line (where it is removed); delete it, or use U+2060 if "
                            f"a word joiner was meant")
        yield lineno, text


def _word_error(word: str) -> Optional[str]:
    """Why a word cannot be used (None if it can): it must have a visible character, or the tokenizer may give it
    no sub-token, and training-time word scores would then pair later words' predictions with the wrong gold tags."""
    if not word:
        return "empty word: expected a non-empty word with visible characters"
    if all(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in word):
        codes = " ".join(f"U+{ord(c):04X}" for c in word)
        return (f"word {word!r} ({codes}) has only whitespace, control or format characters: expected a non-empty "
                f"word with visible characters")
    if BOM in word:
        return (f"word {word!r} contains a byte-order mark (U+FEFF): expected a word without one (remove it, or "
                f"use U+2060 as a word joiner)")
    return None


def read_conll(path: str, label_column: int, chunk_tags: bool, what: str = "the tag column") -> list[_Sentence]:
    """Read a CoNLL column file: one word a line, whitespace-separated columns, blank lines between sentences,
    `-DOCSTART-` lines between documents. Every word line must have the same number of columns."""
    sentences: list[_Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    doc_id, sent_idx, start_line = 0, 0, 0
    has_docstart = False
    ncols: Optional[int] = None
    ncols_line = 0

    def flush() -> None:
        nonlocal words, tags, sent_idx
        if words:
            sentences.append(_Sentence(words, tags, doc_id, sent_idx, start_line))
            sent_idx += 1
        words, tags = [], []

    for lineno, line in _decoded_lines(path):
        parts = line.split()
        if not parts:
            flush()
            continue
        if parts[0] == "-DOCSTART-":
            has_docstart = True
            flush()
            if sentences and sentences[-1].doc_id == doc_id:
                doc_id += 1
                sent_idx = 0
            continue
        if ncols is None:
            ncols, ncols_line = len(parts), lineno
            if ncols < 2:
                raise DataError(f"{path}:{lineno}: expected at least 2 whitespace-separated columns (word and tag), "
                                f"found 1: {line.strip()!r}")
            if not -ncols <= label_column < ncols:
                raise DataError(f"{path}:{lineno}: {what} is column {label_column} (counted from 0) but the line "
                                f"has {ncols} columns: {line.strip()!r}")
        elif len(parts) != ncols:
            raise DataError(f"{path}:{lineno}: expected {ncols} columns (as on line {ncols_line}), found "
                            f"{len(parts)}: {line.strip()!r}")
        tag = parts[label_column]
        if chunk_tags and (err := tag_error(tag)):
            raise DataError(f"{path}:{lineno}: {err}")
        if err := _word_error(parts[0]):
            raise DataError(f"{path}:{lineno}: word {len(words) + 1} of the sentence: {err}")
        if not words:
            start_line = lineno
        words.append(parts[0])
        tags.append(tag)
    flush()
    if not sentences:
        raise DataError(f"{path}: no sentences found: expected lines of whitespace-separated columns "
                        f"(word ... tag) with blank lines between sentences")
    if not has_docstart:  # no document boundaries: sentences belong to no document (sent_idx is then the row)
        for s in sentences:
            s.doc_id = -1
    return sentences


def read_jsonl(path: str, tag_keys: tuple[str, ...], chunk_tags: bool) -> list[_Sentence]:
    """Read JSON lines: one sentence a line, `{"tokens": [...], "tags": [...]}` (optionally `doc_id`)."""
    sentences: list[_Sentence] = []
    doc_numbers: dict[str | int, int] = {}  # each doc_id seen: its document number
    for lineno, line in _decoded_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno}): expected one object "
                            f"per line like {{\"tokens\": [...], \"tags\": [...]}}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object with \"tokens\" and \"tags\", "
                            f"found {type(obj).__name__}")
        key = next((k for k in tag_keys if k in obj), None)
        if "tokens" not in obj or key is None:
            missing = "tokens" if "tokens" not in obj else " or ".join(repr(k) for k in tag_keys)
            raise DataError(f"{path}:{lineno}: missing key {missing}: expected {{\"tokens\": [...], \"tags\": "
                            f"[...]}}, found keys {sorted(obj)}")
        tokens, tags = obj["tokens"], obj[key]
        if not (isinstance(tokens, list) and isinstance(tags, list)
                and all(isinstance(x, str) for x in tokens + tags)):
            raise DataError(f"{path}:{lineno}: \"tokens\" and {key!r} must be lists of strings")
        if len(tokens) != len(tags):
            raise DataError(f"{path}:{lineno}: {len(tokens)} tokens but {len(tags)} tags: expected one tag per token")
        if not tokens:
            continue
        for i, word in enumerate(tokens, 1):
            if err := _word_error(word):
                raise DataError(f"{path}:{lineno}: word {i} of the sentence: {err}")
        if chunk_tags:
            for tag in tags:
                if err := tag_error(tag):
                    raise DataError(f"{path}:{lineno}: {err}")
        # Without a doc_id (absent, null, or the -1 our predictions files write) a line belongs to no document (-1);
        # consecutive lines with one doc_id are a document, and sent_idx counts within it, as for CoNLL files.
        # Exporters write ids as strings ("doc3", "wiki_0017") as often as integers; the rest of the code numbers
        # documents with integers, so each id gets one, in order of first appearance, and its name is kept for the
        # predictions files.
        name = obj.get("doc_id")
        if isinstance(name, bool) or not isinstance(name, (str, int, type(None))):
            raise DataError(f"{path}:{lineno}: \"doc_id\" must be a string or an integer (null or -1: no document), "
                            f"found {type(name).__name__} {json.dumps(name)[:60]}")
        doc_id = -1 if name is None or name == -1 else doc_numbers.setdefault(name, len(doc_numbers))
        same_doc = doc_id >= 0 and sentences and sentences[-1].doc_id == doc_id
        sent_idx = sentences[-1].sent_idx + 1 if same_doc else 0 if doc_id >= 0 else len(sentences)
        sentences.append(_Sentence(tokens, tags, doc_id, sent_idx, lineno, name if doc_id >= 0 else -1))
    if not sentences:
        raise DataError(f"{path}: no sentences found: expected JSON lines like {{\"tokens\": [...], \"tags\": [...]}}")
    return sentences


def _is_jsonl(path: str) -> bool:
    if path.endswith((".jsonl", ".json")):
        return True
    with open(path, "rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def read_file(path: str, cfg: Config) -> list[_Sentence]:
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: the file is empty: expected CoNLL columns or JSON lines")
    chunk = _chunk_tags(cfg)
    if _is_jsonl(path):
        return read_jsonl(path, ("tags", cfg.tag_column_name), chunk)
    what = f"--task {cfg.task}'s tag column" if cfg.label_column is None else "--label-column"
    return read_conll(path, cfg.tag_file_column, chunk, what)


def _expected_files(split: str) -> str:
    return ", ".join(s + "[.txt|.conll|.jsonl]" for s in SPLIT_FILE_STEMS[split])


def find_split_files(data_dir: str, require_train: bool = True) -> dict[str, str]:
    """Each split's file in `data_dir`; training needs a training file, evaluation (`require_train=False`) not."""
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: no such directory (--data-dir)")
    found = {}
    for split, stems in SPLIT_FILE_STEMS.items():
        for stem in stems:
            hit = next((os.path.join(data_dir, stem + ext) for ext in FILE_EXTENSIONS
                        if os.path.isfile(os.path.join(data_dir, stem + ext))), None)
            if hit:
                found[split] = hit
                break
    if require_train and "train" not in found:
        raise DataError(f"{data_dir}: no training file: expected one of {_expected_files('train')}")
    return found


# --- conversion ---------------------------------------------------------------------------------------------------


def _resolve_scheme(cfg: Config, tag_lists: list[list[str]]) -> str:
    if cfg.label_scheme != "auto":
        return cfg.label_scheme
    if not _chunk_tags(cfg):
        return "none"
    scheme = detect_scheme(tag_lists)
    return "IOB2" if scheme == "none" else scheme  # all-O data: nothing to convert


def _to_dataset(rows: list[_Sentence]) -> Dataset:
    return Dataset.from_dict({"tokens": [r.tokens for r in rows], "tags": [r.tags for r in rows],
                              "doc_id": [r.doc_id for r in rows], "sent_idx": [r.sent_idx for r in rows]},
                             features=FEATURES)


def _report_unseen(split: str, where: str, rows: list[_Sentence], known: set[str]) -> None:
    """Evaluation labels never seen in training stay gold (a model can only miss them); say so, don't crash."""
    unseen: dict[str, tuple[int, int]] = {}
    for r in rows:
        for tag in r.tags:
            if tag not in known:
                count, line = unseen.get(tag, (0, r.line))
                unseen[tag] = (count + 1, line)
    for tag, (count, line) in sorted(unseen.items()):
        logger.warning("%s:%s: %s label %r never occurs in training (%d words); the model cannot predict it and "
                       "these words count as missed", where, line, split, tag, count)


def load_files(cfg: Config, only: Optional[Sequence[str]] = None) -> NerData:
    """The configured files; `only`: just these splits (evaluation reads and converts nothing it does not score)."""
    files = find_split_files(cfg.data_dir, require_train=only is None or "train" in only) if cfg.data_dir else {
        s: p for s, p in (("train", cfg.train_file), ("validation", cfg.validation_file),
                          ("test", cfg.test_file)) if p}
    if only is not None:
        for split in only:
            if split not in files:
                raise DataError(f"{cfg.data_dir}: no {split} file: expected one of {_expected_files(split)}"
                                if cfg.data_dir else f"no {split} file: expected --{split}-file (given: "
                                f"{', '.join(f'--{s}-file' for s in files) or 'none'})")
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
    source = (f"CoNLL files in {cfg.data_dir}" if cfg.data_dir
              else "local files " + ", ".join(os.path.basename(p) for p in files.values()))
    return NerData(splits, labels, scheme, source, {k: os.path.abspath(v) for k, v in files.items()},
                   {split: [r.line for r in rows] for split, rows in raw.items()},
                   {split: {r.doc_id: r.doc_name for r in rows if r.doc_name is not None} for split, rows in raw.items()
                    if any(r.doc_name is not None for r in rows)})


def load_hub(cfg: Config) -> NerData:
    name, revision = cfg.hub_dataset
    ds = load_dataset(name, cfg.dataset_config_name, revision=revision)
    where = f"{name}" + (f"@{revision}" if revision else "")
    tag_col, tok_col = cfg.tag_column_name, cfg.tokens_column_name
    for split, d in ds.items():
        missing = [c for c in (tok_col, tag_col) if c not in d.column_names]
        if missing:
            raise DataError(f"{where} [{split}]: no column {missing[0]!r}: expected token and tag columns "
                            f"(--tokens-column-name / --label-column-name), found {d.column_names}")
    names = getattr(ds[next(iter(ds))].features[tag_col], "feature", None)
    names = getattr(names, "names", None)  # ClassLabel names, if the tags are class ids
    splits: dict[str, list[list[str]]] = {}
    for split, d in ds.items():
        tag_lists = d[tag_col]
        splits[split] = [[names[t] for t in row] for row in tag_lists] if names else tag_lists
    if _chunk_tags(cfg):
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
        out[split] = Dataset.from_dict({"tokens": d[tok_col], "tags": splits[split], "doc_id": doc,
                                        "sent_idx": list(range(len(d)))}, features=FEATURES)
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


NO_DOCUMENTS = "none: the split read in order"


def describe(data: NerData) -> dict[str, Any]:
    """Facts about the data for results files and the model card; `documents` says where document boundaries came
    from (trainer.windows reads data without them as one stream per split, in order)."""
    bounded = any(doc_id != -1 for d in data.splits.values() for doc_id in d["doc_id"])
    return {"source": data.source, "files": data.files, "scheme": data.scheme, "labels": data.labels,
            "sizes": {s: len(d) for s, d in data.splits.items()},
            "documents": "-DOCSTART- / doc_id" if bounded else NO_DOCUMENTS}
