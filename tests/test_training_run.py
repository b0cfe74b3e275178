"""The Trainer engine end to end: plumbing on a tiny random BERT, and real learning with the pretrained MiniLM."""

import json
import os

import pytest
import torch
from conftest import CONLL_SAMPLE, is_valid_iob2, train_cli
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForTokenClassification, set_seed

from trainer.config import Config
from trainer.data.load import load_data
from trainer.evaluate import main as evaluate_main
from trainer.evaluation.metrics import score
from trainer.evaluation.word_level import predict_words
from trainer.outputs import read_predictions, read_results
from trainer.reading.windows import Window
from trainer.training.prepare import load_tokenizer

# A run of seconds on the sample: 16 training sentences, 8 to score, one epoch.
SMALL_RUN = [
    "--data-dir",
    str(CONLL_SAMPLE),
    "--max-train-samples",
    "16",
    "--max-eval-samples",
    "8",
    "--num-train-epochs",
    "1",
]


def test_output_directory_holds_everything_consumers_read(tiny_output):
    files = set(os.listdir(tiny_output))
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "run_config.json",
        "eval_results.json",
        "train_results.json",
        "predictions_validation.jsonl",
        "predictions_test.jsonl",
    } <= files
    config = AutoConfig.from_pretrained(tiny_output)
    assert config.id2label[0] == "O" and "B-PER" in config.label2id  # labels live in the model config
    results = read_results(tiny_output)
    for split in ("validation", "test"):
        rec = results[split]
        assert set(rec["overall"]) == {"precision", "recall", "f1", "accuracy"}
        assert rec["num_sentences"] == 20 and rec["protocol"]["scheme"] == "IOB2"
        rows = read_predictions(tiny_output, split)
        assert len(rows) == 20 and all(len(r["tokens"]) == len(r["gold"]) == len(r["pred"]) for r in rows)
        assert score([r["gold"] for r in rows], [r["pred"] for r in rows], "IOB2")["overall"] == rec["overall"]
    cfg = Config.load(os.path.join(tiny_output, "run_config.json"))
    assert cfg.max_train_samples == 60 and cfg.data_dir == str(CONLL_SAMPLE)
    train = json.load(open(os.path.join(tiny_output, "train_results.json")))
    assert train["train_tokens_per_s"] > 0 and train["data"]["scheme"] == "IOB1"
    assert any(name.startswith("checkpoint-") for name in files)


def test_evaluate_cli_reproduces_training_scores(tiny_output, tmp_path, capsys):
    out = tmp_path / "eval-test"
    argv = ["--model", tiny_output, "--split", "test", "--output-dir", str(out), "--max-eval-samples", "20"]
    assert evaluate_main(argv) == 0
    assert "test: precision" in capsys.readouterr().out
    assert read_results(str(out))["test"]["overall"] == read_results(tiny_output)["test"]["overall"]
    assert len(read_predictions(str(out), "test")) == 20
    # The model records its decoding (the default: valid IOB2 sequences); --decoding overrides it.
    assert read_results(str(out))["test"]["protocol"]["window"]["decoding"] == "viterbi"
    assert all(is_valid_iob2(r["pred"]) for r in read_predictions(str(out), "test"))
    assert evaluate_main([*argv, "--decoding", "argmax"]) == 0
    assert read_results(str(out))["test"]["protocol"]["window"]["decoding"] == "argmax"


def test_evaluate_cli_on_other_files(tiny_output, tmp_path):
    sample = os.path.join(os.path.dirname(__file__), "data", "formats", "sample_bioes.conll")
    assert (
        evaluate_main(["--model", tiny_output, "--split", "test", "--test-file", sample, "--output-dir", str(tmp_path)])
        == 0
    )
    assert read_results(str(tmp_path))["test"]["num_sentences"] == 30


