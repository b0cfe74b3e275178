"""Where a model's predicted entities differ from the gold ones, and how: the error kinds of the Space's browser.

Kinds, per predicted or gold span that is not an exact match (same type, same words):
- false positive: a predicted span that overlaps no gold span;
- false negative: a gold span that no predicted span overlaps;
- wrong type: a predicted span with exactly a gold span's words but another type;
- wrong boundary: a predicted span of a gold span's type that overlaps it with other words;
- wrong type and boundary: a predicted span overlapping a gold span with neither words nor type matching.
This is the usual span-level taxonomy (as in nervaluate / Batista's "Named-Entity evaluation metrics"); a predicted
span is explained by the overlapping gold span that matches it best (type first, then most shared words).
Imports nothing from the package but trainer.reading.labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from trainer.reading.labels import tags_to_spans

FALSE_POSITIVE = "false positive"
FALSE_NEGATIVE = "false negative"
WRONG_TYPE = "wrong type"
WRONG_BOUNDARY = "wrong boundary"
WRONG_TYPE_AND_BOUNDARY = "wrong type and boundary"
KINDS = (FALSE_POSITIVE, FALSE_NEGATIVE, WRONG_TYPE, WRONG_BOUNDARY, WRONG_TYPE_AND_BOUNDARY)

Span = tuple[str, int, int]  # (type, first word, end word exclusive)


@dataclass(frozen=True)
class SpanError:
    kind: str
    gold: Optional[Span]
    pred: Optional[Span]

    @property
    def types(self) -> set[str]:
        return {s[0] for s in (self.gold, self.pred) if s is not None}


def _overlap(a: Span, b: Span) -> int:
    return max(0, min(a[2], b[2]) - max(a[1], b[1]))


def classify_errors(gold_tags: Sequence[str], pred_tags: Sequence[str]) -> list[SpanError]:
    """The span errors of one sentence's IOB2 tags, in order of position."""
    gold, pred = set(tags_to_spans(gold_tags)), set(tags_to_spans(pred_tags))
    exact = gold & pred
    errors: list[SpanError] = []
    for p in sorted(pred - exact, key=lambda s: (s[1], s[2])):
        overlapping = [g for g in gold if _overlap(g, p)]
        if not overlapping:
            errors.append(SpanError(FALSE_POSITIVE, None, p))
            continue
        g = max(overlapping, key=lambda g: (g[0] == p[0], _overlap(g, p), -g[1]))
        if (g[1], g[2]) == (p[1], p[2]):
            kind = WRONG_TYPE
        elif g[0] == p[0]:
            kind = WRONG_BOUNDARY
        else:
            kind = WRONG_TYPE_AND_BOUNDARY
        errors.append(SpanError(kind, g, p))
    for g in sorted(gold - exact, key=lambda s: (s[1], s[2])):
        if not any(_overlap(g, p) for p in pred):
            errors.append(SpanError(FALSE_NEGATIVE, g, None))
    return sorted(errors, key=lambda e: min(s[1] for s in (e.gold, e.pred) if s is not None))


def error_table(
    rows: Iterable[dict[str, Any]], types: Optional[Iterable[str]] = None, kinds: Optional[Iterable[str]] = None
) -> list[dict[str, Any]]:
    """One record per error in `predictions_<split>.jsonl` rows, optionally only errors involving one of `types`
    (gold or predicted type) and of one of `kinds`. Each record has the sentence, the error, and the words of the
    gold and predicted span."""
    keep_types = None if types is None else set(types)
    keep_kinds = None if kinds is None else set(kinds)
    out = []
    for row in rows:
        if row["gold"] == row["pred"]:
            continue
        tokens = row["tokens"]
        for err in classify_errors(row["gold"], row["pred"]):
            if keep_kinds is not None and err.kind not in keep_kinds:
                continue
            if keep_types is not None and not (err.types & keep_types):
                continue
            out.append(
                {
                    "doc_id": row.get("doc_id"),
                    "sent_idx": row.get("sent_idx"),
                    "kind": err.kind,
                    "gold": _describe(tokens, err.gold),
                    "pred": _describe(tokens, err.pred),
                    "sentence": " ".join(tokens),
                    "tokens": tokens,
                    "gold_tags": row["gold"],
                    "pred_tags": row["pred"],
                }
            )
    return out


def _describe(tokens: Sequence[str], span: Optional[Span]) -> str:
    if span is None:
        return ""
    return f"{span[0]}: {' '.join(tokens[span[1] : span[2]])}"
