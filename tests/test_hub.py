"""Model card and push (trainer.hub, trainer.push), on a real `python -m trainer` output directory (`tiny_output`).

No test touches the network: uploads go to a fake HfApi that applies upload_folder's own file filter, or to the real
HfApi in offline mode / pointed at a closed local port.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import ModelCard, constants
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.repocard_data import model_index_to_eval_results
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

from trainer import hub
from trainer.hub import CardError, HubPushError, build_model_card, push, validate_card, write_model_card
from trainer.metrics import read_predictions, read_results

REPO = Path(__file__).resolve().parents[1]
HUB_ID = "someone/tiny-ner"
TOKEN = "hf_" + "TESTtokenNEVERshownXYZ0123456789"  # a fake token, spelt in two parts so secret scanners do not flag it


@pytest.fixture
def out(tiny_output, tmp_path) -> str:
    """A private copy of the trained output (tests write README.md into it), with the optimizer state and pickled
    training arguments a Trainer leaves behind, so the upload filter is tested against them."""
    dst = tmp_path / "model"
    shutil.copytree(tiny_output, dst)
    assert any(p.name.startswith("checkpoint-") for p in dst.iterdir()), "the fixture should keep checkpoints"
    (dst / "optimizer.pt").write_bytes(b"optimizer state")
    (dst / "training_args.bin").write_bytes(b"pickle")
    return str(dst)


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    """No HF_TOKEN and no cached login, whatever the machine running the tests has."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


def snapshot(folder: str) -> dict[str, str]:
    digests = {}
    for root, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                digests[os.path.relpath(path, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return digests


def all_text(folder: str) -> str:
    chunks = []
    for root, _, files in os.walk(folder):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                chunks.append(fh.read().decode("latin-1"))
    return "\n".join(chunks)


class FakeHfApi:
    """Records the calls `push` makes. upload_folder computes the files it would send with huggingface_hub's own
    filter (the given ignore patterns plus its defaults), as the real `HfApi.upload_folder` does."""

    def __init__(self, failures: list[BaseException] | None = None):
        self.failures = list(failures or [])
        self.calls: list[tuple[str, dict]] = []
        self.uploaded: list[str] = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))
        if self.failures:
            raise self.failures.pop(0)
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, ignore_patterns=None, **kw):
        self.calls.append(("upload_folder", {"repo_id": repo_id, "folder_path": folder_path,
                                             "ignore_patterns": ignore_patterns, **kw}))
        paths = [os.path.relpath(os.path.join(r, f), folder_path).replace(os.sep, "/")
                 for r, _, fs in os.walk(folder_path) for f in fs]
        self.uploaded = sorted(filter_repo_objects(paths, ignore_patterns=list(ignore_patterns or [])
                                                   + DEFAULT_IGNORE_PATTERNS))
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc123"})()


def http_error(status: int) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    return HfHubHTTPError(f"{status} error", response=httpx2.Response(status, request=request))


# --- the card ------------------------------------------------------------------------------------------------------

SECTIONS = ["## Results", "### Per entity (validation)", "### Per entity (test)", "## Labels",
            "## Evaluation protocol", "## How to use", "## Training", "### Hyperparameters", "### Training log",
            "### Framework versions", "## Intended use and limitations"]


def test_card_renders_every_section_with_the_runs_numbers(out):
    path = write_model_card(out, HUB_ID)
    assert path == os.path.join(out, "README.md")
    text = Path(path).read_text(encoding="utf-8")
    body = text.split("\n---\n", 1)[1]
    positions = [body.index(s + "\n") for s in SECTIONS]
    assert positions == sorted(positions), "sections out of order"

    results = read_results(out)
    for split in ("validation", "test"):
        o = results[split]["overall"]
        row = (f"| {split} | {100 * o['precision']:.2f} | {100 * o['recall']:.2f} | {100 * o['f1']:.2f} | "
               f"{100 * o['accuracy']:.2f} | {results[split]['num_sentences']} | {results[split]['num_words']} |")
        assert row in body
        table = body.split(f"### Per entity ({split})", 1)[1].split("\n#", 1)[0]
        for typ, r in results[split]["per_entity"].items():
            assert f"| {typ} | {100 * r['precision']:.2f} | {100 * r['recall']:.2f} | {100 * r['f1']:.2f} | " \
                   f"{r['support']} |" in table

    config = json.loads(Path(out, "config.json").read_text())
    for i, label in config["id2label"].items():
        assert f"| {i} | `{label}` |" in body
    assert "The source data was in **IOB1** and was converted to IOB2" in body  # the CoNLL sample is IOB1
    assert "seqeval, mode default (conlleval-compatible)" in body
    assert "Level: word (first sub-token" in body

    run = json.loads(Path(out, "run_config.json").read_text())
    assert f"| `learning_rate` | {run['learning_rate']} |" in body
    assert f"| `per_device_train_batch_size` | {run['per_device_train_batch_size']} |" in body
    assert "`output_dir`" not in body and "hub_model_id" not in body
    train = json.loads(Path(out, "train_results.json").read_text())
    assert f"{train['train_runtime_s']:.1f} s" in body
    assert f"- torch {train['versions']['torch']}" in body and f"- seqeval {train['versions']['seqeval']}" in body
    assert body.count("\n| ") > 0 and "| 1.00 |" in body and "| 2.00 |" in body  # training log, 2 epochs

    assert f'pipeline("token-classification", model="{HUB_ID}", aggregation_strategy="simple")' in body
    assert "A quick run, not a usable model" in body  # the fixture trains on --max-train-samples 60
    assert "None" not in body.replace("`None`", "")


