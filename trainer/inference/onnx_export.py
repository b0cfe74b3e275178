"""The ONNX export behind the onnx, onnx-int8 and openvino backends (trainer.inference.backends): export, int8
quantization, and the cache they are kept in.

ONNX files go into a cache directory (`cache_dir`, default `$NER_ONNX_CACHE` or ~/.cache/ner-trainer/onnx), in a
subdirectory named by a hash of the model (its config.json and the size and mtime of its weight files when it was
loaded from a local directory, else its parameters' bytes) and of the export recipe; never into the model directory
(the Space must not write into model directories, which may be read-only or shared). A cached file is reused, and on
every load the fp32 graph is checked against the torch model on a small padded batch, so a stale or wrong export is
redone rather than served. Files are written under a temporary name and renamed (trainer.outputs.atomic_path), so
concurrent loads never read a half-written file.

Why not Hugging Face Optimum (`ORTModelForTokenClassification`): optimum-onnx 0.1.0 requires transformers<4.58 and
optimum~=2.1, while this project pins transformers 5.x; installing it would downgrade transformers. What we need from
it is small: one `torch.onnx.export` call with dynamic batch/sequence axes, one `quantize_dynamic` call, and a session.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from trainer.outputs import atomic_path

logger = logging.getLogger(__name__)

ONNX_OPSET = 17
# Bump when the export or quantization recipe changes: it is part of the cache key.
EXPORT_RECIPE = "torchscript-opset17-eager-attention-v2+int8-per-channel-7bit"
INT8_FILE = "model-int8.onnx"  # beside the fp32 model.onnx in a cache entry
# Largest |logit| difference between the fp32 ONNX graph and torch accepted when a cached or new export is checked.
EXPORT_TOLERANCE = 1e-3

Batch = dict[str, np.ndarray]


def default_cache_dir() -> str:
    return os.environ.get("NER_ONNX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ner-trainer", "onnx")


def _weight_files(model_dir: str) -> list[str]:
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f).get("weight_map", {}).values()))
        return ["model.safetensors.index.json", *shards]
    return ["model.safetensors"] if os.path.exists(os.path.join(model_dir, "model.safetensors")) else []


def model_key(model: torch.nn.Module, model_dir: Optional[str] = None) -> str:
    """A short hash naming one model and export recipe. From a local model directory: its config.json bytes and the
    size and mtime of its weight files (cheap); otherwise the config and every parameter's bytes."""
    h = hashlib.sha256(f"{EXPORT_RECIPE}|torch {torch.__version__}".encode())
    files = _weight_files(model_dir) if model_dir and os.path.isfile(os.path.join(model_dir, "config.json")) else []
    if files:
        with open(os.path.join(model_dir, "config.json"), "rb") as f:
            h.update(f.read())
        for name in files:
            st = os.stat(os.path.join(model_dir, name))
            h.update(f"|{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    else:
        h.update(model.config.to_json_string().encode())
        for name, t in model.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class _Logits(torch.nn.Module):
    """The model with positional inputs in `names` order and only the logits out, for the TorchScript exporter."""

    def __init__(self, model: torch.nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.names = model, tuple(names)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, args))).logits


