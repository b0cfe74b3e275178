"""Which of the processes `accelerate launch` started this one is, as Accelerate sees them (training and predict)."""

from __future__ import annotations

import os

from accelerate import PartialState
from accelerate.utils import parse_flag_from_env


class LaunchError(RuntimeError):
    """The processes were launched in a way Accelerate does not see (the CLIs print it and exit 2)."""


def process_state() -> PartialState:
    """Accelerate's process state, refused when it does not count the processes that were launched.

    A bare PartialState() ignores ACCELERATE_USE_CPU (only Accelerator reads it), so on CPUs every launched process
    would run alone (DistributedType.NO) and take itself for the main one: each would clear and write the same
    output directory, or tag every text into the same shard. The flag is passed on, and a launch that Accelerate
    still does not see as WORLD_SIZE processes is refused before anything is read or written.
    """
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != state.num_processes:
        raise LaunchError(
            f"launched as {launched} processes (WORLD_SIZE) but Accelerate runs {state.num_processes} "
            f"(distributed type {state.distributed_type}); on CPUs launch with "
            "ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes N"
        )
    return state