def test_card_metadata_is_the_runs_model_index(out):
    card = ModelCard.load(write_model_card(out, HUB_ID))
    meta = card.data.to_dict()
    assert meta["pipeline_tag"] == "token-classification"
    assert meta["library_name"] == "transformers"
    # the fixture's encoder and data are local: no Hub ids to claim
    assert "base_model" not in meta and "datasets" not in meta
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "tiny-ner"
    scores = read_results(out)
    got = {(r.dataset_split, r.metric_type): r.metric_value for r in results}
    want = {(split, m): round(scores[split]["overall"][m], 4)
            for split in ("validation", "test") for m in ("precision", "recall", "f1", "accuracy")}
    assert got == want
    assert {r.task_type for r in results} == {"token-classification"}
    assert {r.dataset_type for r in results} == {"conll2003"}  # the data directory's name

    # widget examples are sentences of the validation data, with entities
    rows = read_predictions(out, "validation")
    texts = {hub.detokenize(r["tokens"]): r for r in rows}
    assert 1 <= len(meta["widget"]) <= 3
    for w in meta["widget"]:
        assert w["text"] in texts and any(t != "O" for t in texts[w["text"]]["gold"])


def test_card_validates_offline_and_the_validator_rejects_broken_metadata(out):
    card = build_model_card(out, HUB_ID)
    validate_card(card)  # what write_model_card runs before writing

    def broken(edit) -> ModelCard:
        meta = card.data.to_dict()
        edit(meta)
        return ModelCard("---\n" + __import__("yaml").safe_dump(meta, sort_keys=False) + "---\n" + card.text,
                         ignore_metadata_errors=True)

    with pytest.raises(CardError, match="pipeline_tag"):
        validate_card(broken(lambda m: m.update(pipeline_tag="text-classification")))
    with pytest.raises(CardError, match="model-index"):
        validate_card(broken(lambda m: m.pop("model-index")))
    with pytest.raises(CardError):
        validate_card(broken(lambda m: m["model-index"][0]["results"][0]["metrics"][0].update(value=87.5)))
    with pytest.raises(CardError, match="base_model"):
        validate_card(broken(lambda m: m.update(base_model="not a repo id!")))
    with pytest.raises(CardError):  # a model-index the Hub could not read
        validate_card(ModelCard(str(card).replace("    dataset:\n", "    data:\n", 1), ignore_metadata_errors=True))


def test_card_names_hub_base_model_dataset_and_license(out):
    run_config = Path(out, "run_config.json")
    cfg = json.loads(run_config.read_text())
    cfg.update(model_name_or_path="bert-base-cased", data_dir=None, dataset_name="conll2003", license="apache-2.0")
    run_config.write_text(json.dumps(cfg))
    card = build_model_card(out, HUB_ID)
    meta = card.data.to_dict()
    assert meta["base_model"] == "bert-base-cased"
    assert meta["datasets"] == ["eriktks/conll2003"]  # the project's alias for conll2003, as the trainer loads it
    assert meta["license"] == "apache-2.0"
    _, results = model_index_to_eval_results(meta["model-index"])
    assert {(r.dataset_type, r.dataset_revision) for r in results} == {("eriktks/conll2003", "refs/convert/parquet")}
    assert "[bert-base-cased](https://huggingface.co/bert-base-cased)" in card.text
    assert "License: `apache-2.0`" in card.text


