"""Reading training and evaluation files line by line: CoNLL column files and JSON lines, with `file:line` in every
error (`DataError`). The line rules of every reader of the package (training data here, corpora in
`python -m trainer.predict`) live in `decoded_lines` and `json_lines`.

Why our own column-file reader and not `datasets`' `conll` builder: that builder pads or cuts rows with a wrong
column count silently, drops `-DOCSTART-` boundaries and cannot say on which line a file is broken.
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from trainer.config import Config
from trainer.reading.labels import tag_error

logger = logging.getLogger(__name__)

SPLIT_FILE_STEMS = {
    "train": ("eng.train", "train"),
    "validation": ("eng.testa", "validation", "valid", "dev"),
    "test": ("eng.testb", "test"),
}
FILE_EXTENSIONS = ("", ".txt", ".conll", ".iob", ".tsv", ".jsonl", ".json")


class DataError(ValueError):
    """Input data that cannot be used as it is; the message names the file, the line and what was expected."""


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]
    doc_id: int
    sent_idx: int
    line: int  # line of its first word, for messages
    doc_name: Optional[str | int] = None  # the document's id as the file wrote it, where it is not doc_id (JSON lines)


def has_chunk_tags(cfg: Config) -> bool:
    """Whether tags must be O / B-I-E-S-TYPE (NER, chunking) rather than plain (POS)."""
    if cfg.label_scheme != "auto":
        return cfg.label_scheme != "none"
    return cfg.task != "pos"


# A line ends with LF, CRLF or a lone CR (old Mac files), all counted alike for line numbers. Not str.splitlines():
# that also breaks at U+2028, U+0085, form feeds etc., which CoNLL and JSON-lines tools do not treat as line ends.
_LINE_END = re.compile(rb"\r\n|\r|\n")
BOM = "\ufeff"
# Categories of characters that are not visible text: space separators, line/paragraph separators, control and
# format characters (soft hyphen, zero-width space, BOM, ...). Tokenizers drop or split on them.
_INVISIBLE_CATEGORIES = ("Zs", "Zl", "Zp", "Cc", "Cf")


def decoded_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line, without its line end; undecodable bytes are an error.

    A UTF-8 byte-order mark (U+FEFF) at the start of any line is removed: at the start of the file it is an encoding
    signature, at the start of a later line it is what joining files (`cat a b > c`) leaves behind; neither is text,
    and left in place it would hide a `-DOCSTART-` or glue itself to a word. A removal after line 1 is logged (once
    per file). A U+FEFF anywhere else is kept: inside or at the end of a word it is a zero-width no-break space, as
    social-media corpora hold (a tweet's `Dubbz\ufeff`), and the tokenizer decides what of the word to keep."""
    with open(path, "rb") as f:
        raw = f.read()
    warned = False
    for lineno, bline in enumerate(_LINE_END.split(raw), 1):
        try:
            decoded = bline.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"{path}:{lineno}: not UTF-8 (byte 0x{bline[e.start]:02x} at byte {e.start + 1} of the "
                f"line): expected UTF-8 text; convert the file, e.g. `iconv -f latin1 -t utf-8`"
            ) from None
        text = decoded.lstrip(BOM)
        if len(text) < len(decoded) and lineno > 1 and not warned:
            logger.warning(
                "%s:%d: removed a byte-order mark (U+FEFF) at the start of the line (files joined "
                "together?); later ones at a line start in this file are removed too",
                path,
                lineno,
            )
            warned = True
        yield lineno, text


def _word_error(word: str) -> Optional[str]:
    """Why a word cannot be used (None if it can): it must have a visible character, or the tokenizer may give it
    no sub-token, and training-time word scores would then pair later words' predictions with the wrong gold tags.
    Format characters beside visible ones (U+FEFF, U+200B, U+00AD) are read: the tokenizer drops or keeps them."""
    if not word:
        return "empty word: expected a non-empty word with visible characters"
    if all(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in word):
        codes = " ".join(f"U+{ord(c):04X}" for c in word)
        return (
            f"word {word!r} ({codes}) has only whitespace, control or format characters: expected a non-empty "
            f"word with visible characters"
        )
    return None


