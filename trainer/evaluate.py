"""`python -m trainer.evaluate`: score a saved model on any split, writing the same `eval_results.json` and
`predictions_<split>.jsonl` as training does.

  python -m trainer.evaluate --model model --data-dir ../shared/data/conll2003 --split test --output-dir eval-test

The data source defaults to the one the model was trained on (its `run_config.json`), and the text is read in the
windows the model was trained with (documents or sentences, recorded in its `config.json`); flags override both.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Literal, Optional, Sequence

from transformers import AutoModelForTokenClassification

from trainer.cli import field_help, run_door
from trainer.data.files import DataError
from trainer.evaluation.word_level import eval_config, evaluate, load_split
from trainer.hub.card import CardError, write_model_card
from trainer.inference.tagger import load_tokenizer
from trainer.outputs import (
    CARD_FILE,
    EVAL_RESULTS_FILE,
    RUN_CONFIG_FILE,
    THIS_MODEL,
    check_results_model,
    results_model,
)
from trainer.reading.windows import model_window

logger = logging.getLogger(__name__)


@dataclass
class EvaluateArgs:
    model: str = field_help("A trained output directory (or Hub model id).")
    split: Literal["train", "validation", "test"] = field_help("The split to score.", default="validation")
    output_dir: Optional[str] = field_help(
        "Where the result files go (default: the model directory, whose model card is then rewritten); results of "
        "another model there are not merged with, but refused.",
        default=None,
    )
    per_device_eval_batch_size: int = field_help("Windows per forward pass.", default=32)
    max_eval_samples: Optional[int] = field_help("Score only the split's first N sentences.", default=None)
    # How the text is read: the model's own record (config.json's ner_window) unless given.
    context: Optional[Literal["document", "sentence"]] = field_help(
        "Read documents or single sentences (default: as the model was trained).", default=None
    )
    max_seq_length: Optional[int] = field_help("Sub-tokens per window (default: the model's).", default=None)
    stride: Optional[int] = field_help("Sub-tokens shared by consecutive windows (default: the model's).", default=None)
    decoding: Optional[Literal["argmax", "viterbi"]] = field_help(
        "Per-word argmax, or the best valid IOB2 sequence (default: as the model records).", default=None
    )
    # The data: the training run's (run_config.json) unless given; a new source replaces the old one whole.
    task: Optional[Literal["ner", "pos", "chunk"]] = field_help(
        "Which tags to score (default: the run's).", default=None
    )
    dataset_name: Optional[str] = field_help("Hub dataset id (or a local dataset directory).", default=None)
    dataset_config_name: Optional[str] = field_help("Hub dataset configuration name.", default=None)
    dataset_revision: Optional[str] = field_help("Hub dataset revision.", default=None)
    data_dir: Optional[str] = field_help(
        "Directory of CoNLL column files (see python -m trainer --help).", default=None
    )
    train_file: Optional[str] = field_help("Training file (with --split train).", default=None)
    validation_file: Optional[str] = field_help("Validation file.", default=None)
    test_file: Optional[str] = field_help("Test file.", default=None)
    label_column: Optional[int] = field_help("Tag column of CoNLL column files, counted from 0.", default=None)


def evaluate_saved(
    model: str, split: str, output_dir: Optional[str] = None, batch_size: int = 32, **overrides: Any
) -> dict[str, Any]:
    """Score the saved model `model` on `split` and write the result files (default: into the model directory).
    Results are merged only with the same model's; into a trained run's own directory, its model card is rewritten
    to match them."""
    out = output_dir or model
    model_id = results_model(model, out)
    check_results_model(out, model_id)  # before the work, not after it
    cfg = eval_config(model, overrides)
    data = load_split(cfg, split)
    net = AutoModelForTokenClassification.from_pretrained(model)
    tokenizer = load_tokenizer(model)
    # The model's recorded window and decoding unless --context / --stride / --max-seq-length / --decoding say
    # otherwise.
    window = model_window(
        tokenizer,
        net.config,
        cfg.max_seq_length,
        overrides.get("stride"),
        overrides.get("context"),
        overrides.get("decoding"),
    )
    record = evaluate(
        net,
        tokenizer,
        data,
        split,
        batch_size=batch_size,
        output_dir=out,
        window=window,
        model_id=model_id,
        first_sentences=cfg.max_eval_samples,
    ).record
    if model_id == THIS_MODEL and os.path.exists(os.path.join(out, RUN_CONFIG_FILE)):
        # A trained run's directory: its card reports eval_results.json, so it is rebuilt from the new results
        # rather than left saying the old ones.
        try:
            write_model_card(out)
        except CardError as e:
            logger.warning(
                "model card not rewritten (%s may disagree with %s): %s",
                os.path.join(out, CARD_FILE),
                EVAL_RESULTS_FILE,
                e,
            )
    return record


def main(argv: Optional[Sequence[str]] = None) -> int:
    def body(args: EvaluateArgs) -> str:
        given = vars(args)
        rec = evaluate_saved(
            given.pop("model"),
            given.pop("split"),
            given.pop("output_dir"),
            given.pop("per_device_eval_batch_size"),
            **given,
        )
        o = rec["overall"]
        return (
            f"{rec['split']}: precision {o['precision']:.4f} recall {o['recall']:.4f} F1 {o['f1']:.4f} "
            f"accuracy {o['accuracy']:.4f} ({rec['num_sentences']} sentences)"
        )

    return run_door(EvaluateArgs, argv, "python -m trainer.evaluate", __doc__, body, (DataError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
