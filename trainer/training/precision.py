"""Mixed precision only where it helps: bf16 where the hardware computes it natively, fp32 where it would be emulated.

On a CPU without AVX512-BF16 or AMX, autocast emulates bf16: one MiniLM training step measured 23x slower than fp32 on
an AVX2 machine, so `--bf16` there would turn minutes into hours (trainer.machine says which is which). Both engines ask
here which precision to train in; the run records the one used (train_results.json, the model card).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import torch

from trainer.config import Config
from trainer.machine import native_bf16

logger = logging.getLogger(__name__)


def attention_implementation(cfg: Config) -> dict[str, str]:
    """The from_pretrained keyword choosing how attention is computed in training: eager for bf16 on a CPU, else the
    model's default (PyTorch's scaled-dot-product attention, sdpa).

    On a CPU with AMX, sdpa's fused (flash) kernel is fast in fp32 but its bf16 backward is not: in one bf16 training
    step of MiniLM (4 windows of 180-256 sub-tokens, attention dropout 0) it took 28% of the time, and the step ran at
    1.23x fp32's; with eager attention, whose two products are plain bf16 matrix products that AMX computes, the step
    ran at 1.5-1.7x fp32's (sdpa) and 1.25x bf16 sdpa's (probes on a 2-core Xeon with amx_bf16). Only attention's
    implementation changes, not what is computed; it is not saved with the model, so inference keeps sdpa, and
    evaluation during training switches to it (inference_attention)."""
    if cfg.bf16 and not torch.cuda.is_available() and native_bf16("cpu"):
        return {"attn_implementation": "eager"}
    return {}


@contextmanager
def inference_attention(model: torch.nn.Module, cfg: Config) -> Iterator[None]:
    """sdpa while a model that trains with eager attention (attention_implementation) is evaluated: in inference it is
    sdpa's bf16 kernel that is fast (8 windows of 256 sub-tokens under bf16 autocast: 0.18 s, eager 0.6-1.5 s)."""
    model = getattr(model, "module", model)  # under DistributedDataParallel
    if not attention_implementation(cfg):
        yield
        return
    model.set_attn_implementation("sdpa")
    try:
        yield
    finally:
        model.set_attn_implementation("eager")


def mixed_precision(cfg: Config) -> str:
    """`bf16`, `fp16` or `no`: what the run asked for, except bf16 where it would be emulated (then fp32, said)."""
    if cfg.bf16:
        if native_bf16():
            return "bf16"
        logger.warning(
            "--bf16 ignored: this %s has no native bf16 (CPU flags avx512_bf16/amx_bf16, or a CUDA GPU "
            "with bf16); emulated bf16 trains many times slower than fp32, so training runs in fp32",
            "CPU" if not torch.cuda.is_available() else "GPU",
        )
        return "no"
    return "fp16" if cfg.fp16 else "no"
