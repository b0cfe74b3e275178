"""Dropout for CPU training whose random mask is cheap to draw.

PyTorch's CPU dropout draws its mask with `bernoulli_`: one Mersenne Twister draw per element, on one thread. In a
bf16 training step of MiniLM on a CPU with AMX (4 windows of 256 sub-tokens), where the matrix products are fast, the
model's 14 hidden dropouts spent 14% of the step drawing masks (2.1 ms per 4 x 256 x 384 mask). FastDropout reads the
same kind of mask off 16-bit slices of 64-bit draws, four elements a draw: 0.7 ms for mask and product, the step 1.10x
faster (`python bench/step_levers.py --bf16`, its torch_dropout row), a whole run ~1.01x (README, Training speed).
torch.compile would fuse the draws into its kernels, but compiling the model costs more than a short CPU run gains.
On a GPU PyTorch's own fused kernel is fast, so only CPU training swaps its dropouts (trainer/prepare.py). Not saved
with the model: inference has no dropout.
"""

from __future__ import annotations

import torch
from torch import nn

# An element is kept where a uniform 16-bit draw is below round(keep probability x 2**16): the keep probability
# differs from 1 - p by at most 2**-17 (0.899994 for p = 0.1), and the kept elements are scaled by the inverse of the
# probability actually used, so the expected output is the input exactly, as with nn.Dropout.
BITS = 16


class FastDropout(nn.Dropout):
    """nn.Dropout (its `p`, train/eval behaviour and gradient) with a mask drawn four elements per 64-bit draw of
    torch's generator (reproducible with torch.manual_seed, like nn.Dropout's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * 0
        threshold = round((1 - self.p) * 2 ** BITS)
        n = x.numel()
        draws = torch.randint(-2 ** 63, 2 ** 63 - 1, (-(-n // 4),), dtype=torch.int64, device=x.device)
        uniform = draws.view(torch.int16)[:n].view(x.shape)  # each a uniform value in [-2**15, 2**15)
        keep = (uniform < threshold - 2 ** (BITS - 1)).to(x.dtype).mul_(2 ** BITS / threshold)
        return x * keep


def use_fast_dropout(model: nn.Module) -> int:
    """Replaces every nn.Dropout module of `model` with a FastDropout of the same probability; returns how many.
    Dropout a model applies as a function (e.g. on attention probabilities, reading only the module's `p`) is left
    to PyTorch."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p, child.inplace).train(child.training))
                swapped += 1
    return swapped
