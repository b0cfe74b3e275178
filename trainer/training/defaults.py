"""The defaults that depend on the data, chosen once it is read: what the model reads at once (`--context auto`) and
how many examples a step holds (`--per-device-train-batch-size` unset), with the log saying what was chosen and why.
Measured in docs/results.md (`bench/defaults.py`)."""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Sequence

from trainer.config import Config

logger = logging.getLogger(__name__)

# Fewer optimizer steps than this in a whole run and a model may learn nothing: the default batch shrinks to reach
# it, and a run that still makes fewer (or whose batch was given) is warned about before training.
MIN_STEPS = 100
# About 1,000 sub-tokens a step: 4 windows of 256, or 32 CoNLL sentences of ~25 sub-tokens.
DEFAULT_BATCH = {"document": 4, "sentence": 32}
# Consecutive sentences of a text in reading order share content words far more often than sentences half the split
# apart (CoNLL-2003 in order: 25x on train, 21x on validation; shuffled: 0.7-1.4x): at least this ratio reads data
# without document boundaries as one stream, in order.
IN_ORDER_RATIO = 3.0


def neighbour_ratio(sentences: Sequence[Sequence[str]], sample: int = 5000) -> float:
    """How much more often consecutive sentences share a content word (3+ characters, a letter, not among the 100
    commonest words) than sentences half the split apart do; on up to `sample` pairs, +1 smoothed."""
    words = [{w.lower() for w in s if len(w) > 2 and any(c.isalpha() for c in w)} for s in sentences]
    common = {w for w, _ in Counter(w for ws in words for w in ws).most_common(100)}
    words = [ws - common for ws in words]
    n = len(words)
    pairs = range(0, n - 1, max(1, (n - 1) // sample))
    near = sum(bool(words[i] & words[i + 1]) for i in pairs)
    far = sum(bool(words[i] & words[(i + n // 2) % n]) for i in pairs)
    return (near + 1) / (far + 1)


def choose_context(requested: str, doc_ids: Sequence[int], sentences: Sequence[Sequence[str]]) -> str:
    """`requested` unless it is "auto": then "document" where the training data marks documents (CoNLL -DOCSTART-,
    JSON lines' doc_id) or keeps its sentences in reading order (`neighbour_ratio`), else "sentence"."""
    if requested != "auto":
        return requested
    if any(d != -1 for d in doc_ids):
        logger.info("Context: document (--context auto: the training data marks its documents)")
        return "document"
    ratio = neighbour_ratio(sentences)
    chosen = "document" if ratio >= IN_ORDER_RATIO else "sentence"
    logger.info(
        "Context: %s (--context auto: the training data marks no documents, and consecutive sentences share words "
        "%.1fx as often as distant ones; %s %.0fx reads %s)",
        chosen, ratio, "at least" if chosen == "document" else "under", IN_ORDER_RATIO,
        "them in order, as one stream" if chosen == "document" else "each sentence on its own",
    )  # fmt: skip
    return chosen


def optimizer_steps(examples: int, batch: int, processes: int, cfg: Config) -> int:
    """The optimizer steps of a whole run: each process takes `batch` examples a micro-step."""
    return math.ceil(examples / (batch * processes * cfg.gradient_accumulation_steps)) * math.ceil(cfg.num_train_epochs)


def choose_batch_size(cfg: Config, examples: int, processes: int) -> int:
    """`--per-device-train-batch-size` if given, else DEFAULT_BATCH for the context, shrunk until the run makes
    MIN_STEPS optimizer steps (down to 1). Either way, a run that will still make fewer is warned about with its
    numbers and what to change, before any training."""
    unit = "windows" if cfg.context == "document" else "sentences"
    batch = cfg.per_device_train_batch_size
    if batch is None:
        default = batch = DEFAULT_BATCH[cfg.context]
        while batch > 1 and optimizer_steps(examples, batch, processes, cfg) < MIN_STEPS:
            batch -= 1
        if batch != default:
            logger.info(
                "Batch: %d %s a step, not %d: %d training %s would make only %d optimizer steps",
                batch, unit if batch > 1 else unit[:-1], default, examples, unit,
                optimizer_steps(examples, default, processes, cfg),
            )  # fmt: skip
    steps = optimizer_steps(examples, batch, processes, cfg)
    if steps < MIN_STEPS:
        logger.warning(
            "This run will make only %d optimizer steps (%d training %s, %d a step per process, %d processes, %d "
            "accumulation steps, %g epochs); with under %d a model may learn nothing. Lower "
            "--per-device-train-batch-size, raise --num-train-epochs, or add training data",
            steps, examples, unit, batch, processes, cfg.gradient_accumulation_steps, cfg.num_train_epochs, MIN_STEPS,
        )  # fmt: skip
    return batch
