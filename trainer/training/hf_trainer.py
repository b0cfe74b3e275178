"""The Trainer engine: HF `Trainer` + `DataCollatorForTokenClassification`, evaluation at word level each epoch, the
best checkpoint by validation F1 kept, saved with its tokenizer, then scored on validation and test (finish.py)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import torch
from transformers import EvalPrediction, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME

from trainer.config import Config
from trainer.outputs import TrainStats
from trainer.reading.windows import longest_first, restore_order
from trainer.training.checkpoints import resume_checkpoint
from trainer.training.distill import training_loss
from trainer.training.finish import finish, saved_model
from trainer.training.optimizer import optimizer_groups
from trainer.training.precision import inference_attention, mixed_precision
from trainer.training.prepare import prepare

logger = logging.getLogger(__name__)


class InOrderEvalTrainer(Trainer):
    """A Trainer whose evaluation runs the longest windows first and hands `compute_metrics` its rows in dataset order.

    Word-level metrics map predicted windows back to words by index, so rows must arrive in dataset order; but a batch
    of windows in dataset order pads every row to the batch's longest, which wastes much of each validation pass
    on padding (sentences range from 3 to 100+ sub-tokens). On one process the batches go longest first (little
    padding) and the rows are put back in order before `compute_metrics`. (transformers 5 length-groups the
    evaluation sampler too under `train_sampling_strategy="group_by_length"`, in an order it does not return; this
    replaces that.) Distributed, the default sharded, in-order sampler is kept.
    """

    def __init__(self, *args, run_config: Config, **kwargs):
        super().__init__(*args, **kwargs)
        self.run_config = run_config
        # A *ForTokenClassification forward takes **kwargs, so the Trainer assumes its loss is divided by the tokens
        # of the whole accumulated, all-process batch (num_items_in_batch); but BERT's is CrossEntropyLoss's plain
        # mean over its own micro-batch. The Trainer then neither divides it by the accumulation steps nor undoes its
        # x world-size: gradients and logged losses came out accumulation steps x processes too large (a first loss
        # of 2.19 logged as 4.38 at 2 accumulation steps), and clipping at max_grad_norm bit that much harder.
        # Saying the model takes no loss kwargs gives each micro-batch's mean / accumulation steps, averaged over
        # processes: the Accelerate loop's arithmetic.
        self.model_accepts_loss_kwargs = False
        self._eval_order: list[int] | None = None
        inner = self.compute_metrics
        if inner is not None:
            self.compute_metrics = lambda p: inner(self._in_dataset_order(p))

    def _get_eval_sampler(self, eval_dataset):
        if self.args.world_size > 1:
            self._eval_order = None
            return None
        self._eval_order = longest_first([len(ids) for ids in eval_dataset["input_ids"]])
        return self._eval_order

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "teacher_probs" not in inputs:  # not distilling, or an evaluation batch
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = training_loss(model, inputs, self.run_config)
        return (loss, None) if return_outputs else loss

    def create_optimizer(self, model=None):
        cfg = self.run_config
        if self.optimizer is None and cfg.layer_lr_decay != 1:  # the Trainer's optimizer, over per-layer rates
            opt_model = self.model if model is None else model
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            groups = optimizer_groups(opt_model, cfg.weight_decay, cfg.learning_rate, cfg.layer_lr_decay)
            self.optimizer = optimizer_cls(groups, **kwargs)
        return super().create_optimizer(model)

    def train(self, *args, **kwargs):
        self._last_log = (time.perf_counter(), self.state.num_input_tokens_seen)
        return super().train(*args, **kwargs)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """Training log lines also say tokens/s since the previous one, logged by the Accelerate loop too, so that
        both engines report train/loss, train/learning_rate, train/tokens_per_s and eval/f1 to --report-to."""
        if "loss" in logs:
            now, seen = time.perf_counter(), self.state.num_input_tokens_seen
            then, before = self._last_log
            logs = {**logs, "tokens_per_s": (seen - before) / max(now - then, 1e-9)}
            self._last_log = (now, seen)
        super().log(logs, *args, **kwargs)

    def evaluation_loop(self, *args, **kwargs):
        with inference_attention(self.model, self.run_config):
            return super().evaluation_loop(*args, **kwargs)

    def _in_dataset_order(self, p: EvalPrediction) -> EvalPrediction:
        if self._eval_order is None:
            return p
        return EvalPrediction(
            predictions=np.asarray(restore_order(list(p.predictions), self._eval_order)),
            label_ids=None if p.label_ids is None else np.asarray(restore_order(list(p.label_ids), self._eval_order)),
        )


# TrainStats fields read from the Trainer's own state: ours -> TrainerState's.
FROM_TRAINER_STATE = {
    "global_steps": "global_step",
    "best_checkpoint": "best_model_checkpoint",
    "best_validation_f1": "best_metric",
    "log_history": "log_history",
}


class SaveEveryNSteps(TrainerCallback):
    """`--save-steps N` on top of the per-evaluation checkpoints: `load_best_model_at_end` forces save_strategy to
    equal eval_strategy, so step checkpoints are requested here instead."""

    def __init__(self, save_steps: int):
        self.save_steps = save_steps

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.save_steps == 0:
            control.should_save = True
        return control


def training_arguments(cfg: Config, has_validation: bool) -> TrainingArguments:
    evaluate = has_validation and cfg.eval_strategy != "no"
    precision = mixed_precision(cfg)
    strategy = cfg.eval_strategy if evaluate else "epoch"
    return TrainingArguments(
        output_dir=cfg.output_dir,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),  # bf16 on a CPU needs use_cpu=True
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        eval_strategy=strategy if evaluate else "no",
        eval_steps=cfg.eval_steps,
        save_strategy=strategy,
        save_steps=cfg.eval_steps if strategy == "steps" else 500,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=evaluate,
        metric_for_best_model="f1" if evaluate else None,
        greater_is_better=True,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=cfg.dataloader_num_workers,
        report_to=cfg.report_to,
        # The windows hold only model inputs and labels, and a distilled run's `word_index`, which its collator reads.
        remove_unused_columns=False,
        project=os.path.basename(os.path.abspath(cfg.output_dir)),  # trackio's project name
    )


def run(cfg: Config) -> dict[str, Any]:
    prep = prepare(cfg)
    trainer = InOrderEvalTrainer(
        run_config=cfg,
        model=prep.model,
        args=training_arguments(cfg, prep.validation is not None),
        train_dataset=prep.train,
        eval_dataset=prep.validation,
        data_collator=prep.train_collator,
        processing_class=prep.tokenizer,
        compute_metrics=(lambda p: prep.score_validation(p.predictions)) if prep.validation is not None else None,
        # Label log-probabilities, which the decoding reads (trainer.reading.decoding).
        preprocess_logits_for_metrics=lambda logits, labels: logits.float().log_softmax(-1),
        callbacks=[SaveEveryNSteps(cfg.save_steps)] if cfg.save_steps else None,
    )
    resume_from = resume_checkpoint(cfg.output_dir, cfg.resume, cfg.resume_from_checkpoint, TRAINER_STATE_NAME)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    train_s = time.perf_counter() - t0
    trainer.save_model(cfg.output_dir)  # the best checkpoint, reloaded at the end of training
    if not trainer.is_world_process_zero():
        return {}
    n_tokens = sum(len(ids) for ids in prep.train["input_ids"])
    stats = TrainStats(
        train_runtime_s=train_s,
        # A resumed run timed only its last segment: a whole-run rate would be wrong, so none is given.
        train_tokens_per_s=None if resume_from else n_tokens * cfg.num_train_epochs / train_s,
        train_loss=result.training_loss,
        resumed_from=resume_from,
        **{ours: getattr(trainer.state, theirs) for ours, theirs in FROM_TRAINER_STATE.items()},
    )
    return finish(cfg, prep, saved_model(cfg, trainer.args.device), stats)
