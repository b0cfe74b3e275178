"""What both engines do after training, on the main process: save the tokenizer and the run config next to the saved
model, score validation and test at word level, record the run, write the model card, push if asked."""

from __future__ import annotations

import json
import logging
import os
import platform
from typing import Any

import torch

from trainer.config import Config
from trainer.data import describe
from trainer.hub import CardError, push, write_model_card
from trainer.outputs import RUN_CONFIG_FILE, TRAIN_RESULTS_FILE
from trainer.predict import evaluate_split
from trainer.prepare import Prepared

logger = logging.getLogger(__name__)


def versions() -> dict[str, str]:
    import accelerate
    import datasets
    import seqeval
    import transformers
    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "datasets": datasets.__version__, "accelerate": accelerate.__version__,
            "seqeval": getattr(seqeval, "__version__", "1.2.2")}


def device_name() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def finish(cfg: Config, prep: Prepared, model: torch.nn.Module, stats: dict[str, Any]) -> dict[str, Any]:
    """`model` is the best model, already saved into `cfg.output_dir` by the engine. Returns the eval results."""
    out = cfg.output_dir
    prep.tokenizer.save_pretrained(out)
    cfg.save(os.path.join(out, RUN_CONFIG_FILE))
    results = {}
    for split in ("validation", "test"):
        if split in prep.data.splits:
            where = prep.data.files.get(split, prep.data.source)
            results[split] = evaluate_split(model, prep.tokenizer, prep.data.splits[split], split, prep.data.scheme,
                                            f"{prep.data.source} [{split}: {where}]", out, prep.max_len,
                                            cfg.per_device_eval_batch_size)
    stats = {**stats, "engine": cfg.engine, "data": describe(prep.data), "versions": versions(),
             "device": device_name()}
    with open(os.path.join(out, TRAIN_RESULTS_FILE), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2)
    try:
        write_model_card(out, cfg.hub_model_id)  # also for runs that are not pushed: the card documents the run
    except CardError as e:
        logger.warning("model card not written: %s", e)
    if cfg.push_to_hub:
        push(out, cfg.hub_model_id, private=cfg.hub_private_repo)  # HubPushError keeps the local output intact
    return results
