"""`python -m trainer.predict`: entities of a whole corpus, as JSON lines with character offsets.

  python -m trainer.predict --model model --input corpus.txt more.jsonl --output entities.jsonl
  accelerate launch -m trainer.predict --model model --input corpus.jsonl --output entities.jsonl

Input: JSON-lines files (one object a line; the text in `--text-field`, default `text`, an optional id in
`--id-field`, default `id`) or plain text files (each non-empty line is one text), UTF-8; the extension decides
(`.jsonl`, `.json`, `.ndjson` in any case are JSON lines), or `--format text|jsonl` for every input. Output: one line
per input text, in input order: `{"id", "source": "file:line", "text_sha256", "entities": [{"type", "text", "start",
"end", "score"}]}`, or `"error"` instead of `"entities"` for a text that cannot be tagged (the run goes on), a text
longer than --max-chars among them.

Prediction is `trainer.inference.tagger.NerTagger` (the Space's path, windows over long texts). The output is
resumable: texts are tagged into `<output>.shard-<rank>-of-<n>`, whose lines are kept and their texts skipped when the
same command runs again (a line cut off by a kill is dropped; a line that is not the row of the input text at its place
now, by its source, id and text fingerprint `text_sha256`, is refused, never kept); `<output>` itself appears, whole,
only at the end. An existing file that is
not this tool's finished output of these inputs is never changed: the run is refused. Under `accelerate launch` each of
the n processes tags every n-th text into its own shard; the main process merges the shards in input order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Optional, Sequence

from trainer.cli import PositiveInt, field_help, run_door
from trainer.data.files import DataError, decoded_lines, json_lines
from trainer.inference.backends import CHOICES as BACKEND_CHOICES
from trainer.outputs import atomic_path

logger = logging.getLogger(__name__)


class InputFileError(DataError):
    """An input or output file that cannot be used as asked; the message names the file and line."""


@dataclass
class Record:
    id: Any
    source: str  # file:line
    text: Any


# JSON lines by extension, whatever its case ("CORPUS.JSONL" too); --format overrides it.
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
FORMATS = ("auto", "text", "jsonl")


def read_records(
    paths: Sequence[str], text_field: str = "text", id_field: str = "id", fmt: str = "auto"
) -> Iterator[Record]:
    """Every input text, in order. Plain text files: one text a non-empty line; JSON lines: one object a line. Lines
    are read by the rules of the training data's readers (trainer.data.files: UTF-8, LF/CRLF/CR, a byte-order mark
    at a line's start removed). `fmt` "auto" tells the two apart by extension (JSONL_SUFFIXES), "text" and "jsonl"
    read every file so."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown input format {fmt!r}: choose one of {', '.join(FORMATS)}")
    for path in paths:
        if not os.path.isfile(path):
            raise InputFileError(f"{path}: no such file")
        if fmt == "jsonl" or (fmt == "auto" and path.lower().endswith(JSONL_SUFFIXES)):
            for lineno, obj in json_lines(path, f'{{"{text_field}": "..."}}'):
                if text_field not in obj:
                    raise InputFileError(
                        f"{path}:{lineno}: expected a JSON object with a {text_field!r} field (--text-field)"
                    )
                yield Record(obj.get(id_field, f"{path}:{lineno}"), f"{path}:{lineno}", obj[text_field])
            continue
        looked = fmt != "auto"  # whether a plain text file chosen by its extension was checked for JSON lines
        for lineno, line in decoded_lines(path):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            if not looked:
                # JSON lines under another extension would be tagged braces and keys included, with offsets into
                # the JSON: say so once, on the file's first text.
                looked = True
                if _is_json_object(line):
                    logger.warning(
                        "%s is a JSON object, but %s is read as plain text (a text a line) by its "
                        "extension; pass --format jsonl to read its %r field",
                        where,
                        path,
                        text_field,
                    )
            yield Record(where, where, line)


def _is_json_object(line: str) -> bool:
    if not line.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def complete_lines(path: str) -> int:
    """How many whole lines `path` holds, after dropping a last line cut off by a kill (no newline). Only for this
    tool's own shards, checked by `checked_rows` first: it truncates."""
    if not os.path.exists(path):
        return 0
    with open(path, "rb+") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            f.truncate(keep)
    return data[:keep].count(b"\n")


def _same_json(a: Any, b: Any) -> bool:
    # As JSON text: an id read back from a row equals the input's even where == does not (NaN).
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def text_hash(text: Any) -> str:
    """A short fingerprint of an input text, kept in its output row (`text_sha256`), so that a resumed run knows a
    row was tagged from the text at its place now, even one with no entities."""
    return hashlib.sha256(json.dumps(text).encode()).hexdigest()[:16]


