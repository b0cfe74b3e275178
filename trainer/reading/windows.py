"""How a model reads words: windows of sub-tokens, the one rule for training, evaluation and serving.

A model reads at most `max_length` sub-tokens at once (its window, `Window`). The window a model was trained with is
recorded in its config (`config.json`, attribute `ner_window`: context, length, stride, decoding, case signal), and
evaluation and the Space read that record (`model_window`), so a model is served and scored the way it was trained.

A text is tokenized once into windows of at most `max_length` sub-tokens, consecutive windows sharing `stride`
sub-tokens (the fast tokenizer's `return_overflowing_tokens`), so that nothing is cut. A word near a window's edge
appears again in the next window, with more context there; its prediction is read from the window where its first
sub-token has the most context on both sides (`read_window`), the one rule for raw texts (trainer.inference.tagger) and
for pre-split documents (evaluation and per-epoch validation, through `DocumentWindows.word_tags`).

Pre-split documents (`DocumentWindows.build`) are the consecutive sentences of one document, their words joined into
one sequence; each window keeps its document and, per position, the word's index in that document, so predictions
map back to (sentence, word). In "sentence" context every sentence is its own document.

Running a model over the windows is trainer.inference.tagger's; like all of trainer.reading, this imports nothing else
of the package and no training library.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Callable, Optional, Sequence

import numpy as np

from trainer.reading.casing import add_case_signal
from trainer.reading.casing import resolve as resolve_case_signal
from trainer.reading.decoding import DECODINGS, Decoder
from trainer.reading.labels import OUTSIDE, first_subtoken_positions

logger = logging.getLogger(__name__)

# Tokenizers without a usable limit report a huge sentinel as model_max_length (1e30); they get BERT's.
FALLBACK_MAX_LENGTH = 512
# The default window over documents. The probe (../shared/reference/doc_window_probe.py, README there) measured
# +0.94 validation F1 on CoNLL-2003 with windows of 256 sub-tokens and stride 64 over isolated sentences. 256 gives
# several sentences of context (a CoNLL sentence averages ~14 words, ~25 sub-tokens) while keeping the quadratic
# attention cost of a step low on a CPU; 512 would cost about twice as much per token for little more context.
DOCUMENT_MAX_LENGTH = 256
# Sub-tokens shared by consecutive windows: every word away from a text's ends is read with at least half of it as
# context on each side (trainer.reading.windows picks, for each word, the window where it has the most).
DEFAULT_STRIDE = 64


def default_stride(max_length: Optional[int]) -> int:
    """The stride when none is given: a quarter of the window, at most DEFAULT_STRIDE (64 for 256 sub-tokens, 32 for
    128), so that a shorter --max-seq-length needs no --stride of its own."""
    return min(DEFAULT_STRIDE, max_length // 4) if max_length else DEFAULT_STRIDE


CONTEXTS = ("document", "sentence")
# The model config's record: {"context", "max_length", "stride", "decoding", "case_signal"}.
CONFIG_ATTRIBUTE = "ner_window"


@dataclass(frozen=True)
class Window:
    context: str  # "document": consecutive sentences of a document read together; "sentence": each on its own
    max_length: int  # sub-tokens per window, special tokens included
    stride: int  # sub-tokens shared by consecutive windows
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


def window(
    tokenizer: Any,
    model_config: Any,
    context: str,
    requested_length: Optional[int] = None,
    stride: int = DEFAULT_STRIDE,
    decoding: str = "argmax",
    case_signal: str = "none",
) -> Window:
    """The window of a training run: `requested_length` (--max-seq-length) or, by default, DOCUMENT_MAX_LENGTH over
    documents and the model's whole length for sentences (what training on sentences always used), capped as
    `max_length` says. The stride is capped at half of a window's room for text, so that windows move forward.
    `case_signal` "auto" becomes what casing.resolve chooses for this tokenizer and model."""
    if context not in CONTEXTS:
        raise ValueError(f"unknown context {context!r}: expected one of {', '.join(CONTEXTS)}")
    length = max_length(
        tokenizer, model_config, requested_length or (DOCUMENT_MAX_LENGTH if context == "document" else None)
    )
    room = length - tokenizer.num_special_tokens_to_add(pair=False)
    if room < 2:
        raise ValueError(f"max_length {length} leaves no room for text")
    if not 0 <= stride:
        raise ValueError(f"stride must be >= 0, got {stride}")
    if stride > room // 2:
        logger.warning(
            "stride %d is more than half of a %d-sub-token window's room for text; using %d", stride, length, room // 2
        )
    if decoding not in DECODINGS:
        raise ValueError(f"unknown decoding {decoding!r}: expected one of {', '.join(DECODINGS)}")
    return Window(
        context, length, min(stride, room // 2), decoding, resolve_case_signal(case_signal, tokenizer, model_config)
    )


def recorded_window(model_config: Any) -> Optional[dict[str, Any]]:
    """The window a model was trained with, as its config (a PretrainedConfig or config.json's dict) records it; None
    for models trained before windows were recorded, or elsewhere."""
    saved = (
        model_config.get(CONFIG_ATTRIBUTE)
        if isinstance(model_config, dict)
        else getattr(model_config, CONFIG_ATTRIBUTE, None)
    )
    return saved if isinstance(saved, dict) and saved.get("context") in CONTEXTS else None


def model_window(
    tokenizer: Any,
    model_config: Any,
    requested_length: Optional[int] = None,
    stride: Optional[int] = None,
    context: Optional[str] = None,
    decoding: Optional[str] = None,
) -> Window:
    """The window a trained model is read with (evaluation, the Space): each value given here, else the one its
    config records, else what models trained without a record were trained on: sentences, the model's whole length,
    argmax, no case signal. The case signal is always the recorded one: the model was trained with it or without."""
    saved = recorded_window(model_config) or {"context": "sentence"}
    # A new window length gets its own default stride: the recorded one was chosen for the recorded length.
    saved_stride = default_stride(requested_length) if requested_length else saved.get("stride", DEFAULT_STRIDE)
    return window(
        tokenizer,
        model_config,
        context or saved["context"],
        requested_length or saved.get("max_length"),
        saved_stride if stride is None else stride,
        decoding or saved.get("decoding", "argmax"),
        saved.get("case_signal", "none"),
    )


Offset = tuple[int, int]
Progress = Callable[[float, str], None]  # (fraction done, what is happening)


@dataclass
class Reading:
    """Where one word's prediction is read from: the window and position of its first sub-token, chosen so far."""

    first: Offset  # character offsets of the word's earliest sub-token seen in any window
    window: int = -1
    position: int = -1
    context: int = -1  # sub-tokens of context on the shorter side of the first sub-token in the chosen window


def read_window(
    readings: dict[int, Reading], window: int, word_ids: Sequence[Optional[int]], offsets: Sequence[Sequence[int]]
) -> None:
    """Fold one window of a text into `readings` (word -> Reading): each word whose first sub-token is in this window
    is read here if its first sub-token has more context here than in the windows folded in before.

    A window may open in the middle of a word; the word's first piece in the window is then not its first sub-token.
    Offsets tell which piece comes first: a word's sub-tokens start in order through it, and a piece covering no
    character (some tokenizers' bare word markers) sorts before the piece starting at the same place. Raw texts give
    offsets into the text, pre-split words offsets into the word (the first sub-token starts at 0); either works.
    """
    content = [p for p, wid in enumerate(word_ids) if wid is not None]
    if not content:
        return
    lo, hi = content[0], content[-1]
    for wid, pos in first_subtoken_positions(word_ids).items():
        key = (offsets[pos][0], offsets[pos][1])
        reading = readings.get(wid)
        if reading is None:
            reading = readings[wid] = Reading(first=key)
        elif key > reading.first:  # the window opens inside the word: its first sub-token lies elsewhere
            continue
        elif key < reading.first:  # an earlier piece of the word than any seen: what was chosen is not first
            reading.first, reading.context = key, -1
        context = min(pos - lo, hi - pos)
        if context > reading.context:
            reading.window, reading.position, reading.context = window, pos, context


def group_documents(doc_ids: Sequence[int], context: str, what: str = "data") -> list[int]:
    """Each sentence's document number (0, 1, ...): a run of consecutive sentences with the same `doc_id` (from CoNLL
    `-DOCSTART-` lines or JSON lines' `doc_id`) is one document; in "sentence" context every sentence is its own.
    Sentences without a document (doc_id -1, e.g. the Hub's conll2003, which drops `-DOCSTART-`) are read as one
    stream in order, which the log says."""
    out: list[int] = []
    prev: Optional[int] = None
    for doc_id in doc_ids:
        if context == "sentence" or doc_id != prev or not out:
            out.append(out[-1] + 1 if out else 0)
        else:
            out.append(out[-1])
        prev = doc_id
    if context == "document" and -1 in doc_ids:
        logger.info(
            "%s: %d of %d sentences have no document boundaries (doc_id -1): read as one stream, in order",
            what,
            sum(d == -1 for d in doc_ids),
            len(doc_ids),
        )
    return out


@dataclass
class DocumentWindows:
    """Windows over pre-split documents, and the way back from window positions to the words of each sentence."""

    inputs: dict[str, list[list[int]]]  # model inputs per window (input_ids, attention_mask, ...)
    doc: list[int]  # per window: its document
    word_ids: list[list[Optional[int]]]  # per window position: the word's index in its document (None: special)
    offsets: list[list[Offset]]  # per window position: the sub-token's offsets in its word
    sentences: list[tuple[int, int, int]]  # per sentence, in order: (document, index of its first word, words)

    def __len__(self) -> int:
        return len(self.doc)

    @classmethod
    def build(
        cls,
        tokenizer: Any,
        sentences: Sequence[Sequence[str]],
        doc_ids: Optional[Sequence[int]],
        window: Window,
        what: str = "data",
    ) -> DocumentWindows:
        """Windows of `window.max_length` sub-tokens sharing `window.stride`, over the words of each document: the
        sentences grouped by their `doc_ids` (None: no boundaries) as `window.context` says (`group_documents`)."""
        ids = list(doc_ids) if doc_ids is not None else [-1] * len(sentences)
        doc_words: list[list[str]] = []
        placed: list[tuple[int, int, int]] = []
        for words, doc in zip(sentences, group_documents(ids, window.context, what)):
            if doc == len(doc_words):
                doc_words.append([])
            placed.append((doc, len(doc_words[doc]), len(words)))
            doc_words[doc].extend(words)
        if not doc_words:
            return cls({}, [], [], [], placed)
        enc = tokenizer(
            doc_words,
            is_split_into_words=True,
            truncation=True,
            max_length=window.max_length,
            stride=window.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        n = len(enc["input_ids"])
        inputs = {name: enc[name] for name in tokenizer.model_input_names if name in enc}
        if window.case_signal == "token_type":
            inputs["token_type_ids"] = add_case_signal(enc, doc_words, pre_split=True)
        return cls(
            inputs,
            list(enc["overflow_to_sample_mapping"]),
            [enc.word_ids(k) for k in range(n)],
            [[(s, e) for s, e in enc["offset_mapping"][k]] for k in range(n)],
            placed,
        )

    @cached_property
    def readings(self) -> list[dict[int, Reading]]:
        """Per document: word -> where its prediction is read (`read_window` over the document's windows, in order).
        A word the tokenizer gave no sub-token has none."""
        out: list[dict[int, Reading]] = [{} for _ in range(max(self.doc, default=-1) + 1)]
        for k, doc in enumerate(self.doc):
            read_window(out[doc], k, self.word_ids[k], self.offsets[k])
        return out

    def first_subtokens(self, k: int) -> dict[int, int]:
        """word -> position, for the words whose first sub-token window `k` holds (it may open inside a word whose
        first is elsewhere)."""
        readings = self.readings[self.doc[k]]
        return {
            wid: pos
            for wid, pos in first_subtoken_positions(self.word_ids[k]).items()
            if self.offsets[k][pos] == readings[wid].first
        }

    def missing_word(self) -> Optional[tuple[int, int]]:
        """(sentence, word in it) of the first word the tokenizer gave no sub-token, or None."""
        for i, (doc, first, n) in enumerate(self.sentences):
            for w in range(n):
                if first + w not in self.readings[doc]:
                    return i, w
        return None

    def word_scores(self, logprobs: Sequence[Any]) -> list[np.ndarray]:
        """Per sentence, in order, a (words, labels) array: each word's row of `logprobs[window][position]` (each
        label's log-probability) at the position its reading chose; NaN for a word the tokenizer gave no sub-token."""
        labels = len(logprobs[0][0]) if len(logprobs) and len(logprobs[0]) else 0
        out = []
        for doc, first, n in self.sentences:
            readings = self.readings[doc]
            rows = np.full((n, labels), np.nan, dtype=np.float32)
            for w in range(first, first + n):
                if w in readings:
                    rows[w - first] = logprobs[readings[w].window][readings[w].position]
            out.append(rows)
        return out

    def word_tags(self, logprobs: Sequence[Any], id2label: dict[int, str], decoding: str = "argmax") -> list[list[str]]:
        """Per sentence, in order, each word's predicted tag from its `word_scores`, decoded per sentence as
        `decoding` says (trainer.reading.decoding). A word without a sub-token is predicted O (it stays in the gold
        data, so it counts as missed rather than shifting the words after it)."""
        labels = [id2label[i] for i in range(len(id2label))]
        decode = Decoder(labels, decoding)
        out = []
        for rows in self.word_scores(logprobs):
            found = ~np.isnan(rows).any(-1) if rows.shape[1] else np.zeros(len(rows), dtype=bool)
            tags = iter(labels[i] for i in decode(rows[found]))
            out.append([next(tags) if kept else OUTSIDE for kept in found])
        return out


def longest_first(lengths: Sequence[int]) -> list[int]:
    """Indices in the order to batch them for inference: longest first, so each batch pads little (and the largest
    batch, the one that needs the most memory, comes first). Ties keep their order."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def restore_order(rows: Sequence[Any], order: Sequence[int]) -> list[Any]:
    """`rows` produced in `order` (a permutation of 0..n-1, e.g. `longest_first`'s) put back in index order."""
    out: list[Any] = [None] * len(order)
    for row, i in zip(rows, order):
        out[i] = row
    return out
