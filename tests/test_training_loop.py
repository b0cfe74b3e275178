"""The Accelerate engine on one process: it learns, records what it evaluated, keeps the right checkpoints; and the
pieces it shares with the Trainer engine (checkpoint resolution and rotation, warm-up, weight-decay groups)."""

from __future__ import annotations

import json
import os

import pytest
from engine_runs import N_VALIDATION, eval_entries, read_json

from trainer.config import Config
from trainer.training import checkpoints
from trainer.training.loop import STATE_FILE, LoopState, warmup_steps


def test_loop_learns_and_records_each_evaluation(loop_reference):
    results = read_json(loop_reference / "train_results.json")
    assert results["engine"] == "accelerate" and results["world_size"] == 1 and results["global_steps"] == 12
    losses = [e["loss"] for e in results["log_history"] if "loss" in e]
    assert len(losses) == 6  # every 2 of 12 steps
    # A random 2-layer encoder starts near ln(9 labels) = 2.2; training on the sample must bring that down clearly.
    assert losses[0] > 1.9 and losses[-1] < 0.75 * losses[0], losses
    evals = eval_entries(results)
    assert [(e["step"], e["epoch"]) for e in evals] == [(6, 1.0), (12, 2.0)]
    assert all(e["eval_num_sentences"] == N_VALIDATION for e in evals)
    best = max(e["eval_f1"] for e in evals)
    assert results["best_validation_f1"] == best
    assert results["train_tokens_per_s"] > 0 and results["train_loss"] == pytest.approx(sum(losses) / len(losses))
    # finish() ran on the saved best model: the usual result files are there.
    saved = read_json(loop_reference / "eval_results.json")
    assert saved["validation"]["num_sentences"] == N_VALIDATION and "test" in saved
    assert os.path.exists(loop_reference / "run_config.json")


def test_loop_keeps_the_last_checkpoints_and_the_best(loop_reference):
    results = read_json(loop_reference / "train_results.json")
    kept = checkpoints.complete_checkpoints(str(loop_reference), STATE_FILE)
    names = {os.path.basename(p) for p in kept}
    # --save-total-limit 2 (default): the newest two, plus the best if it is older.
    assert {"checkpoint-8", "checkpoint-12"} <= names
    assert names <= {"checkpoint-6", "checkpoint-8", "checkpoint-12"}
    assert os.path.basename(results["best_checkpoint"]) in names
    last = read_json(loop_reference / "checkpoint-12" / STATE_FILE)
    assert (last["global_step"], last["epoch"], last["batches_in_epoch"]) == (12, 2, 0)
    assert last["log_history"] == results["log_history"]


def test_loop_state_saves_and_loads_itself(tmp_path):
    state = LoopState(
        global_step=8,
        epoch=1,
        batches_in_epoch=2,
        best_metric=0.5,
        loss_sum=3.25,
        loss_steps=4,
        world_size=2,
        log_history=[{"step": 2, "loss": 0.8125}],
    )
    state.save(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]  # the temporary file was renamed into place
    assert LoopState.load(str(tmp_path)) == state
    # A file from before best_step was dropped still loads.
    (tmp_path / STATE_FILE).write_text(json.dumps({"global_step": 6, "best_step": 6, "log_history": []}))
    assert LoopState.load(str(tmp_path)) == LoopState(global_step=6)


def _fake_checkpoint(root, step, complete=True):
    path = root / f"checkpoint-{step}"
    path.mkdir()
    if complete:
        (path / STATE_FILE).write_text(json.dumps({"global_step": step}))
    return path


def test_rotate_keeps_the_newest_and_the_best_and_clears_leftovers(tmp_path):
    for step in (2, 4, 6, 8):
        _fake_checkpoint(tmp_path, step)
    _fake_checkpoint(tmp_path, 5, complete=False)  # cut off by a kill, then superseded by 6 and 8
    removed = checkpoints.rotate(str(tmp_path), 2, STATE_FILE, protect=[str(tmp_path / "checkpoint-2")])
    assert sorted(os.path.basename(p) for p in removed) == ["checkpoint-4", "checkpoint-5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-6", "checkpoint-8"]
    assert checkpoints.rotate(str(tmp_path), None, STATE_FILE) == []  # no limit: keep everything


def test_resume_takes_the_newest_complete_checkpoint(tmp_path, caplog):
    assert checkpoints.resume_checkpoint(str(tmp_path), True, None, STATE_FILE) is None  # nothing yet: from scratch
    assert "starting from scratch" in caplog.text
    _fake_checkpoint(tmp_path, 4)
    _fake_checkpoint(tmp_path, 10)
    half_written = _fake_checkpoint(tmp_path, 12, complete=False)
    assert checkpoints.resume_checkpoint(str(tmp_path), True, None, STATE_FILE) == str(tmp_path / "checkpoint-10")
    assert checkpoints.resume_checkpoint(str(tmp_path), False, None, STATE_FILE) is None
    explicit = str(tmp_path / "checkpoint-4")
    assert checkpoints.resume_checkpoint(str(tmp_path), False, explicit, STATE_FILE) == explicit
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        checkpoints.resume_checkpoint(str(tmp_path), True, str(half_written), STATE_FILE)


def test_warmup_is_steps_or_a_fraction():
    cfg = Config(warmup_steps=30)
    assert warmup_steps(cfg, 1000) == 30
    assert warmup_steps(Config(warmup_steps=0.1), 1001) == 101  # rounded up, as the Trainer does
    assert warmup_steps(Config(), 1000) == 0
