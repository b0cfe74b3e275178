"""A launch that Accelerate does not see as the processes started (trainer.processes): both CLIs refuse it with a
message and exit 2, before anything is written. (Real two-process launches: test_distributed, test_predict.)"""

import pytest
from conftest import CONLL_SAMPLE

from trainer.__main__ import main as train_main
from trainer.predict import main as predict_main

REFUSED = "error: launched as 2 processes (WORLD_SIZE) but Accelerate runs 1"


@pytest.fixture
def launched_as_two(monkeypatch):
    """What each process sees under `torchrun --nproc-per-node 2 -m trainer` on CPUs without ACCELERATE_USE_CPU:
    WORLD_SIZE 2, and Accelerate running it alone (DistributedType.NO)."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)


def test_training_is_refused(launched_as_two, tiny_encoder_dir, tmp_path, capsys):
    out = tmp_path / "model"
    assert (
        train_main(
            ["--model-name-or-path", tiny_encoder_dir, "--data-dir", str(CONLL_SAMPLE), "--output-dir", str(out)]
        )
        == 2
    )
    assert REFUSED in capsys.readouterr().err
    assert not out.exists()


def test_predict_is_refused(launched_as_two, tmp_path, capsys):
    text = tmp_path / "a.txt"
    text.write_text("Paris\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert (
        predict_main(
            ["--model", str(tmp_path / "no-model"), "--input", str(text), "--output", str(out), "--no-progress"]
        )
        == 2
    )
    assert REFUSED in capsys.readouterr().err
    assert not list(tmp_path.glob("out.jsonl*"))
