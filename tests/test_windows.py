"""trainer.reading.windows and the encoding of windows (trainer.training.encode): the word-reading rule, windows over documents that
never cut a word, document grouping, and sub-token labels of windows that open inside a word."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from datasets import Dataset

from trainer.config import Config
from trainer.data.load import load_data
from trainer.training.encode import encode
from trainer.reading.labels import IGNORE_INDEX, align_labels, continuation_map
from trainer.reading.windows import Window
from trainer.training.prepare import load_tokenizer
from trainer.reading.windows import DocumentWindows, Reading, group_documents, longest_first, read_window, restore_order

from conftest import CONLL_SAMPLE

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
        0: (0, 1), 1: (0, 2), 2: (0, 3), 3: (0, 4), 4: (0, 5), 5: (1, 2), 6: (1, 3), 7: (1, 4), 8: (1, 5), 9: (1, 6)}


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


@pytest.mark.parametrize("context, max_length, stride", [("document", 16, 4), ("document", 12, 5),
                                                         ("sentence", 10, 3), ("document", 256, 64)])
def test_windows_never_cut_a_word(tokenizer, sample, context, max_length, stride):
    val = sample.splits["validation"]
    sentences = list(val["tokens"]) + [LONG_SENTENCE]
    windows = DocumentWindows.build(tokenizer, sentences, list(val["doc_id"]) + [99], Window(context, max_length,
                                                                                          stride))
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
    assert encoded["labels"] == [align_labels([label2id[t] for t in tags], old.word_ids(i), True, b_to_i)
                                 for i, tags in enumerate(train["tags"])]


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
                assert label == (label2id["I-PER"] if label_all_tokens and tags[wid] == "B-PER" else
                                 label2id[tags[wid]] if label_all_tokens else IGNORE_INDEX)
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
