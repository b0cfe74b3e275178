"""trainer.inference.backends: every backend predicts what the torch model predicts; ONNX files go to the cache, never
into the
model directory; bad names are refused with the list of choices."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import tiny_bert_config
from space_models import LABELS, build_lookup_model, encoder_path
from transformers import AutoTokenizer, BertForTokenClassification

from trainer import machine
from trainer.inference import backends, onnx_export
from trainer.inference.backends import predict_windows
from trainer.inference.tagger import NerTagger

TEXTS = [
    "Yesterday John Zwingmann's team flew from Paris to Berlin.",
    "Reuters reported from London .",
    "It will maybe rain in Berlin, says Google.",
    "x",
]
ONNX = ("onnx", "onnx-int8", "openvino")  # the backends that run an ONNX file
# Rounded weights or activations (openvino: bf16 where the CPU has it): a random model's tiny margins may flip.
LOSSY = ("torch-bf16", "onnx-int8", "openvino", "onnx-int8+openvino")


def skip_unless_runnable(name: str) -> None:
    """Skip what this machine cannot run: ONNX backends without onnxruntime (openvino ones also without openvino),
    torch-bf16 without native bf16 (refused: see test_bf16_backend_is_refused_where_emulated)."""
    if name.startswith("onnx") or "openvino" in name:
        pytest.importorskip("onnxruntime")
    if "openvino" in name:
        pytest.importorskip("openvino")
    if name == "torch-bf16" and not machine.native_bf16("cpu"):
        pytest.skip("this CPU has no native bf16")


@pytest.fixture(scope="module")
def lookup_dir(tmp_path_factory) -> str:
    return build_lookup_model(str(tmp_path_factory.mktemp("lookup")))


def random_model_dir(path, seed: int = 0) -> str:
    """A randomly initialised 2-layer BertForTokenClassification with MiniLM's tokenizer."""
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(encoder_path())
    config = tiny_bert_config(
        tok.vocab_size, id2label=dict(enumerate(LABELS)), label2id={t: i for i, t in enumerate(LABELS)}
    )
    BertForTokenClassification(config).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def random_dir(tmp_path_factory) -> str:
    return random_model_dir(tmp_path_factory.mktemp("random"))


def padded(tokenizer, names) -> dict[str, np.ndarray]:
    enc = tokenizer(TEXTS)
    return backends.pad_batch({n: enc[n] for n in names}, tokenizer.pad_token_id)


