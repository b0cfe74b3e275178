"""The most training tokens per second any fp32 implementation of a recipe could reach on this machine: an upper
bound, to tell a speed target this CPU cannot reach from one the code misses.

It counts the floating-point work of the model's matrix products only (the encoder's linear layers, its two attention
products and the label classifier: forward once, backward twice that; validation forward once per epoch), over the
recipe's own training and validation windows, built by the trainer's code, padding left out. It divides that by the
best rate this CPU's GEMM reaches on the model's own shapes, measured here. Everything else a real step does (softmax,
LayerNorm, GELU, dropout, the optimizer, data, checkpoints) is left out, so a real run is always slower than this
bound.

Used by bench/speed_side_by_side.py, which puts the bound beside the measured runs of the same round.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Sequence

import torch


def gemm_gflops(hidden: int, intermediate: int, tokens: int = 1024, repeats: int = 20) -> float:
    """The best rate (GFLOP/s) of fp32 matrix products of a training step's shapes on all of torch's threads:
    activations (tokens x hidden) times each linear layer's weight, and the weight-gradient product."""
    best = 0.0
    for m, k, n in [
        (tokens, hidden, hidden),
        (tokens, hidden, intermediate),
        (tokens, intermediate, hidden),
        (hidden, tokens, intermediate),
    ]:
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            a @ b
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t)
        best = max(best, 2 * m * k * n / sorted(times)[len(times) // 2] / 1e9)
    return best


def window_flops(length: int, layers: int, hidden: int, intermediate: int, labels: int) -> int:
    """Forward FLOPs of one window's matrix products: per layer, Q, K, V, output and the two feed-forward projections
    per token, and the scores (Q K^T) and their weighted sum (A V) over the window; then the label classifier.
    tests/test_bench_ceiling.py checks it against torch.utils.flop_counter on a BERT."""
    linear = 2 * length * (4 * hidden * hidden + 2 * hidden * intermediate)
    attention = 2 * 2 * length * length * hidden
    return layers * (linear + attention) + 2 * length * hidden * labels


def recipe_work(trainer_flags: Sequence[str]) -> dict[str, Any]:
    """Training tokens and FLOPs of one run of `python -m trainer` with `trainer_flags` (model and data included):
    its windows are built by trainer.training.prepare, exactly as the run builds them."""
    from trainer.__main__ import parse_config
    from trainer.training.prepare import prepare

    with tempfile.TemporaryDirectory(prefix="ceiling-") as out:
        cfg = parse_config([*trainer_flags, "--output-dir", os.path.join(out, "run")])
        prep = prepare(cfg)
    c = prep.model.config
    shape = (c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.num_labels)
    train_lengths = [len(ids) for ids in prep.train["input_ids"]]
    validation_lengths = [len(ids) for ids in prep.validation["input_ids"]] if prep.validation is not None else []
    epochs = cfg.num_train_epochs
    return {
        "hidden": c.hidden_size,
        "intermediate": c.intermediate_size,
        "train_tokens": sum(train_lengths) * epochs,
        "train_tflop": 3 * epochs * sum(window_flops(n, *shape) for n in train_lengths) / 1e12,
        "validation_windows_per_epoch": len(validation_lengths),
        "validation_tflop": epochs * sum(window_flops(n, *shape) for n in validation_lengths) / 1e12,
    }


def bound(work: dict[str, Any], gflops: float) -> dict[str, float]:
    """Tokens/s at `gflops` with nothing but the matrix products: with each epoch's validation (as
    bench/speed_side_by_side.py times a run) and without it."""
    train_s = work["train_tflop"] * 1e3 / gflops
    validation_s = work["validation_tflop"] * 1e3 / gflops
    return {
        "gemm_gflops": gflops,
        "tokens_per_s": work["train_tokens"] / (train_s + validation_s),
        "tokens_per_s_without_validation": work["train_tokens"] / train_s,
    }
