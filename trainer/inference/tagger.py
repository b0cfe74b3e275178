"""Raw text -> entity spans with character offsets: the one prediction path for the Space, tests and batch prediction.

A text is tokenized once by the model's fast tokenizer into overlapping windows (nothing is cut) of the length and
stride the model was trained with, as its config records them (trainer.reading.windows); each word's label is the label
of its first sub-token, taken from the window where that sub-token has the most context on both sides
(trainer.reading.windows: the same rule and word-level protocol as evaluation), decoded as the model records
(trainer.reading.decoding: per word, or the best valid IOB2 sequence), with capitals flagged where it was trained so
(trainer.reading.casing); IOB2 word tags become spans through trainer.reading.labels. An entity's offsets are those of
its first and last word in the original text, so `text[start:end] == entity.text` always holds, whatever the tokenizer's
normalizer did (lower-casing, accent stripping, dropping control characters).

Why not `pipeline("token-classification", aggregation_strategy=..., stride=...)`: the pipeline decides which
sub-tokens form a word by comparing token strings with the text (and, for tokenizers without a `##`-style prefix,
by looking for spaces around the token), not from the tokenizer's `word_ids()`, so its words can differ from the
words the model was trained and evaluated on; its long-text merge keeps the longest of overlapping *entities* rather
than choosing per word; and it cannot put the windows of several requests into one forward pass, which the Space's
batched queue does. Here words come from `word_ids()` and offsets only.

Imports nothing from the package but trainer.reading.labels, trainer.reading.windows, trainer.reading.casing,
trainer.reading.decoding, trainer.reading.windows and trainer.inference.backends: serving never depends on training
code.
"""

from __future__ import annotations

import math
import numbers
import os
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from transformers import AutoModelForTokenClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from trainer.inference import backends
from trainer.inference.backends import predict_windows
from trainer.reading.casing import add_case_signal
from trainer.reading.decoding import Decoder
from trainer.reading.labels import entity_types, output_scheme, tags_to_spans, to_iob2
from trainer.reading.windows import Reading, model_window, read_window

# Limits on one input, so that one request cannot hold the Space's queue for long. Characters bound the cost of
# tokenizing; sub-tokens bound the cost of the model (20,000 characters of prose are ~3,000 sub-tokens, of `!` or CJK
# 20,000). 2,048 sub-tokens are about 8,000 characters of English prose. Documented in docs/space.md; longer texts get
# InputError's message.
MAX_INPUT_CHARS = 20_000
MAX_INPUT_SUBTOKENS = 2_048


class InputError(ValueError):
    """A text the tagger refuses (too long, not a string); the message is meant for the person who sent it."""


class ModelLoadError(RuntimeError):
    """A model that cannot be used; the message names what was tried and how to point at a local model."""


@dataclass(frozen=True)
class Entity:
    type: str
    text: str
    start: int  # character offsets into the input text, end exclusive
    end: int
    score: float  # mean over the entity's words of the probability of each word's predicted label

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Span:
    start: int  # character offsets of the word in the text, widened by each of its sub-tokens seen
    end: int


