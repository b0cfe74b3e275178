"""How many sub-tokens a model reads at once: the one rule used by training, evaluation and serving.

Imports nothing from the package and no training library, so the Space can use it.
"""

from __future__ import annotations

from typing import Any, Optional

# Tokenizers without a usable limit report a huge sentinel as model_max_length (1e30); they get BERT's.
FALLBACK_MAX_LENGTH = 512


def max_length(tokenizer: Any, model_config: Any = None, requested: Optional[int] = None) -> int:
    """The sub-token limit of one input (special tokens included): `requested` (e.g. --max-seq-length) if given,
    capped by the tokenizer's limit and by the model's position embeddings, so that training, evaluation and the
    Space cut or window texts at the same length."""
    limit = tokenizer.model_max_length if tokenizer.model_max_length < 100_000 else FALLBACK_MAX_LENGTH
    positions = getattr(model_config, "max_position_embeddings", None)
    if positions:
        limit = min(limit, positions)
    return min(requested, limit) if requested else limit
