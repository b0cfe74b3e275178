"""Keep freed memory in the process while training on a CPU, so each step does not fault fresh pages in.

PyTorch's CPU allocator takes every tensor from malloc. glibc's malloc serves a large request from a fresh mmap (always
above 32 MB, and above a lower, adaptive threshold until it has grown) and unmaps it when freed, so a step that frees
and allocates the same large tensors pays a page fault for every 4 KiB it touches again: the zero-filled gradient of
MiniLM's word embeddings alone is 47 MB, 11,500 pages, every step (`aten::fill_` took a fifth of a profiled bf16
step). Told never to mmap and never to give the heap's top back, malloc reuses those pages: one bf16 training step of
the recipe's shape (4 windows of 256 sub-tokens, MiniLM, a 2-core Xeon with AMX) went from 215 to 181 ms, and a
1-epoch run training the word embeddings 1.09x faster (docs/results.md, Training speed). The usual remedy, jemalloc or
tcmalloc through LD_PRELOAD, has to be set before the process starts, which a `python -m trainer` run cannot do for
itself; glibc's mallopt can be called at any time. The cost is memory: what is freed stays with the process until
it exits, and the heap grows by a few copies of the largest tensor before freed blocks fit the next ones (a probe
allocating and freeing one 64 MB tensor settled at 732 MB of RSS after 8 steps, from 284 MB).
"""

from __future__ import annotations

import ctypes
import logging
import sys

logger = logging.getLogger(__name__)

# glibc's <malloc.h> parameter numbers.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1  # mallopt takes an int


def keep_freed_memory() -> bool:
    """Sets glibc malloc to serve every request from its heap and never trim it; False where that is not possible
    (not Linux with glibc: musl, macOS and Windows have no mallopt, or not with these parameters)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) == 1
    if not done:
        logger.debug("mallopt refused: freed memory goes back to the system as usual")
    return done
