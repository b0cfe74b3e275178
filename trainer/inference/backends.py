"""The token-classification forward pass of trainer.inference.tagger, on the runtime chosen by name, and the loop
that runs it over a text's windows (`predict_windows`).

A backend takes one padded batch (numpy int64 arrays `input_ids`, `attention_mask` and `token_type_ids` where the
model takes it; padding on the right) and returns, per position, the log-probability of every label as a numpy array
of shape (batch, length, labels) (trainer.reading.decoding reads word tags from them). Everything else (windows,
words, offsets, spans) stays in trainer.inference.tagger.

  torch       the model as loaded, fp32, under torch.inference_mode
  torch-bf16  a bf16 copy of the model (weights and activations). Fast only where the hardware computes bf16
              natively (a GPU, or a CPU with AVX512-BF16/AMX: oneDNN runs its matrix products on them); elsewhere it
              is emulated and many times slower than fp32, so it is then refused with that said.
  onnx        the model exported once to ONNX (trainer.inference.onnx_export) and run by ONNX Runtime, fp32
  onnx-int8   that export with int8 weights (see onnx_export.quantize_onnx)
  openvino    the ONNX export run by OpenVINO Runtime on the CPU, in bf16 where the CPU computes it natively
              (AMX/AVX512-BF16), else fp32
  onnx-int8+openvino
              both: a call whose longest window has at most SHORT_WINDOW sub-tokens (a sentence, or a batch of them)
              runs on onnx-int8, a longer one (paragraphs) on openvino
  auto        default_backend() below: the fastest measured at no more than 0.3 points of F1 loss, for this CPU

The int8 backends quantize activations per batch tensor at run time, so a text's labels can depend on which texts
share its batch (in the benchmark 92% of sentences got the same entities alone as in a batch; fp32 backends: 100%).

onnxruntime (and onnx, for quantization) are imported only when an ONNX backend is built, so the torch backends work
without them; openvino only for its backend. Why not Optimum Intel (`OVModelForTokenClassification`) for it:
optimum-intel 2.2 requires transformers<5.6. We never call OpenVINO's model converter (`openvino.convert_model`), which
sends usage telemetry unless opted out: OpenVINO Runtime reads the ONNX file, and the runtime sends nothing.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any, Optional, Sequence

import numpy as np
import torch

from trainer.inference.onnx_export import int8_file, onnx_files
from trainer.machine import native_bf16
from trainer.reading.windows import Progress, longest_first

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8", "openvino", "onnx-int8+openvino")
# Chosen by bench/inference_speed.py (bench/results/inference_speed.json): the fastest backend, batch and one request
# at a time, whose word-level F1 on the CoNLL-2003 validation split is within 0.3 points of torch fp32. There, on a
# 2-core AVX2 CPU (no AVX-512/VNNI/bf16), ms/sentence batch / one at a time: pipeline 11.8 / 20.6, torch 5.6 / 17.6,
# onnx 4.0 / 7.5, onnx-int8 2.9 / 5.9 (F1 +0.3 points; 4.0x / 3.5x
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

Batch = dict[str, np.ndarray]


def default_backend() -> str:
    """What "auto" runs on this CPU: DEFAULT_BACKEND_NATIVE_BF16 where it computes bf16 natively, else
    DEFAULT_BACKEND."""
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
            arr[i, : len(r)] = r
        out[name] = arr
    return out


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float32, copy=False)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


class Backend:
    """`backend(batch) -> log-probabilities` (batch, length, labels) float32; `input_names` are the arrays it reads
    from a batch."""

    name = ""
    input_names: tuple[str, ...] = ()

    def __call__(self, batch: Batch) -> np.ndarray:
        raise NotImplementedError

    def for_longest(self, length: int) -> Backend:
        """The backend to run a set of windows on (one call of trainer.reading.windows.predict_windows) whose longest
        has `length` sub-tokens: this one, unless a backend says otherwise (LengthRoutedBackend)."""
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


class OnnxBackend(Backend):
    """An ONNX Runtime session over the exported model; `threads`: its intra-op threads (default: torch's, one per
    core)."""

    def __init__(self, path: str, name: str = "onnx", threads: Optional[int] = None) -> None:
        self.session = self._session(path, threads or torch.get_num_threads())
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

    def logits(self, batch: Batch) -> np.ndarray:
        return self.session.run(["logits"], {n: batch[n] for n in self.input_names})[0]

    def __call__(self, batch: Batch) -> np.ndarray:
        return log_softmax(self.logits(batch))


class OpenVinoBackend(OnnxBackend):
    """The ONNX export on OpenVINO Runtime (CPU); `threads` as in OnnxBackend.
    `precision`: "bf16" or "f32" (default: bf16 where the CPU computes it natively, else f32)."""

    def __init__(
        self,
        path: str,
        name: str = "openvino",
        threads: Optional[int] = None,
        precision: Optional[str] = None,
    ) -> None:
        self.precision = precision or ("bf16" if native_bf16("cpu") else "f32")
        super().__init__(path, name, threads)

    def _session(self, path: str, threads: int) -> _OpenVinoSession:
        return _OpenVinoSession(path, threads, self.precision)

    @staticmethod
    def _input_names(session: _OpenVinoSession) -> tuple[str, ...]:
        return tuple(port.get_any_name() for port in session.compiled.inputs)


class _OpenVinoSession:
    """An OpenVINO compiled model behind the call OnnxBackend makes of an ONNX Runtime session, `run`. An infer
    request runs one call at a time, so calls from several threads take turns."""

    def __init__(self, path: str, threads: int, precision: str) -> None:
        import openvino as ov

        core = ov.Core()
        self.threads = threads
        # LATENCY: one request uses every thread given (the default, THROUGHPUT, splits them into streams).
        self.compiled = core.compile_model(
            core.read_model(path),
            "CPU",
            {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"},
        )
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()

    def run(self, output_names: Sequence[str], feed: Batch) -> list[np.ndarray]:
        with self.lock:  # the outputs live in the request's buffers until its next call: copied before that
            result = self.request.infer(feed)
            return [np.array(result[name]) for name in output_names]


class LengthRoutedBackend(Backend):
    """One backend for calls whose longest window has at most `max_short_length` sub-tokens, another for longer ones
    (the choice is made once per call, through `for_longest`)."""

    def __init__(self, short: Backend, long: Backend, max_short_length: int) -> None:
        self.short, self.long, self.max_short_length = short, long, max_short_length
        self.name, self.input_names = f"{short.name}+{long.name}", short.input_names

    def for_longest(self, length: int) -> Backend:
        return (self.short if length <= self.max_short_length else self.long).for_longest(length)

    def __call__(self, batch: Batch) -> np.ndarray:
        return self.for_longest(batch["input_ids"].shape[1])(batch)


def model_input_names(model: torch.nn.Module, tokenizer_names: Sequence[str]) -> tuple[str, ...]:
    """The tokenizer's inputs the model's forward accepts (token_type_ids only where it takes it)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    names = tuple(n for n in tokenizer_names if n in params)
    return names if "input_ids" in names else ("input_ids", *names)


