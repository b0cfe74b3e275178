"""Batch prediction over corpora (trainer.predict) with the lookup model, whose entities are known in advance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine_runs import launch_two_processes
from space_models import build_lookup_model
from trainer.predict import InputFileError, main, merge_shards, predict_corpus, read_records, shard_path

TEXTS = ["John Smith flew to Paris.", "Nothing here.", "Google hired a German in Berlin.", "Reuters in London"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return build_lookup_model(str(tmp_path_factory.mktemp("predict-model")))


@pytest.fixture
def corpus(tmp_path) -> list[str]:
    txt = tmp_path / "a.txt"
    txt.write_text(f"{TEXTS[0]}\n\n{TEXTS[1]}\n", encoding="utf-8")  # a blank line is no text
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text(json.dumps({"id": "doc-7", "text": TEXTS[2]}) + "\n" + json.dumps({"text": TEXTS[3]}) + "\n",
                     encoding="utf-8")
    return [str(txt), str(jsonl)]


def rows(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_entities_with_offsets_in_input_order(model, corpus, tmp_path):
    out = tmp_path / "out.jsonl"
    assert main(["--model", model, "--input", *corpus, "--output", str(out), "--batch-size", "3"]) == 0
    got = rows(out)
    assert [r["id"] for r in got] == [f"{corpus[0]}:1", f"{corpus[0]}:3", "doc-7", f"{corpus[1]}:2"]
    assert [r["source"] for r in got][2:] == [f"{corpus[1]}:1", f"{corpus[1]}:2"]
    for r, text in zip(got, TEXTS):
        for e in r["entities"]:
            assert text[e["start"]:e["end"]] == e["text"]
    assert [(e["type"], e["text"]) for e in got[0]["entities"]] == [("PER", "John Smith"), ("LOC", "Paris")]
    assert got[1]["entities"] == []
    assert [e["text"] for e in got[2]["entities"]] == ["Google", "German", "Berlin"]
    assert not list(tmp_path.glob("out.jsonl.shard-*"))


def test_a_killed_run_resumes_after_its_last_whole_line(model, corpus, tmp_path):
    out = tmp_path / "out.jsonl"
    shard = Path(shard_path(str(out), 0, 1))
    kept = json.dumps({"id": "kept", "source": "x", "entities": []})
    shard.write_text(kept + "\n" + '{"id": "cut off', encoding="utf-8")  # one line done, the next cut by a kill
    predict_corpus(model, corpus, str(out), progress=False)
    got = rows(out)
    assert len(got) == 4 and got[0]["id"] == "kept"  # the finished line was not redone
    assert [e["text"] for e in got[1]["entities"]] == [] and got[2]["id"] == "doc-7"
    predict_corpus(model, corpus, str(out), progress=False)  # finished: nothing to do, nothing changes
    assert rows(out) == got


def test_a_bad_text_gets_its_error_and_the_corpus_goes_on(model, tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text("\n".join(json.dumps({"text": t}) for t in ["Paris", 5, "Berlin \ud800"]) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    predict_corpus(model, [str(src)], str(out), progress=False)
    got = rows(out)
    assert [e["text"] for e in got[0]["entities"]] == ["Paris"]
    assert "expected text" in got[1]["error"] and "surrogate" in got[2]["error"]


def test_bad_input_names_file_and_line(model, tmp_path, capsys):
    src = tmp_path / "d.jsonl"
    src.write_text('{"text": "Paris"}\n{"txt": "x"}\n', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"d\.jsonl:2: expected a JSON object with a 'text' field"):
        list(read_records([str(src)]))
    assert main(["--model", model, "--input", str(src), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "d.jsonl:2" in capsys.readouterr().err


def test_shards_merge_in_input_order(tmp_path):
    out = str(tmp_path / "o.jsonl")
    for rank in range(2):
        Path(shard_path(out, rank, 2)).write_text("".join(f'{{"k": {k}}}\n' for k in range(rank, 5, 2)))
    merge_shards(out, 2, 5)
    assert [r["k"] for r in rows(out)] == [0, 1, 2, 3, 4]


def test_a_launch_that_accelerate_does_not_see_is_refused(model, corpus, tmp_path, monkeypatch):
    """Processes started as 2 that Accelerate runs as 1 would each tag every text into the same shard."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="launched as 2 processes .* but Accelerate runs 1"):
        predict_corpus(model, corpus, str(tmp_path / "out.jsonl"), progress=False)
    assert not list(tmp_path.glob("out.jsonl*"))  # nothing tagged, no shard written


def test_two_processes_under_accelerate_launch(model, corpus, tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    predict_corpus(model, corpus, str(one), progress=False)
    launch_two_processes(["--model", model, "--input", *corpus, "--output", str(two), "--no-progress"],
                         module="trainer.predict")
    assert rows(two) == rows(one)