def _sample(model: torch.nn.Module, names: Sequence[str], rows: int, length: int, seed: int) -> Batch:
    """A padded batch of random token ids (every row but the first padded), to trace and to check an export."""
    rng = np.random.default_rng(seed)
    vocab = int(getattr(model.config, "vocab_size", 1000))
    ids = rng.integers(min(1000, vocab // 2), vocab, size=(rows, length), dtype=np.int64)
    mask = np.ones((rows, length), dtype=np.int64)
    for r in range(1, rows):
        mask[r, length - r * (length // (rows + 1)) - 1 :] = 0
    batch = {"input_ids": ids * mask, "attention_mask": mask}
    if (
        "token_type_ids" in names
    ):  # both types where the model has two: the case signal (trainer.reading.casing) uses type 1
        types = min(2, int(getattr(model.config, "type_vocab_size", 1) or 1))
        batch["token_type_ids"] = rng.integers(0, types, size=(rows, length), dtype=np.int64) * mask
    return {n: batch[n] for n in names}


@contextlib.contextmanager
def eager_attention(model: torch.nn.Module):
    """`model` with its attention computed as the eager product -> mask -> softmax -> product while inside.

    Traced that way, OpenVINO fuses the attention into one kernel: on the 2-core AMX Xeon, 16 windows of 256 sub-tokens
    on one thread took 192 ms against 258 ms for the SDPA trace, whose NaN guards stay separate operations (ONNX
    Runtime fp32: 951 against 1,038 ms). Both compute the same numbers."""
    before = getattr(model.config, "_attn_implementation", None)
    switch = before not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if switch:
            model.set_attn_implementation(before)


def export_onnx(model: torch.nn.Module, names: Sequence[str], path: str) -> None:
    """fp32 ONNX graph of `model` with dynamic batch and sequence axes, inputs `names`, output `logits`.

    The TorchScript exporter (dynamo=False) is deprecated but still present in torch 2.13 and needs no extra package;
    the dynamo exporter needs onnxscript, so it is only the fallback."""
    sample = _sample(model, names, rows=2, length=12, seed=0)
    args = tuple(torch.from_numpy(sample[n]) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in (*names, "logits")}
    wrapped = _Logits(model, names).eval()
    with eager_attention(model), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer notices
        common = {"input_names": list(names), "output_names": ["logits"], "opset_version": ONNX_OPSET}
        try:
            torch.onnx.export(wrapped, args, path, dynamic_axes=axes, dynamo=False, **common)
        except Exception as exc:
            logger.warning("TorchScript ONNX export failed (%s); trying the dynamo exporter", exc)
            shapes = {n: {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")} for n in names}
            torch.onnx.export(wrapped, args, path, dynamic_shapes=shapes, dynamo=True, external_data=False, **common)


def quantize_onnx(src: str, dst: str) -> None:
    """int8 weights for MatMul/Gemm, one scale per output channel, 7-bit range; activations quantized on the fly.

    ORT multiplies uint8 activations by int8 weights (U8S8). Its AVX2 kernel without VNNI adds pairs of products in
    saturating int16 (vpmaddubsw), so full-range int8 weights can overflow; reduce_range keeps weights in [-64, 63],
    which cannot (2 * 255 * 64 < 32767), and per-channel scales win back the precision. Measured once on the 2-core
    AVX2 (no VNNI) CPU, MiniLM fine-tuned on 4k CoNLL sentences, validation word F1 0.6596 in fp32 (share of
    sentences whose entities equal fp32's in brackets), batched ms/sentence in one interleaved run:
      QInt8 per tensor          0.6404 (84%)            QInt8 per tensor, reduce_range     0.6241
      QInt8 per channel         0.6567 (92%)  2.98 ms   QInt8 per channel, reduce_range    0.6607 (92%)  2.90 ms
      QUInt8 per tensor         0.6699 (89%)            QUInt8 per channel (U8U8 kernel)   0.6588 (93%)  3.21 ms
    Fusing the graph first (onnxruntime.transformers optimizer, with or without eager attention) made the int8
    graphs no faster here, so it is not done. Weight-only MatMulNBits needs the extra onnx_ir package: not tried."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        src,
        dst,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=["MatMul", "Gemm"],
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )


def _write(path: str, write: Callable[[str], None]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


@torch.inference_mode()
def _export_error(model: torch.nn.Module, names: Sequence[str], path: str) -> float:
    """Largest |logit| difference between the ONNX graph at `path` and the torch model on unpadded positions of a
    padded batch of another shape than the traced one (so the dynamic axes and the attention mask are exercised)."""
    import onnxruntime as ort

    sample = _sample(model, names, rows=3, length=21, seed=1)
    want = model(**{n: torch.from_numpy(v) for n, v in sample.items()}).logits.float().numpy()
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["logits"], sample)[0]
    keep = sample["attention_mask"].astype(bool)
    return float(np.abs(got - want)[keep].max())


def onnx_files(
    model: torch.nn.Module, input_names: Sequence[str], model_dir: Optional[str] = None, cache_dir: Optional[str] = None
) -> str:
    """Path of the cached fp32 ONNX file for `model`, exporting it first if needed, checked against the model."""
    cache = os.path.join(cache_dir or default_cache_dir(), model_key(model, model_dir))
    os.makedirs(cache, exist_ok=True)
    if model_dir:
        here, there = os.path.realpath(cache), os.path.realpath(model_dir)
        if here == there or here.startswith(there + os.sep):
            raise ValueError(f"the ONNX cache {cache} lies inside the model directory {model_dir}: pick another")
    fp32 = os.path.join(cache, "model.onnx")
    fresh = not os.path.exists(fp32)
    if fresh:
        logger.info("exporting %s to ONNX in %s", model_dir or type(model).__name__, cache)
        _write(fp32, lambda tmp: export_onnx(model, input_names, tmp))
    error = _export_error(model, input_names, fp32)
    if error > EXPORT_TOLERANCE and not fresh:  # a stale cache entry: export again once
        logger.warning("cached ONNX graph %s differs from the model by %.3g; exporting again", fp32, error)
        _write(fp32, lambda tmp: export_onnx(model, input_names, tmp))
        if os.path.exists(os.path.join(cache, INT8_FILE)):  # quantized from the stale graph
            os.remove(os.path.join(cache, INT8_FILE))
        error = _export_error(model, input_names, fp32)
    if error > EXPORT_TOLERANCE:
        raise RuntimeError(
            f"the ONNX export of {model_dir or 'the model'} differs from torch by {error:.3g} "
            f"in its logits (tolerance {EXPORT_TOLERANCE}); use backend='torch'"
        )
    return fp32


def int8_file(fp32: str) -> str:
    """Path of the int8 file beside the checked fp32 one (onnx_files), quantizing it first if needed."""
    cache = os.path.dirname(fp32)
    q = os.path.join(cache, INT8_FILE)
    if not os.path.exists(q):
        _write(q, lambda tmp: quantize_onnx(fp32, tmp))
    return q
