"""Checkpoint directories shared by both engines: `<output_dir>/checkpoint-<step>`, which of them are complete, which
one `--resume` / `--resume-from-checkpoint` continues from, and (for the Accelerate loop) which ones to delete.

A checkpoint counts as complete only once its marker file exists: the file each engine writes last
(`trainer_state.json` for the Trainer, `loop_state.json` for the loop). A run killed while writing a checkpoint leaves
a directory without the marker; resuming from it would load half-written state, so it is skipped.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from typing import Iterable, Optional

logger = logging.getLogger(__name__)

PREFIX = "checkpoint"
# The file each engine writes last into a checkpoint: the Trainer's and the Accelerate loop's.
MARKERS = ("trainer_state.json", "loop_state.json")
_CHECKPOINT_RE = re.compile(rf"^{PREFIX}-(\d+)$")


def checkpoint_dir(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, f"{PREFIX}-{step}")


def checkpoint_step(path: str) -> Optional[int]:
    m = _CHECKPOINT_RE.match(os.path.basename(os.path.normpath(path)))
    return int(m.group(1)) if m else None


def all_checkpoints(output_dir: str) -> list[str]:
    """Every `checkpoint-<step>` directory, complete or not, oldest step first."""
    if not os.path.isdir(output_dir):
        return []
    found = [
        os.path.join(output_dir, name)
        for name in os.listdir(output_dir)
        if _CHECKPOINT_RE.match(name) and os.path.isdir(os.path.join(output_dir, name))
    ]
    return sorted(found, key=checkpoint_step)


def complete_checkpoints(output_dir: str, marker: str) -> list[str]:
    return [path for path in all_checkpoints(output_dir) if os.path.exists(os.path.join(path, marker))]


def last_checkpoint(output_dir: str, marker: str) -> Optional[str]:
    complete = complete_checkpoints(output_dir, marker)
    return complete[-1] if complete else None


def resume_checkpoint(output_dir: str, resume: bool, resume_from: Optional[str], marker: str) -> Optional[str]:
    """The checkpoint to continue from: `resume_from` if given, else with `resume` the newest complete checkpoint in
    `output_dir` (None, with a warning, when there is none: the run starts from scratch)."""
    if resume_from:
        if not os.path.exists(os.path.join(resume_from, marker)):
            raise ValueError(
                f"--resume-from-checkpoint {resume_from}: not a complete checkpoint of this engine "
                f"(no {marker}; it may have been cut off while being written, or come from the other "
                f"engine)"
            )
        return resume_from
    if resume:
        last = last_checkpoint(output_dir, marker)
        if last is None:
            logger.warning("--resume: no complete checkpoint in %s, starting from scratch", output_dir)
        return last
    return None


def rotate(output_dir: str, keep_last: Optional[int], marker: str, protect: Iterable[Optional[str]] = ()) -> list[str]:
    """Delete checkpoints beyond the newest `keep_last` complete ones, never those in `protect` (the best one).

    Incomplete directories older than the newest complete checkpoint are leftovers of a killed run and go too; a
    checkpoint of the other engine (its marker, not ours) is never this engine's to delete.
    Returns the deleted paths. Call on the main process only, after the newest checkpoint is complete.
    """
    complete = complete_checkpoints(output_dir, marker)
    if not complete:
        return []
    keep = set(complete if keep_last is None else complete[-keep_last:] if keep_last > 0 else [])
    keep |= {os.path.normpath(p) for p in protect if p}
    keep = {os.path.normpath(p) for p in keep}
    newest = checkpoint_step(complete[-1])
    removed = []
    for path in all_checkpoints(output_dir):
        if os.path.normpath(path) in keep or checkpoint_step(path) > newest:
            continue
        if any(os.path.exists(os.path.join(path, m)) for m in MARKERS if m != marker):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        logger.info("Deleted older checkpoints: %s", ", ".join(os.path.basename(p) for p in removed))
    return removed
