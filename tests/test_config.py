import dataclasses
import json
from pathlib import Path

import pytest
from conftest import CONLL_SAMPLE

from trainer.__main__ import main, make_parser, parse_config
from trainer.config import Config

REPO = Path(__file__).resolve().parents[1]


def test_dashed_and_underscored_flags():
    cfg = parse_config(
        [
            "--learning-rate",
            "3e-5",
            "--per_device_train_batch_size",
            "4",
            "--no-label-all-tokens",
            "--data-dir",
            "d",
            "--bf16",
        ]
    )
    assert cfg.learning_rate == 3e-5 and cfg.per_device_train_batch_size == 4
    assert cfg.label_all_tokens is False and cfg.bf16 is True and cfg.data_dir == "d"


def test_defaults_and_the_course_recipe():
    cfg = Config()
    assert (
        cfg.model_name_or_path,
        cfg.learning_rate,
        cfg.num_train_epochs,
        cfg.weight_decay,
        cfg.per_device_train_batch_size,  # chosen from the data: ~1,000 sub-tokens a step, at least 100 steps
        cfg.context,
    ) == ("bert-base-cased", 1e-4, 3.0, 0.01, None, "auto")
    assert cfg.label_all_tokens is False  # first sub-token labels, the sub-token a word is read by
    assert cfg.dataset_name == "conll2003"  # with no local files
    course = parse_config([str(REPO / "recipes" / "course.yaml")])
    assert (
        course.model_name_or_path,
        course.learning_rate,
        course.num_train_epochs,
        course.weight_decay,
        course.per_device_train_batch_size,
        course.context,
        course.label_all_tokens,
        course.decoding,
    ) == ("bert-base-cased", 2e-5, 3.0, 0.01, 8, "sentence", True, "argmax")


def test_json_and_yaml_config_files(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"data_dir": "x", "num_train_epochs": 1}))
    (tmp_path / "c.yaml").write_text("data_dir: x\nnum_train_epochs: 1\n")
    assert (
        parse_config([str(tmp_path / "c.json")])
        == parse_config([str(tmp_path / "c.yaml")])
        == Config(data_dir="x", num_train_epochs=1)
    )


def test_config_files_take_values_as_the_flags_would(tmp_path, capsys):
    # YAML 1.1 reads 2e-5 (no dot) as a string; the README's example config holds exactly that.
    (tmp_path / "run.yaml").write_text("data-dir: x\nlearning_rate: 2e-5\nseed: 3\nstride: '8'\n")
    cfg = parse_config([str(tmp_path / "run.yaml")])
    assert (cfg.learning_rate, cfg.seed, cfg.stride) == (2e-5, 3, 8)
    for text, message in [
        ("stride: abc", "stride must be an integer, got 'abc'"),
        ("seed: 2.5", "seed must be an integer, got 2.5"),
        ("bf16: maybe", "bf16 must be true or false"),
        ("context: documents", "context must be one of auto, document, sentence"),
        ("learning_rat: 1", "unknown option 'learning_rat'"),
        ("- a list", "expected a mapping"),
        ("a: [", "cannot read the config file"),
    ]:
        (tmp_path / "bad.yaml").write_text(text + "\n")
        assert main([str(tmp_path / "bad.yaml")]) == 2
        assert f"{tmp_path / 'bad.yaml'}: {message}" in capsys.readouterr().err


def test_help_documents_every_option():
    text = make_parser().format_help()
    for f in dataclasses.fields(Config):
        assert f"--{f.name}" in text
        assert f.metadata.get("help"), f.name
    assert "(default: 0.0001)" in text and "(default: model)" in text  # defaults shown


@pytest.mark.parametrize("door", ["trainer", "evaluate", "predict", "push", "app"])
def test_every_command_line_parses_alike(door):
    """One helper for every door: each option has help, shows its default, takes dashes or underscores."""
    import app
    from trainer import cli
    from trainer.evaluate import EvaluateArgs
    from trainer.predict import PredictArgs
    from trainer.push import PushArgs

    kind = {"trainer": Config, "evaluate": EvaluateArgs, "predict": PredictArgs, "push": PushArgs,
            "app": app.AppArgs}[door]  # fmt: skip
    parser = cli.make_parser(kind, door)
    for action in parser._actions:
        if action.dest != "help":
            assert action.help, action.dest
            dashed = [o for o in action.option_strings if "-" in o[2:]]
            assert all(o.replace("-", "_")[:2] == "__" or o.replace("_", "-") in action.option_strings for o in dashed)
            assert all("--" + o[2:].replace("-", "_") in action.option_strings for o in action.option_strings)
    if door != "trainer":
        assert "--model" in parser._option_string_actions  # a trained model is --model wherever it is read