def test_evaluate_cli_reads_only_the_split_it_scores(tiny_output, tmp_path, monkeypatch):
    """--split test needs only a test file (a --data-dir without a training file was refused) and reads no other."""
    import shutil

    import trainer.data.load as data_mod

    only_test = tmp_path / "only-test"
    only_test.mkdir()
    shutil.copy(CONLL_SAMPLE / "eng.testb", only_test / "test.conll")
    read = []
    real_read_file = data_mod.read_file
    monkeypatch.setattr(data_mod, "read_file", lambda path, cfg: read.append(path) or real_read_file(path, cfg))

    def evaluate(split: str, data_dir, out: str, *more: str) -> int:
        argv = [
            "--model",
            tiny_output,
            "--split",
            split,
            "--data-dir",
            str(data_dir),
            "--output-dir",
            str(tmp_path / out),
        ]
        return evaluate_main([*argv, *more])

    assert evaluate("test", only_test, "a", "--max-eval-samples", "20") == 0
    # The same scores as training's (read with the training file then: the scheme is the same, IOB1).
    assert read_results(str(tmp_path / "a"))["test"]["overall"] == read_results(tiny_output)["test"]["overall"]
    read.clear()
    assert evaluate("validation", CONLL_SAMPLE, "b", "--max-eval-samples", "20") == 0
    assert [os.path.basename(p) for p in read] == ["eng.testa"]
    # A split the directory has no file for names what was looked for.
    assert evaluate("validation", only_test, "c") == 2
    assert not os.path.exists(tmp_path / "c" / "eval_results.json")


def test_evaluate_cli_max_eval_samples_limits_the_training_split_too(tiny_output, tmp_path):
    assert (
        evaluate_main(
            ["--model", tiny_output, "--split", "train", "--max-eval-samples", "5", "--output-dir", str(tmp_path)]
        )
        == 0
    )
    assert read_results(str(tmp_path))["train"]["num_sentences"] == 5
    assert len(read_predictions(str(tmp_path), "train")) == 5


def test_evaluate_cli_keeps_string_document_ids_of_json_lines(tiny_output, tmp_path):
    """Documents named by strings in JSON lines are read as documents, and the predictions name them as the file
    did."""
    test = load_data(Config(data_dir=str(CONLL_SAMPLE))).splits["test"]
    assert len(set(test["doc_id"])) > 1  # the sample's test split holds several documents
    jsonl = tmp_path / "test.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"tokens": t, "tags": g, "doc_id": f"doc{d}"}) + "\n"
            for t, g, d in zip(test["tokens"], test["tags"], test["doc_id"])
        )
    )
    for name, path in (("jsonl", jsonl), ("conll", CONLL_SAMPLE / "eng.testb")):
        argv = ["--model", tiny_output, "--split", "test", "--test-file", str(path)]
        assert evaluate_main([*argv, "--output-dir", str(tmp_path / name)]) == 0
    rows = read_predictions(str(tmp_path / "jsonl"), "test")
    assert [r["doc_id"] for r in rows] == [f"doc{d}" for d in test["doc_id"]]
    assert [r["sent_idx"] for r in rows] == test["sent_idx"]
    # Read in the same document windows as the CoNLL file (with -DOCSTART- lines): the same predictions.
    assert [r["pred"] for r in rows] == [r["pred"] for r in read_predictions(str(tmp_path / "conll"), "test")]


def test_evaluate_cli_refuses_to_mix_two_models_results(tiny_output, out, tmp_path, capsys):
    """Each record names its model; another model's results are refused, not merged into the same file."""
    ev = tmp_path / "ev"
    assert (
        evaluate_main(
            ["--model", tiny_output, "--split", "validation", "--max-eval-samples", "5", "--output-dir", str(ev)]
        )
        == 0
    )
    assert read_results(str(ev))["validation"]["model"] == os.path.realpath(tiny_output)
    capsys.readouterr()
    assert evaluate_main(["--model", out, "--split", "test", "--max-eval-samples", "5", "--output-dir", str(ev)]) == 2
    err = capsys.readouterr().err
    assert f"{ev / 'eval_results.json'} holds results of another model" in err and "--output-dir" in err
    assert os.path.realpath(tiny_output) in err and os.path.realpath(out) in err
    assert set(read_results(str(ev))) == {"validation"} and read_predictions(str(ev), "test") is None