def checked_rows(path: str, records: Sequence[Record], output: str, finished: bool = False) -> int:
    """How many texts `path` (a shard of `output`, or with `finished` the output itself) already holds, read only.
    Each whole line must be this tool's row for the record at its place (source, id, text fingerprint), else
    InputFileError: the file was written from other input, or the input changed since, and keeping its rows would
    attach them to the wrong texts. A last line cut off by a kill (no newline) is not counted; in a finished output,
    which is written whole, it and a missing row are errors."""
    restart = (
        f"delete {output} and any {output}.shard-* files to start over, or choose another --output"
        if not finished
        else "remove it or choose another --output"
    )
    count = 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                if not finished:  # cut off by a kill: tag_shard drops it
                    break
                raise InputFileError(
                    f"{path}:{count + 1}: the last line has no newline, which no finished output of "
                    f"this tool lacks; {restart}"
                )
            if count == len(records):
                raise InputFileError(
                    f"{path}:{count + 1}: expected no more than {len(records)} lines, one per input "
                    f"text: it is not this tool's output for these inputs; {restart}"
                )
            rec = records[count]
            try:
                row = json.loads(raw)
            except ValueError:  # not JSON, or not UTF-8
                row = None
            found = row.get("source") if isinstance(row, dict) else None
            if not (
                found == rec.source
                and _same_json(row.get("id"), rec.id)
                and row.get("text_sha256") == text_hash(rec.text)
            ):
                what = (
                    f"a row for {found} whose id or text is not the one there now"
                    if found == rec.source
                    else f"a row for {found}"
                    if isinstance(found, str)
                    else "a line this tool did not write"
                )
                raise InputFileError(
                    f"{path}:{count + 1}: expected the row for {rec.source}, found {what}: the file "
                    f"was written from other input, or the input changed since; {restart}"
                )
            count += 1
    if finished and count != len(records):
        raise InputFileError(
            f"{path} holds {count} rows for {len(records)} input texts: it is not this tool's "
            f"output for these inputs; {restart}"
        )
    return count


def check_output(output: str, inputs: Sequence[str], world: int) -> None:
    """Refuse, before any model is loaded, an --output that cannot be written without harm: one that is an input
    (or whose shards or temporary file would be), a directory, or one in a directory that does not exist."""
    written = [output] + [shard_path(output, r, world) for r in range(world)]
    for path in inputs:
        for w in written:
            # Real paths catch symlinks and ./ spellings; samefile also hard links.
            if os.path.realpath(w) == os.path.realpath(path) or (os.path.exists(w) and os.path.samefile(w, path)):
                raise InputFileError(
                    f"--output {output}: the run would write {w}, which is the input {path}; choose another --output"
                )
    if os.path.isdir(output):
        raise InputFileError(f"--output {output} is a directory: expected a file name")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise InputFileError(
            f"--output {output}: the directory {parent} does not exist; create it or choose another --output"
        )
    try:  # a file of our own, gone at once: writable directories only (not /sys, /proc, a read-only mount)
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as e:
        raise InputFileError(f"--output {output}: cannot write in {parent} ({e.strerror or e})") from None


