import json
import logging

import pytest
from conftest import CONLL_SAMPLE, DATA
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

import trainer.data.load as data_mod
from trainer.config import Config
from trainer.data.load import DataError, load_data

BAD = DATA / "malformed"
FORMATS = DATA / "formats"


def files(train, validation=None, **kw) -> Config:
    return Config(train_file=str(train), validation_file=str(validation) if validation else None, **kw)


def error_of(cfg: Config) -> str:
    with pytest.raises(DataError) as e:
        load_data(cfg)
    return str(e.value)


def test_conll2003_sample_converts_iob1_and_keeps_documents():
    data = load_data(Config(data_dir=str(CONLL_SAMPLE)))
    assert data.scheme == "IOB1"
    assert data.labels == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    train = data.splits["train"]
    assert train[0]["tokens"][:3] == ["EU", "rejects", "German"]
    assert train[0]["tags"][:3] == ["B-ORG", "O", "B-MISC"]  # I-ORG / I-MISC in the IOB1 file
    assert (train[0]["doc_id"], train[0]["sent_idx"]) == (0, 0)
    assert (train[1]["doc_id"], train[1]["sent_idx"]) == (0, 1)
    assert len(set(train["doc_id"])) > 1  # -DOCSTART- boundaries survive as document ids
    first_of_doc1 = train["doc_id"].index(1)
    assert train[first_of_doc1]["sent_idx"] == 0
    assert set(data.splits) == {"train", "validation", "test"}


def test_iob1_iob2_and_bioes_files_load_to_the_same_iob2_tags():
    iob1 = load_data(files(FORMATS / "sample_iob1.conll"))
    iob2 = load_data(files(FORMATS / "sample_iob2.jsonl"))
    bioes = load_data(files(FORMATS / "sample_bioes.conll"))
    assert (iob1.scheme, iob2.scheme, bioes.scheme) == ("IOB1", "IOB2", "BIOES")
    assert iob1.splits["train"]["tags"] == iob2.splits["train"]["tags"] == bioes.splits["train"]["tags"]
    assert iob1.splits["train"]["tokens"] == iob2.splits["train"]["tokens"]
    assert iob1.labels == iob2.labels == bioes.labels


def test_pos_and_chunk_columns():
    pos = load_data(files(FORMATS / "sample_iob1.conll", task="pos"))
    assert pos.scheme == "none" and "NNP" in pos.labels and pos.splits["train"][0]["tags"][0] == "NNP"
    chunk = load_data(Config(data_dir=str(CONLL_SAMPLE), task="chunk", max_train_samples=50))
    assert chunk.scheme == "IOB1" and "B-NP" in chunk.labels and chunk.splits["train"][0]["tags"][0] == "B-NP"
    by_index = load_data(files(FORMATS / "sample_iob1.conll", label_column=1, label_scheme="none"))
    assert by_index.splits["train"]["tags"] == pos.splits["train"]["tags"]


def test_bom_crlf_tabs_and_trailing_spaces_are_accepted():
    data = load_data(files(FORMATS / "bom_crlf_tabs.conll"))
    assert data.splits["train"]["tokens"] == [["Peter", "Blackburn"], ["BRUSSELS"]]
    assert data.splits["train"]["tags"] == [["B-PER", "I-PER"], ["B-LOC"]]


def test_wrong_column_count_names_file_line_and_expectation():
    msg = error_of(files(BAD / "wrong_columns.conll"))
    assert f"{BAD / 'wrong_columns.conll'}:6:" in msg
    assert "expected 4 columns (as on line 3), found 3" in msg and "call NN I-NP" in msg


def test_missing_label_column():
    msg = error_of(files(FORMATS / "sample_bioes.conll", task="chunk"))
    assert "sample_bioes.conll:1:" in msg and "column 2" in msg and "has 2 columns" in msg


def test_empty_file_and_empty_split():
    assert "the file is empty" in error_of(files(BAD / "empty.conll"))
    msg = error_of(files(FORMATS / "sample_iob1.conll", BAD / "only_docstart.conll"))
    assert "only_docstart.conll" in msg and "no sentences found" in msg


