"""trainer.inference.tagger on a real BERT token classifier with known predictions (tests/space_models.py)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import unicodedata

import numpy as np
import pytest
from space_models import VALIDATION, build_lookup_model, encoder_path

from trainer.inference.backends import Backend
from trainer.inference.tagger import (
    MAX_INPUT_CHARS,
    MAX_INPUT_SUBTOKENS,
    InputError,
    ModelLoadError,
    NerTagger,
    load_model,
)
from trainer.reading.labels import tags_to_spans
from trainer.reading.windows import DEFAULT_STRIDE


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_lookup_model(str(tmp_path_factory.mktemp("lookup")))


@pytest.fixture(scope="module")
def tagger(model_dir):
    return NerTagger.from_pretrained(model_dir)


def triples(entities):
    return [(e.type, e.text, e.start, e.end) for e in entities]


def assert_offsets(text, entities):
    for e in entities:
        assert 0 <= e.start < e.end <= len(text)
        assert text[e.start : e.end] == e.text


def test_spans_are_words_with_char_offsets(tagger):
    text = "Yesterday John Zwingmann's team flew from Paris to Berlin."
    ents = tagger.predict(text)
    assert triples(ents) == [("PER", "John Zwingmann", 10, 24), ("LOC", "Paris", 42, 47), ("LOC", "Berlin", 51, 57)]
    assert_offsets(text, ents)
    assert all(0.9 < e.score <= 1.0 for e in ents)


def test_word_takes_its_first_subtoken_label(tagger):
    # zwingmann = z ##wing ##mann; only "z" is tagged (I-PER, opening a span): the entity is the whole word, not "Z".
    assert triples(tagger.predict("Zwingmann")) == [("PER", "Zwingmann", 0, 9)]
    # B- followed by I- on the next word merges into one span; B- B- would be two.
    assert triples(tagger.predict("Paris London")) == [("LOC", "Paris", 0, 5), ("LOC", "London", 6, 12)]


def test_same_words_and_tags_as_evaluation(tagger):
    """Raw text made of a sentence's words gets the spans trainer.evaluation.word_level gives those words in
    evaluation."""
    from trainer.evaluation.word_level import predict_words
    from trainer.reading.windows import Window

    sentences = [tokens for tokens, _ in VALIDATION]
    tags = predict_words(tagger.model, tagger.tokenizer, sentences, Window("sentence", 64, 16))
    for tokens, word_tags in zip(sentences, tags):
        text = " ".join(tokens)
        starts = [sum(len(t) + 1 for t in tokens[:i]) for i in range(len(tokens))]
        expected = [(typ, starts[a], starts[b - 1] + len(tokens[b - 1])) for typ, a, b in tags_to_spans(word_tags)]
        assert [(e.type, e.start, e.end) for e in tagger.predict(text)] == expected


def test_evaluation_reads_with_the_backend_it_is_given(tagger, tmp_path):
    """predict_words on another backend (how bench/inference_speed.py scores each backend on whole documents) runs
    that backend's forward pass, not torch's, and reads the same tags from the same logits."""
    from trainer.evaluation.word_level import predict_words
    from trainer.inference.tagger import backends
    from trainer.reading.windows import Window

    pytest.importorskip("onnxruntime")
    sentences = [tokens for tokens, _ in VALIDATION]
    onnx = backends.make_backend("onnx", tagger.model, tagger.tokenizer.model_input_names, None, str(tmp_path))
    calls = []

    class Counted(backends.Backend):
        name, input_names = onnx.name, onnx.input_names

        def __call__(self, batch):
            calls.append(batch["input_ids"].shape)
            return onnx(batch)

    window = Window("document", 12, 3)
    got = predict_words(tagger.model, tagger.tokenizer, sentences, window, [0] * len(sentences), backend=Counted())
    assert calls
    assert got == predict_words(tagger.model, tagger.tokenizer, sentences, window, [0] * len(sentences))


def test_long_text_windows_merge_to_the_unwindowed_result(model_dir, tagger):
    small = NerTagger.from_pretrained(model_dir, max_length=16, stride=4)
    unit = "We met John Zwingmann in Paris , maybe at Reuters . "
    for pad in range(10):  # windows advance 10 sub-tokens: every offset of the edges against the words
        text = "filler " * pad + unit * 12
        assert len(small.tokenizer(text)["input_ids"]) > 8 * small.max_length
        expected = tagger.predict(text)
        assert len(expected) == 12 * 4
        assert small.predict(text) == expected
        assert_offsets(text, expected)


def test_long_document_in_evaluation_reads_words_as_the_tagger_does(model_dir, tagger):
    """Evaluation of pre-split documents and the tagger on raw text share the window rule: in small windows over a
    long document, every word gets the tag the tagger gives it."""
    from trainer.evaluation.word_level import predict_words
    from trainer.reading.windows import Window

    sentences = [tokens for tokens, _ in VALIDATION] * 6
    for window in (Window("document", 12, 3), Window("document", 9, 2)):
        tags = predict_words(tagger.model, tagger.tokenizer, sentences, window, doc_ids=[0] * len(sentences))
        words = [w for s in sentences for w in s]
        text = " ".join(words)
        starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
        flat = [t for s in tags for t in s]
        expected = [(typ, starts[a], starts[b - 1] + len(words[b - 1])) for typ, a, b in tags_to_spans(flat)]
        small = NerTagger.from_pretrained(model_dir, max_length=window.max_length, stride=window.stride)
        assert [(e.type, e.start, e.end) for e in small.predict(text)] == expected


def test_the_window_comes_from_the_model_config(model_dir, tmp_path):
    """A model trained here records its window in config.json; the tagger reads texts in it, unless told otherwise."""
    recorded = tmp_path / "recorded"
    shutil.copytree(model_dir, recorded)
    config = json.loads((recorded / "config.json").read_text())
    config["ner_window"] = {"context": "document", "max_length": 40, "stride": 10}
    (recorded / "config.json").write_text(json.dumps(config))
    tagger = NerTagger.from_pretrained(str(recorded))
    assert (tagger.max_length, tagger.stride) == (40, 10)
    explicit = NerTagger.from_pretrained(str(recorded), max_length=20, stride=4)
    assert (explicit.max_length, explicit.stride) == (20, 4)
    assert NerTagger.from_pretrained(str(recorded), stride=4).max_length == 40
    plain = NerTagger.from_pretrained(model_dir)  # no record: the model's whole length, the default stride
    assert (plain.max_length, plain.stride) == (512, DEFAULT_STRIDE)


def test_nothing_is_cut_past_the_model_length(tagger):
    text = "the weather was fine and " * 400 + "then John Smith arrived in London"
    assert len(tagger.tokenizer(text)["input_ids"]) > 3 * tagger.max_length
    ents = tagger.predict(text)
    assert [(e.type, e.text) for e in ents] == [("PER", "John Smith"), ("LOC", "London")]
    assert_offsets(text, ents)


def test_size_limits(tagger, model_dir):
    assert tagger.max_chars == MAX_INPUT_CHARS and tagger.max_subtokens == MAX_INPUT_SUBTOKENS
    at_limit = ("Paris " * (MAX_INPUT_CHARS // 6 + 1))[:MAX_INPUT_CHARS]
    roomy = NerTagger.from_pretrained(model_dir, max_subtokens=10**6)
    assert len(roomy.predict(at_limit)) == MAX_INPUT_CHARS // 6  # the last piece is cut to "Pa"
    with pytest.raises(InputError, match=r"21,000 characters; the limit is 20,000"):
        tagger.predict("x" * 21_000)
    # The cost is bounded in sub-tokens: 3,000 characters of "!" are 3,000 sub-tokens.
    with pytest.raises(InputError, match=r"3,000 sub-tokens long; the limit is 2,048"):
        tagger.check_text("!" * 3_000)
    assert tagger.check_text("Paris " * 2_048) == "Paris " * 2_048  # 2,048 sub-tokens: at the limit
    with pytest.raises(InputError, match="lone surrogate, U\\+D800\\) at position 6"):
        tagger.check_text("Paris \ud800")
    with pytest.raises(InputError, match="expected text"):
        tagger.predict(123)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "   \n\t ", None])
def test_empty_input(tagger, text):
    assert tagger.predict(text) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Paris 😀 and 👩‍👩‍👧 John", [("LOC", "Paris"), ("PER", "John")]),
        ("😀Paris😀 John", [("PER", "John")]),  # one word for the tokenizer, and an unknown one
        ("東京 and Москва and Paris", [("LOC", "Paris")]),
        ("<script>alert('Paris')</script><b>John</b>", [("LOC", "Paris"), ("PER", "John")]),
        ("\x00John\x07 Smith\u200b in\r\nLondon\x1b[0m", [("PER", "John\x07 Smith"), ("LOC", "London")]),
        ("Pàrïs, Gööglé? no: Google!", [("LOC", "Pàrïs"), ("ORG", "Gööglé"), ("ORG", "Google")]),
        ("\ufeff\u202eParis\u202c", [("LOC", "Paris")]),
    ],
)
def test_awkward_text_keeps_exact_offsets(tagger, text, expected):
    ents = tagger.predict(text)
    assert [(e.type, e.text) for e in ents] == expected
    assert_offsets(text, ents)


def test_accents_are_matched_on_the_original_text(tagger):
    # The uncased tokenizer strips accents ("pàrïs" -> "paris"), the offsets still point into the original text.
    text = "Pàrïs"
    assert triples(tagger.predict(text)) == [("LOC", "Pàrïs", 0, 5)]


def test_threshold_and_type_filter(tagger):
    text = "maybe John went to Paris"
    ents = tagger.predict(text)
    assert [e.type for e in ents] == ["MISC", "PER", "LOC"]
    maybe = ents[0].score
    assert 0.1 < maybe < 0.6
    assert [e.type for e in tagger.predict(text, threshold=maybe + 0.01)] == ["PER", "LOC"]
    assert [e.type for e in tagger.predict(text, types={"LOC"})] == ["LOC"]
    assert tagger.predict(text, types=[]) == []


def test_any_iterable_of_types_and_any_real_threshold(tagger):
    text = "maybe John went to Paris"
    assert [e.type for e in tagger.predict(text, types=(t for t in ["PER", "LOC"]))] == ["PER", "LOC"]
    assert [e.type for e in tagger.predict(text, types=iter({"LOC"}))] == ["LOC"]
    assert [e.type for e in tagger.predict(text, threshold=np.float32(0.9))] == ["PER", "LOC"]
    assert tagger.check_options(np.float64(0.25), None) == (0.25, None)
    for bad in (True, np.bool_(True), float("nan"), np.float32("nan"), 1.5, -0.1, "0.5", None):
        with pytest.raises(InputError, match="minimum confidence must be a number from 0 to 1"):
            tagger.predict(text, threshold=bad)
    for bad in ("PER", 5, ["PER", 5]):
        with pytest.raises(InputError, match="entity types must be a list of names"):
            tagger.predict(text, types=bad)
    with pytest.raises(InputError, match="Unknown entity type"):
        tagger.predict(text, types=(t for t in ["PER", "CITY"]))


def test_a_word_final_combining_mark_stays_with_its_entity(tagger):
    # Decomposed text: the uncased normalizer strips the marks, so the last one after a word belongs to no sub-token.
    text = "Paris\u0301\u0323 and Berlin\u0308. John"
    assert triples(tagger.predict(text)) == [
        ("LOC", "Paris\u0301\u0323", 0, 7),
        ("LOC", "Berlin\u0308", 12, 19),
        ("PER", "John", 21, 25),
    ]
    nfd = unicodedata.normalize("NFD", "Pàrïs and Bogotá Berlín")  # marks inside a word were always covered
    assert [e.text for e in tagger.predict(nfd)] == [
        unicodedata.normalize("NFD", "Pàrïs"),
        unicodedata.normalize("NFD", "Berlín"),
    ]


def test_a_windowed_long_text_gives_no_indexing_warning(model_dir):
    """Counting a long text's sub-tokens is no model input: the tokenizer's "indexing errors" warning is false."""
    tagger = NerTagger.from_pretrained(model_dir, max_subtokens=10**6)  # a fresh tokenizer: it warns only once
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    hf_logger = logging.getLogger("transformers")
    hf_logger.addHandler(handler)
    try:
        text = "Paris " * 2 * tagger.tokenizer.model_max_length
        assert len(tagger.predict(text)) == 2 * tagger.tokenizer.model_max_length
    finally:
        hf_logger.removeHandler(handler)
    assert not [m for m in seen if "indexing errors" in m]


def test_batch_equals_one_by_one(model_dir):
    tagger = NerTagger.from_pretrained(model_dir, batch_size=3)
    texts = ["John in Paris", "", "Reuters " * 300 + "Berlin", "maybe", "   ", "Google and London"]
    assert tagger.predict_batch(texts) == [tagger.predict(t) for t in texts]
    with pytest.raises(InputError):
        tagger.predict_batch(["fine", "x" * (MAX_INPUT_CHARS + 1)])


def test_labels_come_from_the_model_config(tagger):
    assert tagger.entity_types == ["LOC", "MISC", "ORG", "PER"]
    assert tagger.scheme == "IOB2"


def test_unknown_hub_id_offline_says_what_was_tried(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as err:
        load_model("no-such-user/no-such-ner-model")
    msg = str(err.value)
    assert "no-such-user/no-such-ner-model" in msg and "Hub model id" in msg
    assert "--model" in msg and "NER_MODEL" in msg


def test_directory_without_safetensors_is_refused(model_dir, tmp_path):
    d = tmp_path / "bin-only"
    d.mkdir()
    shutil.copy(os.path.join(model_dir, "config.json"), d / "config.json")
    (d / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match="no model.safetensors"):
        load_model(str(d))
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path))
    with pytest.raises(ModelLoadError, match="no model given"):
        load_model("  ")


def test_bare_encoder_is_not_an_ner_model():
    with open(os.path.join(encoder_path(), "config.json")) as f:
        assert "id2label" not in json.load(f)
    with pytest.raises(ModelLoadError, match="not a fine-tuned NER model"):
        NerTagger.from_pretrained(encoder_path())


class ScriptedBackend(Backend):
    """Log-probabilities scripted per content position (the same for every window), for decoding tests."""

    input_names = ("input_ids", "attention_mask")

    def __init__(self, labels, rows):
        self.labels, self.rows = labels, rows

    def __call__(self, batch):
        import numpy as np

        n_rows, width = batch["input_ids"].shape
        out = np.full((n_rows, width, len(self.labels)), np.log(1e-3))
        for r in range(n_rows):
            for pos, probs in enumerate(self.rows, start=1):  # after [CLS]
                for tag, p in probs.items():
                    out[r, pos, self.labels.index(tag)] = np.log(p)
        return out


@pytest.mark.parametrize(
    "decoding, expected",
    [
        ("argmax", [("PER", "John"), ("ORG", "Smith")]),  # I-PER then I-ORG: two stray I- tags, two entities
        ("viterbi", [("PER", "John Smith")]),  # the best valid sequence: B-PER I-PER
    ],
)
def test_the_tagger_decodes_as_the_model_records(model_dir, decoding, expected):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(model_dir)
    model.config.ner_window = {"context": "sentence", "max_length": 64, "stride": 16, "decoding": decoding}
    tagger = NerTagger(model, AutoTokenizer.from_pretrained(model_dir), source="scripted")
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    tagger.backend = ScriptedBackend(
        labels, [{"I-PER": 0.5, "B-PER": 0.3, "O": 0.2}, {"I-ORG": 0.45, "I-PER": 0.35, "O": 0.2}]
    )
    got = tagger.predict("John Smith")
    assert [(e.type, e.text) for e in got] == expected
    assert_offsets("John Smith", got)
