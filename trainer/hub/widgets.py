"""The Hub widget's example texts for a model card: real sentences of the data with gold entities, covering as many
entity types as possible, read like text."""

from __future__ import annotations

from typing import Any, Sequence

from trainer.reading.labels import tags_to_spans

_NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "'s", "n't", "'re", "'ve", "'ll", "'d", "'m"}
_NO_SPACE_AFTER = {"(", "[", "{", "$"}


def detokenize(tokens: Sequence[str]) -> str:
    """Words -> readable text for widget examples. The pipeline re-tokenizes it either way; this only undoes the
    spaces that tokenization put before punctuation so the example reads like text."""
    out = ""
    for i, tok in enumerate(tokens):
        if i and tok not in _NO_SPACE_BEFORE and tokens[i - 1] not in _NO_SPACE_AFTER:
            out += " "
        out += tok
    return out


def _entity_types(tags: Sequence[str]) -> list[str]:
    return [typ for typ, _, _ in tags_to_spans(tags)]


def widget_examples(rows: Sequence[dict[str, Any]], k: int = 3, min_words: int = 6, max_words: int = 30) -> list[str]:
    """Up to `k` sentences from the data for the Hub widget: those with gold entities, picked greedily to cover as
    many entity types as possible (then the most entities), in a deterministic order."""
    candidates = [r for r in rows if min_words <= len(r["tokens"]) <= max_words and len(r["tokens"]) == len(r["gold"])]
    with_entities = [r for r in candidates if _entity_types(r["gold"])]
    pool = with_entities or candidates or list(rows)
    chosen: list[dict[str, Any]] = []
    covered: set[str] = set()
    while pool and len(chosen) < k:
        best = max(
            pool,
            key=lambda r: (
                len(set(_entity_types(r["gold"])) - covered),
                len(_entity_types(r["gold"])),
                -len(r["tokens"]),
            ),
        )
        pool = [r for r in pool if r is not best]
        chosen.append(best)
        covered |= set(_entity_types(best["gold"]))
    return [detokenize(r["tokens"]) for r in chosen]
