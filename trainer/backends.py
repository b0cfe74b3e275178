"""The token-classification forward pass of trainer.inference, on the runtime chosen by name.

A backend takes one padded batch (numpy int64 arrays `input_ids`, `attention_mask` and `token_type_ids` where the
model takes it; padding on the right) and returns, per position, the log-probability of every label as a numpy array
of shape (batch, length, labels) (trainer.decoding reads word tags from them). Everything else (windows, words,
offsets, spans) stays in trainer.inference.

  torch       the model as loaded, fp32, under torch.inference_mode
  torch-int8  torch.ao.quantization.quantize_dynamic on every nn.Linear (int8 weights, dynamically quantized
              activations). torch.ao.quantization is deprecated (torch 2.13 warns that it "will be removed" and points
              at torchao); it still works in 2.13, its warnings are silenced here.
  torch-bf16  a bf16 copy of the model (weights and activations). Fast only where the hardware computes bf16
              natively (a GPU, or a CPU with AVX512-BF16/AMX: oneDNN runs its matrix products on them); elsewhere it
              is emulated and many times slower than fp32, so it is then refused with that said.
  onnx        the model exported once to ONNX and run by ONNX Runtime, fp32
  onnx-int8   that export with int8 weights (onnxruntime.quantization.quantize_dynamic on MatMul/Gemm,
              7-bit weights with per-channel scales: see quantize_onnx)
  openvino    the ONNX export run by OpenVINO Runtime on the CPU, in bf16 where the CPU computes it natively
              (AMX/AVX512-BF16), else fp32
  onnx-int8+openvino
              both: a call whose longest window has at most SHORT_WINDOW sub-tokens (a sentence, or a batch of them)
              runs on onnx-int8, a longer one (paragraphs) on openvino
  auto        default_backend() below: the fastest measured at no more than 0.3 points of F1 loss, for this CPU

The int8 backends quantize activations per batch tensor at run time, so a text's labels can depend on which texts
share its batch (in the benchmark 92% of sentences got the same entities alone as in a batch; fp32 backends: 100%).

ONNX files go into a cache directory (`cache_dir`, default `$NER_ONNX_CACHE` or ~/.cache/ner-trainer/onnx), in a
subdirectory named by a hash of the model (its config.json and the size and mtime of its weight files when it was
loaded from a local directory, else its parameters' bytes) and of the export recipe; never into the model directory
(the Space must not write into model directories, which may be read-only or shared). A cached file is reused, and on
every load the fp32 graph is checked against the torch model on a small padded batch, so a stale or wrong export is
redone rather than served. Files are written under a temporary name and renamed, so concurrent loads never read a
half-written file.

Why not Hugging Face Optimum (`ORTModelForTokenClassification`): optimum-onnx 0.1.0 requires transformers<4.58 and
optimum~=2.1, while this project pins transformers 5.x; installing it would downgrade transformers. What we need from
it is small: one `torch.onnx.export` call with dynamic batch/sequence axes, one `quantize_dynamic` call, and a session.

onnxruntime (and onnx, for quantization) are imported only when an ONNX backend is built, so the torch backends work
without them; openvino only for its backend. Why not Optimum Intel (`OVModelForTokenClassification`) for it:
optimum-intel 2.2 requires transformers<5.6. We never call OpenVINO's model converter (`openvino.convert_model`), which
sends usage telemetry unless opted out: OpenVINO Runtime reads the ONNX file, and the runtime sends nothing.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from typing import Callable, Optional, Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "torch-int8", "torch-bf16", "onnx", "onnx-int8", "openvino", "onnx-int8+openvino")
# Chosen by bench/inference_speed.py (bench/results/inference_speed.json): the fastest backend, batch and one request
# at a time, whose word-level F1 on the CoNLL-2003 validation split is within 0.3 points of torch fp32. There, on a
# 2-core AVX2 CPU (no AVX-512/VNNI/bf16), ms/sentence batch / one at a time: pipeline 11.8 / 20.6, torch 5.6 / 17.6,
# torch-int8 3.5 / 10.9 (F1 -1.3 points: out), onnx 4.0 / 7.5, onnx-int8 2.9 / 5.9 (F1 +0.3 points; 4.0x / 3.5x
# the pipeline, median of per-round ratios over 5 rounds; measured with the export of before it traced eager
# attention).
DEFAULT_BACKEND = "onnx-int8"
# On a CPU that computes bf16 natively (a 2-core Xeon with AVX-512 VNNI and AMX, the recommended document model;
# bench/results/inference_speed_amx.json, bench/results/backend_by_length.json): openvino is the fastest in batches
# at every length (1,000 validation sentences: 1.05 ms/sentence against 1.23 for onnx-int8, 1.41 for torch-bf16 and
# 4.88 for the pipeline; the 1,500-character paragraph, two windows of 256 + 103 sub-tokens, in batches of 16: 11.5 ms
# against 20.6 and 13.7) and one text at a time from about 64 sub-tokens (the paragraph: 19.0 ms against 40.2 and
# 29.2), but a short text alone costs it more than onnx-int8 (2.97 against 2.36 ms/sentence): OpenVINO does more work
# per call for each new input shape. Both, each where it is faster: 5.5x the pipeline in batch, 3.6x one at a time,
# validation F1 on documents 93.40 against 93.43 for torch fp32 (onnx-int8 alone: 93.13).
DEFAULT_BACKEND_NATIVE_BF16 = "onnx-int8+openvino"
# The longest window (sub-tokens) a call may have to run on onnx-int8 in onnx-int8+openvino. Measured there
# (bench/backend_by_length.py), ms per text one at a time, onnx-int8 against openvino: 14 sub-tokens 1.89 vs 2.22;
# 28: 2.67 vs 2.88; 43: 3.57 vs 4.36; 62: 4.75 vs 4.85; 101: 7.01 vs 6.06. In batches of 16 openvino is ahead at
# every length, by 10-20% up to 64 sub-tokens, where a batch costs little either way.
SHORT_WINDOW = 64
CHOICES = BACKENDS + ("auto",)

ONNX_OPSET = 17
# Bump when the export or quantization recipe changes: it is part of the cache key.
EXPORT_RECIPE = "torchscript-opset17-eager-attention-v2+int8-per-channel-7bit"
INT8_FILE = "model-int8.onnx"  # beside the fp32 model.onnx in a cache entry
# Largest |logit| difference between the fp32 ONNX graph and torch accepted when a cached or new export is checked.
EXPORT_TOLERANCE = 1e-3

Batch = dict[str, np.ndarray]
Output = tuple[np.ndarray, np.ndarray]  # (label ids int64, probabilities float32), both (batch, length)


def default_backend() -> str:
    """What "auto" runs on this CPU: DEFAULT_BACKEND_NATIVE_BF16 where it computes bf16 natively, else
    DEFAULT_BACKEND."""
    from trainer.precision import native_bf16

    return DEFAULT_BACKEND_NATIVE_BF16 if native_bf16("cpu") else DEFAULT_BACKEND


def resolve(name: Optional[str]) -> str:
    """The backend a name stands for ("auto" or None -> default_backend()); ValueError naming the choices
    otherwise."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return default_backend()
    if name not in BACKENDS:
        raise ValueError(f"unknown inference backend {name!r}: choose one of {', '.join(CHOICES)}")
    return name


