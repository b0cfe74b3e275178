"""Word-level distillation: trained models of this project (`--teacher`, any encoder and tokenizer) teach the model
being trained, beside the gold labels.

Each teacher reads the training words in its own tokenizer and windows (the ones its config records), as evaluation
reads them: a word's label distribution is its first sub-token's, in the window where that has the most context
(trainer.reading.windows). So a cased bert-large teacher can teach an uncased MiniLM student: what passes between them
is one distribution per word, never sub-tokens. Several teachers are averaged (their probabilities at the
temperature). The student learns each word's distribution on its own first sub-token of the word:

    loss = alpha * cross-entropy(gold) + (1 - alpha) * T^2 * KL(teachers_T || student_T)

(Hinton et al., 2015). The teachers' distributions are computed once per run, before training, and cached in the
output directory (`teacher_targets.npz`, keyed by the teachers, the data and T), so a resumed run reads them back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForTokenClassification

from trainer.config import Config
from trainer.inference.backends import TorchBackend, model_input_names, predict_windows
from trainer.inference.tagger import load_tokenizer
from trainer.outputs import TEACHER_TARGETS_FILE, atomic_path
from trainer.reading.windows import DocumentWindows, model_window

logger = logging.getLogger(__name__)


def teachers(cfg: Config) -> list[str]:
    return [t.strip() for t in (cfg.teacher or "").split(",") if t.strip()]


def teacher_labels(names: Sequence[str], gold: Sequence[str]) -> list[str]:
    """The label list the student is trained with: the first teacher's. Every teacher must have the same set, and
    every label of the training data must be among them (a ValueError says which differ)."""
    sets = []
    for name in names:
        id2label = AutoConfig.from_pretrained(name).id2label
        sets.append([id2label[i] for i in sorted(id2label)])
    for name, labels in zip(names[1:], sets[1:]):
        if set(labels) != set(sets[0]):
            diff = sorted(set(labels) ^ set(sets[0]))
            raise ValueError(f"--teacher: {name} and {names[0]} have other label sets (differing: {', '.join(diff)})")
    unknown = sorted(set(gold) - set(sets[0]))
    if unknown:
        raise ValueError(f"--teacher: the training data has labels no teacher knows: {', '.join(unknown)}")
    return sets[0]


def _key(names: Sequence[str], sentences: Sequence[Sequence[str]], labels: Sequence[str], temperature: float) -> str:
    """What a cached set of targets was computed from: each teacher's config and weights, the words, the labels, T."""
    h = hashlib.sha256(json.dumps([list(labels), temperature]).encode())
    for name in names:
        for file in ("config.json", "model.safetensors"):
            path = os.path.join(name, file)
            h.update(
                f"{name}|{os.path.getsize(path)}|{os.path.getmtime(path)}".encode()
                if os.path.exists(path)
                else name.encode()
            )
    for words in sentences:
        h.update("\x1f".join(words).encode() + b"\x1e")
    return h.hexdigest()[:16]


@torch.inference_mode()
def word_log_probs(name: str, sentences: Sequence[Sequence[str]], doc_ids: Sequence[int], labels: Sequence[str],
                   batch_size: int = 32) -> np.ndarray:  # fmt: skip
    """(words, labels) log-probabilities of teacher `name` for every word of `sentences`, in order, its columns in
    `labels`' order; NaN rows for words its tokenizer gives no sub-token."""
    from tqdm.auto import tqdm

    tokenizer = load_tokenizer(name)
    model = AutoModelForTokenClassification.from_pretrained(name).eval()
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    windows = DocumentWindows.build(tokenizer, sentences, doc_ids, model_window(tokenizer, model.config), "teacher")
    backend = TorchBackend(model, model_input_names(model, tokenizer.model_input_names))
    with tqdm(total=len(windows), desc=f"teacher {os.path.basename(os.path.normpath(name))}", unit="window") as bar:
        logprobs = predict_windows(backend, windows.inputs, tokenizer.pad_token_id or 0, batch_size,
                                   lambda done, _: bar.update(round(done * len(windows)) - bar.n))  # fmt: skip
    order = [model.config.label2id[label] for label in labels]
    return np.concatenate(windows.word_scores(logprobs))[:, order]


def soft_targets(cfg: Config, sentences: Sequence[Sequence[str]], doc_ids: Sequence[int],
                 labels: Sequence[str]) -> np.ndarray:  # fmt: skip
    """(words, labels) probabilities the student learns: the teachers' at temperature T, averaged (NaN rows where
    no teacher read the word). Read from the output directory's cache when it holds these."""
    names = teachers(cfg)
    key = _key(names, sentences, labels, cfg.distill_temperature)
    path = os.path.join(cfg.output_dir, TEACHER_TARGETS_FILE)
    if os.path.exists(path):
        cached = np.load(path)
        if str(cached["key"]) == key:
            logger.info("Teachers' word distributions read from %s", path)
            return cached["targets"]
    probs = []
    for name in names:
        logp = torch.from_numpy(word_log_probs(name, sentences, doc_ids, labels, cfg.per_device_eval_batch_size))
        probs.append(torch.softmax(logp / cfg.distill_temperature, -1))  # softmax(log p / T) = softmax(logits / T)
    targets = torch.stack(probs).nanmean(0).numpy().astype(np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, targets=targets, key=np.array(key))
    logger.info(
        "Teachers' word distributions of %d words from %d teachers cached in %s", len(targets), len(names), path
    )
    return targets


def word_index(windows: DocumentWindows) -> list[list[int]]:
    """Per training window and position: the index, among all words of the split in order, of the word whose first
    sub-token sits there (as the window holds it: a word begun in an earlier window is not its), else -1."""
    doc_start, total = {}, 0
    for doc, _, n in windows.sentences:
        doc_start.setdefault(doc, total)
        total += n
    out = []
    for k, doc in enumerate(windows.doc):
        row = [-1] * len(windows.word_ids[k])
        for w, pos in windows.first_subtokens(k).items():
            row[pos] = doc_start[doc] + w
        out.append(row)
    return out


class DistillCollator:
    """The usual collator, then each batch's soft targets: `teacher_probs` (batch, positions, labels) and
    `teacher_mask`, from the windows' `word_index` column."""

    def __init__(self, collator: Any, targets: np.ndarray) -> None:
        self.collator, self.targets = collator, torch.from_numpy(np.nan_to_num(targets, nan=0.0))
        self.known = torch.from_numpy(~np.isnan(targets).any(-1))

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        index = [f.pop("word_index", None) for f in features]
        batch = self.collator(features)
        if any(i is None for i in index):  # validation windows: no soft targets
            return batch
        width = batch["input_ids"].shape[1]
        padded = torch.tensor([row + [-1] * (width - len(row)) for row in index])
        mask = padded >= 0
        mask[mask.clone()] = self.known[padded[mask]]
        batch["teacher_probs"] = self.targets[padded.clamp(min=0)]
        batch["teacher_mask"] = mask
        return batch


def training_loss(model: torch.nn.Module, batch: dict[str, Any], cfg: Config) -> Any:
    """The model's loss on a training batch, with the teachers' term where the batch carries soft targets."""
    probs, mask = batch.pop("teacher_probs", None), batch.pop("teacher_mask", None)
    out = model(**batch)
    if probs is None:
        return out.loss
    t = cfg.distill_temperature
    student = F.log_softmax(out.logits.float()[mask] / t, -1)
    kl = F.kl_div(student, probs[mask], reduction="batchmean") * t * t if mask.any() else out.logits.sum() * 0
    return cfg.distill_alpha * out.loss + (1 - cfg.distill_alpha) * kl
