"""bench/ceiling.py: the FLOPs it counts for a window are the FLOPs the model's matrix products do."""

import os
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig, BertForTokenClassification

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from ceiling import window_flops


@pytest.mark.parametrize("length", [7, 40])
def test_window_flops_match_torch_flop_counter(length):
    # Eager attention: its two products are plain matmuls, which the counter always sees.
    cfg = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=9,
        attn_implementation="eager",
    )
    model = BertForTokenClassification(cfg)
    ids = torch.randint(0, 100, (1, length))
    want = window_flops(length, 2, 32, 64, 9)
    model.eval()
    with FlopCounterMode(display=False) as forward:
        model(input_ids=ids)
    model.train()
    with FlopCounterMode(display=False) as step:
        model(input_ids=ids, labels=torch.zeros(1, length, dtype=torch.long)).loss.backward()
    assert forward.get_total_flops() == want
    assert step.get_total_flops() == 3 * want  # backward: the input's and the weight's gradient, each a forward
