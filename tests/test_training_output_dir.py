"""A run's output directory is never mixed with another run's, is checked before any work, and says when a run
completed (trainer.training.output_dir), through `python -m trainer` on the tiny model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import CONLL_SAMPLE, TINY_RUN

from trainer.__main__ import main
from trainer.training import checkpoints

# One sentence per example (--context sentence), so that steps count sentences.
SAMPLE = (
    "--max-train-samples",
    "24",
    "--max-eval-samples",
    "8",
    "--num-train-epochs",
    "1",
    "--per-device-train-batch-size",
    "8",
    "--learning-rate",
    "1e-3",
    "--context",
    "sentence",
)


def run(model: str, out, *extra: str, data=("--data-dir", str(CONLL_SAMPLE))) -> int:
    return main(["--model-name-or-path", model, *data, "--output-dir", str(out), *SAMPLE, *extra])


def listing(folder) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in Path(folder).rglob("*")}


@pytest.fixture
def done(tiny_output, tmp_path) -> Path:
    """A copy of a completed run."""
    out = tmp_path / "done"
    shutil.copytree(tiny_output, out)
    return out


def test_a_completed_run_is_marked_last(tiny_output):
    assert os.path.exists(os.path.join(tiny_output, "run_complete.json"))
    identity = json.loads(Path(tiny_output, "run_identity.json").read_text())
    assert identity["engine"] == "trainer" and identity["world_size"] == 1 and "B-PER" in identity["labels"]


def test_rerunning_into_a_run_is_refused_and_touches_nothing(done, tiny_encoder_dir, capsys):
    before = listing(done)
    assert run(tiny_encoder_dir, done) == 2
    err = capsys.readouterr().err
    assert f"--output-dir {done} already holds a run" in err and "--overwrite-output-dir" in err and "--resume" in err
    assert listing(done) == before


def test_a_run_that_failed_on_its_data_can_simply_be_run_again(tiny_encoder_dir, tmp_path, capsys):
    val = tmp_path / "val.conll"
    val.write_text("Peter B-PER\n\u0301 O\n", encoding="utf-8")  # a word the tokenizer drops: found after the labels
    data = ("--train-file", str(CONLL_SAMPLE / "eng.train"), "--validation-file", str(val))
    out = tmp_path / "out"
    assert run(tiny_encoder_dir, out, data=data) == 2
    assert "val.conll:1: word 2" in capsys.readouterr().err and (out / "run_identity.json").exists()
    # Nothing was trained: after fixing the data the same command needs no --overwrite-output-dir.
    val.write_text("Peter B-PER\nBlackburn I-PER\n", encoding="utf-8")
    assert run(tiny_encoder_dir, out, data=data) == 0


def test_overwrite_removes_the_old_run_first(done, tiny_encoder_dir):
    (done / "notes.txt").write_text("mine")  # not a run file: kept
    train_only = ("--train-file", str(CONLL_SAMPLE / "eng.train"), "--validation-file", str(CONLL_SAMPLE / "eng.testa"))
    assert run(tiny_encoder_dir, done, "--overwrite-output-dir", data=train_only) == 0
    results = json.loads((done / "eval_results.json").read_text())
    assert set(results) == {"validation"}  # the old run's test scores are gone, not merged in
    assert not (done / "predictions_test.jsonl").exists()
    assert [p.name for p in done.glob("checkpoint-*")] == ["checkpoint-3"]  # this run's only (24 / 8 = 3 steps)
    assert (done / "notes.txt").read_text() == "mine" and (done / "run_complete.json").exists()


@pytest.mark.parametrize("start_from", ["the run's model", "one of its checkpoints"])
def test_overwrite_never_removes_the_model_the_run_starts_from(done, start_from, capsys):
    model = done if start_from == "the run's model" else next(done.glob("checkpoint-*"))
    before = listing(done)
    assert run(str(model), done, "--overwrite-output-dir") == 2
    assert "--overwrite-output-dir would remove the model this run starts from" in capsys.readouterr().err
    assert listing(done) == before


def test_resume_of_another_configuration_says_what_differs(done, tiny_encoder_dir, capsys):
    os.remove(done / "run_complete.json")  # as if interrupted
    before = listing(done)
    assert run(tiny_encoder_dir, done, "--resume", "--task", "chunk", "--case-signal", "none") == 2
    err = capsys.readouterr().err
    assert "belong to another configuration" in err and "task: 'ner' then, 'chunk' now" in err and "labels:" in err
    assert "case_signal: 'auto' then, 'none' now" in err  # the model's inputs would change meaning
    assert listing(done) == before  # nothing deleted, nothing trained


@pytest.mark.parametrize(
    "changed, said",
    [
        (("--learning-rate", "5e-4"), "learning_rate: 0.001 then, 0.0005 now"),
        (("--weight-decay", "0.1"), "weight_decay: 0.01 then, 0.1 now"),
        (("--hidden-dropout", "0.2"), "hidden_dropout: None then, 0.2 now"),
        (("--lr-scheduler-type", "cosine"), "lr_scheduler_type: 'linear' then, 'cosine' now"),
        (("--freeze-word-embeddings",), "freeze_word_embeddings: False then, True now"),
    ],
)
def test_resume_with_another_schedule_or_optimizer_setting_is_refused(done, tiny_encoder_dir, capsys, changed, said):
    """The resumed steps would follow the checkpoint's schedule and optimizer state while run_config.json and the
    card said the new value (or, for frozen embeddings, fail to load the optimizer state)."""
    os.remove(done / "run_complete.json")  # as if interrupted
    before = listing(done)
    assert run(tiny_encoder_dir, done, "--resume", *changed) == 2
    err = capsys.readouterr().err
    assert "belong to another configuration" in err and said in err
    assert listing(done) == before


def test_resume_may_change_where_it_logs_and_what_it_evaluates(done, tiny_encoder_dir):
    os.remove(done / "run_complete.json")
    changed = ["--logging-steps", "7", "--per-device-eval-batch-size", "3", "--save-total-limit", "5"]
    assert (
        main(["--model-name-or-path", tiny_encoder_dir, "--output-dir", str(done), *TINY_RUN, "--resume", *changed])
        == 0
    )


def test_resume_of_a_completed_run_is_refused(done, tiny_encoder_dir, capsys):
    assert run(tiny_encoder_dir, done, "--resume") == 2
    assert "completed" in capsys.readouterr().err


def test_an_unwritable_output_dir_is_found_before_any_data_is_read(tiny_encoder_dir, tmp_path, capsys):
    target = "/sys/kernel/ner-output"  # a filesystem root cannot write to in this sandbox
    try:
        open("/sys/kernel/.ner-probe", "w").close()
        pytest.skip("/sys/kernel is writable here")
    except OSError:
        pass
    # The data directory does not exist either: the output directory must be what is reported, at once.
    assert run(tiny_encoder_dir, target, data=("--data-dir", str(tmp_path / "missing"))) == 2
    err = capsys.readouterr().err
    assert f"--output-dir {target} is not writable" in err and "missing" not in err


def test_the_loop_never_deletes_trainer_checkpoints(tmp_path):
    for step, marker in (
        (2, "trainer_state.json"),
        (4, "loop_state.json"),
        (6, "loop_state.json"),
        (8, "loop_state.json"),
    ):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / marker).write_text("{}")
    removed = checkpoints.rotate(str(tmp_path), 2, "loop_state.json")
    assert [os.path.basename(p) for p in removed] == ["checkpoint-4"]
    assert (tmp_path / "checkpoint-2").exists()
