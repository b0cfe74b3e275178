import logging

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

import trainer.data as data_mod
from trainer.config import Config
from trainer.data import DataError, load_data

from conftest import CONLL_SAMPLE, DATA

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
    assert any("val.conll:1" in r.getMessage() and "'B-BRAND' never occurs in training" in r.getMessage()
               for r in caplog.records)


def test_hub_alias_and_same_columns_as_files(monkeypatch):
    """The Hub path (mocked: tests are offline) maps `conll2003` to its parquet copy and yields the same columns."""
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    iob2 = load_data(files(FORMATS / "sample_iob2.jsonl"))
    rows = iob2.splits["train"]
    feats = Features({"id": Value("string"), "tokens": List(Value("string")),
                      "ner_tags": List(ClassLabel(names=names))})
    ds = Dataset.from_dict({"id": [str(i) for i in range(len(rows))], "tokens": rows["tokens"],
                            "ner_tags": [[names.index(t) for t in tags] for tags in rows["tags"]]}, features=feats)
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


def test_hub_dataset_missing_column(monkeypatch):
    ds = Dataset.from_dict({"words": [["a"]], "labels": [["O"]]})
    monkeypatch.setattr(data_mod, "load_dataset", lambda *a, **k: DatasetDict({"train": ds}))
    msg = error_of(Config(dataset_name="me/data"))
    assert "no column 'tokens'" in msg and "--tokens-column-name" in msg
