"""Batch prediction over corpora (trainer.predict) with the lookup model, whose entities are known in advance."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from engine_runs import launch_two_processes
from space_models import build_lookup_model

from trainer.predict import (
    InputFileError,
    main,
    merge_shards,
    predict_corpus,
    read_records,
    shard_path,
    text_hash,
)

TEXTS = ["John Smith flew to Paris.", "Nothing here.", "Google hired a German in Berlin.", "Reuters in London"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return build_lookup_model(str(tmp_path_factory.mktemp("predict-model")))


@pytest.fixture
def corpus(tmp_path) -> list[str]:
    txt = tmp_path / "a.txt"
    txt.write_text(f"{TEXTS[0]}\n\n{TEXTS[1]}\n", encoding="utf-8")  # a blank line is no text
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text(
        json.dumps({"id": "doc-7", "text": TEXTS[2]}) + "\n" + json.dumps({"text": TEXTS[3]}) + "\n", encoding="utf-8"
    )
    return [str(txt), str(jsonl)]


def rows(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_entities_with_offsets_in_input_order(model, corpus, tmp_path):
    out = tmp_path / "out.jsonl"
    assert main(["--model", model, "--input", *corpus, "--output", str(out), "--per-device-eval-batch-size", "3"]) == 0
    got = rows(out)
    assert [r["id"] for r in got] == [f"{corpus[0]}:1", f"{corpus[0]}:3", "doc-7", f"{corpus[1]}:2"]
    assert [r["source"] for r in got][2:] == [f"{corpus[1]}:1", f"{corpus[1]}:2"]
    for r, text in zip(got, TEXTS):
        for e in r["entities"]:
            assert text[e["start"] : e["end"]] == e["text"]
    assert [(e["type"], e["text"]) for e in got[0]["entities"]] == [("PER", "John Smith"), ("LOC", "Paris")]
    assert got[1]["entities"] == []
    assert [e["text"] for e in got[2]["entities"]] == ["Google", "German", "Berlin"]
    assert not list(tmp_path.glob("out.jsonl.shard-*"))


def test_a_killed_run_resumes_after_its_last_whole_line(model, corpus, tmp_path):
    out = tmp_path / "out.jsonl"
    shard = Path(shard_path(str(out), 0, 1))
    # The row for text 1, as a run would have written it but with no entities (so that a redo would show).
    kept = json.dumps(
        {"id": f"{corpus[0]}:1", "source": f"{corpus[0]}:1", "text_sha256": text_hash(TEXTS[0]), "entities": []}
    )
    shard.write_text(kept + "\n" + '{"id": "cut off', encoding="utf-8")  # one line done, the next cut by a kill
    predict_corpus(model, corpus, str(out), progress=False)
    got = rows(out)
    assert len(got) == 4 and got[0]["entities"] == []  # the finished line was not redone
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
    launch_two_processes(
        ["--model", model, "--input", *corpus, "--output", str(two), "--no-progress"], module="trainer.predict"
    )
    assert rows(two) == rows(one)


def test_an_output_that_is_no_finished_output_of_these_inputs_is_never_changed(
    model, corpus, tmp_path, capsys, monkeypatch
):
    import trainer.inference.tagger

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded for a run that is refused")

    monkeypatch.setattr(trainer.inference.tagger, "load_model", no_model)
    theirs = tmp_path / "existing.txt"
    theirs.write_bytes(b"important line 1\nimportant line 2 (no newline at end)")
    link = tmp_path / "link.txt"
    link.symlink_to(corpus[0])
    other = tmp_path / "other.jsonl"  # a finished output of other inputs, one row per text as here
    other.write_text(
        "".join(json.dumps({"id": f"x.txt:{i}", "source": f"x.txt:{i}", "entities": []}) + "\n" for i in range(1, 5)),
        encoding="utf-8",
    )
    for output, message in [
        (
            theirs,
            "existing.txt:1: expected the row for .*a\\.txt:1, found a line this tool did not "
            "write: .*; remove it or choose another --output",
        ),
        (Path(corpus[0]), "which is the input"),
        (link, "which is the input"),
        (Path(corpus[1]), "which is the input"),
        (other, r"other\.jsonl:1: expected the row for .*a\.txt:1, found a row for x\.txt:1"),
    ]:
        before = output.read_bytes()
        assert main(["--model", model, "--input", *corpus, "--output", str(output)]) == 2
        assert re.search(message, capsys.readouterr().err)
        assert output.read_bytes() == before
        assert not list(tmp_path.glob(output.name + ".shard-*"))
    # This tool's finished output of these inputs is recognised (nothing to do); with a line more or its last newline
    # gone, it is not, and is left as it was.
    sources = [f"{corpus[0]}:1", f"{corpus[0]}:3", f"{corpus[1]}:1", f"{corpus[1]}:2"]
    ids = [sources[0], sources[1], "doc-7", sources[3]]
    finished = "".join(
        json.dumps({"id": i, "source": s, "text_sha256": text_hash(t), "entities": []}) + "\n"
        for i, s, t in zip(ids, sources, TEXTS)
    )
    ours = tmp_path / "ours.jsonl"
    for text, code in [(finished, 0), (finished + "{}\n", 2), (finished[:-1], 2)]:
        ours.write_text(text, encoding="utf-8")
        assert main(["--model", model, "--input", *corpus, "--output", str(ours)]) == code
        assert ours.read_text(encoding="utf-8") == text


def test_a_resumed_run_refuses_rows_of_other_input(model, corpus, tmp_path):
    out = tmp_path / "out.jsonl"
    predict_corpus(model, corpus, str(out), progress=False)
    done = out.read_text(encoding="utf-8").splitlines(keepends=True)
    shard = Path(shard_path(str(out), 0, 1))
    out.unlink()
    # Rows of another corpus (a run killed over it into the same --output).
    shard.write_text(done[0].replace(corpus[0], "corpus.txt") + done[1], encoding="utf-8")
    with pytest.raises(
        InputFileError,
        match=r"shard-0-of-1:1: expected the row for .*a\.txt:1, found a row for "
        r"corpus\.txt:1.*delete .*out\.jsonl and any .*shard-\* files to "
        r"start over",
    ):
        predict_corpus(model, corpus, str(out), progress=False)
    # Rows of this corpus before it was edited: a line inserted at the top moves every text down a line.
    shard.write_text(done[0] + done[1], encoding="utf-8")
    Path(corpus[0]).write_text(f"Berlin\n{TEXTS[0]}\n\n{TEXTS[1]}\n", encoding="utf-8")
    with pytest.raises(
        InputFileError,
        match=r"shard-0-of-1:1: expected the row for .*a\.txt:1, found a row for "
        r".*a\.txt:1 whose id or text is not the one there now",
    ):
        predict_corpus(model, corpus, str(out), progress=False)
    assert shard.read_text(encoding="utf-8") == done[0] + done[1]  # refused: kept as it was
    assert not out.exists()


def test_a_resumed_run_finds_an_edited_text_whatever_its_entities(model, corpus, tmp_path):
    """An edited line whose row has no entities (or whose entities sit at the same offsets) is found by the text's
    fingerprint: its stale row is never kept, and a finished output of the old text is no output of the new."""
    out = tmp_path / "out.jsonl"
    predict_corpus(model, corpus, str(out), progress=False)
    done = out.read_text(encoding="utf-8").splitlines(keepends=True)
    Path(corpus[0]).write_text(f"{TEXTS[0]}\n\nNothing here?\n", encoding="utf-8")  # text 2 had no entities
    with pytest.raises(InputFileError, match=r"out\.jsonl:2: expected the row for .*a\.txt:3"):
        predict_corpus(model, corpus, str(out), progress=False)
    out.unlink()
    Path(shard_path(str(out), 0, 1)).write_text("".join(done[:2]), encoding="utf-8")  # killed after two rows
    with pytest.raises(InputFileError, match=r"shard-0-of-1:2: expected the row for .*a\.txt:3"):
        predict_corpus(model, corpus, str(out), progress=False)


def test_the_output_is_checked_writable_before_the_model_loads_and_no_file_of_the_user_is_touched(
    model, corpus, tmp_path, capsys, monkeypatch
):
    import trainer.inference.tagger

    loaded = []
    real = trainer.inference.tagger.load_model
    monkeypatch.setattr(trainer.inference.tagger, "load_model", lambda *a, **k: loaded.append(1) or real(*a, **k))
    for unwritable in ("/sys/x.jsonl", "/proc/x.jsonl"):
        assert main(["--model", model, "--input", *corpus, "--output", unwritable]) == 2
        assert "cannot write in" in capsys.readouterr().err and not loaded
    out = tmp_path / "out.jsonl"
    mine = tmp_path / "out.jsonl.tmp"  # the user's own file, beside the output
    mine.write_text("keep me", encoding="utf-8")
    assert main(["--model", model, "--input", *corpus, "--output", str(out)]) == 0
    assert mine.read_text(encoding="utf-8") == "keep me" and len(rows(out)) == 4


def test_a_text_longer_than_the_limit_gets_an_error_row_naming_its_line(model, tmp_path):
    src = tmp_path / "long.txt"
    src.write_text("Paris\n" + "Berlin " * 2000 + "\nLondon\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["--model", model, "--input", str(src), "--output", str(out), "--max-chars", "10000"]) == 0
    got = rows(out)
    assert [e["text"] for e in got[0]["entities"]] == ["Paris"] and [e["text"] for e in got[2]["entities"]] == [
        "London"
    ]
    assert got[1]["source"].endswith("long.txt:2") and "14,000 characters; the limit is 10,000" in got[1]["error"]


def test_a_lone_surrogate_in_an_id_is_written_and_the_run_goes_on(model, tmp_path):
    src = tmp_path / "s.jsonl"
    src.write_text(
        '{"id": 1, "text": "Google is in Berlin."}\n{"id": "x\\udc00y", "text": "Paris"}\n{"text": "London"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    predict_corpus(model, [str(src)], str(out), progress=False)
    got = rows(out)
    assert [r["id"] for r in got] == [1, "x\udc00y", f"{src}:3"]
    assert [[e["text"] for e in r["entities"]] for r in got] == [["Google", "Berlin"], ["Paris"], ["London"]]
    predict_corpus(model, [str(src)], str(out), progress=False)  # finished: its rows are recognised as this input's
    assert rows(out) == got


def test_bad_arguments_and_encodings_are_refused_before_the_model_loads(model, corpus, tmp_path, capsys, monkeypatch):
    import trainer.inference.tagger

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded for a run that is refused")

    monkeypatch.setattr(trainer.inference.tagger, "load_model", no_model)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Paris\nJosé Mourinho lives in Madrid.\n".encode("latin-1"))
    assert main(["--model", model, "--input", str(latin1), "--output", str(tmp_path / "l.jsonl")]) == 2
    assert re.search(
        r"latin1\.txt:2: not UTF-8 \(byte 0xe9 at byte 4 of the line\): expected UTF-8", capsys.readouterr().err
    )
    assert main(["--model", model, "--input", *corpus, "--output", str(tmp_path / "nodir" / "x.jsonl")]) == 2
    assert "nodir does not exist" in capsys.readouterr().err
    for args in (
        ["--backend", "onxx"],
        ["--per-device-eval-batch-size", "0"],
        ["--per-device-eval-batch-size", "-1"],
        ["--format", "csv"],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["--model", model, "--input", *corpus, "--output", str(tmp_path / "o.jsonl"), *args])
        assert exit_.value.code == 2
        assert f"error: argument {args[0]}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        predict_corpus(model, corpus, str(tmp_path / "o.jsonl"), batch_size=0)
    with pytest.raises(ValueError, match="unknown inference backend 'onxx'"):
        predict_corpus(model, corpus, str(tmp_path / "o.jsonl"), backend="onxx")
    assert not list(tmp_path.glob("[lo]*.jsonl*"))  # nothing written, not even a shard


def test_the_format_does_not_hang_on_the_case_of_the_extension(model, tmp_path, caplog):
    for name in ("UP.JSONL", "a.ndjson", "b.Json"):
        (tmp_path / name).write_text('{"text": "Paris"}\n', encoding="utf-8")
        assert [r.text for r in read_records([str(tmp_path / name)])] == ["Paris"]
    txt = tmp_path / "lines.txt"
    txt.write_text('{"text": "Paris"}\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="trainer.predict"):
        assert [r.text for r in read_records([str(txt)])] == ['{"text": "Paris"}']
    assert "lines.txt:1 is a JSON object" in caplog.text and "--format jsonl" in caplog.text
    assert [r.text for r in read_records([str(txt)], fmt="jsonl")] == ["Paris"]
    assert [r.text for r in read_records([str(tmp_path / "a.ndjson")], fmt="text")] == ['{"text": "Paris"}']
    out = tmp_path / "out.jsonl"
    assert main(["--model", model, "--input", str(txt), "--output", str(out), "--format", "jsonl"]) == 0
    assert [(e["text"], e["start"]) for e in rows(out)[0]["entities"]] == [("Paris", 0)]


def test_info_is_logged_for_the_project_only(tmp_path):
    """onnxruntime's quantizer logs dozens of INFO lines to the root logger: main() must not turn them on."""
    root, project = logging.getLogger(), logging.getLogger("trainer")
    saved = root.handlers[:], root.level, project.level
    root.handlers[:] = []  # as in a fresh `python -m trainer.predict`, where basicConfig configures the root logger
    try:
        assert main(["--model", "m", "--input", str(tmp_path / "missing.txt"), "--output", str(tmp_path / "o")]) == 2
        assert logging.getLogger("trainer.inference.backends").isEnabledFor(logging.INFO)
        assert not root.isEnabledFor(logging.INFO) and not logging.getLogger("onnxruntime").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        project.setLevel(saved[2])
