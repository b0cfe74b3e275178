"""What the Accelerate loop (trainer.training.loop) records of a run besides what `accelerator.save_state` holds:
where training stands and the best model so far (`LoopState`, one JSON file per checkpoint), and the training loss
and tokens since the last log line (`LossWindow`)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import torch
from accelerate import Accelerator

from trainer.outputs import from_dict, load_json, write_json

logger = logging.getLogger("trainer.training.loop")

STATE_FILE = "loop_state.json"  # written last into each checkpoint: its presence marks the checkpoint complete


@dataclass
class LoopState:
    """Everything a resumed run needs besides what `accelerator.save_state` holds; each checkpoint holds it as JSON.

    `epoch` and `batches_in_epoch` say where training stands: the next batch to train on (an epoch done is batch 0 of
    the next). The loss sums, tokens and runtime add up over resumed segments, so a resumed run reports the whole
    training.
    """

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    best_metric: Optional[float] = None  # validation F1 of the model saved in the output directory
    best_checkpoint: Optional[str] = None  # the checkpoint of that step (rotation keeps it)
    loss_sum: float = 0.0  # over logged windows: mean loss x optimizer steps
    loss_steps: int = 0
    tokens_seen: int = 0
    train_runtime_s: float = 0.0
    world_size: int = 1  # batches are counted per process, so a checkpoint resumes only on as many processes
    log_history: list[dict[str, Any]] = field(default_factory=list)

    def save(self, path: str) -> None:
        """Write `STATE_FILE` into the checkpoint directory `path`; written whole or not at all (a rename)."""
        write_json(os.path.join(path, STATE_FILE), asdict(self))

    @classmethod
    def load(cls, path: str) -> LoopState:
        return from_dict(cls, load_json(os.path.join(path, STATE_FILE)))


class LossWindow:
    """Training loss and tokens since the last log line, summed on this process; `log` reduces them over processes
    into a log_history entry and folds them into the state's totals."""

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device)
        self.tokens = torch.zeros((), dtype=torch.long, device=device)
        self.steps = 0  # optimizer steps
        self.t0 = time.perf_counter()

    def log(self, accelerator: Accelerator, state: LoopState, lr: float, epochs: float, total_steps: int) -> None:
        if self.steps == 0:
            return
        loss = accelerator.reduce(self.loss, "mean").item() / self.steps
        tokens = accelerator.reduce(self.tokens, "sum").item()
        self.loss.zero_()
        self.tokens.zero_()
        entry = {
            "step": state.global_step,
            "epoch": round(epochs, 4),
            "loss": loss,
            "learning_rate": lr,
            "tokens_per_s": tokens / (time.perf_counter() - self.t0),
        }
        state.log_history.append(entry)
        accelerator.log({f"train/{k}": v for k, v in entry.items() if k not in ("step", "epoch")}, step=entry["step"])
        state.loss_sum += loss * self.steps
        state.loss_steps += self.steps
        state.tokens_seen += tokens
        message = "step %(step)d/%(total)d epoch %(epoch).2f: loss %(loss).4f, lr %(learning_rate).2e, "
        message += "%(tokens_per_s).0f tokens/s"
        logger.info(message, {**entry, "total": total_steps})
        self.steps, self.t0 = 0, time.perf_counter()
