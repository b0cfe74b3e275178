"""Word tags from per-word label scores: the argmax of each word, or the best sequence of valid IOB2 tags (Viterbi).

A softmax tagger picks each word's label on its own, so it can emit sequences no annotator would write (`B-ORG I-LOC`,
an `I-PER` after `O`), which seqeval then reads as extra or broken entities. Viterbi over the word log-probabilities
with the transitions of trainer.reading.labels.iob2_transitions (each allowed transition costs nothing, the others are
impossible) returns the most probable *valid* sequence. No learned transition scores, so nothing to train.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from trainer.reading.labels import iob2_transitions

# How word tags are read from the label scores; models recorded without a decoding were read by argmax.
DECODINGS = ("argmax", "viterbi")


def valid_iob2(logprobs: np.ndarray, first: np.ndarray, follows: np.ndarray) -> list[int]:
    """The label ids of the highest-scoring valid sequence. `logprobs`: (words, labels); `first`: (labels,) bool;
    `follows`: (labels, labels) bool, [previous, next]."""
    if len(logprobs) == 0:
        return []
    forbid_first = np.where(first, 0.0, -np.inf)
    forbid = np.where(follows, 0.0, -np.inf)
    score = logprobs[0] + forbid_first
    back = np.empty((len(logprobs), logprobs.shape[1]), dtype=np.int64)
    for t in range(1, len(logprobs)):
        cand = score[:, None] + forbid  # [previous, next]
        back[t] = cand.argmax(0)
        score = cand.max(0) + logprobs[t]
    path = [int(score.argmax())]
    for t in range(len(logprobs) - 1, 0, -1):
        path.append(int(back[t][path[-1]]))
    return path[::-1]


class Decoder:
    """Per-word label scores of one sentence -> label ids, by `decoding` ("argmax", or "viterbi" where the labels are
    IOB2 chunk tags; other label sets fall back to argmax)."""

    def __init__(self, labels: Sequence[str], decoding: str = "argmax") -> None:
        if decoding not in DECODINGS:
            raise ValueError(f"unknown decoding {decoding!r}: choose one of {', '.join(DECODINGS)}")
        rule = iob2_transitions(labels) if decoding == "viterbi" else None
        self.rule: Optional[tuple[np.ndarray, np.ndarray]] = (
            (np.array(rule[0]), np.array(rule[1])) if rule is not None else None
        )
        self.decoding = decoding if rule is not None else "argmax"

    def __call__(self, logprobs: np.ndarray) -> list[int]:
        if len(logprobs) == 0:
            return []
        best = np.asarray(logprobs).argmax(-1)
        if self.rule is None:
            return best.tolist()
        first, follows = self.rule
        # Each word's argmax maximises every term of the sum, so when it is a valid sequence it is the best valid one:
        # the search runs only for the (few) sentences where argmax breaks the rule. Same answer, less time.
        if first[best[0]] and follows[best[:-1], best[1:]].all():
            return best.tolist()
        return valid_iob2(np.asarray(logprobs, dtype=np.float64), first, follows)
