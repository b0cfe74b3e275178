"""trainer.reading.windows and the encoding of windows (trainer.training.encode): the window a model reads in (the
one max-length rule, recorded in its config), the word-reading rule, windows over documents that never cut a word,
document grouping, and sub-token labels of windows that open inside a word."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import CONLL_SAMPLE
from datasets import Dataset

from trainer.config import Config
from trainer.data.load import load_data
from trainer.inference.tagger import load_tokenizer
from trainer.reading.labels import IGNORE_INDEX, align_labels, continuation_map
from trainer.reading.windows import (
    DEFAULT_STRIDE,
    DOCUMENT_MAX_LENGTH,
    FALLBACK_MAX_LENGTH,
    DocumentWindows,
    Reading,
    Window,
    group_documents,
    longest_first,
    max_length,
    model_window,
    read_window,
    recorded_window,
    restore_order,
    window,
)
from trainer.training.encode import encode

# A long multi-piece word (zwingmann = z ##wing ##mann) among one-piece words, so small windows open inside words.
LONG_SENTENCE = ("Zwingmann met John in Paris , said Reuters about Zwingmann and Berlin " * 12).split()


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder_dir):
    return load_tokenizer(tiny_encoder_dir)


@pytest.fixture(scope="module")
def sample():
    return load_data(Config(data_dir=str(CONLL_SAMPLE)))


# --- the reading rule -------------------------------------------------------------------------------------------


def test_each_word_is_read_where_its_first_subtoken_has_most_context():
    # Ten one-piece words; window 0 holds words 0-5 at positions 1-6, window 1 words 4-9 at positions 1-6.
    offsets = [(0, 0)] + [(0, 3)] * 6 + [(0, 0)]
    readings: dict[int, Reading] = {}
    read_window(readings, 0, [None, 0, 1, 2, 3, 4, 5, None], offsets)
    read_window(readings, 1, [None, 4, 5, 6, 7, 8, 9, None], offsets)
    # word 4: context min(4, 1) = 1 in window 0, min(0, 5) = 0 in window 1; word 5: 0 in window 0, 1 in window 1.
    assert {w: (r.window, r.position) for w, r in readings.items()} == {
        0: (0, 1),
        1: (0, 2),
        2: (0, 3),
        3: (0, 4),
        4: (0, 5),
        5: (1, 2),
        6: (1, 3),
        7: (1, 4),
        8: (1, 5),
        9: (1, 6),
    }


def test_a_window_opening_inside_a_word_never_reads_it():
    # Word 1 is z ##wing ##mann; window 1 opens at ##mann, where the word would have more context.
    readings: dict[int, Reading] = {}
    read_window(readings, 0, [None, 0, 1, 1, None], [(0, 0), (0, 4), (0, 1), (1, 5), (0, 0)])
    read_window(readings, 1, [None, 1, 2, 3, 4, None], [(0, 0), (5, 9), (0, 3), (0, 2), (0, 5), (0, 0)])
    assert (readings[1].window, readings[1].position, readings[1].first) == (0, 2, (0, 1))
    # Seen the other way round (a later piece first), the earlier piece still wins: it is the first sub-token.
    readings = {}
    read_window(readings, 1, [None, 1, 2, None], [(0, 0), (5, 9), (0, 3), (0, 0)])
    read_window(readings, 0, [None, 0, 1, 1, None], [(0, 0), (0, 4), (0, 1), (1, 5), (0, 0)])
    assert (readings[1].window, readings[1].position) == (0, 2)
    # A piece covering no character (a bare word marker) comes before the piece starting at the same place.
    readings = {}
    read_window(readings, 0, [None, 0, 0, None], [(0, 0), (0, 0), (0, 3), (0, 0)])
    assert readings[0].position == 1


# --- documents --------------------------------------------------------------------------------------------------


def test_documents_are_runs_of_one_doc_id_and_data_without_them_one_stream(caplog):
    doc_ids = [0, 0, 1, 1, 1, 0, -1, -1, 2]
    assert group_documents(doc_ids, "sentence") == list(range(9))
    with caplog.at_level(logging.INFO, logger="trainer.reading.windows"):
        assert group_documents(doc_ids, "document", "train") == [0, 0, 1, 1, 1, 2, 3, 3, 4]
    assert "train: 2 of 9 sentences have no document boundaries (doc_id -1): read as one stream" in caplog.text
    assert group_documents([-1] * 4, "document") == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "context, max_length, stride",
    [("document", 16, 4), ("document", 12, 5), ("sentence", 10, 3), ("document", 256, 64)],
)
def test_windows_never_cut_a_word(tokenizer, sample, context, max_length, stride):
    val = sample.splits["validation"]
    sentences = list(val["tokens"]) + [LONG_SENTENCE]
    windows = DocumentWindows.build(
        tokenizer, sentences, list(val["doc_id"]) + [99], Window(context, max_length, stride)
    )
    assert len(windows.sentences) == len(sentences) and windows.missing_word() is None
    assert all(len(ids) <= max_length for ids in windows.inputs["input_ids"])
    # Every word is read exactly once, at its first sub-token (pre-split offsets start at 0 in the word)...
    for doc, first, n in windows.sentences:
        for w in range(first, first + n):
            r = windows.readings[doc][w]
            assert windows.word_ids[r.window][r.position] == w and windows.offsets[r.window][r.position][0] == 0
            assert windows.doc[r.window] == doc
    # ... and the windows of a document, their overlaps removed, are its whole tokenization: nothing was cut.
    docs = group_documents(list(val["doc_id"]) + [99], context)
    for doc in range(max(docs) + 1):
        words = [w for s, d in zip(sentences, docs) if d == doc for w in s]
        whole = tokenizer(words, is_split_into_words=True, add_special_tokens=False)["input_ids"]
        rows = [k for k, d in enumerate(windows.doc) if d == doc]
        assert rows == list(range(rows[0], rows[-1] + 1))  # a document's windows are consecutive rows
        joined = []
        for i, k in enumerate(rows):
            content = [t for t, wid in zip(windows.inputs["input_ids"][k], windows.word_ids[k]) if wid is not None]
            joined += content if i == 0 else content[stride:]
        assert joined == whole
    # word_tags gives one tag per word of every sentence, in order.
    tags = windows.word_tags([np.zeros((len(ids), 1)) for ids in windows.inputs["input_ids"]], {0: "O"})
    assert [len(t) for t in tags] == [len(s) for s in sentences]


# --- encoding ---------------------------------------------------------------------------------------------------


def test_sentence_context_encodes_short_sentences_as_before(tokenizer, sample):
    """One example per sentence, exactly the inputs and labels of the former sentence encoding."""
    train = sample.splits["train"].select(range(40))
    label2id = sample.label2id
    encoded, windows = encode(train, tokenizer, label2id, True, Window("sentence", 512, 64))
    old = tokenizer(list(train["tokens"]), is_split_into_words=True, truncation=True, max_length=512)
    assert encoded["input_ids"] == old["input_ids"] and len(windows) == len(train)
    b_to_i = continuation_map(label2id)
    assert encoded["labels"] == [
        align_labels([label2id[t] for t in tags], old.word_ids(i), True, b_to_i) for i, tags in enumerate(train["tags"])
    ]


@pytest.mark.parametrize("label_all_tokens", [True, False])
def test_window_labels_each_word_where_its_first_subtoken_is(tokenizer, label_all_tokens):
    tags = ["B-PER", "O", "B-PER", "O", "B-LOC", "O", "O", "B-ORG", "O", "B-PER", "O", "B-LOC"] * 12
    dataset = Dataset.from_dict({"tokens": [LONG_SENTENCE], "tags": [tags], "doc_id": [0], "sent_idx": [0]})
    label2id = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "B-ORG": 4}
    encoded, windows = encode(dataset, tokenizer, label2id, label_all_tokens, Window("document", 9, 3))
    opened_inside = 0
    labelled_first: set[int] = set()
    for k, labels in enumerate(encoded["labels"]):
        word_ids, offsets = windows.word_ids[k], windows.offsets[k]
        for pos, (wid, label) in enumerate(zip(word_ids, labels)):
            if wid is None:
                assert label == IGNORE_INDEX
            elif offsets[pos][0] == 0:  # the word's first sub-token: the word's label
                assert label == label2id[tags[wid]]
                labelled_first.add(wid)
            elif 0 in {offsets[p][0] for p, w in enumerate(word_ids) if w == wid}:  # a continuation
                assert label == (
                    label2id["I-PER"]
                    if label_all_tokens and tags[wid] == "B-PER"
                    else label2id[tags[wid]]
                    if label_all_tokens
                    else IGNORE_INDEX
                )
            else:  # the window opened inside this word: none of its pieces here are labelled
                assert label == IGNORE_INDEX
                opened_inside += 1
    assert opened_inside > 0  # the case occurred
    assert labelled_first == set(range(len(LONG_SENTENCE)))  # every word is learnt somewhere


def test_longest_first_and_back():
    lengths = [3, 9, 1, 9, 5]
    order = longest_first(lengths)
    assert [lengths[i] for i in order] == [9, 9, 5, 3, 1] and order[:2] == [1, 3]  # ties keep their order
    rows = [f"row{i}" for i in order]  # produced in that order
    assert restore_order(rows, order) == [f"row{i}" for i in range(len(lengths))]


# --- the window a model reads in ----------------------------------------------------------------------------------


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
    recorded = SimpleNamespace(
        max_position_embeddings=512, ner_window={"context": "document", "max_length": 128, "stride": 32}
    )
    assert recorded_window(recorded) == {"context": "document", "max_length": 128, "stride": 32}
    assert model_window(bert, recorded) == Window("document", 128, 32)
    assert model_window(bert, recorded, 64, 8, "sentence") == Window("sentence", 64, 8)
    # Another length alone: the stride is that length's default (a quarter), not the one chosen for 128.
    assert model_window(bert, recorded, 64) == Window("document", 64, 16)
    # A model trained before windows were recorded (or elsewhere) read sentences, at its whole length.
    assert model_window(bert, SimpleNamespace(max_position_embeddings=512)) == Window("sentence", 512, DEFAULT_STRIDE)
    assert (
        recorded_window({"ner_window": {"context": "sentence", "max_length": 512, "stride": 64}})["context"]
        == "sentence"
    )


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
    assert ev.record["protocol"]["window"] == {
        "context": "sentence",
        "max_length": 6,
        "stride": 2,
        "decoding": "argmax",
        "case_signal": "none",
    }
    first = ev.rows[0]  # "John Smith flew to London .": windows of 4 words, London in the second
    assert first["pred"] == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"] and first["gold"][4] == "B-LOC"
    assert ev.record["num_words"] == sum(len(t) for t, _ in VALIDATION)
    # The tagger reads a text in windows of the same length, so London is found there too.
    assert [e.text for e in tagger.predict("John Smith flew to London .")] == ["John Smith", "London"]