def test_card_for_plain_tags_uses_tag_wording_and_first_aggregation(out):
    # A POS run: per-tag scores, no chunk scheme. Rewrites the fixture's results as a plain-tag run would write them.
    results_path = Path(out, "eval_results.json")
    results = json.loads(results_path.read_text())
    for rec in results.values():
        rec["protocol"].update(metric="per-tag accuracy", mode="plain tags", scheme="none")
    results_path.write_text(json.dumps(results))
    cfg_path = Path(out, "run_config.json")
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "task": "pos", "label_scheme": "none"}))
    text = build_model_card(out, HUB_ID).text
    assert "### Per tag (validation)" in text and "Plain tags (no chunk scheme)" in text
    assert 'aggregation_strategy="first"' in text and "part-of-speech tagging" in text
    assert "IOB2 scheme" not in text


def test_license_falls_back_to_the_local_base_models_card(minilm_dir):
    # the packaged all-MiniLM-L6-v2 ships its model card (apache-2.0); no network is involved
    assert hub._base_model_license(minilm_dir) == "apache-2.0"
    assert hub._base_model_license("nobody/not-cached-model") is None


def test_card_needs_a_trained_output(out, tmp_path):
    os.remove(os.path.join(out, "README.md"))  # the card training wrote
    os.remove(os.path.join(out, "eval_results.json"))
    with pytest.raises(CardError, match="eval_results.json"):
        write_model_card(out)
    with pytest.raises(CardError, match="run_config.json"):
        write_model_card(str(tmp_path))
    assert not os.path.exists(os.path.join(out, "README.md"))


def test_widget_examples_cover_entity_types_and_read_like_text():
    rows = [
        {"tokens": "No entities in this rather plain sentence .".split(), "gold": ["O"] * 8},
        {"tokens": "John Smith visited Paris , France , on Monday .".split(),
         "gold": ["B-PER", "I-PER", "O", "B-LOC", "O", "B-LOC", "O", "O", "O", "O"]},
        {"tokens": "Mary went to Rome ( Italy ) today .".split(),
         "gold": ["B-PER", "O", "O", "B-LOC", "O", "B-LOC", "O", "O", "O"]},
        {"tokens": "Reuters reported that the EU said it 's fine .".split(),
         "gold": ["B-ORG", "O", "O", "O", "B-ORG", "O", "O", "O", "O", "O"]},
    ]
    # PER+LOC first (the shorter of two such sentences), then the one that adds ORG; never the one without entities
    assert hub.widget_examples(rows, k=2) == ["Mary went to Rome (Italy) today.",
                                              "Reuters reported that the EU said it's fine."]
    assert hub.widget_examples(rows, k=5)[2] == "John Smith visited Paris, France, on Monday."
    assert len(hub.widget_examples(rows, k=5)) == 3
    assert hub.widget_examples(rows[:1], k=3) == ["No entities in this rather plain sentence."]


# --- push ----------------------------------------------------------------------------------------------------------

def test_push_uploads_the_model_results_and_card_but_no_checkpoints(out):
    api = FakeHfApi()
    url = push(out, HUB_ID, private=True, token=TOKEN, api=api)
    assert url == f"https://huggingface.co/{HUB_ID}/commit/abc123"
    (op1, create), (op2, upload) = api.calls
    assert (op1, op2) == ("create_repo", "upload_folder")
    assert create["repo_id"] == HUB_ID and create["private"] is True and create["exist_ok"] is True
    assert create["token"] == TOKEN and upload["token"] == TOKEN
    assert upload["folder_path"] == out and upload["repo_id"] == HUB_ID
    for must in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
                 "eval_results.json", "predictions_validation.jsonl", "run_config.json", "train_results.json"):
        assert must in api.uploaded
    assert not [f for f in api.uploaded if f.startswith("checkpoint-")]
    for never in ("optimizer.pt", "training_args.bin", "predictions_test.jsonl"):
        assert never not in api.uploaded
    # the pushed card loads from the repository it was pushed to
    assert f'model="{HUB_ID}"' in Path(out, "README.md").read_text()


def test_push_retries_transient_errors(out):
    sleeps = []
    api = FakeHfApi([http_error(503), httpx2.ConnectError("connection reset")])
    push(out, HUB_ID, token=TOKEN, api=api, backoff_s=1.5, sleep=sleeps.append)
    assert [c[0] for c in api.calls] == ["create_repo", "create_repo", "create_repo", "upload_folder"]
    assert sleeps == [1.5, 3.0]


