"""The only place that knows B-/I-/E-/S-: tag validation, scheme detection, conversion to IOB2, tags -> spans,
label ordering and word -> sub-token label alignment. Imports nothing from the package.

Why not seqeval's own helpers: seqeval scores IOB2/BIOES sequences but neither detects a scheme nor converts IOB1
(the original CoNLL-2003 files) to IOB2; training on IOB1 tags as if they were IOB2 silently corrupts B-/I-.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

OUTSIDE = "O"
PREFIXES = ("B", "I", "E", "S")
SCHEMES = ("IOB1", "IOB2", "BIOES", "none")
IGNORE_INDEX = -100  # the label id that torch's cross-entropy and the Trainer skip


def split_tag(tag: str) -> tuple[str, str]:
    """`B-PER` -> (`B`, `PER`); `O` -> (`O`, ``). Assumes a validated chunk tag."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    return tag[0], tag[2:]


def tag_error(tag: str) -> Optional[str]:
    """Why `tag` is not a valid chunk tag (`O` or `B-/I-/E-/S-TYPE`), or None when it is."""
    if tag == OUTSIDE:
        return None
    if len(tag) > 2 and tag[1] == "-" and tag[0] in PREFIXES:
        return None
    if len(tag) == 2 and tag[1] == "-" and tag[0] in PREFIXES:
        return f"tag {tag!r} names no entity type: expected {tag}TYPE, e.g. {tag}PER"
    prefix = tag.split("-", 1)[0] if "-" in tag else tag
    return (
        f"unknown tag prefix {prefix!r} in tag {tag!r}: expected O or a tag starting with B-, I-, E- or S- "
        f"(use --label-scheme none for plain tags such as POS)"
    )


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of tag sequences: `none` (no prefixed tags), `BIOES`, `IOB1` or `IOB2`.

    IOB1 is told from IOB2 by an I- tag that opens a chunk (after O, after a tag of another type, or first in the
    sentence): IOB2 never does that, IOB1 does it for nearly every entity.
    """
    seen_prefixed = seen_bioes = seen_iob1 = False
    for seq in sequences:
        prev = OUTSIDE
        for tag in seq:
            if tag == OUTSIDE:
                prev = tag
                continue
            if tag_error(tag) is not None:  # a plain tag (validated by the reader for chunk tasks)
                prev = OUTSIDE
                continue
            seen_prefixed = True
            prefix, typ = split_tag(tag)
            if prefix in ("E", "S"):
                seen_bioes = True
            elif prefix == "I" and split_tag(prev)[1] != typ:
                seen_iob1 = True
            prev = tag
    if not seen_prefixed:
        return "none"
    if seen_bioes:
        return "BIOES"
    return "IOB1" if seen_iob1 else "IOB2"


def to_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """Convert one sentence's tags from `scheme` to IOB2 (plain tags pass through)."""
    if scheme in ("IOB2", "none"):
        return list(tags)
    out: list[str] = []
    prev = OUTSIDE
    for tag in tags:
        prefix, typ = split_tag(tag)
        if scheme == "IOB1":
            # An I- opens a chunk when the previous tag is O or of another type; B- already marks a touching start.
            if prefix == "I" and split_tag(prev)[1] != typ:
                tag = f"B-{typ}"
        elif scheme == "BIOES":
            if prefix == "S":
                tag = f"B-{typ}"
            elif prefix == "E":
                tag = f"I-{typ}" if split_tag(prev)[1] == typ and prev != OUTSIDE else f"B-{typ}"
            elif prefix == "I" and split_tag(prev)[1] != typ:
                tag = f"B-{typ}"
        else:
            raise ValueError(f"unknown label scheme {scheme!r}; expected one of {SCHEMES}")
        out.append(tag)
        prev = tag
    return out


def output_scheme(labels: Iterable[str]) -> str:
    """The scheme to read a model's predicted tags in: BIOES for a BIOES label set, else IOB2 (an IOB1 reading of
    IOB2-style predictions changes nothing, as tags_to_spans opens a span on a stray I-, as conlleval does)."""
    return "BIOES" if detect_scheme([list(labels)]) == "BIOES" else "IOB2"


