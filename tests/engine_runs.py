"""Helpers for the engine tests (test_loop, test_resume, test_distributed): the shared small-run arguments, a run killed
with SIGKILL at a chosen optimizer step, and two-process runs under `accelerate launch`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import CONLL_SAMPLE, train_cli
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
N_VALIDATION = 21  # odd, and not a multiple of 2 processes x eval batch 4: the last evaluation batch is uneven


def small_run(model_dir: str, output_dir: str, *extra: str, context: str = "sentence") -> list[str]:
    """`python -m trainer` arguments for a run of seconds on the checked-in CoNLL-2003 sample. One sentence per
    example (`--context sentence`) by default, so that the step and checkpoint arithmetic below counts sentences;
    document windows have their own runs."""
    return [
        "--model-name-or-path",
        model_dir,
        "--data-dir",
        str(CONLL_SAMPLE),
        "--output-dir",
        str(output_dir),
        "--max-eval-samples",
        str(N_VALIDATION),
        "--per-device-eval-batch-size",
        "4",
        "--context",
        context,
        *extra,
    ]


# 48 sentences / batch 8 = 6 optimizer steps per epoch, 12 in all. Checkpoints: steps 4 and 8 (--save-steps 4) and
# 6 and 12 (end of each epoch, after its evaluation). lr 3e-3 so that the tiny model's loss visibly falls.
REFERENCE_ARGS = (
    "--max-train-samples",
    "48",
    "--num-train-epochs",
    "2",
    "--learning-rate",
    "3e-3",
    "--per-device-train-batch-size",
    "8",
    "--logging-steps",
    "2",
    "--save-steps",
    "4",
)


def _reference_run(engine: str, model_dir: str, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp(f"reference-{engine}") / "model"
    train_cli(small_run(model_dir, out, "--engine", engine, *REFERENCE_ARGS))
    return out


@pytest.fixture(scope="session")
def loop_reference(tiny_encoder_dir, tmp_path_factory) -> Path:
    """An uninterrupted one-process run of the Accelerate loop (the resume tests' reference; the learning test)."""
    return _reference_run("accelerate", tiny_encoder_dir, tmp_path_factory)


@pytest.fixture(scope="session")
def trainer_reference(tiny_encoder_dir, tmp_path_factory) -> Path:
    """The same run with the Trainer engine."""
    return _reference_run("trainer", tiny_encoder_dir, tmp_path_factory)


# Runs `python -m trainer ARGS` but SIGKILLs itself when optimizer step N begins: the process dies with no cleanup,
# as under the OOM killer or a pre-empted node, and at the same place every time (a timer-based kill would land
# anywhere, or after the end, on a loaded machine). Both engines step a torch.optim.AdamW.
_KILL_AT_STEP = """
import os, signal, sys
import torch
from trainer.__main__ import main

kill_at, calls = int(sys.argv[1]), 0
adamw_step = torch.optim.AdamW.step

def step_or_die(self, *args, **kwargs):
    global calls
    calls += 1
    if calls == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return adamw_step(self, *args, **kwargs)

torch.optim.AdamW.step = step_or_die
sys.exit(main(sys.argv[2:]))
"""


def run_killed_at_step(step: int, argv: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_AT_STEP, str(step), *argv], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -9, f"expected a SIGKILL, got {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_processes(argv: list[str], module: str = "trainer") -> subprocess.CompletedProcess:
    """`accelerate launch` with 2 processes on CPU (gloo).

    `accelerate launch --cpu --num_processes 2` starts a single process unless an MPI hostfile is configured
    (accelerate 1.x fans CPU processes out through mpirun only); the torchrun-based launcher (`--multi_gpu`) with
    ACCELERATE_USE_CPU=true starts two processes that Accelerate runs as MULTI_CPU over gloo.
    """
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        module,
        *argv,
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    # Each rank's own lines first: the tail alone holds only the surviving rank's "connection closed" and the
    # launcher's, and the rank that crashed first is the one whose error matters.
    ranks = "\n...\n".join(
        "\n".join(line for line in proc.stderr.splitlines() if f"[rank{r}]" in line)[-3000:] for r in (1, 0)
    )
    assert proc.returncode == 0, f"{ranks}\n...\n{proc.stderr[-3000:]}"
    return proc


def read_json(path: Any) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def eval_entries(train_results: dict[str, Any]) -> list[dict[str, Any]]:
    """The in-training validation records of either engine's log history."""
    return [e for e in train_results["log_history"] if "eval_f1" in e]


def same_weights(dir_a: str, dir_b: str) -> bool:
    a, b = load_file(os.path.join(dir_a, "model.safetensors")), load_file(os.path.join(dir_b, "model.safetensors"))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