def read_conll(path: str, label_column: int, chunk_tags: bool, what: str = "the tag column") -> list[Sentence]:
    """Read a CoNLL column file: one word a line, whitespace-separated columns, blank lines between sentences,
    `-DOCSTART-` lines between documents. Every word line must have the same number of columns."""
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    doc_id, sent_idx, start_line = 0, 0, 0
    has_docstart = False
    ncols: Optional[int] = None
    ncols_line = 0

    def flush() -> None:
        nonlocal words, tags, sent_idx
        if words:
            sentences.append(Sentence(words, tags, doc_id, sent_idx, start_line))
            sent_idx += 1
        words, tags = [], []

    for lineno, line in decoded_lines(path):
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
                raise DataError(
                    f"{path}:{lineno}: expected at least 2 whitespace-separated columns (word and tag), "
                    f"found 1: {line.strip()!r}"
                )
            if not -ncols <= label_column < ncols:
                raise DataError(
                    f"{path}:{lineno}: {what} is column {label_column} (counted from 0) but the line "
                    f"has {ncols} columns: {line.strip()!r}"
                )
        elif len(parts) != ncols:
            raise DataError(
                f"{path}:{lineno}: expected {ncols} columns (as on line {ncols_line}), found "
                f"{len(parts)}: {line.strip()!r}"
            )
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
        raise DataError(
            f"{path}: no sentences found: expected lines of whitespace-separated columns "
            f"(word ... tag) with blank lines between sentences"
        )
    if not has_docstart:  # no document boundaries: sentences belong to no document (sent_idx is then the row)
        for s in sentences:
            s.doc_id = -1
    return sentences


def json_lines(path: str, example: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON-lines file, its lines read by `decoded_lines`'s rules;
    a line that is not one JSON object is a DataError naming it, with `example` of what was expected."""
    for lineno, line in decoded_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno}): expected one object "
                f"per line like {example}"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object like {example}, found {type(obj).__name__}")
        yield lineno, obj


def read_jsonl(path: str, tag_keys: tuple[str, ...], chunk_tags: bool) -> list[Sentence]:
    """Read JSON lines: one sentence a line, `{"tokens": [...], "tags": [...]}` (optionally `doc_id`)."""
    sentences: list[Sentence] = []
    doc_numbers: dict[str | int, int] = {}  # each doc_id seen: its document number
    for lineno, obj in json_lines(path, '{"tokens": [...], "tags": [...]}'):
        key = next((k for k in tag_keys if k in obj), None)
        if "tokens" not in obj or key is None:
            missing = "tokens" if "tokens" not in obj else " or ".join(repr(k) for k in tag_keys)
            raise DataError(
                f'{path}:{lineno}: missing key {missing}: expected {{"tokens": [...], "tags": '
                f"[...]}}, found keys {sorted(obj)}"
            )
        tokens, tags = obj["tokens"], obj[key]
        if not (isinstance(tokens, list) and isinstance(tags, list) and all(isinstance(x, str) for x in tokens + tags)):
            raise DataError(f'{path}:{lineno}: "tokens" and {key!r} must be lists of strings')
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
            raise DataError(
                f'{path}:{lineno}: "doc_id" must be a string or an integer (null or -1: no document), '
                f"found {type(name).__name__} {json.dumps(name)[:60]}"
            )
        doc_id = -1 if name is None or name == -1 else doc_numbers.setdefault(name, len(doc_numbers))
        same_doc = doc_id >= 0 and sentences and sentences[-1].doc_id == doc_id
        sent_idx = sentences[-1].sent_idx + 1 if same_doc else 0 if doc_id >= 0 else len(sentences)
        sentences.append(Sentence(tokens, tags, doc_id, sent_idx, lineno, name if doc_id >= 0 else -1))
    if not sentences:
        raise DataError(f'{path}: no sentences found: expected JSON lines like {{"tokens": [...], "tags": [...]}}')
    return sentences


def _is_jsonl(path: str) -> bool:
    """By extension (.jsonl, .json); another file is JSON lines when its first non-blank line is a JSON object (a
    CoNLL line whose word is `{`, say `{ O`, is not)."""
    if path.endswith((".jsonl", ".json")):
        return True
    for _, line in decoded_lines(path):
        if line.strip():
            try:
                return isinstance(json.loads(line), dict)
            except ValueError:
                return False
    return False


def read_file(path: str, cfg: Config) -> list[Sentence]:
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: the file is empty: expected CoNLL columns or JSON lines")
    chunk = has_chunk_tags(cfg)
    if _is_jsonl(path):
        return read_jsonl(path, ("tags", cfg.tag_column_name), chunk)
    what = f"--task {cfg.task}'s tag column" if cfg.label_column is None else "--label-column"
    return read_conll(path, cfg.tag_file_column, chunk, what)


def expected_files(split: str) -> str:
    return ", ".join(s + "[.txt|.conll|.jsonl]" for s in SPLIT_FILE_STEMS[split])


def find_split_files(data_dir: str, require_train: bool = True) -> dict[str, str]:
    """Each split's file in `data_dir`; training needs a training file, evaluation (`require_train=False`) not."""
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: no such directory (--data-dir)")
    found = {}
    for split, stems in SPLIT_FILE_STEMS.items():
        for stem in stems:
            hit = next(
                (
                    os.path.join(data_dir, stem + ext)
                    for ext in FILE_EXTENSIONS
                    if os.path.isfile(os.path.join(data_dir, stem + ext))
                ),
                None,
            )
            if hit:
                found[split] = hit
                break
    if require_train and "train" not in found:
        raise DataError(f"{data_dir}: no training file: expected one of {expected_files('train')}")
    return found