def complete_labels(tags: Iterable[str], scheme: str) -> list[str]:
    """A model's label list: every tag seen, plus B- and I- of each type so that every chunk can be spelled in IOB2
    (plain tags, scheme `none`, as they are)."""
    labels = set(tags)
    if scheme != "none":
        labels |= {OUTSIDE}
        for tag in list(labels):
            if tag != OUTSIDE:
                labels |= {f"B-{split_tag(tag)[1]}", f"I-{split_tag(tag)[1]}"}
    return sort_labels(labels)


def sort_labels(labels: Iterable[str]) -> list[str]:
    """A stable label order: O first, then by type, B- before I-; plain tags alphabetically."""

    def key(tag: str) -> tuple[int, str, str]:
        if tag == OUTSIDE:
            return (0, "", "")
        if tag_error(tag) is None:
            prefix, typ = split_tag(tag)
            return (1, typ, prefix)
        return (2, tag, "")

    return sorted(set(labels), key=key)


def entity_types(labels: Iterable[str]) -> list[str]:
    """Entity types named by chunk labels (`B-PER`, `I-PER` -> `PER`), in first-seen order."""
    types: list[str] = []
    for tag in labels:
        if tag != OUTSIDE and tag_error(tag) is None and split_tag(tag)[1] not in types:
            types.append(split_tag(tag)[1])
    return types


def tags_to_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """IOB2 tags -> `(type, start, end)` word spans, end exclusive. A stray I- opens a span, as conlleval does."""
    spans: list[tuple[str, int, int]] = []
    start, typ = None, None
    for i, tag in enumerate(list(tags) + [OUTSIDE]):
        prefix, t = split_tag(tag) if tag_error(tag) is None else (OUTSIDE, "")
        if typ is not None and (prefix in (OUTSIDE, "B", "S") or t != typ):
            spans.append((typ, start, i))
            start, typ = None, None
        if prefix != OUTSIDE and typ is None:
            start, typ = i, t
    return spans


def continuation_map(label2id: dict[str, int]) -> dict[int, int]:
    """label id of `B-X` -> label id of `I-X`, for labelling the continuation sub-tokens of a word (course strategy)."""
    out = {}
    for tag, idx in label2id.items():
        if tag.startswith("B-") and f"I-{tag[2:]}" in label2id:
            out[idx] = label2id[f"I-{tag[2:]}"]
    return out


def align_labels(
    word_labels: Sequence[int], word_ids: Sequence[Optional[int]], label_all_tokens: bool, b_to_i: dict[int, int]
) -> list[int]:
    """Word label ids -> one label id per sub-token, from the tokenizer's `word_ids()`.

    Special tokens get IGNORE_INDEX. The first sub-token of a word gets the word's label; continuations get the
    word's label with B- turned into I- (`label_all_tokens`, the course's strategy) or IGNORE_INDEX.
    """
    out: list[int] = []
    prev = None
    for wid in word_ids:
        if wid is None:
            out.append(IGNORE_INDEX)
        elif wid != prev:
            out.append(word_labels[wid])
        elif label_all_tokens and word_labels[wid] != IGNORE_INDEX:
            out.append(b_to_i.get(word_labels[wid], word_labels[wid]))
        else:
            out.append(IGNORE_INDEX)
        prev = wid
    return out


def first_subtoken_positions(word_ids: Sequence[Optional[int]]) -> dict[int, int]:
    """word index -> position of its first sub-token (words cut by truncation are absent)."""
    first: dict[int, int] = {}
    for pos, wid in enumerate(word_ids):
        if wid is not None and wid not in first:
            first[wid] = pos
    return first


def iob2_transitions(labels: Sequence[str]) -> Optional[tuple[list[bool], list[list[bool]]]]:
    """Which IOB2 tag sequences are valid, for constrained decoding: (`first[j]`: label j may open a sentence,
    `follows[i][j]`: label j may follow label i). `I-X` may only continue a `B-X` or `I-X`. None for a label set that
    is not IOB2 chunk tags (plain tags such as POS, BIOES), which has no such rule here."""
    if any(tag_error(t) is not None for t in labels) or any(t[0] in ("E", "S") for t in labels if t != OUTSIDE):
        return None
    parts = [split_tag(t) for t in labels]
    first = [p != "I" for p, _ in parts]
    follows = [[p != "I" or (prev_p in ("B", "I") and prev_t == t) for p, t in parts] for prev_p, prev_t in parts]
    return first, follows