def pad_batch(rows: dict[str, Sequence[Sequence[int]]], pad_id: int) -> Batch:
    """Right-padded int64 arrays from lists of token rows: `pad_id` for input_ids, 0 for everything else."""
    first = next(iter(rows.values()))
    n, width = len(first), max(len(r) for r in first)
    out = {}
    for name, seqs in rows.items():
        arr = np.full((n, width), pad_id if name == "input_ids" else 0, dtype=np.int64)
        for i, r in enumerate(seqs):
            arr[i, :len(r)] = r
        out[name] = arr
    return out


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float32, copy=False)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def label_and_prob(logprobs: np.ndarray) -> Output:
    """Each position's argmax label and its probability, from log-probabilities."""
    return logprobs.argmax(-1), np.exp(logprobs.max(-1))


class Backend:
    """`backend(batch) -> log-probabilities` (batch, length, labels) float32; `input_names` are the arrays it reads
    from a batch."""

    name = ""
    input_names: tuple[str, ...] = ()

    def __call__(self, batch: Batch) -> np.ndarray:
        raise NotImplementedError

    def for_longest(self, length: int) -> "Backend":
        """The backend to run a set of windows on (one call of trainer.windows.predict_windows) whose longest has
        `length` sub-tokens: this one, unless a backend says otherwise (OnnxBackend)."""
        return self


