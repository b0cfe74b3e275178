"""The one typed configuration: parsed from flags or a JSON/YAML file by `python -m trainer`, built directly by code
and tests, written to `<output_dir>/run_config.json` and read back by the model card.

Hyperparameters keep the `TrainingArguments` names so users of `run_ner.py` feel at home; both engines (the HF
Trainer and the Accelerate loop) read the same fields. It imports nothing of the package but the window defaults of
trainer.reading.windows, the option helper of trainer.cli and the JSON helpers of trainer.outputs.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Literal, Optional

from trainer.cli import field_help as _help
from trainer.outputs import from_dict, load_json, write_json
from trainer.reading.windows import DEFAULT_STRIDE, DOCUMENT_MAX_LENGTH, default_stride

TASK_TAG_COLUMNS = {"ner": "ner_tags", "pos": "pos_tags", "chunk": "chunk_tags"}
# Column of each task in a CoNLL column file, counted from 0 (the token). CoNLL-2003 is `token POS chunk NER` and
# CoNLL-2000 is `token POS chunk`, so NER is the last column and POS/chunk sit at fixed places.
TASK_FILE_COLUMNS = {"ner": -1, "pos": 1, "chunk": 2}

# The fields that name the data source: a new source given for evaluation replaces all of them.
DATA_SOURCE_FIELDS = (
    "dataset_name",
    "dataset_config_name",
    "dataset_revision",
    "data_dir",
    "train_file",
    "validation_file",
    "test_file",
)
# The run's bookkeeping, which a resumed run may change and the model card does not list as hyperparameters: where it
# writes and logs, how often it checkpoints, what it evaluates and reports, and the Hub. Every other field decides
# what the checkpoints hold or how training goes on from them (trainer.training.output_dir refuses a resume that
# changes one).
RUN_FIELDS = {
    "output_dir",
    "overwrite_output_dir",
    "resume",
    "resume_from_checkpoint",
    "logging_steps",
    "save_steps",
    "save_total_limit",
    "dataloader_num_workers",
    "per_device_eval_batch_size",
    "max_eval_samples",
    "validation_file",
    "test_file",
    "push_to_hub",
    "hub_model_id",
    "hub_private_repo",
    "license",
    "report_to",
}
DEFAULT_DATASET = "conll2003"
# Hub ids that no longer load as named. The canonical `conll2003` was a loading script, which datasets>=4 refuses;
# its parquet conversion holds the same data (IOB2 tags, ClassLabel names). Used by the data reader and the card.
HUB_ALIASES = {"conll2003": ("eriktks/conll2003", "refs/convert/parquet")}


@dataclass
class Config:
    # --- model -----------------------------------------------------------------------------------------------------
    model_name_or_path: str = _help(
        "Encoder to fine-tune: a Hub model id or a local directory.", default="bert-base-cased"
    )
    engine: Literal["trainer", "accelerate"] = _help(
        "Training engine: the HF Trainer, or the custom Accelerate loop (both run under `accelerate launch`).",
        default="trainer",
    )

    # --- data ------------------------------------------------------------------------------------------------------
    task: Literal["ner", "pos", "chunk"] = _help(
        "Which tags to learn. Picks the tag column of Hub datasets (`<task>_tags`) and of column files "
        "(ner: last, pos: 2nd, chunk: 3rd) unless --label-column / --label-column-name say otherwise.",
        default="ner",
    )
    dataset_name: Optional[str] = _help(
        "Hub dataset id (or a local dataset directory). `conll2003` maps to a parquet copy that loads with "
        "datasets>=4. Used when no local files are given; defaults to conll2003.",
        default=None,
    )
    dataset_config_name: Optional[str] = _help("Hub dataset configuration name.", default=None)
    dataset_revision: Optional[str] = _help(
        "Hub dataset revision (branch, tag or commit). Default: the alias's revision, else `main`.", default=None
    )
    data_dir: Optional[str] = _help(
        "Directory of CoNLL column files: eng.train/eng.testa/eng.testb, or train/validation/test "
        "(with or without .txt/.conll/.jsonl extensions).",
        default=None,
    )
    train_file: Optional[str] = _help(
        "Training file: CoNLL columns, or JSON lines with `tokens` and `tags`.", default=None
    )
    validation_file: Optional[str] = _help("Validation file (same formats).", default=None)
    test_file: Optional[str] = _help("Test file (same formats).", default=None)
    label_column: Optional[int] = _help(
        "Tag column of CoNLL column files, counted from 0 (the token); negative counts from the end.", default=None
    )
    tokens_column_name: str = _help("Token column of Hub datasets.", default="tokens")
    label_column_name: Optional[str] = _help("Tag column of Hub datasets (default `<task>_tags`).", default=None)
    label_scheme: Literal["auto", "IOB1", "IOB2", "BIOES", "none"] = _help(
        "Tag scheme of the data. `auto` detects it (IOB1, IOB2, BIOES; `none` for plain tags such as POS). "
        "Everything is converted to IOB2 for training and evaluation.",
        default="auto",
    )
    max_train_samples: Optional[int] = _help("Keep only the first N training sentences (quick runs).", default=None)
    max_eval_samples: Optional[int] = _help(
        "Keep only the first N validation and test sentences (quick runs).", default=None
    )

    # --- tokenization ----------------------------------------------------------------------------------------------
    context: Literal["auto", "document", "sentence"] = _help(
        "What the model reads at once, in training, evaluation and the Space alike. `auto`: `document` where the "
        "training data marks documents or keeps its sentences in reading order (consecutive sentences share far more "
        "words than distant ones), else `sentence`; the log says which and why. `document`: consecutive "
        "sentences of one document (CoNLL -DOCSTART-, JSON lines' doc_id) packed into windows of --max-seq-length "
        "sub-tokens; data without document boundaries (e.g. the Hub's conll2003) is read as one stream, in order. "
        "`sentence`: each sentence on its own (the course's setting). Either way a text longer than a window is read "
        "in windows sharing --stride sub-tokens, never cut, and each word is scored where it has the most context.",
        default="auto",
    )
    max_seq_length: Optional[int] = _help(
        f"Sub-tokens per window, special tokens included (default: {DOCUMENT_MAX_LENGTH} with --context document, "
        "the tokenizer's limit with --context sentence), capped by the model's limit.",
        default=None,
    )
    stride: Optional[int] = _help(
        "Sub-tokens shared by consecutive windows of a long document or sentence (0 <= stride < half a window; "
        f"default: a quarter of --max-seq-length, at most {DEFAULT_STRIDE}).",
        default=None,
    )
    decoding: Literal["argmax", "viterbi"] = _help(
        "How word tags are read from the model's label scores, in evaluation and the Space alike (recorded in the "
        "model's config): `viterbi`, the most probable sequence of valid IOB2 tags (an I-X only after B-X or I-X; "
        "plain tags such as POS fall back to argmax); `argmax`, each word's most probable label on its own.",
        default="viterbi",
    )
    case_signal: Literal["auto", "none", "token_type"] = _help(
        "Capitals for an encoder whose tokenizer lower-cases (e.g. all-MiniLM-L6-v2), in training, evaluation and the "
        "Space alike (recorded in the model's config): `token_type` sets token_type_ids to 1 on sub-tokens holding an "
        "upper-case letter; `auto` does so only for such tokenizers with a model that has 2 token types (never for "
        "cased ones such as bert-base-cased); `none` never.",
        default="auto",
    )
    label_all_tokens: bool = _help(
        "Label every sub-token of a word (the course's strategy: B- becomes I- on continuations) instead of only its "
        "first, the one a word is read by. Evaluation is at word level either way.",
        default=False,
    )

    # --- training (TrainingArguments names) ------------------------------------------------------------------------
    output_dir: str = _help("Where the best model, tokenizer, results and checkpoints go.", default="model")
    overwrite_output_dir: bool = _help(
        "Replace the run already in --output-dir (its files and checkpoints are removed first). Without it, a "
        "directory holding a run is refused unless --resume continues it.",
        default=False,
    )
    learning_rate: float = _help(
        "Peak AdamW learning rate. The default suits ~1,000 sub-tokens a step (the course's 2e-5 is for 8 sentences, "
        "~200 sub-tokens: recipes/course.yaml).",
        default=1e-4,
    )
    num_train_epochs: float = _help("Training epochs.", default=3.0)
    per_device_train_batch_size: Optional[int] = _help(
        "Training examples per device and step: windows of --max-seq-length sub-tokens (several sentences each) with "
        "--context document, sentences with --context sentence. Default: about 1,000 sub-tokens a step (4 windows of "
        "256, or 32 sentences), fewer where the training data is too small for 100 optimizer steps; the log says so.",
        default=None,
    )
    per_device_eval_batch_size: int = _help("Evaluation batch size per device.", default=32)
    gradient_accumulation_steps: int = _help("Batches accumulated per optimizer step.", default=1)
    weight_decay: float = _help("AdamW weight decay.", default=0.01)
    attention_dropout: Optional[float] = _help(
        "Dropout on the attention probabilities (default: the model's own, 0.1 for BERT). 0 lets PyTorch run its fused "
        "attention kernel in training, which never builds the (heads x length x length) probabilities, nor their "
        "random mask: the recommended recipe trains ~1.2x faster on a CPU with it (docs/results.md, Training speed).",
        default=None,
    )
    hidden_dropout: Optional[float] = _help(
        "Dropout on the hidden states (embeddings, each layer's outputs, the classifier's input; default: the model's "
        "own, 0.1 for BERT). Without it a CPU training step runs ~1.16x faster (bench/step_levers.py).",
        default=None,
    )
    freeze_word_embeddings: bool = _help(
        "Keep the encoder's word (sub-token) embeddings as pretrained: no gradient and no optimizer state for what is "
        "often its largest matrix (half of MiniLM's parameters). Position and token-type embeddings (the case "
        "signal) still train.",
        default=False,
    )
    layer_lr_decay: float = _help(
        "Layer-wise learning-rate decay: the classifier learns at --learning-rate, each encoder layer below it at this "
        "factor of the one above, the embeddings lowest (0.9 over MiniLM's 6 layers: 0.48x). 1: one rate for all. "
        "0.85 from lr 2e-4 measured no gain over the defaults on CoNLL-2003 (docs/results.md).",
        default=1.0,
    )
    warmup_steps: float = _help(
        "Linear warm-up: a number of optimizer steps, or a float in [0, 1) for a fraction of all steps.", default=0.0
    )
    lr_scheduler_type: str = _help("Learning-rate schedule (transformers SchedulerType).", default="linear")
    max_grad_norm: float = _help("Gradient clipping norm.", default=1.0)
    seed: int = _help("Random seed (model head init, shuffling, dropout).", default=42)
    bf16: bool = _help(
        "bfloat16 mixed precision where the hardware computes it natively (CUDA GPUs with bf16, CPUs with "
        "AVX512-BF16 or AMX). Elsewhere it is ignored with a warning: emulated bf16 trains many times slower.",
        default=False,
    )
    fp16: bool = _help("float16 mixed precision (GPU).", default=False)
    group_by_length: bool = _help(
        "Batch sentences of similar length together in training (less padding, faster).", default=False
    )
    report_to: Literal["none", "tensorboard", "trackio", "wandb"] = _help(
        "Where to log training as it goes (either engine, the same names): train/loss, train/learning_rate, "
        "train/tokens_per_s and eval/f1 after each evaluation. tensorboard writes into <output-dir>/runs; trackio is "
        "the Hub's local-first tracker; each needs its package (requirements-dev.txt).",
        default="none",
    )
    logging_steps: int = _help("Log loss and throughput every N optimizer steps.", default=50)
    eval_strategy: Literal["epoch", "steps", "no"] = _help(
        "When to evaluate on validation during training; the best checkpoint by validation F1 is kept.", default="epoch"
    )
    eval_steps: Optional[int] = _help("Evaluate every N steps with --eval-strategy steps.", default=None)
    save_steps: Optional[int] = _help(
        "Also checkpoint every N optimizer steps (a checkpoint is always written at each evaluation).", default=None
    )
    save_total_limit: Optional[int] = _help("Keep at most K checkpoints (the best one is always kept).", default=2)
    resume: bool = _help("Resume from the newest checkpoint in --output-dir, if there is one.", default=False)
    resume_from_checkpoint: Optional[str] = _help("Resume from this checkpoint directory.", default=None)
    dataloader_num_workers: int = _help("DataLoader worker processes.", default=0)

    teacher: Optional[str] = _help(
        "Distil from trained token-classification models of this project (output directories or Hub ids, "
        "comma-separated; any encoder and tokenizer): each reads the training words in its own windows, a word's label "
        "distribution is its first sub-token's, averaged over the teachers, and this model learns it on its own first "
        "sub-token of the word beside the gold labels. Computed once per run, cached in the output directory.",
        default=None,
    )
    distill_alpha: float = _help(
        "With --teacher: the weight of the gold labels' cross-entropy; 1 - alpha weighs the KL divergence to the "
        "teachers (0: the teachers alone).",
        default=0.5,
    )
    distill_temperature: float = _help(
        "With --teacher: the temperature of both distributions in the KL term, which is scaled by its square.",
        default=2.0,
    )

    # --- hub -------------------------------------------------------------------------------------------------------
    push_to_hub: bool = _help(
        "Push the best model, tokenizer, results and model card to the Hub (token from HF_TOKEN or the cached login).",
        default=False,
    )
    hub_model_id: Optional[str] = _help(
        "Hub repository, `user/name`. Default: the output directory's name.", default=None
    )
    hub_private_repo: bool = _help("Create the Hub repository as private.", default=False)
    push_unlearned: bool = _help(
        "Push even a run whose model predicts no entity on validation (such a run is refused by default: it has "
        "learnt nothing, and the Hub would show it as a model).",
        default=False,
    )
    license: Optional[str] = _help("License for the model card (default: the base model's, if known).", default=None)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # inf and nan pass every comparison below, and train to a NaN model
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"--{f.name.replace('_', '-')} must be a finite number, got {value}")
        if self.learning_rate <= 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate}")
        if self.num_train_epochs <= 0:
            raise ValueError(f"--num-train-epochs must be > 0, got {self.num_train_epochs}")
        for name in ("per_device_eval_batch_size", "gradient_accumulation_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.per_device_train_batch_size is not None and self.per_device_train_batch_size < 1:
            raise ValueError(f"--per-device-train-batch-size must be >= 1, got {self.per_device_train_batch_size}")
        for name in ("attention_dropout", "hidden_dropout"):
            p = getattr(self, name)
            if p is not None and not 0 <= p < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1), got {p}")
        if not 0 < self.layer_lr_decay <= 1:
            raise ValueError(f"--layer-lr-decay must be in (0, 1], got {self.layer_lr_decay}")
        if not 0 <= self.distill_alpha <= 1:
            raise ValueError(f"--distill-alpha must be in [0, 1], got {self.distill_alpha}")
        if self.distill_temperature <= 0:
            raise ValueError(f"--distill-temperature must be > 0, got {self.distill_temperature}")
        if self.bf16 and self.fp16:
            raise ValueError("--bf16 and --fp16 exclude each other")
        if self.max_seq_length is not None and self.max_seq_length < 4:
            raise ValueError(f"--max-seq-length must be >= 4, got {self.max_seq_length}")
        if self.overwrite_output_dir and (self.resume or self.resume_from_checkpoint):
            raise ValueError("--overwrite-output-dir and --resume exclude each other: overwriting starts afresh")
        # With --context auto the window is a document's unless the data turns out to need sentences, whose window (the
        # tokenizer's) is longer: a stride that fits a document window fits both.
        window = self.max_seq_length or (DOCUMENT_MAX_LENGTH if self.context != "sentence" else None)
        if self.stride is None:
            self.stride = default_stride(window)
        if self.stride < 0 or (window and 2 * self.stride >= window):
            raise ValueError(
                f"--stride must be >= 0 and less than half the window"
                f"{f' ({window} sub-tokens; e.g. --stride {window // 4})' if window else ''}, "
                f"got {self.stride}"
            )
        if self.eval_strategy == "steps" and not self.eval_steps:
            raise ValueError("--eval-strategy steps needs --eval-steps N")
        has_files = bool(self.data_dir or self.train_file or self.validation_file or self.test_file)
        if has_files and self.dataset_name:
            raise ValueError("give either --dataset-name or local files (--data-dir / --*-file), not both")
        if self.data_dir and (self.train_file or self.validation_file or self.test_file):
            raise ValueError("give either --data-dir or --train-file/--validation-file/--test-file, not both")
        if not has_files and not self.dataset_name:
            self.dataset_name = DEFAULT_DATASET
        if self.push_to_hub and not self.hub_model_id:
            self.hub_model_id = os.path.basename(os.path.abspath(self.output_dir))

    @property
    def tag_column_name(self) -> str:
        return self.label_column_name or TASK_TAG_COLUMNS[self.task]

    @property
    def tag_file_column(self) -> int:
        return self.label_column if self.label_column is not None else TASK_FILE_COLUMNS[self.task]

    @property
    def hub_dataset(self) -> tuple[Optional[str], Optional[str]]:
        """(Hub dataset id, revision) to load, the project's aliases resolved; (None, None) for local files."""
        if not self.dataset_name:
            return None, None
        name, alias_revision = HUB_ALIASES.get(self.dataset_name, (self.dataset_name, None))
        return name, self.dataset_revision or alias_revision

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str, **overrides: Any) -> Config:
        values = load_json(path)
        if "context" not in values:  # written before windows existed: the run trained on sentences, with no stride
            values["context"] = "sentence"
            if values.get("max_seq_length"):
                values["stride"] = min(DEFAULT_STRIDE, (values["max_seq_length"] - 1) // 2)
        if overrides.get("max_seq_length") and overrides.get("stride") is None:
            values.pop("stride", None)  # the saved stride was chosen for the saved window: a new one gets its own
        return from_dict(cls, values, **overrides)