def test_evaluate_cli_into_the_model_directory_rewrites_its_card(out):
    """The default output directory is the trained run's own: the card must report the new scores (it kept the
    old ones, so README.md and eval_results.json disagreed)."""
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    assert read_results(out)["test"]["num_sentences"] == 20
    before = ModelCard.load(os.path.join(out, "README.md")).text
    assert "the first 20 sentences of validation and the first 20 sentences of test" in before
    assert evaluate_main(["--model", out, "--split", "test"]) == 0
    results = read_results(out)
    assert results["test"]["model"] == "." and results["test"]["num_sentences"] > 20
    assert "max_eval_samples" not in results["test"]  # scored in full now
    assert results["validation"]["num_sentences"] == results["validation"]["max_eval_samples"] == 20  # kept
    card = ModelCard.load(os.path.join(out, "README.md"))
    _, index = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert {(r.dataset_split, r.metric_type): r.metric_value for r in index} == {
        (split, m): round(results[split]["overall"][m], 4)
        for split in ("validation", "test")
        for m in ("precision", "recall", "f1", "accuracy")
    }
    assert f"| {results['test']['num_sentences']} | {results['test']['num_words']} |" in card.text
    # The quick-run note names what is still a sample: it said both splits were (the run's setting) after one was not.
    assert "evaluated on the first 20 sentences of validation." in card.text and "sentences of test" not in card.text


def test_first_subtoken_only_strategy_trains(tiny_encoder_dir, tmp_path):
    out = tmp_path / "m"
    train_cli(
        [
            "--model-name-or-path",
            tiny_encoder_dir,
            "--data-dir",
            str(CONLL_SAMPLE),
            "--output-dir",
            str(out),
            "--max-train-samples",
            "20",
            "--max-eval-samples",
            "10",
            "--num-train-epochs",
            "1",
            "--no-label-all-tokens",
            "--eval-strategy",
            "no",
        ]
    )
    assert read_results(str(out))["validation"]["num_sentences"] == 10


def test_bf16_run_is_scored_as_its_saved_model_in_fp32(tiny_encoder_dir, tmp_path, monkeypatch):
    """A bf16 run trains under autocast (and, on a CPU, with eager attention), but its scores are those of the saved
    model as users load it: the model scored is read back from disk, without Accelerate's bf16 autocast wrapper
    around its forward, which the trained model object keeps (a real bf16 run scored 93.39 there, 93.43 saved)."""
    from trainer import machine
    from trainer.training import hf_trainer as train
    from trainer.training import precision

    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"amx_bf16"}))  # bf16 (emulated if need be)
    scored = []
    monkeypatch.setattr(train, "finish", lambda cfg, prep, model, stats: scored.append(model) or {})
    out = tmp_path / "m"
    train_cli(["--model-name-or-path", tiny_encoder_dir, "--output-dir", str(out), *SMALL_RUN, "--bf16"])
    assert list(out.glob("checkpoint-*/trainer_state.json"))  # it trained
    (model,) = scored
    assert not hasattr(model, "_original_forward")  # Accelerate's mixed-precision forward wrapper
    assert model.config._attn_implementation == "sdpa" and model.name_or_path == str(out)


@pytest.mark.parametrize("engine", ["trainer", "accelerate"])
def test_frozen_word_embeddings_stay_as_pretrained_while_the_rest_trains(tiny_encoder_dir, tmp_path, engine):
    out = tmp_path / "m"
    train_cli(["--model-name-or-path", tiny_encoder_dir, "--output-dir", str(out), *SMALL_RUN,
               "--learning-rate", "1e-3", "--freeze-word-embeddings", "--engine", engine])  # fmt: skip
    base, trained = load_file(f"{tiny_encoder_dir}/model.safetensors"), load_file(f"{out}/model.safetensors")
    key = "embeddings.word_embeddings.weight"
    assert torch.equal(trained[f"bert.{key}"], base[key])
    for other in ("embeddings.position_embeddings.weight", "encoder.layer.0.output.dense.weight"):
        assert not torch.equal(trained[f"bert.{other}"], base[other])


