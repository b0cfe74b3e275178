import json

from trainer.outputs import (TrainStats, read_predictions, read_results, read_train_stats, write_evaluation,
                             write_train_stats)


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