class TorchBackend(Backend):
    def __init__(self, model: torch.nn.Module, input_names: Sequence[str], name: str = "torch") -> None:
        self.model, self.name, self.input_names = model.eval(), name, tuple(input_names)
        try:
            self.device = next(model.parameters()).device
        except StopIteration:  # a quantized model may expose no plain parameters
            self.device = torch.device("cpu")

    @torch.inference_mode()
    def __call__(self, batch: Batch) -> np.ndarray:
        logits = self.model(**{n: torch.from_numpy(batch[n]).to(self.device) for n in self.input_names}).logits
        return logits.float().log_softmax(-1).cpu().numpy()


def torch_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` with int8 dynamically quantized nn.Linear layers (the original is left as it is)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notices (still works in torch 2.13)
        from torch.ao.quantization import quantize_dynamic
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class OnnxBackend(Backend):
    """`threads`: ONNX Runtime's intra-op threads (default: torch's, one per core). `one_thread_max_length`: a set of
    windows whose longest is at most this many sub-tokens (texts of a sentence or so, not paragraphs) runs on a second,
    1-thread session instead (`for_longest`). A server wants that: its own work (HTTP, queue, JSON) runs beside the
    model on the same cores, and for a sentence it costs more than the model does, so a second model thread would take
    a core from that work while shortening little that a visitor waits for (see app.py). The choice is made once for
    all the windows of a call: a paragraph's short last window runs on every thread like its others."""

    def __init__(self, path: str, name: str = "onnx", threads: Optional[int] = None,
                 one_thread_max_length: int = 0) -> None:
        threads = threads or torch.get_num_threads()
        self.session = self._session(path, threads)
        self.one_thread_max_length = one_thread_max_length if threads > 1 else 0
        self.one_thread = self._session(path, 1) if self.one_thread_max_length else None
        self.name, self.path = name, path
        self.input_names = self._input_names(self.session)

    def _session(self, path: str, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    @staticmethod
    def _input_names(session) -> tuple[str, ...]:
        return tuple(i.name for i in session.get_inputs())

    def for_longest(self, length: int) -> "OnnxBackend":
        if self.one_thread is None or length > self.one_thread_max_length:
            return self
        view = copy.copy(self)  # the same sessions, running on the 1-thread one
        view.session, view.one_thread = self.one_thread, None
        return view

    def logits(self, batch: Batch) -> np.ndarray:
        return self.session.run(["logits"], {n: batch[n] for n in self.input_names})[0]

    def __call__(self, batch: Batch) -> np.ndarray:
        return log_softmax(self.logits(batch))


class OpenVinoBackend(OnnxBackend):
    """The ONNX export on OpenVINO Runtime (CPU); `threads` and `one_thread_max_length` as in OnnxBackend.
    `precision`: "bf16" or "f32" (default: bf16 where the CPU computes it natively, else f32)."""

    def __init__(self, path: str, name: str = "openvino", threads: Optional[int] = None,
                 one_thread_max_length: int = 0, precision: Optional[str] = None) -> None:
        from trainer.precision import native_bf16

        self.precision = precision or ("bf16" if native_bf16("cpu") else "f32")
        super().__init__(path, name, threads, one_thread_max_length)

    def _session(self, path: str, threads: int) -> "_OpenVinoSession":
        return _OpenVinoSession(path, threads, self.precision)

    @staticmethod
    def _input_names(session: "_OpenVinoSession") -> tuple[str, ...]:
        return tuple(port.get_any_name() for port in session.compiled.inputs)


class _OpenVinoSession:
    """An OpenVINO compiled model behind the call OnnxBackend makes of an ONNX Runtime session, `run`. An infer
    request runs one call at a time, so calls from several threads take turns."""

    def __init__(self, path: str, threads: int, precision: str) -> None:
        import openvino as ov

        core = ov.Core()
        self.threads = threads
        # LATENCY: one request uses every thread given (the default, THROUGHPUT, splits them into streams).
        self.compiled = core.compile_model(core.read_model(path), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()

    def run(self, output_names: Sequence[str], feed: Batch) -> list[np.ndarray]:
        with self.lock:  # the outputs live in the request's buffers until its next call: copied before that
            result = self.request.infer(feed)
            return [np.array(result[name]) for name in output_names]


class LengthRoutedBackend(Backend):
    """One backend for calls whose longest window has at most `max_short_length` sub-tokens, another for longer ones
    (the choice is made once per call, as OnnxBackend's one-thread session is, through `for_longest`)."""

    def __init__(self, short: Backend, long: Backend, max_short_length: int) -> None:
        self.short, self.long, self.max_short_length = short, long, max_short_length
        self.name, self.input_names = f"{short.name}+{long.name}", short.input_names

    def for_longest(self, length: int) -> Backend:
        return (self.short if length <= self.max_short_length else self.long).for_longest(length)

    def __call__(self, batch: Batch) -> np.ndarray:
        return self.for_longest(batch["input_ids"].shape[1])(batch)


# --- ONNX export and cache ------------------------------------------------------------------------------------------

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
        mask[r, length - r * (length // (rows + 1)) - 1:] = 0
    batch = {"input_ids": ids * mask, "attention_mask": mask}
    if "token_type_ids" in names:  # both types where the model has two: the case signal (trainer.casing) uses type 1
        types = min(2, int(getattr(model.config, "type_vocab_size", 1) or 1))
        batch["token_type_ids"] = rng.integers(0, types, size=(rows, length), dtype=np.int64) * mask
    return {n: batch[n] for n in names}


def _replace_atomically(directory: str, final: str, write: Callable[[str], None]) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
        try:
            torch.onnx.export(wrapped, args, path, input_names=list(names), output_names=["logits"],
                              dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False)
        except Exception as exc:  # noqa: BLE001 - the legacy exporter removed or failing: try the dynamo one
            logger.warning("TorchScript ONNX export failed (%s); trying the dynamo exporter", exc)
            dim = torch.export.Dim
            shapes = {n: {0: dim("batch"), 1: dim("sequence")} for n in names}
            torch.onnx.export(wrapped, args, path, input_names=list(names), output_names=["logits"],
                              dynamic_shapes=shapes, opset_version=ONNX_OPSET, dynamo=True, external_data=False)


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

    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     op_types_to_quantize=["MatMul", "Gemm"], extra_options={"DefaultTensorType": TensorProto.FLOAT})


@torch.inference_mode()
def _export_error(model: torch.nn.Module, names: Sequence[str], backend: OnnxBackend) -> float:
    """Largest |logit| difference between `backend` and the torch model on unpadded positions of a padded batch
    of another shape than the traced one (so the dynamic axes and the attention mask are exercised)."""
    sample = _sample(model, names, rows=3, length=21, seed=1)
    want = model(**{n: torch.from_numpy(v) for n, v in sample.items()}).logits.float().numpy()
    got = backend.logits(sample)
    keep = sample["attention_mask"].astype(bool)
    return float(np.abs(got - want)[keep].max())


def onnx_files(model: torch.nn.Module, input_names: Sequence[str], model_dir: Optional[str] = None,
               cache_dir: Optional[str] = None) -> str:
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
        _replace_atomically(cache, fp32, lambda tmp: export_onnx(model, input_names, tmp))
    error = _export_error(model, input_names, OnnxBackend(fp32, threads=1))
    if error > EXPORT_TOLERANCE and not fresh:  # a stale cache entry: export again once
        logger.warning("cached ONNX graph %s differs from the model by %.3g; exporting again", fp32, error)
        _replace_atomically(cache, fp32, lambda tmp: export_onnx(model, input_names, tmp))
        if os.path.exists(os.path.join(cache, INT8_FILE)):  # quantized from the stale graph
            os.remove(os.path.join(cache, INT8_FILE))
        error = _export_error(model, input_names, OnnxBackend(fp32, threads=1))
    if error > EXPORT_TOLERANCE:
        raise RuntimeError(f"the ONNX export of {model_dir or 'the model'} differs from torch by {error:.3g} "
                           f"in its logits (tolerance {EXPORT_TOLERANCE}); use backend='torch'")
    return fp32


def int8_file(fp32: str) -> str:
    """Path of the int8 file beside the checked fp32 one (onnx_files), quantizing it first if needed."""
    cache = os.path.dirname(fp32)
    q = os.path.join(cache, INT8_FILE)
    if not os.path.exists(q):
        _replace_atomically(cache, q, lambda tmp: quantize_onnx(fp32, tmp))
    return q


def model_input_names(model: torch.nn.Module, tokenizer_names: Sequence[str]) -> tuple[str, ...]:
    """The tokenizer's inputs the model's forward accepts (token_type_ids only where it takes it)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    names = tuple(n for n in tokenizer_names if n in params)
    return names if "input_ids" in names else ("input_ids", *names)


def torch_bf16(model: torch.nn.Module) -> torch.nn.Module:
    """A bf16 copy of `model` (the original is left as it is)."""
    return copy.deepcopy(model).to(torch.bfloat16)


def make_backend(name: Optional[str], model: torch.nn.Module, input_names: Sequence[str],
                 model_dir: Optional[str] = None, cache_dir: Optional[str] = None,
                 one_thread_max_length: int = 0) -> Backend:
    """The backend `name` (see BACKENDS; "auto" -> default_backend()) for `model`, reading `input_names` from batches.

    `model_dir`: the local directory the model was loaded from, if any (only to name the ONNX cache entry cheaply;
    nothing is written there). `cache_dir`: where ONNX files go (default: default_cache_dir()). `one_thread_max_length`:
    see OnnxBackend (ONNX backends only: torch's thread count is global to the process)."""
    if (name or "auto").strip().lower() == "auto" and any(p.device.type != "cpu" for p in model.parameters()):
        name = "torch"  # the measured default is a CPU runtime; a model on a GPU stays in torch
    name = resolve(name)
    names = model_input_names(model, input_names)
    if name == "torch":
        return TorchBackend(model, names)
    if name == "torch-int8":
        return TorchBackend(torch_int8(model), names, name="torch-int8")
    if name == "torch-bf16":
        from trainer.precision import native_bf16

        if not native_bf16(next(model.parameters()).device.type):
            raise ValueError(f"backend {name!r} needs native bf16 (a CPU with avx512_bf16/amx_bf16, or a GPU "
                             "with bf16): here it would be emulated, many times slower than fp32; use 'auto'")
        return TorchBackend(torch_bf16(model), names, name="torch-bf16")
    for package in ("onnxruntime", "openvino") if "openvino" in name else ("onnxruntime",):
        try:
            __import__(package)
        except ImportError as exc:
            raise ImportError(f"backend {name!r} needs {package} (pip install -r requirements.txt), "
                              "or use backend='torch'") from exc
    fp32 = onnx_files(model, names, model_dir, cache_dir)
    if name == "openvino":
        return OpenVinoBackend(fp32, one_thread_max_length=one_thread_max_length)
    int8 = name.startswith("onnx-int8")
    onnx = OnnxBackend(int8_file(fp32) if int8 else fp32, name="onnx-int8" if int8 else name,
                       one_thread_max_length=one_thread_max_length)
    if name == "onnx-int8+openvino":
        return LengthRoutedBackend(onnx, OpenVinoBackend(fp32, one_thread_max_length=one_thread_max_length),
                                   SHORT_WINDOW)
    return onnx