def test_unknown_tag_prefix():
    msg = error_of(files(BAD / "bad_prefix.conll"))
    assert "bad_prefix.conll:5:" in msg and "unknown tag prefix 'X' in tag 'X-LOC'" in msg


def test_a_bare_prefix_names_the_missing_entity_type(tmp_path):
    conll = tmp_path / "bare.conll"
    conll.write_text("EU B-ORG\nrejects O\nGerman B-\n", encoding="utf-8")
    assert f"{conll}:3: tag 'B-' names no entity type: expected B-TYPE" in error_of(files(conll))


def test_a_column_file_without_extension_whose_first_word_is_a_brace_is_read_as_columns(tmp_path):
    braces = tmp_path / "train"
    braces.write_text("{ O\nEU B-ORG\n} O\n\nPeter B-PER\n", encoding="utf-8")
    assert load_data(files(braces)).splits["train"]["tokens"] == [["{", "EU", "}"], ["Peter"]]
    jsonl = tmp_path / "dev"  # JSON lines without an extension are still read as JSON lines
    jsonl.write_text('{"tokens": ["EU"], "tags": ["B-ORG"]}\n', encoding="utf-8")
    assert load_data(files(jsonl)).splits["train"]["tokens"] == [["EU"]]


def test_undecodable_bytes():
    msg = error_of(files(BAD / "undecodable.conll"))
    assert "undecodable.conll:2:" in msg and "expected UTF-8" in msg


def test_bad_json_lines():
    msg = error_of(files(BAD / "length_mismatch.jsonl"))
    assert "length_mismatch.jsonl:2:" in msg and "2 tokens but 1 tags" in msg
    msg = error_of(files(BAD / "bad_json.jsonl"))
    assert "bad_json.jsonl:2:" in msg and "invalid JSON" in msg


def test_data_dir_without_training_file(tmp_path):
    assert "no training file" in error_of(Config(data_dir=str(tmp_path)))


