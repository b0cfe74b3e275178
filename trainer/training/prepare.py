"""What both engines start from: the data, the tokenizer, a model whose config carries the labels, encoded splits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from accelerate import PartialState
from datasets import Dataset
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    set_seed,
)

from trainer.config import Config
from trainer.data.load import NerData, load_data
from trainer.evaluation.metrics import validation_scores
from trainer.inference.tagger import load_tokenizer
from trainer.processes import process_state
from trainer.reading.windows import CONFIG_ATTRIBUTE, DocumentWindows, Window, window
from trainer.training.cpu import keep_freed_memory
from trainer.training.defaults import choose_batch_size, choose_context
from trainer.training.distill import DistillCollator, soft_targets, teacher_labels, teachers, word_index
from trainer.training.encode import encode
from trainer.training.output_dir import check_identity, prepare_output_dir
from trainer.training.precision import attention_implementation

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    data: NerData
    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    train: Dataset
    validation: Dataset | None  # first sub-tokens labelled only: word-level evaluation during training
    validation_windows: DocumentWindows | None  # how validation's windows map back to its words
    window: Window  # what one training example is (trainer.reading.windows), recorded in the model's config
    collator: DataCollatorForTokenClassification  # pads a batch of windows and their labels
    train_collator: Any  # the same, plus the teachers' soft targets of a distilled run (trainer.training.distill)

    def score_validation(self, logprobs: Sequence[Any]) -> dict[str, float]:
        """Word-level scores of the validation windows' predictions during training, in window order (either
        engine; trainer.evaluation.metrics.validation_scores)."""
        return validation_scores(
            logprobs,
            self.validation_windows,
            list(self.data.splits["validation"]["tags"]),
            self.model.config.id2label,
            self.data.scheme,
            self.window.decoding,
        )


# What encoder families call their dropouts in their configs: BERT, RoBERTa, ELECTRA, DeBERTa, XLM-R
# (attention_probs_dropout_prob, hidden_dropout_prob); DistilBERT and most newer ones (attention_dropout, dropout).
DROPOUT_NAMES = {
    "attention": ("attention_probs_dropout_prob", "attention_dropout"),
    "hidden": ("hidden_dropout_prob", "dropout"),
}


def dropout_overrides(
    name_or_path: str, attention: float | None = None, hidden: float | None = None
) -> dict[str, float]:
    """The from_pretrained keywords that set the model's attention and hidden dropouts (none for None: the model's
    own). They must be set when the model is built: the dropout modules read them then."""
    wanted = {kind: p for kind, p in (("attention", attention), ("hidden", hidden)) if p is not None}
    if not wanted:
        return {}
    config = AutoConfig.from_pretrained(name_or_path)
    out = {}
    for kind, p in wanted.items():
        name = next((n for n in DROPOUT_NAMES[kind] if hasattr(config, n)), None)
        if name is None:
            raise ValueError(
                f"{name_or_path}: its config ({type(config).__name__}) has none of "
                f"{', '.join(DROPOUT_NAMES[kind])}; leave --{kind}-dropout unset for this model"
            )
        out[name] = p
    return out


def prepare(cfg: Config) -> Prepared:
    """On the main process, the output directory is checked (and cleared with --overwrite-output-dir) before anything
    is loaded, and the run's identity is checked or recorded once the labels are known (trainer.training.output_dir).
    The main process prepares first, so that a model or dataset is downloaded and cached once; the others then read the
    cache."""
    state = process_state()
    with state.main_process_first():
        return _prepare(cfg, state)


def _prepare(cfg: Config, state: PartialState) -> Prepared:
    if state.is_main_process:
        prepare_output_dir(cfg)
    set_seed(cfg.seed)
    data = load_data(cfg)
    if teachers(cfg):  # the student learns the teachers' labels, in their order
        data.labels = teacher_labels(teachers(cfg), data.labels)
    if state.is_main_process:
        check_identity(cfg, data.labels, state.num_processes)
    if "train" not in data.splits:
        raise ValueError(f"{data.source}: no training split")
    train_split = data.splits["train"]
    cfg.context = choose_context(cfg.context, train_split["doc_id"], train_split["tokens"])
    logger.info(
        "Data: %s, scheme %s -> IOB2, %d labels, sizes %s",
        data.source,
        data.scheme,
        len(data.labels),
        {s: len(d) for s, d in data.splits.items()},
    )
    tokenizer = load_tokenizer(cfg.model_name_or_path)
    id2label = dict(enumerate(data.labels))
    # ignore_mismatched_sizes: the base may already be a token classifier with another label set; its head is
    # then replaced, which is what fine-tuning on new labels means.
    model = AutoModelForTokenClassification.from_pretrained(
        cfg.model_name_or_path,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        ignore_mismatched_sizes=True,
        **dropout_overrides(cfg.model_name_or_path, cfg.attention_dropout, cfg.hidden_dropout),
        **attention_implementation(cfg),
    )
    if cfg.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if not torch.cuda.is_available():  # training on a CPU: fresh pages are slow to fault in (trainer.training.cpu)
        keep_freed_memory()
    win = window(tokenizer, model.config, cfg.context, cfg.max_seq_length, cfg.stride, cfg.decoding, cfg.case_signal)
    # Recorded in config.json by every save_pretrained (checkpoints, the best model), so that evaluation and the Space
    # read texts in the windows the model was trained on (trainer.reading.windows.model_window).
    setattr(model.config, CONFIG_ATTRIBUTE, win.as_dict())
    train, train_windows = encode(
        data.splits["train"],
        tokenizer,
        data.label2id,
        cfg.label_all_tokens,
        win,
        data.sentence_sources("train"),
        what="train",
    )
    collator = DataCollatorForTokenClassification(tokenizer)
    train_collator = collator
    if teachers(cfg):
        train = train.add_column("word_index", word_index(train_windows))
        targets = soft_targets(cfg, train_split["tokens"], train_split["doc_id"], data.labels)
        train_collator = DistillCollator(collator, targets)
    # A window that holds only the rest of a word begun in the previous one (a word longer than a window less its
    # stride) has no label: it teaches nothing, and its loss, a mean over no sub-token, is NaN.
    labelled = [i for i, labels in enumerate(train["labels"]) if any(label != -100 for label in labels)]
    if len(labelled) < len(train):
        logger.info(
            "%d training windows hold no labelled sub-token (the rest of a word longer than a window): left out",
            len(train) - len(labelled),
        )
        train = train.select(labelled)
    cfg.per_device_train_batch_size = choose_batch_size(cfg, len(train), state.num_processes)
    # Validation is scored per word from the encoded windows, so each of its words must keep a sub-token.
    validation, validation_windows = (
        encode(
            data.splits["validation"],
            tokenizer,
            data.label2id,
            False,
            win,
            data.sentence_sources("validation"),
            what="validation",
        )
        if "validation" in data.splits
        else (None, None)
    )
    logger.info(
        "Context %s: windows of %d sub-tokens sharing %d, case signal %s; %d training sentences in %d windows%s",
        win.context,
        win.max_length,
        win.stride,
        win.case_signal,
        len(data.splits["train"]),
        len(train),
        f", {len(validation)} validation windows" if validation is not None else "",
    )
    return Prepared(data, tokenizer, model, train, validation, validation_windows, win, collator, train_collator)
