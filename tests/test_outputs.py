import json
import os

import pytest

from trainer.outputs import (
    THIS_MODEL,
    ResultsModelError,
    TrainStats,
    read_predictions,
    read_results,
    read_train_stats,
    results_model,
    write_evaluation,
    write_train_stats,
)


def test_result_files_merge_splits(tmp_path):
    rec = {"overall": {"f1": 0.5}}
    write_evaluation(str(tmp_path), "validation", rec, [{"tokens": ["a"], "gold": ["O"], "pred": ["O"]}])
    write_evaluation(str(tmp_path), "test", {"overall": {"f1": 0.7}}, [])
    assert set(read_results(str(tmp_path))) == {"validation", "test"}
    assert read_predictions(str(tmp_path), "validation")[0]["tokens"] == ["a"]
    assert read_predictions(str(tmp_path), "test") == []
    json.loads((tmp_path / "eval_results.json").read_text())
    assert not list(tmp_path.glob("*.tmp"))  # written through temporary files, renamed into place


def test_missing_files_read_as_none(tmp_path):
    assert read_results(str(tmp_path)) is None
    assert read_predictions(str(tmp_path), "validation") is None
    assert read_train_stats(str(tmp_path)) is None


def test_train_stats_round_trip_and_ignore_unknown_keys(tmp_path):
    stats = TrainStats(engine="trainer", train_runtime_s=1.5, global_steps=3, log_history=[{"loss": 1.0}])
    write_train_stats(str(tmp_path), stats)
    assert read_train_stats(str(tmp_path)) == stats
    raw = json.loads((tmp_path / "train_results.json").read_text())
    raw["from_a_newer_version"] = 1
    (tmp_path / "train_results.json").write_text(json.dumps(raw))
    assert read_train_stats(str(tmp_path)) == stats


def test_results_of_another_model_are_refused_not_merged(tmp_path):
    """One eval_results.json never holds two models' scores (it held an NER model's validation and a chunker's test
    side by side, neither naming its model)."""
    out = str(tmp_path / "eval")
    write_evaluation(out, "validation", {"overall": {"f1": 0.5}, "model": "/models/ner"}, [])
    write_evaluation(out, "test", {"overall": {"f1": 0.6}, "model": "/models/ner"}, [])  # same model: merged
    with pytest.raises(ResultsModelError) as e:
        write_evaluation(out, "test", {"overall": {"f1": 0.9}, "model": "/models/chunk"}, [{"tokens": ["a"]}])
    msg = str(e.value)
    assert msg.startswith(os.path.join(out, "eval_results.json")) and "/models/ner" in msg and "/models/chunk" in msg
    assert "--output-dir" in msg
    # Nothing was written: the file and the predictions are the first model's.
    assert {s: r["overall"]["f1"] for s, r in read_results(out).items()} == {"validation": 0.5, "test": 0.6}
    assert read_predictions(out, "test") == []


def test_records_without_a_model_count_as_the_directorys_own(tmp_path):
    """eval_results.json written before records named their model: by training or by trainer.evaluate's default,
    the model saved there, so that model may be evaluated again into its directory; another is refused."""
    write_evaluation(str(tmp_path), "validation", {"overall": {"f1": 0.5}}, [])
    write_evaluation(str(tmp_path), "test", {"overall": {"f1": 0.6}, "model": THIS_MODEL}, [])
    with pytest.raises(ResultsModelError, match="the model saved in that directory"):
        write_evaluation(str(tmp_path), "test", {"overall": {"f1": 0.6}, "model": "bert-base-cased"}, [])


def test_results_name_a_model_by_path_or_as_the_directorys_own(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    assert results_model(str(model), str(model)) == THIS_MODEL
    assert results_model(str(model) + "/", os.path.relpath(model)) == THIS_MODEL
    assert results_model(str(model), str(tmp_path / "eval")) == os.path.realpath(model)
    assert results_model("dslim/bert-base-NER", str(tmp_path)) == "dslim/bert-base-NER"  # a Hub id
