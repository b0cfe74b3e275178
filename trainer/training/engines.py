"""The training engines by name: the one registry that `python -m trainer` and the benchmarks run through.

Each engine is `run(cfg) -> dict` (the word-level evaluation records of validation/test, on the main process) and is
imported only when chosen, so `--engine trainer` never imports the Accelerate loop and vice versa.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from trainer.config import Config

ENGINES = {"trainer": "trainer.training.hf_trainer", "accelerate": "trainer.training.loop"}


def get_engine(name: str) -> Callable[[Config], dict[str, Any]]:
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; expected one of {', '.join(ENGINES)}")
    return importlib.import_module(ENGINES[name]).run


def run(cfg: Config) -> dict[str, Any]:
    """Train, evaluate, save (and push, if asked) with the engine `cfg.engine` names."""
    return get_engine(cfg.engine)(cfg)
