"""`python -m trainer.predict`: entities of a whole corpus, as JSON lines with character offsets.

  python -m trainer.predict --model model --input corpus.txt more.jsonl --output entities.jsonl
  accelerate launch -m trainer.predict --model model --input corpus.jsonl --output entities.jsonl

Input: JSON-lines files (one object a line; the text in `--text-field`, default `text`, an optional id in
`--id-field`, default `id`) or plain text files (each non-empty line is one text). Output: one line per input text,
in input order: `{"id", "source": "file:line", "entities": [{"type", "text", "start", "end", "score"}]}`, or
`"error"` instead of `"entities"` for a text that cannot be tagged (the run goes on).

Prediction is `trainer.inference.NerTagger` (the Space's path, windows over long texts, no length limit here).
The output is resumable: texts are tagged into `<output>.shard-<rank>-of-<n>`, whose lines are kept and their texts
skipped when the same command runs again (a line cut off by a kill is dropped); `<output>` itself appears, whole, only
at the end. Under `accelerate launch` each of the n processes tags every n-th text into its own shard; the main
process merges the shards in input order.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

logger = logging.getLogger(__name__)


class InputFileError(ValueError):
    """An input file that cannot be read as asked; the message names the file and line."""


@dataclass
class Record:
    id: Any
    source: str  # file:line
    text: Any


def read_records(paths: Sequence[str], text_field: str = "text", id_field: str = "id") -> Iterator[Record]:
    """Every input text, in order. Plain text files: one text a non-empty line; JSON lines: one object a line."""
    for path in paths:
        if not os.path.isfile(path):
            raise InputFileError(f"{path}: no such file")
        is_jsonl = path.endswith((".jsonl", ".json"))
        with open(path, encoding="utf-8", newline="") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\r\n").lstrip("\ufeff") if lineno == 1 else line.rstrip("\r\n")
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                if not is_jsonl:
                    yield Record(where, where, line)
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputFileError(f"{where}: invalid JSON ({e.msg} at column {e.colno}): expected one object "
                                         f"per line like {{\"{text_field}\": \"...\"}}") from None
                if not isinstance(obj, dict) or text_field not in obj:
                    raise InputFileError(f"{where}: expected a JSON object with a {text_field!r} field "
                                         f"(--text-field)")
                yield Record(obj.get(id_field, where), where, obj[text_field])


def complete_lines(path: str) -> int:
    """How many whole lines `path` holds, after dropping a last line cut off by a kill (no newline)."""
    if not os.path.exists(path):
        return 0
    with open(path, "rb+") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            f.truncate(keep)
    return data[:keep].count(b"\n")


def tag_shard(tagger: Any, records: Sequence[Record], out_path: str, batch_size: int, progress: bool) -> None:
    """Tag `records` into `out_path`, continuing after the lines it already holds."""
    from tqdm.auto import tqdm

    done = complete_lines(out_path)
    if done:
        logger.info("%s: %d of %d texts already tagged, continuing", out_path, done, len(records))
    with open(out_path, "a", encoding="utf-8") as out, tqdm(total=len(records), initial=done, disable=not progress,
                                                             unit="text") as bar:
        for start in range(done, len(records), batch_size):
            batch = records[start:start + batch_size]
            answers: list[dict[str, Any]] = []
            try:
                found: list[Any] = tagger.predict_batch([r.text for r in batch])
            except Exception:  # noqa: BLE001 - a bad text in the batch: one by one, so only it gets the error
                found = []
                for r in batch:
                    try:
                        found.append(tagger.predict(r.text))
                    except Exception as e:  # noqa: BLE001 - recorded on its line; the corpus goes on
                        found.append(e)
            for r, ents in zip(batch, found):
                row: dict[str, Any] = {"id": r.id, "source": r.source}
                if isinstance(ents, Exception):
                    row["error"] = f"{type(ents).__name__}: {ents}"
                else:
                    row["entities"] = [e.as_dict() for e in ents]
                answers.append(row)
            out.write("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in answers))
            out.flush()
            bar.update(len(batch))


def shard_path(output: str, rank: int, world: int) -> str:
    return f"{output}.shard-{rank}-of-{world}"


def merge_shards(output: str, world: int, total: int) -> None:
    """Interleave the shards (text k is line k // world of shard k % world) into `output` (written whole, then
    renamed: an `output` that exists is complete), then remove them."""
    files = [open(shard_path(output, r, world), encoding="utf-8") for r in range(world)]
    tmp = output + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            for k in range(total):
                line = files[k % world].readline()
                if not line.endswith("\n"):
                    raise RuntimeError(f"{shard_path(output, k % world, world)} ends early; run the command again")
                out.write(line)
    finally:
        for f in files:
            f.close()
    os.replace(tmp, output)
    for r in range(world):
        os.remove(shard_path(output, r, world))


def predict_corpus(model: str, inputs: Sequence[str], output: str, batch_size: int = 32, text_field: str = "text",
                   id_field: str = "id", backend: Optional[str] = None, progress: bool = True) -> int:
    """Tag every text of `inputs` into `output`; returns the number of texts. Distributed under accelerate launch."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    from trainer.inference import NerTagger, load_model

    # A bare PartialState() ignores ACCELERATE_USE_CPU (only Accelerator reads it), so on CPUs every launched process
    # would run alone (DistributedType.NO): pass it on.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != state.num_processes:
        # Every process would then take itself for the only one: all would tag every text into the same shard.
        raise RuntimeError(f"launched as {launched} processes (WORLD_SIZE) but Accelerate runs {state.num_processes} "
                           f"(distributed type {state.distributed_type}); on CPUs launch with "
                           "ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes N")
    records = list(read_records(inputs, text_field, id_field))
    if os.path.exists(output):
        # A finished output is complete exactly when it has a line per text; then there is nothing to do.
        if complete_lines(output) == len(records):
            logger.info("%s already holds all %d texts", output, len(records))
            return len(records)
        raise InputFileError(f"{output} exists but does not hold one line per input text; remove it or choose "
                             f"another --output")
    # The main process first: it downloads the model and writes the ONNX cache once; the others then read them.
    with state.main_process_first():
        model_obj, tokenizer = load_model(model)
        model_obj.to(state.device)  # a GPU per process under accelerate launch; "auto" then keeps torch
        tagger = NerTagger(model_obj, tokenizer, source=model, backend=backend or "auto",
                           max_chars=10**9, max_subtokens=10**9)  # a corpus: no per-request cost bound
    world, rank = state.num_processes, state.process_index
    tag_shard(tagger, records[rank::world], shard_path(output, rank, world), batch_size,
              progress and state.is_local_main_process)
    state.wait_for_everyone()
    if state.is_main_process:
        merge_shards(output, world, len(records))
    state.wait_for_everyone()
    return len(records)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer.predict", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a trained output directory or Hub model id")
    ap.add_argument("--input", nargs="+", required=True, help="text files (a text a line) or JSON-lines files")
    ap.add_argument("--output", required=True, help="the JSON-lines file to write (resumed if it exists)")
    ap.add_argument("--batch-size", type=int, default=32, help="texts per call of the tagger")
    ap.add_argument("--text-field", default="text", help="text field of JSON-lines input")
    ap.add_argument("--id-field", default="id", help="id field of JSON-lines input (default: file:line)")
    ap.add_argument("--backend", default="auto", help="inference backend (see README, 'Fast inference')")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    from trainer.inference import ModelLoadError

    try:
        n = predict_corpus(args.model, args.input, args.output, args.batch_size, args.text_field, args.id_field,
                           args.backend, not args.no_progress)
    except (InputFileError, ModelLoadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{n} texts tagged into {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