def json_line(row: dict[str, Any]) -> str:
    """One output line. A lone surrogate (an id or file name from a JSON "\\udc00" escape) cannot be UTF-8: that
    row is written with ASCII escapes, still valid JSON that reads back the same string."""
    line = json.dumps(row, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(row, ensure_ascii=True)
    return line + "\n"


def tag_shard(tagger: Any, records: Sequence[Record], out_path: str, batch_size: int, progress: bool) -> None:
    """Tag `records` into `out_path`, continuing after the lines it already holds."""
    from tqdm.auto import tqdm

    done = complete_lines(out_path)  # predict_corpus checked its lines first: this drops only a cut-off last line
    if done:
        logger.info("%s: %d of %d texts already tagged, continuing", out_path, done, len(records))
    with (
        open(out_path, "a", encoding="utf-8") as out,
        tqdm(total=len(records), initial=done, disable=not progress, unit="text") as bar,
    ):
        for start in range(done, len(records), batch_size):
            batch = records[start : start + batch_size]
            answers: list[dict[str, Any]] = []
            try:
                found: list[Any] = tagger.predict_batch([r.text for r in batch])
            except Exception:
                found = []
                for r in batch:
                    try:
                        found.append(tagger.predict(r.text))
                    except Exception as e:
                        found.append(e)
            for r, ents in zip(batch, found):
                row: dict[str, Any] = {"id": r.id, "source": r.source, "text_sha256": text_hash(r.text)}
                if isinstance(ents, Exception):
                    row["error"] = f"{type(ents).__name__}: {ents}"
                else:
                    row["entities"] = [e.as_dict() for e in ents]
                answers.append(row)
            out.write("".join(json_line(a) for a in answers))
            out.flush()
            bar.update(len(batch))


def shard_path(output: str, rank: int, world: int) -> str:
    return f"{output}.shard-{rank}-of-{world}"


def merge_shards(output: str, world: int, total: int) -> None:
    """Interleave the shards (text k is line k // world of shard k % world) into `output` (written whole, then
    renamed: an `output` that exists is complete), then remove them."""
    files = [open(shard_path(output, r, world), encoding="utf-8") for r in range(world)]
    try:
        with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8") as out:
            for k in range(total):
                line = files[k % world].readline()
                if not line.endswith("\n"):
                    raise RuntimeError(f"{shard_path(output, k % world, world)} ends early; run the command again")
                out.write(line)
    finally:
        for f in files:
            f.close()
    for r in range(world):
        os.remove(shard_path(output, r, world))


def predict_corpus(
    model: str,
    inputs: Sequence[str],
    output: str,
    batch_size: int = 32,
    text_field: str = "text",
    id_field: str = "id",
    backend: Optional[str] = None,
    progress: bool = True,
    fmt: str = "auto",
    max_chars: int = 100_000,
) -> int:
    """Tag every text of `inputs` into `output`; returns the number of texts. Distributed under accelerate launch.
    Everything that can be refused is refused before the model is loaded and before any file is opened to write."""
    from trainer.inference.tagger import NerTagger, load_model
    from trainer.processes import process_state

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if (backend or "auto") not in BACKEND_CHOICES:
        raise ValueError(f"unknown inference backend {backend!r}: choose one of {', '.join(BACKEND_CHOICES)}")

    state = process_state()  # refuses a launch that Accelerate does not see as WORLD_SIZE processes
    records = list(read_records(inputs, text_field, id_field, fmt))
    world, rank = state.num_processes, state.process_index
    check_output(output, inputs, world)
    if os.path.exists(output):
        # A finished output holds this tool's row for every text, in order; then there is nothing to do. Anything
        # else is refused (read only: a file the user gave is never changed).
        checked_rows(output, records, output, finished=True)
        logger.info("%s already holds all %d texts", output, len(records))
        return len(records)
    # Every process checks every shard (read only, the same answer everywhere) before any loads the model or
    # writes: a process that refused alone would leave the others waiting for it.
    for r in range(world):
        if os.path.exists(shard_path(output, r, world)):
            checked_rows(shard_path(output, r, world), records[r::world], output)
    # The main process first: it downloads the model and writes the ONNX cache once; the others then read them.
    with state.main_process_first():
        model_obj, tokenizer = load_model(model)
        model_obj.to(state.device)  # a GPU per process under accelerate launch; "auto" then keeps torch
        tagger = NerTagger(
            model_obj, tokenizer, source=model, backend=backend or "auto", max_chars=max_chars, max_subtokens=10**9
        )  # a corpus: no per-request cost bound
    tag_shard(
        tagger,
        records[rank::world],
        shard_path(output, rank, world),
        batch_size,
        progress and state.is_local_main_process,
    )
    state.wait_for_everyone()
    if state.is_main_process:
        merge_shards(output, world, len(records))
    state.wait_for_everyone()
    return len(records)


@dataclass
class PredictArgs:
    model: str = field_help("A trained output directory or Hub model id.")
    input: list[str] = field_help("Text files (a text a line) or JSON-lines files.")
    output: str = field_help("The JSON-lines file to write (resumed if it exists).")
    per_device_eval_batch_size: PositiveInt = field_help("Texts per call of the tagger, per process.", default=32)
    text_field: str = field_help("The text field of JSON-lines input.", default="text")
    id_field: str = field_help("The id field of JSON-lines input (default: file:line).", default="id")
    format: Literal["auto", "text", "jsonl"] = field_help(
        "Input format: auto (.jsonl, .json, .ndjson in any case are JSON lines, other files plain text), text or "
        "jsonl (every input).",
        default="auto",
    )
    backend: str = field_help(
        "Inference backend (docs/inference.md).", default="auto", metadata={"choices": BACKEND_CHOICES}
    )
    max_chars: PositiveInt = field_help(
        "The longest text tagged: a longer one gets an error row naming its line (split it, or raise this). Its cost "
        "grows with its length: about 1 GB of memory per million characters.",
        default=100_000,
    )
    progress: bool = field_help("Show a progress bar.", default=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from trainer.inference.tagger import ModelLoadError
    from trainer.processes import LaunchError

    def body(a: PredictArgs) -> str:
        n = predict_corpus(
            a.model,
            a.input,
            a.output,
            a.per_device_eval_batch_size,
            a.text_field,
            a.id_field,
            a.backend,
            a.progress,
            a.format,
            a.max_chars,
        )
        return f"{n} texts tagged into {a.output}"

    return run_door(
        PredictArgs, argv, "python -m trainer.predict", __doc__, body, (DataError, ModelLoadError, LaunchError)
    )


if __name__ == "__main__":
    sys.exit(main())
