"""How many sub-tokens a model reads at once, and how texts longer than that are read: the one rule used by training,
evaluation and serving.

A text (a document's sentences one after another, a single sentence, or a user's raw text) is read in windows of at
most `max_length` sub-tokens, consecutive windows sharing `stride` sub-tokens (trainer.windows), so nothing is cut.
The window a model was trained with is recorded in its config (`config.json`, attribute `ner_window`), and evaluation
and the Space read that record, so a model is served and scored the way it was trained.

Imports nothing from the package but trainer.casing, and no training library, so the Space can use it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Optional

from trainer import casing

logger = logging.getLogger(__name__)

# Tokenizers without a usable limit report a huge sentinel as model_max_length (1e30); they get BERT's.
FALLBACK_MAX_LENGTH = 512
# The default window over documents. The probe (../shared/reference/doc_window_probe.py, README there) measured
# +0.94 validation F1 on CoNLL-2003 with windows of 256 sub-tokens and stride 64 over isolated sentences. 256 gives
# several sentences of context (a CoNLL sentence averages ~14 words, ~25 sub-tokens) while keeping the quadratic
# attention cost of a step low on a CPU; 512 would cost about twice as much per token for little more context.
DOCUMENT_MAX_LENGTH = 256
# Sub-tokens shared by consecutive windows: every word away from a text's ends is read with at least half of it as
# context on each side (trainer.windows picks, for each word, the window where it has the most).
DEFAULT_STRIDE = 64


def default_stride(max_length: Optional[int]) -> int:
    """The stride when none is given: a quarter of the window, at most DEFAULT_STRIDE (64 for 256 sub-tokens, 32 for
    128), so that a shorter --max-seq-length needs no --stride of its own."""
    return min(DEFAULT_STRIDE, max_length // 4) if max_length else DEFAULT_STRIDE
CONTEXTS = ("document", "sentence")
# The model config's record: {"context", "max_length", "stride", "decoding", "case_signal"}.
CONFIG_ATTRIBUTE = "ner_window"
# How word tags are read from the label scores (trainer.decoding); models recorded without one were read by argmax.
DECODINGS = ("argmax", "viterbi")


@dataclass(frozen=True)
class Window:
    context: str      # "document": consecutive sentences of a document read together; "sentence": each on its own
    max_length: int   # sub-tokens per window, special tokens included
    stride: int       # sub-tokens shared by consecutive windows
    decoding: str = "argmax"  # how word tags are read from the scores: per word, or the best valid IOB2 sequence
    case_signal: str = "none"  # "token_type": capitals flagged in token_type_ids for uncased tokenizers (casing)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def max_length(tokenizer: Any, model_config: Any = None, requested: Optional[int] = None) -> int:
    """The sub-token limit of one input (special tokens included): `requested` (e.g. --max-seq-length) if given,
    capped by the tokenizer's limit and by the model's position embeddings, so that training, evaluation and the
    Space window texts at the same length."""
    limit = tokenizer.model_max_length if tokenizer.model_max_length < 100_000 else FALLBACK_MAX_LENGTH
    positions = getattr(model_config, "max_position_embeddings", None)
    if positions:
        limit = min(limit, positions)
    return min(requested, limit) if requested else limit


def window(tokenizer: Any, model_config: Any, context: str, requested_length: Optional[int] = None,
           stride: int = DEFAULT_STRIDE, decoding: str = "argmax", case_signal: str = "none") -> Window:
    """The window of a training run: `requested_length` (--max-seq-length) or, by default, DOCUMENT_MAX_LENGTH over
    documents and the model's whole length for sentences (what training on sentences always used), capped as
    `max_length` says. The stride is capped at half of a window's room for text, so that windows move forward.
    `case_signal` "auto" becomes what trainer.casing.resolve chooses for this tokenizer and model."""
    if context not in CONTEXTS:
        raise ValueError(f"unknown context {context!r}: expected one of {', '.join(CONTEXTS)}")
    length = max_length(tokenizer, model_config,
                        requested_length or (DOCUMENT_MAX_LENGTH if context == "document" else None))
    room = length - tokenizer.num_special_tokens_to_add(pair=False)
    if room < 2:
        raise ValueError(f"max_length {length} leaves no room for text")
    if not 0 <= stride:
        raise ValueError(f"stride must be >= 0, got {stride}")
    if stride > room // 2:
        logger.warning("stride %d is more than half of a %d-sub-token window's room for text; using %d", stride,
                       length, room // 2)
    if decoding not in DECODINGS:
        raise ValueError(f"unknown decoding {decoding!r}: expected one of {', '.join(DECODINGS)}")
    return Window(context, length, min(stride, room // 2), decoding,
                  casing.resolve(case_signal, tokenizer, model_config))


def recorded_window(model_config: Any) -> Optional[dict[str, Any]]:
    """The window a model was trained with, as its config (a PretrainedConfig or config.json's dict) records it; None
    for models trained before windows were recorded, or elsewhere."""
    saved = (model_config.get(CONFIG_ATTRIBUTE) if isinstance(model_config, dict)
             else getattr(model_config, CONFIG_ATTRIBUTE, None))
    return saved if isinstance(saved, dict) and saved.get("context") in CONTEXTS else None


def model_window(tokenizer: Any, model_config: Any, requested_length: Optional[int] = None,
                 stride: Optional[int] = None, context: Optional[str] = None,
                 decoding: Optional[str] = None) -> Window:
    """The window a trained model is read with (evaluation, the Space): each value given here, else the one its
    config records, else what models trained without a record were trained on: sentences, the model's whole length,
    argmax, no case signal. The case signal is always the recorded one: the model was trained with it or without."""
    saved = recorded_window(model_config) or {"context": "sentence"}
    # A new window length gets its own default stride: the recorded one was chosen for the recorded length.
    saved_stride = default_stride(requested_length) if requested_length else saved.get("stride", DEFAULT_STRIDE)
    return window(tokenizer, model_config, context or saved["context"], requested_length or saved.get("max_length"),
                  saved_stride if stride is None else stride,
                  decoding or saved.get("decoding", "argmax"), saved.get("case_signal", "none"))
