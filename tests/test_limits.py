"""The one max-length and window rule (trainer.reading.windows), and that training, evaluation and the Space all follow it."""

from types import SimpleNamespace

import pytest

from trainer.reading.windows import (DEFAULT_STRIDE, DOCUMENT_MAX_LENGTH, FALLBACK_MAX_LENGTH, Window, max_length,
                            model_window, recorded_window, window)


def tok(limit):
    return SimpleNamespace(model_max_length=limit)


def test_requested_capped_by_tokenizer_and_position_embeddings():
    assert max_length(tok(512), SimpleNamespace(max_position_embeddings=512)) == 512
    assert max_length(tok(512), SimpleNamespace(max_position_embeddings=128)) == 128
    assert max_length(tok(512), SimpleNamespace(max_position_embeddings=512), requested=96) == 96
    assert max_length(tok(512), SimpleNamespace(max_position_embeddings=64), requested=96) == 64
    assert max_length(tok(int(1e30))) == FALLBACK_MAX_LENGTH  # a tokenizer without a usable limit
    assert max_length(tok(256), None, requested=1000) == 256


def test_window_rule():
    bert = SimpleNamespace(model_max_length=512, num_special_tokens_to_add=lambda pair=False: 2)
    config = SimpleNamespace(max_position_embeddings=512)
    assert window(bert, config, "document") == Window("document", DOCUMENT_MAX_LENGTH, DEFAULT_STRIDE)
    assert window(bert, config, "sentence") == Window("sentence", 512, DEFAULT_STRIDE)  # as training always did
    assert window(bert, config, "document", 96, 16) == Window("document", 96, 16)
    assert window(bert, SimpleNamespace(max_position_embeddings=128), "document").max_length == 128
    assert window(bert, config, "document", 64).stride == 31  # at most half a window's room for text
    with pytest.raises(ValueError, match="unknown context"):
        window(bert, config, "paragraph")


def test_a_model_is_read_as_its_config_records_and_explicit_values_win():
    bert = SimpleNamespace(model_max_length=512, num_special_tokens_to_add=lambda pair=False: 2)
    recorded = SimpleNamespace(max_position_embeddings=512,
                               ner_window={"context": "document", "max_length": 128, "stride": 32})
    assert recorded_window(recorded) == {"context": "document", "max_length": 128, "stride": 32}
    assert model_window(bert, recorded) == Window("document", 128, 32)
    assert model_window(bert, recorded, 64, 8, "sentence") == Window("sentence", 64, 8)
    # Another length alone: the stride is that length's default (a quarter), not the one chosen for 128.
    assert model_window(bert, recorded, 64) == Window("document", 64, 16)
    # A model trained before windows were recorded (or elsewhere) read sentences, at its whole length.
    assert model_window(bert, SimpleNamespace(max_position_embeddings=512)) == Window("sentence", 512, DEFAULT_STRIDE)
    assert recorded_window({"ner_window": {"context": "sentence", "max_length": 512, "stride": 64}})["context"] == \
        "sentence"


def test_evaluation_and_the_tagger_read_at_most_the_model_limit(tmp_path):
    """A model with fewer position embeddings than its tokenizer's limit: evaluation and the Space's tagger both read
    windows of at most that many sub-tokens (a 512 window would index past the embeddings and fail), and nothing
    past them is cut: the rest of a sentence is read in the next windows."""
    from datasets import DatasetDict

    from space_models import LABELS, VALIDATION, build_lookup_model, validation_dataset
    from trainer.data.load import NerData
    from trainer.evaluation.word_level import evaluate
    from trainer.inference.tagger import NerTagger

    model_dir = build_lookup_model(str(tmp_path / "m"), max_position_embeddings=6)
    tagger = NerTagger.from_pretrained(model_dir)
    assert tagger.max_length == 6
    data = NerData(DatasetDict({"validation": validation_dataset()}), LABELS, "IOB2", "fixture")
    ev = evaluate(tagger.model, tagger.tokenizer, data, "validation")
    assert ev.record["protocol"]["window"] == {"context": "sentence", "max_length": 6, "stride": 2,
                                               "decoding": "argmax", "case_signal": "none"}
    first = ev.rows[0]  # "John Smith flew to London .": windows of 4 words, London in the second
    assert first["pred"] == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"] and first["gold"][4] == "B-LOC"
    assert ev.record["num_words"] == sum(len(t) for t, _ in VALIDATION)
    # The tagger reads a text in windows of the same length, so London is found there too.
    assert [e.text for e in tagger.predict("John Smith flew to London .")] == ["John Smith", "London"]
