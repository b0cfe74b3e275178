"""keep_freed_memory: the large tensors of a training step, freed and allocated again every step, come back on pages
already in the process instead of being faulted in afresh."""

import subprocess
import sys
import textwrap

import pytest

# A step's allocations, as in training: activations (below glibc's mmap threshold) and one tensor above its 32 MB
# ceiling (MiniLM's word-embedding gradient, 30,522 x 384 floats, 47 MB, zero-filled every step).
SCRIPT = textwrap.dedent("""
    import resource, sys
    import torch
    from trainer.training.cpu import keep_freed_memory
    kept = keep_freed_memory() if sys.argv[1] == "keep" else None
    def faults_of_a_step():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        activations = [torch.ones(4, 256, 1536) for _ in range(8)]
        gradient = torch.zeros(30522, 384)
        del activations, gradient
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(kept, [faults_of_a_step() for _ in range(12)][-1])
""")


def last_step_faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True).stdout
    kept, n = out.split()
    return kept, int(n)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_steady_step_reuses_its_pages():
    # The 47 MB gradient is 11,446 pages of 4 KiB: faulted in every step by default, reused once the heap has grown.
    assert last_step_faults("default")[1] > 10_000
    kept, faults = last_step_faults("keep")
    assert kept == "True" and faults < 1_000
