"""A case signal for encoders whose tokenizer lower-cases: the one rule for training, evaluation and serving.

An uncased tokenizer (e.g. all-MiniLM-L6-v2's) reads "Leeds", "LEEDS" and "leeds" as the same sub-tokens, so the
model never sees capitals, the strongest single cue for names in English. With `case_signal="token_type"` each
sub-token whose own characters in the original text hold an upper-case letter gets token type 1, every other position
0 (special tokens and padding included). BERT-style encoders have a trained embedding for type 1 (the second segment
of a sentence pair), added to every position's input, so this needs no new parameter and the model stays a plain
`AutoModelForTokenClassification`; fine-tuning gives that embedding its new meaning.

The flag is computed from each sub-token's character offsets (into the raw text, or into its word for pre-split words),
so a window that opens in the middle of a word and a raw text tokenized into its own words get the same signal as
training did. The choice is recorded with the model's window (trainer.reading.windows), so evaluation and the Space add
it exactly when the model was trained with it. A generic `pipeline("token-classification")` does not add it: the model
card says so.

Imports nothing from the package and no training library, so the Space can use it.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

CASE_SIGNALS = ("none", "token_type")
# The probe text for `lowercases`: an uncased tokenizer gives the same ids for both.
_PROBE = ("Paris and LONDON", "paris and london")


def lowercases(tokenizer: Any) -> bool:
    """Whether the tokenizer reads upper- and lower-case letters alike (its normalizer lower-cases)."""
    a, b = (tokenizer(t, add_special_tokens=False)["input_ids"] for t in _PROBE)
    return a == b


def resolve(requested: str, tokenizer: Any, model_config: Any) -> str:
    """ "auto" -> "token_type" where the tokenizer lower-cases and the model has a second token type to carry the
    flag, else "none"; "none" and "token_type" as given (token_type checked to be possible)."""
    possible = (
        "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        and getattr(model_config, "type_vocab_size", 0) >= 2
    )
    if requested == "auto":
        return "token_type" if possible and lowercases(tokenizer) else "none"
    if requested not in CASE_SIGNALS:
        raise ValueError(f"unknown case signal {requested!r}: expected auto or one of {', '.join(CASE_SIGNALS)}")
    if requested == "token_type" and not possible:
        raise ValueError(
            "case signal 'token_type' needs a model with token_type_ids and at least 2 token types "
            f"(this one has type_vocab_size={getattr(model_config, 'type_vocab_size', None)})"
        )
    return requested


def case_flags(pieces: Sequence[Optional[str]]) -> list[int]:
    """Per position, 1 where the sub-token's original characters hold an upper-case letter, else 0 (None: a special
    token)."""
    return [int(p is not None and any(c.isupper() for c in p)) for p in pieces]


def add_case_signal(enc: Any, texts: Sequence[Any], pre_split: bool) -> list[list[int]]:
    """token_type_ids carrying the case flag for every window of a fast tokenizer's output `enc` (with offsets and
    `overflow_to_sample_mapping`): `texts` are the raw texts, or with `pre_split` the word lists, it was made from."""
    out = []
    for k, sample in enumerate(enc["overflow_to_sample_mapping"]):
        text = texts[sample]
        pieces = [
            None if wid is None else (text[wid] if pre_split else text)[s:e]
            for wid, (s, e) in zip(enc.word_ids(k), enc["offset_mapping"][k])
        ]
        out.append(case_flags(pieces))
    return out
