"""What this machine computes natively, which device a run uses, and which library versions it runs: the facts that
results, model cards and the choice of precision and inference backend are read from."""

from __future__ import annotations

import platform
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import torch

# /proc/cpuinfo flags of x86 CPUs that compute bf16 natively (AVX-512 BF16 instructions, AMX tiles).
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
VERSIONED = ("torch", "transformers", "datasets", "accelerate", "seqeval", "tokenizers")


@cache
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device_type: str | None = None) -> bool:
    """Whether a device computes bf16 natively (a CUDA GPU that supports it, or such a CPU). `device_type` "cuda" or
    "cpu"; by default the one training runs on (a CUDA GPU where there is one). Emulated bf16 is many times slower
    than fp32: one MiniLM training step measured 23x slower on an AVX2 CPU."""
    if device_type == "cuda" or (device_type is None and torch.cuda.is_available()):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return any(flag in cpu_flags() for flag in NATIVE_BF16_CPU_FLAGS)


def versions() -> dict[str, str]:
    """Installed versions from the package metadata (seqeval, for one, has no `__version__`)."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_name() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
