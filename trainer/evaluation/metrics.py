"""Word-level scoring: seqeval for chunk tags, per-tag accuracy for plain tags.

Scores are always computed per word (the prediction of each word's first sub-token), whatever sub-tokens were labelled
in training, so they are comparable across alignment strategies and `label_all_tokens` cannot inflate them (transformers
issue 14043). Texts are read in overlapping windows (trainer.reading.windows), so no word is cut: each word is read
once, from the window where its first sub-token has the most context, and every sentence is scored once.

Chunk tags (NER, chunking) are scored with seqeval in its default, conlleval-compatible mode. Plain tags (POS) are
scored per tag with our own counts: seqeval would split `NN` into a prefix `N` and a type `N`.

`evaluation_record` is what `eval_results.json` keeps per split (`{"overall": {precision, recall, f1, accuracy},
"per_entity": {TYPE: {precision, recall, f1, support}}, "num_sentences", "num_words", "dataset", "protocol"}`);
trainer.outputs writes and reads the files, trainer.evaluation.word_level produces the records.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Optional, Sequence

from seqeval.metrics import accuracy_score, classification_report

from trainer.reading.labels import tags_to_spans
from trainer.reading.windows import DocumentWindows

SEQEVAL_MODE = "default (conlleval-compatible)"
WORD_LEVEL = (
    "word (first sub-token of each word, read from the window where it has the most context; a text longer "
    "than a window is read in overlapping windows, never cut)"
)


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str) -> dict[str, Any]:
    """Overall and per-type precision/recall/F1/accuracy of word tag sequences (IOB2, or plain with scheme `none`)."""
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted tag sequences differ in shape")
    if scheme == "none":
        return _score_plain(gold, pred)
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_entity = {
        typ: {"precision": r["precision"], "recall": r["recall"], "f1": r["f1-score"], "support": int(r["support"])}
        for typ, r in sorted(report.items())
        if not typ.endswith(" avg")
    }
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    overall = {
        "precision": micro["precision"],
        "recall": micro["recall"],
        "f1": micro["f1-score"],
        "accuracy": accuracy_score(gold, pred),
    }
    return {"overall": overall, "per_entity": per_entity}


def validation_scores(
    logprobs: Sequence[Any],
    windows: DocumentWindows,
    gold: Sequence[Sequence[str]],
    id2label: dict[int, str],
    scheme: str,
    decoding: str = "argmax",
) -> dict[str, float]:
    """Overall word-level scores of the encoded validation windows during training (either engine), plus how many
    sentences and windows the (possibly gathered across processes) predictions covered.

    Rows (each window's per-position label log-probabilities) must be the split's windows in order; each word is
    read from its window and decoded as `windows.word_tags` says, the rule of the final evaluation. A row count that
    differs from the windows means a distributed gather dropped or duplicated rows; words would silently be read from
    the wrong rows, so it is an error.
    """
    if len(logprobs) != len(windows):
        raise ValueError(
            f"evaluation covered {len(logprobs)} predicted rows for a split of {len(windows)} windows "
            f"({len(gold)} sentences): every window must be evaluated exactly once"
        )
    pred = windows.word_tags(logprobs, id2label, decoding)
    return {**score(gold, pred, scheme)["overall"], "num_sentences": len(pred), "num_windows": len(logprobs)}


def _score_plain(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for g_row, p_row in zip(gold, pred):
        for g, p in zip(g_row, p_row):
            n_gold[g] += 1
            n_pred[p] += 1
            tp[g] += g == p
    per_tag = {}
    for tag in sorted(n_gold):
        p = tp[tag] / n_pred[tag] if n_pred[tag] else 0.0
        r = tp[tag] / n_gold[tag]
        per_tag[tag] = {
            "precision": p,
            "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "support": n_gold[tag],
        }
    total = sum(n_gold.values())
    acc = sum(tp.values()) / total if total else 0.0
    # Every word carries exactly one tag, so micro precision = recall = F1 = accuracy.
    return {"overall": {"precision": acc, "recall": acc, "f1": acc, "accuracy": acc}, "per_entity": per_tag}


def evaluation_record(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    scheme: str,
    split: str,
    dataset: str,
    window: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Everything `eval_results.json` keeps for one split; `window` is how the text was read
    (trainer.reading.windows)."""
    rec = score(gold, pred, scheme)
    if scheme != "none":  # how many entities the model predicted: none at all means it has learnt nothing
        rec["num_predicted"] = sum(len(tags_to_spans(p)) for p in pred)
    rec.update(
        {
            "split": split,
            "dataset": dataset,
            "num_sentences": len(gold),
            "num_words": sum(len(g) for g in gold),
            "protocol": {
                "metric": "seqeval" if scheme != "none" else "per-tag accuracy",
                "mode": SEQEVAL_MODE if scheme != "none" else "plain tags",
                "level": WORD_LEVEL,
                "scheme": "IOB2" if scheme != "none" else "none",
                **({"window": window} if window else {}),
            },
        }
    )
    return rec