def test_minilm_learns_conll_entities(minilm_output, minilm_dir):
    """A minute or two of CPU on ~400 sentences: the loss falls and validation F1 ends far above the untrained
    model's."""
    train = json.load(open(os.path.join(minilm_output, "train_results.json")))
    losses = [h["loss"] for h in train["log_history"] if "loss" in h]
    assert losses[-1] < 0.5 * losses[0]
    trained_f1 = read_results(minilm_output)["validation"]["overall"]["f1"]

    data = load_data(Config(data_dir=str(CONLL_SAMPLE)))
    labels = dict(enumerate(data.labels))
    set_seed(0)
    untrained = AutoModelForTokenClassification.from_pretrained(
        minilm_dir, id2label=labels, label2id={v: k for k, v in labels.items()}
    )
    val = data.splits["validation"]
    pred = predict_words(
        untrained, load_tokenizer(minilm_dir), list(val["tokens"]), Window("document", 128, 32), list(val["doc_id"])
    )
    untrained_f1 = score(val["tags"], pred, "IOB2")["overall"]["f1"]
    # 400 sentences take an uncased 22M encoder to about 0.45 (full data: 0.88); the untrained head scores ~0.
    assert trained_f1 > 0.35, trained_f1
    assert trained_f1 > untrained_f1 + 0.3, (trained_f1, untrained_f1)


def test_document_windows_score_every_sentence_once_as_seqeval_does(tiny_output):
    """The default run reads documents in windows (recorded in the model config); its validation and test files still
    hold one row per sentence, in dataset order, and the scores are seqeval's on them; the per-epoch validation of the
    saved model gave the same numbers."""
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    config = AutoConfig.from_pretrained(tiny_output)
    # case_signal: the default (auto) turns it on for the tiny BERT with MiniLM's uncased tokenizer.
    assert config.ner_window == {
        "context": "document",
        "max_length": 256,
        "stride": 64,
        "decoding": "viterbi",
        "case_signal": "token_type",
    }
    data = load_data(Config.load(os.path.join(tiny_output, "run_config.json")))
    results = read_results(tiny_output)
    for split in ("validation", "test"):
        rows = read_predictions(tiny_output, split)
        d = data.splits[split].select(range(20))
        assert [(r["doc_id"], r["sent_idx"], r["tokens"], r["gold"]) for r in rows] == list(
            zip(d["doc_id"], d["sent_idx"], d["tokens"], d["tags"])
        )
        gold, pred = [r["gold"] for r in rows], [r["pred"] for r in rows]
        assert results[split]["overall"] == pytest.approx(
            {
                "precision": precision_score(gold, pred),
                "recall": recall_score(gold, pred),
                "f1": f1_score(gold, pred),
                "accuracy": accuracy_score(gold, pred),
            }
        )
        assert results[split]["protocol"]["window"] == config.ner_window
    train = json.load(open(os.path.join(tiny_output, "train_results.json")))
    evals = [e for e in train["log_history"] if "eval_f1" in e]
    best = next(e for e in evals if e["eval_f1"] == max(x["eval_f1"] for x in evals))
    assert best["eval_num_sentences"] == 20 and best["eval_num_windows"] < 20  # several sentences per window
    assert best["eval_accuracy"] == results["validation"]["overall"]["accuracy"]
    assert train["data"]["documents"] == "-DOCSTART- / doc_id"


def test_sentence_context_predicts_as_before(tiny_output):
    """--context sentence reads each short sentence alone, in one window: the former per-sentence prediction."""
    from transformers import AutoModelForTokenClassification

    from trainer.reading.labels import first_subtoken_positions

    model = AutoModelForTokenClassification.from_pretrained(tiny_output).eval()
    tokenizer = load_tokenizer(tiny_output)
    val = load_data(Config(data_dir=str(CONLL_SAMPLE))).splits["validation"]
    sentences = list(val["tokens"])
    pred = predict_words(model, tokenizer, sentences, Window("sentence", 512, 64), list(val["doc_id"]))
    enc = tokenizer(
        sentences, is_split_into_words=True, truncation=True, max_length=512, padding=True, return_tensors="pt"
    )
    with torch.inference_mode():
        ids = model(**enc).logits.argmax(-1).tolist()
    before = [
        [model.config.id2label[ids[i][first_subtoken_positions(enc.word_ids(i))[w]]] for w in range(len(s))]
        for i, s in enumerate(sentences)
    ]
    assert pred == before