def _plain_error(exc: BaseException) -> str:
    """The first line of an exception's message: enough to say what went wrong, without a traceback dump."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _shown(value: Any, limit: int = 60) -> str:
    """A visitor's value, quoted in a message at no more than `limit` characters (repr of a huge number or list costs
    time, and of an integer over 4,300 digits raises)."""
    try:
        text = repr(value)
    except ValueError:
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def keep_entities(entities: Iterable[Entity], threshold: float, types: Optional[set[str]]) -> list[Entity]:
    """The entities scoring at least `threshold` whose type is in `types` (None: every type)."""
    return [e for e in entities if e.score >= threshold and (types is None or e.type in types)]


class NerTagger:
    """A token-classification model and its fast tokenizer, turned into `text -> list[Entity]`."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        source: str = "",
        max_length: Optional[int] = None,
        stride: Optional[int] = None,
        batch_size: int = 16,
        max_chars: int = MAX_INPUT_CHARS,
        max_subtokens: int = MAX_INPUT_SUBTOKENS,
        backend: str = "torch",
        onnx_cache_dir: Optional[str] = None,
    ) -> None:
        require_fast(tokenizer, source or "the model")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.source = source
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}
        labels = [self.id2label[i] for i in sorted(self.id2label)]
        self.entity_types = entity_types(labels)
        if not self.entity_types:
            raise ModelLoadError(
                f"{source or 'the model'} has no entity labels in config.json's id2label ({labels[:4]}...): it is "
                "not a fine-tuned NER model (a bare encoder gets LABEL_0, LABEL_1, ...); train one with "
                "`python -m trainer` and point at its output directory"
            )
        self.scheme = output_scheme(labels)
        # A text is read in the windows the model was trained with (its config's record, trainer.reading.windows);
        # `max_length` and `stride` given here win. Windows always run over the whole text, whatever the training
        # context.
        window = model_window(tokenizer, model.config, max_length, stride)
        self.max_length, self.stride = window.max_length, window.stride
        self.decode = Decoder(labels, window.decoding)
        self.case_signal = window.case_signal
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.max_subtokens = max_subtokens
        # The forward pass (trainer.inference.backends.CHOICES: torch, onnx-int8, auto, ...). ONNX files are cached
        # outside the model directory; a local `source` only names the cache entry.
        model_dir = os.path.expanduser(source) if source and os.path.isdir(os.path.expanduser(source)) else None
        self.backend = backends.make_backend(
            backend, self.model, tokenizer.model_input_names, model_dir, onnx_cache_dir
        )

    @classmethod
    def from_pretrained(cls, source: str, **kwargs: Any) -> NerTagger:
        model, tokenizer = load_model(source)
        return cls(model, tokenizer, source=str(source), **kwargs)

    # --- input checks -------------------------------------------------------------------------------------------

    def check_text(self, text: Any) -> str:
        """The text if the tagger takes it, else InputError with a message for the person who sent it."""
        if text is None:
            return ""
        if not isinstance(text, str):
            raise InputError(f"expected text, got {type(text).__name__}")
        if len(text) > self.max_chars:
            raise InputError(
                f"The text has {len(text):,} characters; the limit is {self.max_chars:,}. Split it into smaller parts."
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone UTF-16 surrogate, e.g. a JSON "\ud800" escape
            raise InputError(
                f"The text holds an invalid character (a lone surrogate, U+{ord(text[exc.start]):04X}) "
                f"at position {exc.start}."
            ) from None
        # verbose=False: a text longer than the model is read in windows (predict_batch), so the tokenizer's
        # "will result in indexing errors" warning about this count would be false.
        n = len(
            self.tokenizer(
                text, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False, verbose=False
            )["input_ids"]
        )
        if n > self.max_subtokens:
            raise InputError(
                f"The text is {n:,} sub-tokens long; the limit is {self.max_subtokens:,} (about "
                f"{4 * self.max_subtokens:,} characters of English prose). Split it into smaller parts."
            )
        return text

    def check_options(self, threshold: Any = 0.0, types: Any = None) -> tuple[float, Optional[set[str]]]:
        """`threshold` as a float in [0, 1] and `types` as a set of known entity types (None: all), else InputError.
        Any real number will do (numpy's too), but not a bool or NaN; any iterable of names, read once (a generator
        checked and then read again would be empty)."""
        value = math.nan
        if isinstance(threshold, numbers.Real) and not isinstance(threshold, bool):
            try:
                value = float(threshold)
            except OverflowError:  # an integer too large for a float (a 400-digit number) is far above 1
                value = math.inf
        if not 0.0 <= value <= 1.0:  # NaN too
            raise InputError(f"The minimum confidence must be a number from 0 to 1, got {_shown(threshold)}.")
        if types is None:
            return value, None
        if not isinstance(types, str):
            try:
                types = list(types)
            except TypeError:  # not iterable: refused below
                pass
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise InputError(f"The entity types must be a list of names, got {_shown(types)}.")
        unknown = sorted(set(types) - set(self.entity_types))
        if unknown:
            raise InputError(
                f"Unknown entity type(s) {', '.join(map(repr, unknown))}; this model has "
                f"{', '.join(self.entity_types)}."
            )
        return value, set(types)

    # --- prediction ---------------------------------------------------------------------------------------------

    def predict(self, text: str, threshold: float = 0.0, types: Optional[Iterable[str]] = None) -> list[Entity]:
        return self.predict_batch([text], threshold, types)[0]

    def predict_batch(
        self, texts: Sequence[str], threshold: float = 0.0, types: Optional[Iterable[str]] = None, checked: bool = False
    ) -> list[list[Entity]]:
        """Entities of each text, in text order. `threshold` drops entities whose score is below it; `types`
        (None: all) keeps only those entity types. Raises InputError for any text or option the tagger refuses
        (check each text with `check_text` first to answer the others; `checked=True` then skips checking again,
        which would tokenize every text a second time)."""
        texts = list(texts) if checked else [self.check_text(t) for t in texts]
        threshold, keep = self.check_options(threshold, types)
        todo = [i for i, t in enumerate(texts) if t.strip()]
        out: list[list[Entity]] = [[] for _ in texts]
        if not todo:
            return out
        batch = [texts[i] for i in todo]
        enc = self.tokenizer(
            batch,
            truncation=True,
            max_length=self.max_length,
            stride=self.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        if self.case_signal == "token_type":
            enc["token_type_ids"] = add_case_signal(enc, batch, pre_split=False)
        logprobs = predict_windows(self.backend, enc, self.tokenizer.pad_token_id or 0, self.batch_size)
        readings: list[dict[int, Reading]] = [{} for _ in todo]
        spans: list[dict[int, _Span]] = [{} for _ in todo]
        for w, k in enumerate(enc["overflow_to_sample_mapping"]):
            read_window(readings[k], w, enc.word_ids(w), enc["offset_mapping"][w])
            self._widen(spans[k], enc.word_ids(w), enc["offset_mapping"][w])
        for k, i in enumerate(todo):
            ents = self._spans(texts[i], readings[k], spans[k], logprobs)
            out[i] = keep_entities(ents, threshold, keep)
        return out

    @staticmethod
    def _widen(spans: dict[int, _Span], word_ids: Sequence[Optional[int]], offsets: Sequence[Sequence[int]]) -> None:
        """Widen each word's character span by its sub-tokens in one window (which may hold only part of a word)."""
        for wid, (s, e) in zip(word_ids, offsets):
            if wid is None or e <= s:  # special tokens; sub-tokens covering no character (bare word markers)
                continue
            span = spans.setdefault(wid, _Span(s, e))
            span.start, span.end = min(span.start, s), max(span.end, e)

    def _spans(
        self, text: str, readings: dict[int, Reading], spans: dict[int, _Span], logprobs: list[np.ndarray]
    ) -> list[Entity]:
        """Entities from each word's label scores, read where trainer.reading.windows chose and decoded over the whole
        text
        as the model was evaluated (trainer.reading.decoding); words covering no character of the text have no span and
        are left out. An entity's score is the mean probability of its words' labels."""
        words = [w for w in sorted(readings) if w in spans]
        rows = np.array([logprobs[readings[w].window][readings[w].position] for w in words]).reshape(
            len(words), len(self.id2label)
        )
        ids = self.decode(rows)
        tags = to_iob2([self.id2label[i] for i in ids], self.scheme)
        probs = np.exp(rows[np.arange(len(ids)), ids]) if ids else np.zeros(0)
        ents = []
        for typ, a, b in tags_to_spans(tags):
            start, end = spans[words[a]].start, spans[words[b - 1]].end
            # A normalizer that strips accents maps a word-final combining mark (decomposed text: "e" + U+0301) to no
            # sub-token; the entity still ends with the whole character, not before its mark.
            while end < len(text) and unicodedata.combining(text[end]):
                end += 1
            score = float(probs[a:b].mean())
            ents.append(Entity(type=typ, text=text[start:end], start=start, end=end, score=round(score, 4)))
        return ents


def require_fast(tokenizer: PreTrainedTokenizerBase, source: str) -> None:
    """Words and character offsets (`word_ids()`, `offset_mapping`), which every alignment of the package relies on,
    exist only on fast (Rust) tokenizers: a slow one is refused with ModelLoadError."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(
            f"the tokenizer of {source} is not a fast (Rust) tokenizer: words and character offsets "
            "need one (save the model with its tokenizer.json)"
        )


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """The fast tokenizer of a model or encoder (a Hub id or a local directory)."""
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    require_fast(tokenizer, name_or_path)
    return tokenizer


def load_model(source: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A token-classification model and tokenizer from a local directory or a Hub id: safetensors weights only and
    never remote code. Anything that goes wrong becomes a ModelLoadError saying what was tried and what to do."""
    source = str(source or "").strip()  # a pathlib.Path is welcome too
    if not source:
        raise ModelLoadError("no model given: pass --model DIR_OR_HUB_ID or set NER_MODEL")
    local = os.path.isdir(os.path.expanduser(source))
    if local:
        path = os.path.expanduser(source)
        tried = f"the local directory {os.path.abspath(path)}"
        if not os.path.exists(os.path.join(path, "config.json")):
            raise ModelLoadError(
                f"{tried} has no config.json: it is not a saved model directory "
                "(point at the --output-dir of `python -m trainer`)"
            )
        if not any(
            os.path.exists(os.path.join(path, f)) for f in ("model.safetensors", "model.safetensors.index.json")
        ):
            raise ModelLoadError(
                f"{tried} has no model.safetensors: only safetensors weights are loaded "
                "(pytorch_model.bin can run code when unpickled)"
            )
    else:
        path = source
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
        tried = f"'{source}' is not a local directory, so it was tried as a Hub model id" + (
            " (HF_HUB_OFFLINE is set: only the local Hub cache was looked at)" if offline else ""
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModelForTokenClassification.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
    except Exception as exc:
        raise ModelLoadError(
            f"Could not load the NER model '{source}': {tried}, and that failed with {_plain_error(exc)}. "
            "To run without the Hub, train a model locally (README, 'Two commands') and point the app at it: "
            "`python app.py --model models/minilm-conll` or `NER_MODEL=models/minilm-conll python app.py`."
        ) from exc
    return model, tokenizer
