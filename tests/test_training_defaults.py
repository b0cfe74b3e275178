"""The defaults chosen from the data (trainer.training.defaults), and what a run that learnt nothing says: the
context for data without document boundaries, a step's size, the warning before a run too short to learn, and the
run's files, card and push after one that learnt nothing."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from conftest import CONLL_SAMPLE, train_cli

from trainer.config import Config
from trainer.push import main as push_main
from trainer.training.defaults import MIN_STEPS, choose_batch_size, choose_context, neighbour_ratio


def sentences(path: Path) -> list[list[str]]:
    out, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if current:
                out.append(current)
            current = []
            continue
        current.append(parts[0])
    return out + ([current] if current else [])


def test_data_without_boundaries_is_read_in_order_only_where_its_sentences_are(caplog):
    """Reuters news in reading order shares names between neighbours (the sample: 31x as often as distant sentences);
    the same sentences shuffled do not (1.7x), and are read one by one. Marked documents are read as documents."""
    ordered = sentences(CONLL_SAMPLE / "eng.train")
    shuffled = list(ordered)
    random.Random(0).shuffle(shuffled)
    assert neighbour_ratio(ordered) > 10 > 2 > neighbour_ratio(shuffled)
    no_docs = [-1] * len(ordered)
    with caplog.at_level(logging.INFO):
        assert choose_context("auto", no_docs, ordered) == "document"
        assert choose_context("auto", no_docs, shuffled) == "sentence"
        assert choose_context("auto", [0] * len(shuffled), shuffled) == "document"  # the data marks its documents
    said = [r.getMessage() for r in caplog.records if "--context auto" in r.getMessage()]
    assert "in order, as one stream" in said[0] and "each sentence on its own" in said[1] and "marks" in said[2]
    assert choose_context("sentence", [0] * len(ordered), ordered) == "sentence"  # asked for: as asked


def test_a_step_holds_about_a_thousand_sub_tokens_and_small_data_gets_enough_steps(caplog):
    big, small = Config(context="document"), Config(context="document")
    assert choose_batch_size(big, examples=1560, processes=1) == 4  # CoNLL-2003's windows: 1,170 steps in 3 epochs
    assert choose_batch_size(Config(context="sentence"), examples=14041, processes=1) == 32
    with caplog.at_level(logging.INFO):
        batch = choose_batch_size(small, examples=46, processes=1)  # 400 sentences: 46 windows
    assert batch == 1 and "Batch: 1 window a step, not 4: 46 training windows would make only 36" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # 138 steps: enough


def test_a_run_too_short_to_learn_is_warned_about_before_it_trains(caplog):
    """Asked for 16 windows a step on 46, or on 2 processes where the default shrank as far as it can."""
    with caplog.at_level(logging.WARNING):
        assert choose_batch_size(Config(context="document", per_device_train_batch_size=16), 46, 1) == 16
        assert choose_batch_size(Config(context="document", num_train_epochs=1), 20, 2) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "only 9 optimizer steps (46 training windows, 16 a step per process, 1 processes" in warnings[0]
    assert (
        f"under {MIN_STEPS} a model may learn nothing" in warnings[0] and "--per-device-train-batch-size" in warnings[0]
    )
    assert "only 10 optimizer steps (20 training windows, 1 a step per process, 2 processes" in warnings[1]


def test_a_run_that_learnt_nothing_says_so_and_is_not_pushed(tiny_encoder_dir, tmp_path, capsys, caplog):
    """Training data whose every tag is O teaches a model to predict no entity: the run says so last in its log, in
    train_results.json and at the top of its card, and `trainer.push` refuses it (before any token is looked for)."""
    train = tmp_path / "all_o.jsonl"
    rows = [json.loads(line) for line in (CONLL_SAMPLE.parent / "formats" / "sample_iob2.jsonl").open()]
    train.write_text("".join(json.dumps({"tokens": r["tokens"], "tags": ["O"] * len(r["tokens"])}) + "\n"
                             for r in rows * 4), encoding="utf-8")  # fmt: skip
    out = tmp_path / "out"
    argv = ["--model-name-or-path", tiny_encoder_dir, "--train-file", str(train), "--validation-file",
            str(CONLL_SAMPLE / "eng.testa"), "--max-eval-samples", "20", "--output-dir", str(out),
            "--learning-rate", "1e-3", "--num-train-epochs", "1", "--context", "sentence",
            "--per-device-train-batch-size", "8"]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        train_cli(argv)
    assert "learnt nothing: on the validation split it predicts no entity" in caplog.records[-1].getMessage()
    results = json.loads((out / "train_results.json").read_text())
    assert len(results["warnings"]) == 1 and "learnt nothing" in results["warnings"][0]
    assert "This model learnt nothing" in (out / "README.md").read_text()
    capsys.readouterr()
    assert push_main(["--model", str(out), "--hub-model-id", "someone/empty"]) == 1
    assert "--push-unlearned" in capsys.readouterr().err
