"""The case signal for uncased encoders (trainer.reading.casing): when it is on, and that training, evaluation and the
Space
flag exactly the same sub-tokens."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from transformers import AutoTokenizer

from trainer.inference.backends import Backend
from trainer.reading import casing
from trainer.reading.windows import DocumentWindows, Window, model_window, window

BERT = SimpleNamespace(type_vocab_size=2, max_position_embeddings=512)


@pytest.fixture(scope="module")
def uncased(minilm_dir):
    return AutoTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def cased(minilm_dir):
    return AutoTokenizer.from_pretrained(minilm_dir, do_lower_case=False)


def test_auto_is_on_only_where_the_tokenizer_drops_capitals(uncased, cased):
    assert casing.lowercases(uncased) and not casing.lowercases(cased)
    assert casing.resolve("auto", uncased, BERT) == "token_type"
    assert casing.resolve("auto", cased, BERT) == "none"
    assert casing.resolve("auto", uncased, SimpleNamespace(type_vocab_size=1)) == "none"  # nowhere to put it
    assert casing.resolve("none", uncased, BERT) == "none"
    with pytest.raises(ValueError, match="type_vocab_size=1"):
        casing.resolve("token_type", uncased, SimpleNamespace(type_vocab_size=1))
    with pytest.raises(ValueError, match="unknown case signal"):
        casing.resolve("upper", uncased, BERT)


def test_flags_mark_pieces_with_a_capital():
    assert casing.case_flags([None, "Leeds", "eu", "EU", "mc", "Donald", "2", ".", "É", None]) == [
        0,
        1,
        0,
        1,
        0,
        1,
        0,
        0,
        1,
        0,
    ]


def test_training_windows_and_raw_text_get_the_same_flags(uncased):
    """Pre-split words (training, evaluation) and the same words as raw text (the Space) give the same sub-tokens
    the same flag, also in small windows that open in the middle of a word."""
    sentences = [
        ["EU", "rejects", "German", "call", "to", "boycott", "McDonald's", "lamb", "."],
        ["Peter", "Blackburn", "of", "UNILEVER", "in", "São", "Paulo"],
    ] * 3
    text = " ".join(w for s in sentences for w in s)
    for length, stride in ((512, 64), (12, 3), (9, 2)):
        win = window(uncased, BERT, "document", length, stride, case_signal="auto")
        assert win.case_signal == "token_type"
        built = DocumentWindows.build(uncased, sentences, [0] * len(sentences), win)
        enc = uncased(
            [text],
            truncation=True,
            max_length=length,
            stride=win.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        assert enc["input_ids"] == built.inputs["input_ids"]
        assert casing.add_case_signal(enc, [text], pre_split=False) == built.inputs["token_type_ids"]
        flagged = {
            t
            for ids, types in zip(built.inputs["input_ids"], built.inputs["token_type_ids"])
            for t, f in zip(uncased.convert_ids_to_tokens(ids), types)
            if f
        }
        assert {"eu", "german", "peter", "blackburn", "sao", "paulo"} <= flagged
        assert not flagged & {"rejects", "lamb", ".", "[CLS]", "[SEP]"}
    off = DocumentWindows.build(uncased, sentences, None, Window("document", 64, 16))
    assert not any(any(row) for row in off.inputs["token_type_ids"])


def test_the_record_decides_and_models_without_it_get_none(uncased):
    recorded = SimpleNamespace(
        **vars(BERT), ner_window={"context": "document", "max_length": 128, "stride": 32, "case_signal": "token_type"}
    )
    assert model_window(uncased, recorded).case_signal == "token_type"
    older = SimpleNamespace(**vars(BERT), ner_window={"context": "document", "max_length": 128, "stride": 32})
    assert model_window(uncased, older).case_signal == "none"


def test_the_tagger_sends_the_flags_the_model_was_trained_with(tmp_path):
    from space_models import build_lookup_model

    from trainer.inference.tagger import NerTagger

    model_dir = tmp_path / "m"
    build_lookup_model(str(model_dir))
    config = json.loads((model_dir / "config.json").read_text())
    seen = {}
    for signal in ("token_type", "none"):
        config["ner_window"] = {"context": "document", "max_length": 64, "stride": 16, "case_signal": signal}
        (model_dir / "config.json").write_text(json.dumps(config))
        tagger = NerTagger.from_pretrained(str(model_dir), backend="torch")
        real = tagger.backend

        class Spy(Backend):
            input_names = real.input_names

            def __call__(self, batch, real=real, signal=signal):
                seen[signal] = batch["token_type_ids"].copy()
                return real(batch)

        tagger.backend = Spy()
        tagger.predict_batch(["John met paris in PARIS .", "nothing here"])
    tokens = tagger.tokenizer("John met paris in PARIS .")["input_ids"]
    assert seen["token_type"][0, : len(tokens)].tolist() == [0, 1, 0, 0, 0, 1, 0, 0]
    assert not seen["token_type"][1].any() and not seen["none"].any()
