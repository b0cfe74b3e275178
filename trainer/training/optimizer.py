"""The parameter groups both engines optimise: AdamW weight decay by the Trainer's own rule, and the learning rate
per layer (`--layer-lr-decay`). The Trainer has no option for layer-wise rates, so its engine builds its optimizer
from these groups too (trainer.training.hf_trainer)."""

from __future__ import annotations

import re
from typing import Any

import torch
from transformers import Trainer

# encoder.layer.3. (BERT, RoBERTa, DeBERTa), transformer.layer.3. (DistilBERT)
_LAYER = re.compile(r"\.layers?\.(\d+)\.")


def layer_depth(name: str, layers: int) -> int:
    """0 for the embeddings, i + 1 for encoder layer i, layers + 1 for what sits above the encoder (the classifier)."""
    found = _LAYER.search(name)
    if found:
        return int(found.group(1)) + 1
    return 0 if "embeddings" in name else layers + 1


def optimizer_groups(
    model: torch.nn.Module, weight_decay: float, lr: float, layer_decay: float = 1.0
) -> list[dict[str, Any]]:
    """Groups by weight decay (none on biases and LayerNorm weights: the Trainer's rule, so both engines regularise the
    same parameters) and by depth: a layer `k` steps below the top learns at lr * layer_decay**k. The top group comes
    first, so the learning rate that both engines log is --learning-rate's schedule."""
    decay = set(Trainer.get_decay_parameter_names(None, model))  # reads nothing from the Trainer instance
    layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            below = (layers + 1 - layer_depth(name, layers)) if layer_decay != 1 else 0
            groups.setdefault((below, name in decay), []).append(param)
    return [
        {"params": params, "weight_decay": weight_decay if decayed else 0.0, "lr": lr * layer_decay**below}
        for (below, decayed), params in sorted(groups.items(), key=lambda kv: (kv[0][0], not kv[0][1]))
    ]
