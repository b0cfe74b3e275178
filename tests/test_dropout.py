"""FastDropout: nn.Dropout's behaviour (keep rate, scale, gradient, eval, seeding) with a cheaper mask."""

import pytest
import torch
from transformers import BertConfig, BertForTokenClassification

from trainer.dropout import FastDropout, use_fast_dropout

N = 1 << 20


def kept(p: float, n: int = N, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    torch.manual_seed(seed)
    return FastDropout(p).train()(torch.ones(n, dtype=dtype)) != 0


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keeps_each_element_with_probability_one_minus_p_and_keeps_the_mean(p):
    torch.manual_seed(0)
    x = torch.ones(N)
    y = FastDropout(p).train()(x)
    keep = (y != 0).float()
    # Binomial standard deviation sqrt(p(1-p)/N) < 5e-4: these bounds are ~8 of them.
    assert abs(keep.mean().item() - (1 - p)) < 4e-3
    assert torch.allclose(y[y != 0], torch.tensor(2 ** 16 / round((1 - p) * 2 ** 16)))
    assert abs(y.mean().item() - 1) < 4e-3 / (1 - p)


def test_neighbours_are_independent():
    # Four neighbours come from one 64-bit draw: each pair must still be kept together with probability (1 - p)**2.
    keep = kept(0.5).float().view(-1, 4)
    for i in range(4):
        for j in range(i + 1, 4):
            assert abs((keep[:, i] * keep[:, j]).mean().item() - 0.25) < 5e-3


def test_gradient_flows_through_the_kept_elements_only():
    torch.manual_seed(1)
    x = torch.ones(1000, requires_grad=True)
    y = FastDropout(0.3).train()(x)
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * keep)/dx = keep, and y = keep where x is 1


def test_seeded_like_torch_and_shape_and_dtype_kept():
    assert torch.equal(kept(0.1, seed=3), kept(0.1, seed=3))
    assert not torch.equal(kept(0.1, seed=3), kept(0.1, seed=4))
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, dtype=torch.bfloat16)
    y = FastDropout(0.1).train()(x)
    assert y.shape == x.shape and y.dtype == torch.bfloat16
    # The scale is rounded to the input's dtype, as nn.Dropout's is.
    assert torch.equal(y[y != 0], (x * torch.tensor(2 ** 16 / 58982, dtype=torch.bfloat16))[y != 0])


def test_eval_and_edge_probabilities():
    x = torch.randn(100)
    assert FastDropout(0.5).eval()(x) is x
    assert FastDropout(0.0).train()(x) is x
    assert torch.equal(FastDropout(1.0).train()(x), torch.zeros(100))


def test_use_fast_dropout_swaps_every_dropout_module_and_keeps_the_model():
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     num_labels=3, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.1)
    torch.manual_seed(0)
    model = BertForTokenClassification(cfg).eval()
    ids = torch.randint(0, 50, (2, 6))
    before = model(input_ids=ids).logits
    n = sum(type(m) is torch.nn.Dropout for m in model.modules())
    assert use_fast_dropout(model) == n > 0
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert all(type(m) is FastDropout and not m.training for m in dropouts)
    assert {m.p for m in dropouts} == {0.1, 0.2}
    assert torch.equal(model(input_ids=ids).logits, before)
    assert "dropout" not in " ".join(model.state_dict())  # nothing new is saved with the model
    model.train()
    assert all(m.training for m in dropouts)