def torch_bf16(model: torch.nn.Module) -> torch.nn.Module:
    """A bf16 copy of `model` (the original is left as it is)."""
    return copy.deepcopy(model).to(torch.bfloat16)


def make_backend(
    name: Optional[str],
    model: torch.nn.Module,
    input_names: Sequence[str],
    model_dir: Optional[str] = None,
    cache_dir: Optional[str] = None,
) -> Backend:
    """The backend `name` (see BACKENDS; "auto" -> default_backend()) for `model`, reading `input_names` from batches.

    `model_dir`: the local directory the model was loaded from, if any (only to name the ONNX cache entry cheaply;
    nothing is written there). `cache_dir`: where ONNX files go (default: default_cache_dir())."""
    if (name or "auto").strip().lower() == "auto" and any(p.device.type != "cpu" for p in model.parameters()):
        name = "torch"  # the measured default is a CPU runtime; a model on a GPU stays in torch
    name = resolve(name)
    names = model_input_names(model, input_names)
    if name == "torch":
        return TorchBackend(model, names)
    if name == "torch-bf16":
        if not native_bf16(next(model.parameters()).device.type):
            raise ValueError(
                f"backend {name!r} needs native bf16 (a CPU with avx512_bf16/amx_bf16, or a GPU "
                "with bf16): here it would be emulated, many times slower than fp32; use 'auto'"
            )
        return TorchBackend(torch_bf16(model), names, name="torch-bf16")
    for package in ("onnxruntime", "openvino") if "openvino" in name else ("onnxruntime",):
        try:
            __import__(package)
        except ImportError as exc:
            raise ImportError(
                f"backend {name!r} needs {package} (pip install -r requirements.txt), or use backend='torch'"
            ) from exc
    fp32 = onnx_files(model, names, model_dir, cache_dir)
    if name == "openvino":
        return OpenVinoBackend(fp32)
    int8 = name.startswith("onnx-int8")
    onnx = OnnxBackend(int8_file(fp32) if int8 else fp32, name="onnx-int8" if int8 else name)
    if name == "onnx-int8+openvino":
        return LengthRoutedBackend(onnx, OpenVinoBackend(fp32), SHORT_WINDOW)
    return onnx


def predict_windows(
    forward: Any, inputs: Any, pad_id: int, batch_size: int, progress: Optional[Progress] = None
) -> list[np.ndarray]:
    """The log-probability of every label at every position of every window, in window order (`inputs`: the
    tokenizer's windows): one (positions, labels) array per window. `forward` is a backend: a padded
    numpy batch of its `input_names` -> log-probabilities; the one it picks for the longest window runs them all.
    Windows are run longest first in batches of `batch_size`."""
    n_windows = len(inputs["input_ids"])
    lengths = [len(ids) for ids in inputs["input_ids"]]
    order = longest_first(lengths)
    forward = forward.for_longest(max(lengths, default=0))
    out: list[np.ndarray] = [np.zeros((0, 0), dtype=np.float32)] * n_windows
    for b in range(0, n_windows, batch_size):
        if progress:
            progress(b / n_windows, f"predicting {b}/{n_windows} windows")
        idx = order[b : b + batch_size]
        logprobs = forward(pad_batch({n: [inputs[n][w] for w in idx] for n in forward.input_names}, pad_id))
        for row, w in enumerate(idx):
            out[w] = logprobs[row, : len(inputs["input_ids"][w])]
    return out