def test_a_recipe_file_runs_with_flags_that_override_it(tiny_encoder_dir, tmp_path):
    """`python -m trainer recipes/minilm-cpu.yaml --output-dir x`: the recipe's values, the flags' where given."""
    out = tmp_path / "run"
    assert main([str(REPO / "recipes" / "minilm-cpu.yaml"), "--model-name-or-path", tiny_encoder_dir, "--data-dir",
                 str(CONLL_SAMPLE), "--output-dir", str(out), "--max-train-samples", "8", "--max-eval-samples", "4",
                 "--num-train-epochs", "1", "--learning-rate", "3e-4"]) == 0  # fmt: skip
    run = json.loads((out / "run_config.json").read_text())
    assert (run["learning_rate"], run["num_train_epochs"], run["max_seq_length"], run["warmup_steps"]) == (
        3e-4, 1.0, 256, 0.1)  # fmt: skip


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--learning-rat", "1e-4"], "Some specified arguments are not used"),  # no abbreviations
        (["--learning-rate", "inf"], "--learning-rate must be a finite number, got inf"),
        (["--learning-rate", "nan"], "--learning-rate must be a finite number, got nan"),
        (["--num-train-epochs", "nan"], "--num-train-epochs must be a finite number, got nan"),
        (["--learning-rate", "0"], "--learning-rate must be > 0"),
        (["--layer-lr-decay", "0"], "--layer-lr-decay must be in (0, 1], got 0.0"),
        (["--layer-lr-decay", "1.5"], "--layer-lr-decay must be in (0, 1], got 1.5"),
        (["--bf16", "--fp16"], "exclude each other"),
        (["--overwrite-output-dir", "--resume"], "exclude each other"),
        (["--data-dir", "a", "--dataset-name", "b"], "not both"),
        (["--stride", "-1"], "--stride must be >= 0"),
        (["--stride", "128"], "less than half the window (256 sub-tokens"),  # the default window over documents
        (["--max-seq-length", "96", "--stride", "64"], "less than half the window (96 sub-tokens; e.g. --stride 24)"),
        (["--attention-dropout", "1"], "--attention-dropout must be in [0, 1), got 1.0"),
        (["--attention-dropout", "-0.1"], "--attention-dropout must be in [0, 1), got -0.1"),
        (["--hidden-dropout", "1"], "--hidden-dropout must be in [0, 1), got 1.0"),
    ],
)
def test_invalid_config_is_a_clear_error(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_data_file_exits_with_message(capsys, tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("a O\nb X-PER\n")
    assert main(["--train-file", str(bad), "--output-dir", str(tmp_path / "o")]) == 2
    assert f"{bad}:2: unknown tag prefix" in capsys.readouterr().err


def test_window_defaults_and_run_configs_from_before_windows(tmp_path):
    cfg = Config()
    assert (cfg.context, cfg.max_seq_length, cfg.stride) == ("auto", None, 64)
    assert Config(context="sentence", max_seq_length=96, stride=16).stride == 16
    Config(context="sentence", stride=200)  # the sentence window is the tokenizer's: checked when it is known
    # A run_config.json written before windows: that run read sentences; its stride is made to fit its window.
    old = tmp_path / "run_config.json"
    old.write_text(json.dumps({"data_dir": "x", "max_seq_length": 96}))
    loaded = Config.load(str(old))
    assert (loaded.context, loaded.max_seq_length, loaded.stride) == ("sentence", 96, 47)


def test_a_shorter_window_gets_its_own_default_stride(tmp_path):
    # A quarter of the window, at most 64: --max-seq-length alone is enough (it was refused for the stride of 256's).
    assert [Config(max_seq_length=n).stride for n in (512, 256, 128, 96, 4)] == [64, 64, 32, 24, 1]
    assert Config(max_seq_length=128, stride=8).stride == 8
    # Evaluating a saved run with another window: the run's stride was chosen for its own window.
    saved = tmp_path / "run_config.json"
    Config(data_dir="x").save(str(saved))
    assert Config.load(str(saved), max_seq_length=64).stride == 16
    assert Config.load(str(saved), max_seq_length=64, stride=4).stride == 4
    assert Config.load(str(saved)).stride == 64
