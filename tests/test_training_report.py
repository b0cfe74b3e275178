"""--report-to: both engines log the same values under the same names where a tracker reads them (here TensorBoard's
event files, read back offline)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import CONLL_SAMPLE, train_cli

NAMES = {"train/loss", "train/learning_rate", "train/tokens_per_s", "eval/f1"}


def logged(run_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict[str, list[float]] = {}
    for events in run_dir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            values.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return values


@pytest.mark.parametrize("engine", ["trainer", "accelerate"])
def test_both_engines_log_loss_rate_speed_and_f1_to_tensorboard(engine, tiny_encoder_dir, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "out"
    train_cli(["--model-name-or-path", tiny_encoder_dir, "--data-dir", str(CONLL_SAMPLE), "--output-dir", str(out),
               "--engine", engine, "--report-to", "tensorboard", "--max-train-samples", "24", "--max-eval-samples",
               "8", "--num-train-epochs", "2", "--per-device-train-batch-size", "4", "--context", "sentence",
               "--logging-steps", "2", "--learning-rate", "1e-3"])  # fmt: skip
    values = logged(out / "runs")
    assert NAMES <= set(values), sorted(values)
    assert len(values["eval/f1"]) == 2  # one evaluation per epoch
    assert all(math.isfinite(v) and v > 0 for v in values["train/loss"] + values["train/tokens_per_s"])
    assert values["train/learning_rate"][0] > values["train/learning_rate"][-1]  # the linear schedule decays