def test_unseen_validation_label_is_reported_not_crashed_on(tmp_path, caplog):
    val = tmp_path / "val.conll"
    val.write_text("Paris B-LOC\nHilton B-BRAND\n\nx O\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        data = load_data(files(FORMATS / "sample_iob2.jsonl", val))
    assert data.splits["validation"]["tags"][0] == ["B-LOC", "B-BRAND"]  # kept as gold
    assert "B-BRAND" not in data.labels
    assert any(
        "val.conll:1" in r.getMessage() and "'B-BRAND' never occurs in training" in r.getMessage()
        for r in caplog.records
    )


def test_hub_alias_and_same_columns_as_files(monkeypatch):
    """The Hub path (mocked: tests are offline) maps `conll2003` to its parquet copy and yields the same columns."""
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    iob2 = load_data(files(FORMATS / "sample_iob2.jsonl"))
    rows = iob2.splits["train"]
    feats = Features(
        {"id": Value("string"), "tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=names))}
    )
    ds = Dataset.from_dict(
        {
            "id": [str(i) for i in range(len(rows))],
            "tokens": rows["tokens"],
            "ner_tags": [[names.index(t) for t in tags] for tags in rows["tags"]],
        },
        features=feats,
    )
    calls = []

    def fake_load_dataset(name, config=None, revision=None):
        calls.append((name, config, revision))
        return DatasetDict({"train": ds, "validation": ds})

    monkeypatch.setattr(data_mod, "load_dataset", fake_load_dataset)
    hub = load_data(Config())  # no data flags: the default dataset
    assert calls == [("eriktks/conll2003", None, "refs/convert/parquet")]
    assert hub.labels == names  # the dataset's ClassLabel order
    assert hub.splits["train"].column_names == iob2.splits["train"].column_names
    assert hub.splits["train"]["tags"] == rows["tags"]
    load_data(Config(dataset_name="me/my-ner", dataset_revision="v2"))
    assert calls[-1] == ("me/my-ner", None, "v2")


def test_a_hub_dataset_out_of_reach_says_how_to_train_offline(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'eriktks/conll2003' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(data_mod, "load_dataset", offline)
    msg = error_of(Config())
    assert "eriktks/conll2003" in msg and "without the Hub, give local files (--data-dir" in msg


def test_hub_dataset_missing_column(monkeypatch):
    ds = Dataset.from_dict({"words": [["a"]], "labels": [["O"]]})
    monkeypatch.setattr(data_mod, "load_dataset", lambda *a, **k: DatasetDict({"train": ds}))
    msg = error_of(Config(dataset_name="me/data"))
    assert "no column 'tokens'" in msg and "--tokens-column-name" in msg


# --- line ends, byte-order marks and invisible words --------------------------------------------------------------


def test_bom_at_the_start_of_any_line_is_removed_with_one_warning(tmp_path, caplog):
    """Two files joined with `cat`: the second one's BOM must not hide its -DOCSTART- or stick to a word."""
    joined = tmp_path / "joined.conll"
    joined.write_text(
        "\ufeff-DOCSTART- O\n\nEU B-ORG\nrejects O\n\n\ufeff-DOCSTART- O\n\nChina B-LOC\n\n\ufeffwins O\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING):
        data = load_data(files(joined))
    train = data.splits["train"]
    assert train["tokens"] == [["EU", "rejects"], ["China"], ["wins"]]
    assert train["doc_id"] == [0, 1, 1]
    boms = [r.getMessage() for r in caplog.records if "byte-order mark" in r.getMessage()]
    assert len(boms) == 1 and f"{joined}:6:" in boms[0]  # the first one after line 1, once per file
    jsonl = tmp_path / "joined.jsonl"
    jsonl.write_text(
        '{"tokens": ["EU"], "tags": ["B-ORG"]}\n\ufeff{"tokens": ["China"], "tags": ["B-LOC"]}\n', encoding="utf-8"
    )
    assert load_data(files(jsonl)).splits["train"]["tokens"] == [["EU"], ["China"]]


def test_format_characters_beside_visible_ones_are_read_as_they_are(tmp_path):
    """Social-media corpora hold words with a zero-width no-break space (U+FEFF) inside or at the end (a tweet's
    `Dubbz\ufeff`), soft hyphens and zero-width spaces: the word has visible characters, the tokenizer decides."""
    conll = tmp_path / "inside.conll"
    conll.write_text(
        "EU B-ORG\nChi\ufeffna B-LOC\nDubbz\ufeff B-PER\nsoft\u00adware O\nzero\u200bwidth O\n", encoding="utf-8"
    )
    words = ["EU", "Chi\ufeffna", "Dubbz\ufeff", "soft\u00adware", "zero\u200bwidth"]
    assert load_data(files(conll)).splits["train"]["tokens"] == [words]
    escaped = tmp_path / "escaped.jsonl"
    escaped.write_text(
        json.dumps({"tokens": words, "tags": ["B-ORG", "B-LOC", "B-PER", "O", "O"]}) + "\n", encoding="utf-8"
    )
    assert load_data(files(escaped)).splits["train"]["tokens"] == [words]
    only_format = tmp_path / "only_format.conll"
    only_format.write_text("EU B-ORG\n\u200b\ufeff O\n", encoding="utf-8")
    msg = error_of(files(only_format))
    assert f"{only_format}:2: word 2 of the sentence" in msg and "U+200B U+FEFF" in msg


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_end_convention_reads_alike_with_right_line_numbers(tmp_path, end):
    conll = tmp_path / "ends.conll"
    conll.write_bytes(end.join(["-DOCSTART- O", "", "EU B-ORG", "rejects O", "", "China B-LOC", ""]).encode())
    data = load_data(files(conll))
    assert data.splits["train"]["tokens"] == [["EU", "rejects"], ["China"]]
    assert data.splits["train"]["tags"] == [["B-ORG", "O"], ["B-LOC"]]
    assert data.lines["train"] == [3, 6]
    conll.write_bytes(end.join(["EU B-ORG", "", "rejects O", "German X-MISC", ""]).encode())
    assert f"{conll}:4: unknown tag prefix 'X'" in error_of(files(conll))
    jsonl = tmp_path / "ends.jsonl"
    jsonl.write_bytes(
        end.join(
            [
                '{"tokens": ["EU"], "tags": ["B-ORG"]}',
                "",
                '{"tokens": ["China"], "tags": ["B-LOC"]}',
                '{"tokens": ["x"]}',
                "",
            ]
        ).encode()
    )
    assert f"{jsonl}:4: missing key" in error_of(files(jsonl))


def test_mixed_line_ends_count_each_line_once(tmp_path):
    conll = tmp_path / "mixed.conll"
    conll.write_bytes(b"EU B-ORG\r\nrejects O\r\rChina B-LOC\n\nwins X-LOC\n")
    assert f"{conll}:6: unknown tag prefix 'X'" in error_of(files(conll))


@pytest.mark.parametrize(
    "word",
    ["", "\u00ad", "\u200b", "\ufeff", "\t", " \u00a0"],
    ids=["empty", "soft-hyphen", "zero-width-space", "bom", "tab", "spaces"],
)
def test_json_word_without_visible_characters_is_refused(tmp_path, word):
    jsonl = tmp_path / "words.jsonl"
    jsonl.write_text(
        '{"tokens": ["EU"], "tags": ["B-ORG"]}\n'
        + json.dumps({"tokens": ["EU", word, "rejects"], "tags": ["B-ORG", "O", "O"]})
        + "\n",
        encoding="utf-8",
    )
    msg = error_of(files(jsonl))
    assert f"{jsonl}:2: word 2 of the sentence" in msg and "expected a non-empty word with visible characters" in msg


def test_conll_word_without_visible_characters_is_refused(tmp_path):
    conll = tmp_path / "words.conll"
    conll.write_text("EU B-ORG\n\u200b O\nrejects O\n", encoding="utf-8")
    msg = error_of(files(conll))
    assert f"{conll}:2: word 2 of the sentence" in msg and "U+200B" in msg
    assert "expected a non-empty word with visible characters" in msg
    conll.write_text("EU B-ORG\ncaf\u00e9 O\n\u00adx O\n", encoding="utf-8")  # visible characters with them: kept
    assert load_data(files(conll)).splits["train"]["tokens"] == [["EU", "caf\u00e9", "\u00adx"]]


def test_a_training_word_the_tokenizer_drops_is_refused_with_its_line(tmp_path, tiny_encoder_dir):
    from trainer.training.prepare import prepare

    train = tmp_path / "train.conll"
    train.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\n\u0301 O\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        prepare(files(train, model_name_or_path=tiny_encoder_dir, output_dir=str(tmp_path / "out")))
    assert f"{train}:4: word 2 of the sentence ('\u0301', U+0301) gives no sub-token" in str(e.value)


def test_validation_word_the_tokenizer_drops_is_an_error_not_a_shift(tmp_path, tiny_encoder_dir):
    """A lone combining accent passes the reader (it is visible text) but MiniLM's uncased tokenizer strips accents:
    the word would get no sub-token and every later word's prediction would be scored against the wrong gold tag."""
    from trainer.reading.windows import Window
    from trainer.training.encode import encode
    from trainer.training.prepare import load_tokenizer, prepare

    val = tmp_path / "val.conll"
    val.write_text("EU B-ORG\n\nPeter B-PER\n\u0301 O\nBlackburn B-PER\n", encoding="utf-8")
    cfg = files(
        FORMATS / "sample_iob2.jsonl", val, model_name_or_path=tiny_encoder_dir, output_dir=str(tmp_path / "out")
    )
    with pytest.raises(DataError) as e:
        prepare(cfg)
    msg = str(e.value)
    assert f"{val}:3: word 2 of the sentence ('\u0301', U+0301) gives no sub-token" in msg

    tokenizer = load_tokenizer(tiny_encoder_dir)
    data = load_data(cfg)
    label2id = {t: i for i, t in enumerate(data.labels)}
    _, windows = encode(data.splits["validation"], tokenizer, label2id, False, Window("document", 128, 32))
    assert windows.missing_word() == (1, 1)  # without sources it is not checked, but known: sentence 2, word 2
    # Windows never cut: in windows far shorter than the sentence, every word the tokenizer keeps has a sub-token.
    kept = Dataset.from_dict(
        {"tokens": [["Peter", "Blackburn", "rejects"] * 5], "tags": [["O"] * 15], "doc_id": [-1], "sent_idx": [0]}
    )
    _, windows = encode(kept, tokenizer, label2id, False, Window("sentence", 4, 1), ["kept.conll:1"])
    assert len(windows) > 5 and windows.missing_word() is None


def test_document_ids_from_json_lines_and_files_without_documents(tmp_path):
    from trainer.data.load import NO_DOCUMENTS, describe

    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps({"tokens": [w], "tags": ["O"], **({"doc_id": d} if d is not None else {})})
            for w, d in [("a", 7), ("b", 7), ("c", 3), ("d", 3), ("e", None), ("f", 7)]
        )
        + "\n"
    )
    data = load_data(files(jsonl))
    train = data.splits["train"]
    # Documents are numbered in order of first appearance; the ids the file wrote are kept for the predictions.
    assert train["doc_id"] == [0, 0, 1, 1, -1, 0] and train["sent_idx"] == [0, 1, 0, 1, 4, 0]
    assert data.document_ids("train") == [7, 7, 3, 3, -1, 7]
    assert describe(load_data(files(jsonl)))["documents"] == "-DOCSTART- / doc_id"
    # A column file without -DOCSTART- has no document boundaries: -1, the split is read in order.
    plain = load_data(files(FORMATS / "sample_iob1.conll"))
    assert set(plain.splits["train"]["doc_id"]) == {-1}
    assert plain.splits["train"]["sent_idx"][:3] == [0, 1, 2]
    assert describe(plain)["documents"] == NO_DOCUMENTS
    assert describe(load_data(Config(data_dir=str(CONLL_SAMPLE))))["documents"] == "-DOCSTART- / doc_id"


def test_string_document_ids_in_json_lines_keep_their_boundaries(tmp_path):
    """Exporters often write string ids ("doc3"): they bound documents like integers (they were read as no document
    at all, silently joining every document into one stream)."""
    jsonl = tmp_path / "docs.jsonl"
    ids = ["doc0", "doc0", "doc1", 1, None, -1, "doc0", ""]
    jsonl.write_text(
        "\n".join(json.dumps({"tokens": [w], "tags": ["O"], "doc_id": d}) for w, d in zip("abcdefgh", ids)) + "\n"
    )
    data = load_data(files(jsonl))
    train = data.splits["train"]
    # "doc1" and 1 are different ids; null and -1 (what predictions files write) mean no document.
    assert train["doc_id"] == [0, 0, 1, 2, -1, -1, 0, 3]
    assert train["sent_idx"] == [0, 1, 0, 0, 4, 5, 0, 0]
    assert data.document_ids("train") == ["doc0", "doc0", "doc1", 1, -1, -1, "doc0", ""]
    from trainer.reading.windows import group_documents

    assert group_documents(train["doc_id"], "document") == [0, 0, 1, 2, 3, 3, 4, 5]
    # A --max-train-samples cut keeps each sentence's id.
    assert load_data(files(jsonl, max_train_samples=3)).document_ids("train") == ["doc0", "doc0", "doc1"]


@pytest.mark.parametrize(
    "doc_id, found", [(1.0, "float 1.0"), (True, "bool true"), ([1], "list [1]"), ({"id": 1}, 'dict {"id": 1}')]
)
def test_document_id_of_another_type_names_file_line_and_expectation(tmp_path, doc_id, found):
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(
        json.dumps({"tokens": ["a"], "tags": ["O"], "doc_id": "d"})
        + "\n"
        + json.dumps({"tokens": ["b"], "tags": ["O"], "doc_id": doc_id})
        + "\n"
    )
    msg = error_of(files(jsonl))
    assert 'docs.jsonl:2: "doc_id" must be a string or an integer' in msg and f"found {found}" in msg