def label_and_prob(logprobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each position's argmax label and its probability, from log-probabilities."""
    return logprobs.argmax(-1), np.exp(logprobs.max(-1))


def listing(d: str) -> dict[str, float]:
    return {f: os.stat(os.path.join(d, f)).st_mtime_ns for f in os.listdir(d)}


@pytest.mark.parametrize("name", backends.BACKENDS)
def test_backend_labels_match_torch_on_a_random_model(random_dir, tmp_path, name):
    """fp32 backends agree with torch exactly (labels) and closely (probabilities); int8 and bf16 ones on most positions
    (a random model's label margins are tiny, so rounding the weights may flip a few)."""
    skip_unless_runnable(name)
    tagger = NerTagger.from_pretrained(random_dir, onnx_cache_dir=str(tmp_path))
    batch = padded(tagger.tokenizer, tagger.backend.input_names)
    want_label, want_prob = label_and_prob(tagger.backend(batch))
    backend = backends.make_backend(name, tagger.model, tagger.tokenizer.model_input_names, random_dir, str(tmp_path))
    label, prob = label_and_prob(backend(batch))
    keep = batch["attention_mask"].astype(bool)
    assert label.shape == prob.shape == keep.shape
    if name in LOSSY:
        assert (label == want_label)[keep].mean() >= 0.8
        assert np.abs(prob - want_prob)[keep].max() < 0.1
    else:
        assert (label == want_label)[keep].all()
        np.testing.assert_allclose(prob[keep], want_prob[keep], atol=1e-4)


@pytest.mark.parametrize("name", backends.BACKENDS)
def test_every_backend_gives_the_same_entities_on_the_lookup_model(lookup_dir, tmp_path, name):
    """On the lookup model (large label margins) even int8 weights give exactly the torch model's entities."""
    skip_unless_runnable(name)
    want = NerTagger.from_pretrained(lookup_dir).predict_batch(TEXTS)
    got = NerTagger.from_pretrained(lookup_dir, backend=name, onnx_cache_dir=str(tmp_path)).predict_batch(TEXTS)
    assert [[(e.type, e.start, e.end) for e in ents] for ents in got] == [
        [(e.type, e.start, e.end) for e in ents] for ents in want
    ]
    for g, w in zip(got, want):
        assert [e.score for e in g] == pytest.approx([e.score for e in w], abs=0.05)
    assert any(got)


def test_openvino_in_fp32_computes_what_torch_does(random_dir, tmp_path):
    """The openvino backend is lossy only by its bf16 (where the CPU has it): in fp32 it reads the ONNX export as
    torch computes the model, to the same labels and probabilities."""
    skip_unless_runnable("openvino")
    tagger = NerTagger.from_pretrained(random_dir, onnx_cache_dir=str(tmp_path))
    batch = padded(tagger.tokenizer, tagger.backend.input_names)
    want = tagger.backend(batch)
    path = onnx_export.onnx_files(tagger.model, tagger.backend.input_names, random_dir, str(tmp_path))
    backend = backends.OpenVinoBackend(path, precision="f32")
    keep = batch["attention_mask"].astype(bool)
    np.testing.assert_allclose(backend(batch)[keep], want[keep], atol=1e-4)
    assert backend.precision == "f32"
    assert backends.OpenVinoBackend(path).precision == ("bf16" if machine.native_bf16("cpu") else "f32")


def test_the_export_traces_eager_attention_and_leaves_the_model_as_it_was(random_dir, tmp_path):
    """OpenVINO fuses eager attention (see eager_attention); the model the tagger keeps serving with stays on its
    own attention."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    tagger = NerTagger.from_pretrained(random_dir, onnx_cache_dir=str(tmp_path))
    tagger.model.set_attn_implementation("sdpa")
    path = onnx_export.onnx_files(tagger.model, tagger.backend.input_names, random_dir, str(tmp_path))
    assert tagger.model.config._attn_implementation == "sdpa"
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert "Softmax" in ops and "IsNaN" not in ops  # the SDPA trace guards fully masked rows with IsNaN/Where


def test_onnx_files_go_to_the_cache_and_are_reused(lookup_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    before = listing(lookup_dir)
    cache = tmp_path / "cache"
    NerTagger.from_pretrained(lookup_dir, backend="onnx-int8", onnx_cache_dir=str(cache))
    assert listing(lookup_dir) == before, "nothing may be written into the model directory"
    (entry,) = os.listdir(cache)
    files = listing(str(cache / entry))
    assert set(files) == {"model.onnx", "model-int8.onnx"}
    NerTagger.from_pretrained(lookup_dir, backend="onnx-int8", onnx_cache_dir=str(cache))
    NerTagger.from_pretrained(lookup_dir, backend="onnx", onnx_cache_dir=str(cache))
    assert listing(str(cache / entry)) == files, "a cached export is reused, not redone"
    assert listing(lookup_dir) == before


def test_default_cache_dir_is_outside_the_model_and_a_cache_inside_it_is_refused(lookup_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("NER_ONNX_CACHE", str(tmp_path / "env-cache"))
    assert onnx_export.default_cache_dir() == str(tmp_path / "env-cache")
    monkeypatch.delenv("NER_ONNX_CACHE")
    assert onnx_export.default_cache_dir().endswith(os.path.join(".cache", "ner-trainer", "onnx"))
    pytest.importorskip("onnxruntime")
    with pytest.raises(ValueError, match="inside the model directory"):
        NerTagger.from_pretrained(lookup_dir, backend="onnx", onnx_cache_dir=os.path.join(lookup_dir, "onnx"))


def test_a_stale_cache_entry_is_exported_again(tmp_path, monkeypatch):
    """Two different models that (wrongly) get one cache key: the check against torch at load catches it."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(onnx_export, "model_key", lambda model, model_dir=None: "same-key")
    cache = str(tmp_path / "cache")
    first = NerTagger.from_pretrained(random_model_dir(tmp_path / "a", seed=1), backend="onnx", onnx_cache_dir=cache)
    second_dir = random_model_dir(tmp_path / "b", seed=2)
    second = NerTagger.from_pretrained(second_dir, backend="onnx", onnx_cache_dir=cache)
    torch_labels = NerTagger.from_pretrained(second_dir)
    batch = padded(second.tokenizer, second.backend.input_names)
    keep = batch["attention_mask"].astype(bool)
    assert (second.backend(batch).argmax(-1) == torch_labels.backend(batch).argmax(-1))[keep].all()
    assert not (first.backend(batch) == second.backend(batch)).all(-1)[keep].all()


def test_bf16_backend_is_refused_where_emulated(lookup_dir, monkeypatch):
    """Emulated bf16 is many times slower than fp32: asking for it on such a CPU says so instead of crawling."""
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with pytest.raises(ValueError, match="native bf16"):
        NerTagger.from_pretrained(lookup_dir, backend="torch-bf16")


def test_auto_is_the_measured_default_for_this_cpu(monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert backends.resolve("auto") == backends.resolve(None) == "onnx-int8"
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    assert backends.resolve("auto") == "onnx-int8+openvino"


class Recording(backends.Backend):
    def __init__(self, name: str) -> None:
        self.name, self.input_names, self.calls = name, ("input_ids",), []

    def __call__(self, batch):
        self.calls.append(batch["input_ids"].shape)
        return np.zeros((*batch["input_ids"].shape, 2), dtype=np.float32)


def test_length_routed_backend_runs_each_call_on_one_backend_by_its_longest_window():
    """Sentences on the short backend, a paragraph on the long one: all of a call's windows on the same backend,
    its short last window too."""
    short, long = Recording("short"), Recording("long")
    routed = backends.LengthRoutedBackend(short, long, max_short_length=8)
    assert routed.name == "short+long" and routed.input_names == ("input_ids",)
    predict_windows(routed, {"input_ids": [[1] * 8, [1] * 3]}, pad_id=0, batch_size=1)
    assert short.calls == [(1, 8), (1, 3)] and not long.calls
    predict_windows(routed, {"input_ids": [[1] * 9, [1] * 3]}, pad_id=0, batch_size=1)
    assert long.calls == [(1, 9), (1, 3)] and len(short.calls) == 2
    routed({"input_ids": np.ones((2, 9), dtype=np.int64)})  # called directly: routed by the batch's width
    assert long.calls[-1] == (2, 9)


def test_unknown_backend_names_the_choices(lookup_dir):
    with pytest.raises(ValueError) as err:
        NerTagger.from_pretrained(lookup_dir, backend="tensorrt")
    for choice in backends.CHOICES:
        assert choice in str(err.value)
    assert backends.resolve("auto") == backends.default_backend() in backends.BACKENDS
    assert backends.resolve("ONNX") == "onnx"
