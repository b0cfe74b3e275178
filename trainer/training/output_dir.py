"""The output directory of a run: never mixed with another run, checked before any work, marked complete last.

- A directory that holds another run's files is refused unless the run asks to overwrite it (the old run's files,
  checkpoints included, are removed first) or to resume it (`--resume` / `--resume-from-checkpoint`).
- An unwritable directory is found before the data and the model are loaded, not at the first checkpoint.
- `run_identity.json` records what a checkpoint must match to be resumed: the model, the data, the labels, the
  engine and the number of processes. `--resume` compares and says what differs.
- `run_complete.json` is written after the last file of a run, so the push and the Space can tell a finished run
  from an interrupted one.

Everything here runs on the main process only (the engines call it so); other processes do not touch the directory
before training starts, and a refusal on the main process ends the launch.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import time
from typing import Any

from trainer.config import RUN_FIELDS, Config
from trainer.outputs import (
    MODEL_FILE_PATTERNS,
    RESULT_FILE_PATTERNS,
    RUN_COMPLETE_FILE,
    RUN_IDENTITY_FILE,
    RUN_STATE_PATTERNS,
    is_complete,
    load_json,
    write_json,
)

logger = logging.getLogger(__name__)

RUN_PATTERNS = MODEL_FILE_PATTERNS + RESULT_FILE_PATTERNS + RUN_STATE_PATTERNS


class OutputDirError(ValueError):
    """The output directory cannot be used as asked; the message says why and what to do."""


def run_files(output_dir: str) -> list[str]:
    """Names in `output_dir` that a run wrote (model, results, checkpoints, markers), sorted."""
    if not os.path.isdir(output_dir):
        return []
    return sorted(n for n in os.listdir(output_dir) if any(fnmatch.fnmatch(n, p) for p in RUN_PATTERNS))


def holds_a_run(found: list[str]) -> bool:
    """Whether a run left something worth keeping: an identity file alone is a run that failed before training (bad
    data, say), and re-running after the fix must not need --overwrite-output-dir."""
    return bool(set(found) - {RUN_IDENTITY_FILE, RUN_COMPLETE_FILE})


def _inside(path: str, directory: str) -> bool:
    """Whether local `path` is `directory` or lies in it (a Hub id that exists nowhere here is not)."""
    if not os.path.exists(path):
        return False
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory


def _resuming(cfg: Config) -> bool:
    return bool(cfg.resume or cfg.resume_from_checkpoint)


def check_writable(output_dir: str) -> None:
    try:
        os.makedirs(output_dir, exist_ok=True)
        probe = os.path.join(output_dir, f".write-probe-{os.getpid()}")
        with open(probe, "w", encoding="utf-8") as f:
            f.write("probe")
        os.remove(probe)
    except OSError as e:
        raise OutputDirError(
            f"--output-dir {output_dir} is not writable ({e.strerror or e}): choose a directory this user can write to"
        ) from None


def prepare_output_dir(cfg: Config) -> None:
    """Before any data or model is loaded: refuse a directory holding another run (unless overwriting or resuming),
    clear it when overwriting, check it can be written, and mark the run as not complete."""
    out = cfg.output_dir
    found = run_files(out)
    if found and cfg.overwrite_output_dir and _inside(cfg.model_name_or_path, out):
        raise OutputDirError(
            f"--overwrite-output-dir would remove the model this run starts from "
            f"({cfg.model_name_or_path} is in --output-dir {out}): choose another --output-dir, or "
            f"copy the model elsewhere first"
        )
    if found and cfg.overwrite_output_dir:
        logger.info("--overwrite-output-dir: removing the previous run's files from %s: %s", out, ", ".join(found))
        for name in found:
            path = os.path.join(out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    elif holds_a_run(found) and not _resuming(cfg):
        shown = ", ".join(found[:6]) + (", ..." if len(found) > 6 else "")
        raise OutputDirError(
            f"--output-dir {out} already holds a run ({shown}). Pass --overwrite-output-dir to "
            f"replace it (its files and checkpoints are removed first), --resume to continue it, or "
            f"choose another directory"
        )
    elif _resuming(cfg) and cfg.resume and not cfg.resume_from_checkpoint and is_complete(out):
        raise OutputDirError(
            f"--resume: the run in {out} completed ({RUN_COMPLETE_FILE}); there is nothing to "
            f"resume. Pass --overwrite-output-dir to train it again"
        )
    check_writable(out)
    if os.path.exists(os.path.join(out, RUN_COMPLETE_FILE)):
        os.remove(os.path.join(out, RUN_COMPLETE_FILE))


def identity(cfg: Config, labels: list[str], world_size: int) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: every field but the run's bookkeeping (config.RUN_FIELDS), the
    labels and the number of processes. Resuming with another model, data, schedule or optimizer setting would train
    another run than the one its files and model card describe."""
    values = {k: v for k, v in cfg.to_dict().items() if k not in RUN_FIELDS}
    return {**values, "labels": list(labels), "world_size": world_size}


def check_identity(cfg: Config, labels: list[str], world_size: int) -> None:
    """Once the labels are known: on a resumed run, refuse a checkpoint of another configuration and say what
    differs; on a new run, record what a later --resume must match."""
    path = os.path.join(cfg.output_dir, RUN_IDENTITY_FILE)
    now = identity(cfg, labels, world_size)
    if _resuming(cfg) and os.path.exists(path):
        saved = {"case_signal": "none", **load_json(path)}  # runs recorded before the case signal existed had none
        # A run recorded by an older version holds fewer fields: it must match on those it holds.
        diffs = [f"{k}: {saved[k]!r} then, {v!r} now" for k, v in now.items() if k in saved and saved[k] != v]
        if diffs:
            raise OutputDirError(
                f"--resume: the checkpoints in {cfg.output_dir} belong to another configuration; "
                f"what differs: {'; '.join(diffs)}. Resume with the same settings, or pass "
                f"--overwrite-output-dir to start a new run"
            )
        return
    write_json(path, now)


def mark_complete(output_dir: str) -> None:
    write_json(
        os.path.join(output_dir, RUN_COMPLETE_FILE), {"completed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    )
