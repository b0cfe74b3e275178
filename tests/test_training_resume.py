"""Kill a training run with SIGKILL in the middle of an epoch, resume it with --resume, and get exactly the run that
was never interrupted (both engines).

What equality holds, and why: bitwise. The resumed run ends with the same weights (every tensor `torch.equal`),
hence the same eval_results.json and the same logged losses and validation scores. Both engines checkpoint model,
optimizer, scheduler and every RNG state; both skip the batches of the interrupted epoch already trained on; and the
epoch's shuffle does not depend on the global RNG (the loop reseeds its own generator with seed + epoch, the Trainer
uses accelerate's seedable sampler). So from the checkpoint on, the resumed process performs the same floating-point
operations in the same order on the same data with the same dropout masks. This holds on one machine with the same
thread count and library versions (CPU kernels are deterministic for a fixed thread count); across other hardware or
with non-deterministic GPU kernels, expect equality to within float tolerance instead.
"""

from __future__ import annotations

import pytest
from conftest import train_cli
from engine_runs import REFERENCE_ARGS as ARGS
from engine_runs import eval_entries, read_json, run_killed_at_step, same_weights, small_run

KILL_AT = 10  # dies as optimizer step 10 begins: the newest checkpoint is step 8, two batches into the 2nd epoch,
#               and step 9 is lost and must be redone


def comparable_log(train_results: dict) -> list[dict]:
    """Logged losses and validation scores by step, without wall-clock timings."""
    keep = (
        "step",
        "loss",
        "learning_rate",
        "eval_precision",
        "eval_recall",
        "eval_f1",
        "eval_accuracy",
        "eval_num_sentences",
    )
    return [{k: e[k] for k in keep if k in e} for e in train_results["log_history"] if "loss" in e or "eval_f1" in e]


@pytest.mark.parametrize("engine", ["accelerate", "trainer"])
def test_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(engine, tiny_encoder_dir, tmp_path, request):
    reference = request.getfixturevalue("loop_reference" if engine == "accelerate" else "trainer_reference")
    interrupted = tmp_path / "interrupted"

    run_killed_at_step(KILL_AT, small_run(tiny_encoder_dir, interrupted, "--engine", engine, *ARGS))
    assert not (interrupted / "train_results.json").exists()
    assert not (interrupted / "run_complete.json").exists()  # the push and the Space can tell it was interrupted
    assert sorted(p.name for p in interrupted.glob("checkpoint-*")) == ["checkpoint-6", "checkpoint-8"]
    state = read_json(
        interrupted / "checkpoint-8" / ("loop_state.json" if engine == "accelerate" else "trainer_state.json")
    )
    if engine == "accelerate":
        assert (state["epoch"], state["batches_in_epoch"]) == (1, 2)  # mid-epoch: 2 of the 2nd epoch's 6 batches
    else:
        assert 1 < state["epoch"] < 2

    train_cli(small_run(tiny_encoder_dir, interrupted, "--engine", engine, *ARGS, "--resume"))

    assert same_weights(reference, interrupted)
    assert (interrupted / "run_complete.json").exists()
    assert read_json(interrupted / "eval_results.json") == read_json(reference / "eval_results.json")
    ref_results, resumed_results = (
        read_json(reference / "train_results.json"),
        read_json(interrupted / "train_results.json"),
    )
    assert comparable_log(resumed_results) == comparable_log(ref_results)
    assert [e["eval_num_sentences"] for e in eval_entries(resumed_results)] == [21, 21]
    assert resumed_results["global_steps"] == ref_results["global_steps"] == 12
    if engine == "accelerate":
        # The loop keeps its loss sums in the checkpoint, so even the run's mean loss is the uninterrupted one.
        assert resumed_results["train_loss"] == ref_results["train_loss"]
        assert resumed_results["resumed_from"].endswith("checkpoint-8")