def test_push_does_not_retry_permission_errors_and_says_how_to_retry(out):
    sleeps = []
    api = FakeHfApi([http_error(403)])
    with pytest.raises(HubPushError) as info:
        push(out, HUB_ID, private=True, token=TOKEN, api=api, sleep=sleeps.append)
    assert sleeps == [] and len(api.calls) == 1
    msg = str(info.value)
    assert "403" in msg and "intact" in msg
    assert f"python -m trainer.push --output-dir {out} --hub-model-id {HUB_ID} --private" in msg


def test_push_without_a_token_fails_cleanly_and_touches_nothing(out, no_token):
    before = snapshot(out)
    api = FakeHfApi()
    with pytest.raises(HubPushError) as info:
        push(out, HUB_ID, api=api)
    assert api.calls == []
    assert "HF_TOKEN" in str(info.value)
    assert info.value.retry_command == f"python -m trainer.push --output-dir {out} --hub-model-id {HUB_ID}"
    assert info.value.retry_command in str(info.value)
    assert snapshot(out) == before


def test_push_without_network_keeps_local_files_and_never_shows_the_token(out, monkeypatch, caplog, capsys):
    from huggingface_hub import HfApi

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # let the real client try, against a closed port
    write_model_card(out, HUB_ID)
    before = snapshot(out)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HubPushError) as info:
        push(out, HUB_ID, api=HfApi(endpoint="http://127.0.0.1:9"), retries=2, backoff_s=0.0)
    msg = str(info.value)
    assert "could not be reached" in msg and "after 3 attempts" in msg
    assert info.value.retry_command in msg
    assert snapshot(out) == before  # the regenerated card is the same card; nothing else was written
    captured = capsys.readouterr()
    for text in (msg, caplog.text, captured.out, captured.err, all_text(out)):
        assert TOKEN not in text


def test_push_in_offline_mode_fails_cleanly(out, monkeypatch):
    from huggingface_hub import HfApi

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubPushError, match="offline mode"):
        push(out, HUB_ID, token=TOKEN, api=HfApi(), backoff_s=0.0)


def test_push_error_messages_are_scrubbed_of_the_token(out):
    api = FakeHfApi([RuntimeError(f"server echoed Authorization: Bearer {TOKEN}")])
    with pytest.raises(HubPushError) as info:
        push(out, HUB_ID, token=TOKEN, api=api)
    assert TOKEN not in str(info.value) and "***" in str(info.value)


def test_push_refuses_a_directory_without_a_model(tmp_path):
    with pytest.raises(HubPushError, match="not a directory"):
        push(str(tmp_path / "missing"), HUB_ID, token=TOKEN, api=FakeHfApi())
    with pytest.raises(HubPushError, match="invalid repository id"):
        push(str(tmp_path), "not/a/valid/id", token=TOKEN, api=FakeHfApi())


# --- the CLI -------------------------------------------------------------------------------------------------------

def run_push_cli(args: list[str], cwd: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH")}
    base.update(HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, "-m", "trainer.push", *args], cwd=cwd, env=base, capture_output=True,
                          text=True, timeout=120)


def test_push_cli_fails_without_traceback_and_prints_the_retry_command(out, tmp_path):
    # run from another directory: the card template must be found as package data, not relative to the cwd
    res = run_push_cli(["--output-dir", out, "--hub-model-id", HUB_ID], cwd=str(tmp_path),
                       HF_HOME=str(tmp_path / "hf-home"), HF_TOKEN=TOKEN)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert f"python -m trainer.push --output-dir {out} --hub-model-id {HUB_ID}" in res.stderr
    assert "offline mode" in res.stderr
    assert TOKEN not in res.stdout + res.stderr
    assert Path(out, "README.md").exists()  # the card was regenerated for the repository before the upload


def test_push_cli_takes_the_repository_from_the_run_config(out, tmp_path):
    cfg_path = Path(out, "run_config.json")
    cfg = json.loads(cfg_path.read_text())
    cfg.update(push_to_hub=True, hub_model_id="someone/from-config", hub_private_repo=True)
    cfg_path.write_text(json.dumps(cfg))
    res = run_push_cli(["--output-dir", out], cwd=str(tmp_path), HF_HOME=str(tmp_path / "hf-home"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert re.search(r"python -m trainer\.push --output-dir \S+ --hub-model-id someone/from-config --private",
                     res.stderr)
    assert "no Hugging Face token" in res.stderr
