"""What both engines do after training, on the main process: save the tokenizer and the run config next to the saved
model, score validation and test at word level (trainer.evaluation.word_level), record the run (train_results.json),
write the model card, push if asked."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import torch
from accelerate.state import AcceleratorState
from transformers import AutoModelForTokenClassification, PreTrainedModel

from trainer.config import Config
from trainer.data.load import describe
from trainer.evaluation.word_level import evaluate
from trainer.hub.card import CardError, build_model_card, write_model_card
from trainer.hub.push import push
from trainer.machine import device_name, versions
from trainer.outputs import RUN_CONFIG_FILE, TrainStats, learnt_nothing, write_train_stats
from trainer.training.output_dir import mark_complete
from trainer.training.prepare import Prepared

logger = logging.getLogger(__name__)


def saved_model(cfg: Config, device: torch.device | str) -> PreTrainedModel:
    """The best model as saved in `cfg.output_dir`, which both engines hand to `finish`: scored from disk, the numbers
    are those of the model users load. The trained object is not: under mixed precision Accelerate leaves its forward
    wrapped in autocast (a bf16 run scored 93.39 through it where its saved model scores 93.43), and bf16 training on
    a CPU builds it with eager attention (trainer.training.precision)."""
    return AutoModelForTokenClassification.from_pretrained(cfg.output_dir).to(device)


def finish(cfg: Config, prep: Prepared, model: torch.nn.Module, stats: TrainStats) -> dict[str, Any]:
    """`model` is the best model, already saved into `cfg.output_dir` by the engine. Returns the evaluation records
    of validation and test."""
    out = cfg.output_dir
    prep.tokenizer.save_pretrained(out)
    cfg.save(os.path.join(out, RUN_CONFIG_FILE))
    results = {}
    for split in ("validation", "test"):
        if split in prep.data.splits:
            results[split] = evaluate(
                model,
                prep.tokenizer,
                prep.data,
                split,
                window=prep.window,
                batch_size=cfg.per_device_eval_batch_size,
                output_dir=out,
                first_sentences=cfg.max_eval_samples,
            ).record
    state = AcceleratorState()  # as the engine's Accelerator (the Trainer's own, or the loop's) set it up
    stats = dataclasses.replace(
        stats,
        engine=cfg.engine,
        train_samples=len(prep.train),
        epochs=cfg.num_train_epochs,
        world_size=state.num_processes,
        mixed_precision=state.mixed_precision,
        data=describe(prep.data),
        versions=versions(),
        device=device_name(),
        warnings=[w for w in [learnt_nothing(results)] if w],
    )
    write_train_stats(out, stats)
    card = None
    try:  # also for runs that are not pushed: the card documents the run
        card = build_model_card(out, cfg.hub_model_id)
        write_model_card(out, card=card)
    except CardError as e:
        logger.warning("model card not written: %s", e)
    mark_complete(out)  # last: a directory without it holds an interrupted run
    for warning in stats.warnings:  # last in the log, where a reader of the run looks
        logger.warning(warning)
    if cfg.push_to_hub:  # HubPushError keeps the local output intact
        push(out, cfg.hub_model_id, private=cfg.hub_private_repo, card=card, allow_unlearned=cfg.push_unlearned)
    return results
