"""Real two-process runs under `accelerate launch` on CPU (gloo), for both engines (and the loop over document
windows): evaluation during training covers every validation window and sentence exactly once although the last batch
is uneven, its scores equal a one-process evaluation of the saved model, and both engines' evaluators give the same
scores on the same saved model."""

from __future__ import annotations

import math

import pytest
import torch
from accelerate import Accelerator
from engine_runs import N_VALIDATION, eval_entries, launch_two_processes, read_json, small_run
from torch.utils.data import DataLoader
from transformers import DataCollatorForTokenClassification, TrainingArguments

from trainer.config import Config
from trainer.evaluation.word_level import evaluate
from trainer.outputs import RUN_CONFIG_FILE, RUN_IDENTITY_FILE
from trainer.reading.windows import longest_first
from trainer.training.hf_trainer import InOrderEvalTrainer
from trainer.training.loop import evaluate as loop_evaluate
from trainer.training.prepare import Prepared, prepare

# 48 sentences in batches of 4 on 2 processes, 2 batches accumulated: 3 optimizer steps per epoch. 21 validation
# sentences in batches of 4 per process: rounds of 8, the last round holds 5, so accelerate repeats 3 sentences to
# keep the processes in step and gather_for_metrics must drop them again.
# lr 1e-4 leaves the tiny model's random head predicting every kind of tag: scores that a dropped, repeated or
# misplaced sentence would change (a model trained to answer O everywhere scores the same whatever the rows).
LAUNCH_ARGS = (
    "--max-train-samples",
    "48",
    "--num-train-epochs",
    "2",
    "--learning-rate",
    "1e-4",
    "--per-device-train-batch-size",
    "4",
    "--gradient-accumulation-steps",
    "2",
    "--logging-steps",
    "1",
)
SCORES = ("precision", "recall", "f1", "accuracy")


# Document windows of 32 sub-tokens sharing 6: the 21 validation sentences become 22 windows, the rows that are
# gathered (rounds of 8, the last one uneven too), and each word is read from the row the rule picks.
DOCUMENT_ARGS = ("--max-seq-length", "32", "--stride", "6")


@pytest.fixture(
    scope="module",
    params=[("accelerate", "sentence"), ("trainer", "sentence"), ("accelerate", "document")],
    ids=lambda p: "-".join(p),
)
def two_process_output(request, tiny_encoder_dir, tmp_path_factory):
    engine, context = request.param
    out = tmp_path_factory.mktemp(f"two-processes-{engine}-{context}") / "model"
    # The loop also length-groups its batches here, so the distributed LengthGroupedSampler path runs too.
    extra = ("--group-by-length",) if engine == "accelerate" else ()
    extra += DOCUMENT_ARGS if context == "document" else ()
    proc = launch_two_processes(
        small_run(tiny_encoder_dir, out, "--engine", engine, *LAUNCH_ARGS, *extra, context=context)
    )
    assert proc.stderr.count("trainer.training.prepare: Data: ") == 1  # one log, from the main process
    return engine, out


def with_saved_model(out, scratch) -> Prepared:
    """The run's data and encoded validation split, with the saved (best) model as the model (its output directory,
    unused, is `scratch`: prepare() refuses the run's own, which holds a run)."""
    return prepare(
        Config.load(str(out / RUN_CONFIG_FILE), model_name_or_path=str(out), output_dir=str(scratch / "unused"))
    )


def test_two_processes_evaluate_every_sentence_once_with_the_saved_models_scores(two_process_output, tmp_path):
    engine, out = two_process_output
    results = read_json(out / "train_results.json")
    assert results["engine"] == engine and results["world_size"] == 2
    # The main process alone recorded the run (both took themselves for it when a bare PartialState ignored
    # ACCELERATE_USE_CPU: they wrote the same files at once), and with the number of processes a resume needs.
    assert read_json(out / RUN_IDENTITY_FILE)["world_size"] == 2
    # The first loss logged is the random head's, near ln(9 labels) = 2.2, whatever the accumulation steps (2) and
    # processes (2): the Trainer logged (and backpropagated) 4x that before it was told BERT's loss is a plain mean.
    first_loss = next(e["loss"] for e in results["log_history"] if "loss" in e)
    assert first_loss == pytest.approx(math.log(9), rel=0.1)
    evals = eval_entries(results)
    assert len(evals) == 2 and [e["eval_num_sentences"] for e in evals] == [N_VALIDATION, N_VALIDATION]
    prep = with_saved_model(out, tmp_path)
    windows = len(prep.validation_windows)
    assert [e["eval_num_windows"] for e in evals] == [windows, windows]
    assert windows == (22 if prep.window.context == "document" else N_VALIDATION)
    # The saved model is the best evaluation's (the first with the highest F1: both engines need a strict gain).
    best = next(e for e in evals if e["eval_f1"] == max(x["eval_f1"] for x in evals))
    assert results["best_validation_f1"] == best["eval_f1"]
    assert 0 < best["eval_accuracy"] < 0.8  # the random head tags more than O: the scores depend on every row

    # finish() scored the saved model on the main process alone.
    saved = read_json(out / "eval_results.json")["validation"]
    assert saved["num_sentences"] == N_VALIDATION
    assert {k: best[f"eval_{k}"] for k in SCORES} == {k: saved["overall"][k] for k in SCORES}

    # And once more here, in this process, from the files on disk.
    again = evaluate(prep.model, prep.tokenizer, prep.data, "validation", output_dir=str(tmp_path))
    assert again.record["overall"] == saved["overall"]


def test_both_engines_score_the_saved_model_alike(two_process_output, tmp_path):
    _, out = two_process_output
    expected = read_json(out / "eval_results.json")["validation"]["overall"]
    prep = with_saved_model(out, tmp_path)
    collator = DataCollatorForTokenClassification(prep.tokenizer)

    # The Trainer engine's evaluator: Trainer.evaluate + the prepared run's word-level scores.
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"), per_device_eval_batch_size=4, report_to="none", use_cpu=True
    )
    trainer = InOrderEvalTrainer(
        run_config=Config(),
        model=prep.model,
        args=args,
        eval_dataset=prep.validation,
        data_collator=collator,
        compute_metrics=lambda p: prep.score_validation(p.predictions),
        preprocess_logits_for_metrics=lambda logits, labels: logits.float().log_softmax(-1),
    )
    by_trainer = trainer.evaluate()
    assert by_trainer["eval_num_sentences"] == N_VALIDATION
    assert {k: by_trainer[f"eval_{k}"] for k in SCORES} == {k: expected[k] for k in SCORES}

    # The loop's evaluator (one process here), in the Trainer's order: longest windows first.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    order = longest_first([len(ids) for ids in prep.validation["input_ids"]])
    assert order != sorted(order)  # the order matters: rows must be put back
    model, dataloader = accelerator.prepare(
        prep.model, DataLoader(prep.validation, batch_size=4, collate_fn=collator, sampler=order)
    )
    by_loop = loop_evaluate(accelerator, model, dataloader, prep, order)
    assert by_loop["num_sentences"] == N_VALIDATION
    # Same batch-size-weighted mean of batch losses; summed in another order, hence float32 rounding apart.
    assert by_loop["loss"] == pytest.approx(by_trainer["eval_loss"], rel=1e-6)
    assert {k: by_loop[k] for k in SCORES} == {k: expected[k] for k in SCORES}
