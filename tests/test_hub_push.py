"""The push (trainer.hub.push) and its command line (trainer.push), on a real `python -m trainer` output directory
(`tiny_output`).

No test touches the network: uploads go to a fake HfApi that applies upload_folder's own file filter, or to the real
HfApi in offline mode / pointed at a closed local port.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from conftest import CONLL_SAMPLE
from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError

from trainer.hub.card import write_model_card
from trainer.hub.push import HubPushError, push

REPO = Path(__file__).resolve().parents[1]
HUB_ID = "someone/tiny-ner"
TOKEN = "hf_" + "TESTtokenNEVERshownXYZ0123456789"  # a fake token, spelt in two parts so secret scanners do not flag it


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
    """Records the calls `push` makes and the files and bytes its commit would send."""

    def __init__(self, failures: list[BaseException] | None = None):
        self.failures = list(failures or [])
        self.calls: list[tuple[str, dict]] = []
        self.uploaded: list[str] = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))
        if self.failures:
            raise self.failures.pop(0)
        return f"https://huggingface.co/{repo_id}"

    def create_commit(self, *, repo_id, operations, **kw):
        self.calls.append(("create_commit", {"repo_id": repo_id, **kw}))
        self.uploaded = sorted(op.path_in_repo for op in operations)
        self.contents = {}
        for op in operations:
            src = op.path_or_fileobj
            self.contents[op.path_in_repo] = src if isinstance(src, bytes) else Path(src).read_bytes()
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc123"})()


def http_error(status: int) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    return HfHubHTTPError(f"{status} error", response=httpx2.Response(status, request=request))


# --- push ----------------------------------------------------------------------------------------------------------


def test_push_uploads_the_model_results_and_card_but_no_checkpoints(out):
    api = FakeHfApi()
    url = push(out, HUB_ID, private=True, token=TOKEN, api=api)
    assert url == f"https://huggingface.co/{HUB_ID}/commit/abc123"
    (op1, create), (op2, upload) = api.calls
    assert (op1, op2) == ("create_repo", "create_commit")
    assert create["repo_id"] == HUB_ID and create["private"] is True and create["exist_ok"] is True
    assert create["token"] == TOKEN and upload["token"] == TOKEN
    assert upload["repo_id"] == HUB_ID
    for must in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "eval_results.json",
        "predictions_validation.jsonl",
        "run_config.json",
        "train_results.json",
    ):
        assert must in api.uploaded
    assert not [f for f in api.uploaded if f.startswith("checkpoint-")]
    for never in ("optimizer.pt", "training_args.bin", "predictions_test.jsonl"):
        assert never not in api.uploaded
    # the pushed card loads from the repository it was pushed to
    assert f'model="{HUB_ID}"'.encode() in api.contents["README.md"]


def test_push_sends_an_allow_list_never_stray_files(out):
    os.makedirs(os.path.join(out, "wandb", "run-1"))
    Path(out, "wandb", "run-1", "files.txt").write_text("metrics")
    Path(out, ".env").write_text("HF_TOKEN=" + TOKEN)
    Path(out, "nohup.out").write_text("log")
    Path(out, "notes.md").write_text("my notes")
    api = FakeHfApi()
    push(out, HUB_ID, token=TOKEN, api=api)
    assert not {".env", "nohup.out", "notes.md"} & set(api.uploaded)
    assert not [f for f in api.uploaded if "/" in f]  # no folder at all: wandb/, runs/, checkpoints
    assert TOKEN.encode() not in b"".join(api.contents.values())


def test_pushed_files_name_no_local_path(out):
    api = FakeHfApi()
    push(out, HUB_ID, token=TOKEN, api=api)
    local = [str(Path(out).resolve().parent), os.path.abspath(os.path.dirname(os.path.dirname(__file__)))]
    for name, content in api.contents.items():
        text = content.decode("utf-8", errors="replace")
        for path in local:
            assert path not in text, (name, path)
        assert not re.search(r'"/(?:root|home|tmp|work)/', text), name
    # ... while the local files keep what they said (the scrub applies to what leaves the machine)
    assert str(Path(CONLL_SAMPLE)) in Path(out, "run_config.json").read_text()


def test_push_refuses_an_interrupted_run(out):
    os.remove(os.path.join(out, "run_complete.json"))
    before = snapshot(out)
    with pytest.raises(HubPushError, match="did not complete"):
        push(out, HUB_ID, token=TOKEN, api=FakeHfApi())
    assert snapshot(out) == before


def test_push_retries_transient_errors(out):
    sleeps = []
    api = FakeHfApi([http_error(503), httpx2.ConnectError("connection reset")])
    push(out, HUB_ID, token=TOKEN, api=api, backoff_s=1.5, sleep=sleeps.append)
    assert [c[0] for c in api.calls] == ["create_repo", "create_repo", "create_repo", "create_commit"]
    assert sleeps == [1.5, 3.0]


def test_push_does_not_retry_permission_errors_and_says_how_to_retry(out):
    sleeps = []
    api = FakeHfApi([http_error(403)])
    with pytest.raises(HubPushError) as info:
        push(out, HUB_ID, private=True, token=TOKEN, api=api, sleep=sleeps.append)
    assert sleeps == [] and len(api.calls) == 1
    msg = str(info.value)
    assert "403" in msg and "intact" in msg
    assert f"python -m trainer.push --model {out} --hub-model-id {HUB_ID} --hub-private-repo" in msg


def test_push_without_a_token_fails_cleanly_and_touches_nothing(out, no_token):
    before = snapshot(out)
    api = FakeHfApi()
    with pytest.raises(HubPushError) as info:
        push(out, HUB_ID, api=api)
    assert api.calls == []
    assert "HF_TOKEN" in str(info.value)
    assert info.value.retry_command == f"python -m trainer.push --model {out} --hub-model-id {HUB_ID}"
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


@pytest.mark.parametrize("offline", [False, True], ids=["closed endpoint", "offline mode"])
def test_a_failed_push_leaves_every_local_file_byte_identical(out, monkeypatch, offline):
    """The card uploaded names the repository; the local one (written for the run) must not be rewritten to say it
    when the push then fails: the card to upload is built in memory."""
    from huggingface_hub import HfApi

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    write_model_card(out)  # as the run wrote it: no repository named
    before = snapshot(out)
    with pytest.raises(HubPushError):
        push(out, HUB_ID, api=HfApi(endpoint="http://127.0.0.1:9"), retries=0)
    assert snapshot(out) == before


def test_a_model_that_learnt_nothing_is_not_pushed_unless_asked(out):
    results = json.loads(Path(out, "eval_results.json").read_text())
    for record in results.values():
        record["overall"].update(precision=0.0, recall=0.0, f1=0.0)
        record["num_predicted"] = 0
    Path(out, "eval_results.json").write_text(json.dumps(results))
    api = FakeHfApi()
    with pytest.raises(HubPushError, match="learnt nothing: on the validation split it predicts no entity"):
        push(out, HUB_ID, token=TOKEN, api=api)
    assert api.calls == [] and "--push-unlearned" in str(push_error(out))
    assert push(out, HUB_ID, token=TOKEN, api=api, allow_unlearned=True).endswith("abc123")
    card = api.contents["README.md"].decode()
    assert "This model learnt nothing" in card  # and the card says so to whoever finds it


def push_error(out) -> HubPushError:
    try:
        push(out, HUB_ID, token=TOKEN, api=FakeHfApi())
    except HubPushError as e:
        return e
    raise AssertionError("pushed")


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
    return subprocess.run(
        [sys.executable, "-m", "trainer.push", *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=120
    )


def test_push_cli_fails_without_traceback_and_prints_the_retry_command(out, tmp_path):
    # run from another directory: the card template must be found as package data, not relative to the cwd
    res = run_push_cli(
        ["--model", out, "--hub-model-id", HUB_ID], cwd=str(tmp_path), HF_HOME=str(tmp_path / "hf-home"), HF_TOKEN=TOKEN
    )
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert f"python -m trainer.push --model {out} --hub-model-id {HUB_ID}" in res.stderr
    assert "offline mode" in res.stderr
    assert TOKEN not in res.stdout + res.stderr
    assert Path(out, "README.md").exists()  # the card was regenerated for the repository before the upload


def test_push_cli_takes_the_repository_from_the_run_config(out, tmp_path):
    cfg_path = Path(out, "run_config.json")
    cfg = json.loads(cfg_path.read_text())
    cfg.update(push_to_hub=True, hub_model_id="someone/from-config", hub_private_repo=True)
    cfg_path.write_text(json.dumps(cfg))
    res = run_push_cli(["--model", out], cwd=str(tmp_path), HF_HOME=str(tmp_path / "hf-home"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert re.search(
        r"python -m trainer\.push --model \S+ --hub-model-id someone/from-config --hub-private-repo", res.stderr
    )
    assert "no Hugging Face token" in res.stderr
