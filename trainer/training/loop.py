"""The Accelerate engine: a custom training loop that reads top to bottom (nanoGPT's train.py is the model).

Same data, alignment, metrics, saving and reporting as the Trainer engine (prepare.py, metrics.py, finish.py); what
is its own is the loop: AdamW, a transformers schedule, mixed precision, gradient accumulation and clipping, word-level
evaluation gathered across processes, the best model by validation F1, and checkpoints that resume mid-epoch.

Run it on one process with `python -m trainer --engine accelerate ...`, or on several GPUs / nodes (DDP, DeepSpeed,
FSDP, as `accelerate config` says) with `accelerate launch -m trainer --engine accelerate ...`.

Resume is exact: each epoch's shuffle comes from a generator seeded with `seed + epoch` (not from the global RNG, so
it is the same after a restart), the checkpoint holds model, optimizer, scheduler, gradient scaler and every
process's RNG state (`accelerator.save_state`) besides the loop's own `LoopState` (where training stands, the best
model so far, loss sums, the log), and the batches of the interrupted epoch already trained on are skipped
(`skip_first_batches`). A resumed run therefore performs the same floating-point operations in the same order as an
uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Optional, Sequence

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from torch.utils.data import DataLoader
from transformers import get_scheduler
from transformers.trainer_pt_utils import LengthGroupedSampler

from trainer.config import Config
from trainer.outputs import TrainStats
from trainer.reading.windows import longest_first, restore_order
from trainer.training import checkpoints
from trainer.training.distill import training_loss
from trainer.training.finish import finish, saved_model
from trainer.training.loop_state import STATE_FILE, LoopState, LossWindow
from trainer.training.optimizer import optimizer_groups
from trainer.training.precision import inference_attention, mixed_precision
from trainer.training.prepare import Prepared, prepare

logger = logging.getLogger(__name__)
logging.getLogger("accelerate.checkpointing").setLevel(logging.WARNING)  # a line per file; we log one per checkpoint


def warmup_steps(cfg: Config, total_steps: int) -> int:
    """`--warmup-steps` as the Trainer reads it: a step count, or a fraction of all steps below 1."""
    return int(cfg.warmup_steps) if cfg.warmup_steps >= 1 else math.ceil(total_steps * cfg.warmup_steps)


@torch.no_grad()
def evaluate(
    accelerator: Accelerator,
    model: torch.nn.Module,
    dataloader: DataLoader,
    prep: Prepared,
    order: Optional[Sequence[int]] = None,
) -> dict[str, float]:
    """The training-time validation pass (the final scores come from trainer.evaluation.word_level): word-level
    scores over every window exactly once, whatever the number of processes, each word read from its window and
    decoded as the final evaluation reads it (`prep.validation_windows`, trainer.reading.windows).

    Each process predicts its shard; batches differ in padded length across processes, so they are padded to a
    common length before the gather, and `gather_for_metrics` drops the samples the last uneven batch repeated to
    keep processes in step. Gathered rows come back in dataset order (process i holds batch i of each round).
    The loss is the Trainer's eval_loss: batch losses weighted by batch size. `order`: the order the dataloader
    visits the windows in, when not the dataset's (`eval_order`).
    """
    model.eval()
    preds: list[Any] = []  # per window: (positions, labels) log-probabilities
    losses: list[float] = []
    for batch in dataloader:
        out = model(**batch)
        pred = accelerator.pad_across_processes(out.logits.float().log_softmax(-1), dim=1, pad_index=0)
        loss = out.loss.detach().float().repeat(len(batch["labels"]))
        pred, loss = accelerator.gather_for_metrics((pred, loss))
        preds += list(pred.cpu().numpy())
        losses += loss.tolist()
    model.train()
    if order is not None:
        preds = restore_order(preds, order)
    return {"loss": sum(losses) / len(losses), **prep.score_validation(preds)}


def save_best(accelerator: Accelerator, model: torch.nn.Module, output_dir: str) -> None:
    # get_state_dict gathers sharded weights (DeepSpeed ZeRO-3, FSDP), so every process must call it.
    state_dict = accelerator.get_state_dict(model)
    accelerator.unwrap_model(model).save_pretrained(
        output_dir, is_main_process=accelerator.is_main_process, save_function=accelerator.save, state_dict=state_dict
    )


def validate(
    accelerator: Accelerator,
    model: torch.nn.Module,
    eval_dl: DataLoader,
    prep: Prepared,
    output_dir: str,
    state: LoopState,
    epochs: float,
    order: Optional[Sequence[int]] = None,
) -> None:
    """Score the model on the validation set, record the scores, and save the model if it is the best so far."""
    scores = evaluate(accelerator, model, eval_dl, prep, order)
    step = state.global_step
    state.log_history.append({"step": step, "epoch": round(epochs, 4), **{f"eval_{k}": v for k, v in scores.items()}})
    accelerator.log({f"eval/{k}": v for k, v in scores.items()}, step=step)
    message = "step %(step)d validation: loss %(loss).4f precision %(precision).4f recall %(recall).4f "
    message += "F1 %(f1).4f (%(num_sentences)d sentences)"
    logger.info(message, {**scores, "step": step})
    if state.best_metric is None or scores["f1"] > state.best_metric:
        state.best_metric = scores["f1"]
        state.best_checkpoint = checkpoints.checkpoint_dir(output_dir, step)  # the checkpoint that follows
        save_best(accelerator, model, output_dir)


def checkpoint(accelerator: Accelerator, cfg: Config, state: LoopState) -> None:
    path = checkpoints.checkpoint_dir(cfg.output_dir, state.global_step)
    accelerator.save_state(path)  # model, optimizer, registered scheduler, scaler, per-process RNG states
    accelerator.wait_for_everyone()  # every process's RNG file is written before the marker says "complete"
    if accelerator.is_main_process:
        state.save(path)
        checkpoints.rotate(cfg.output_dir, cfg.save_total_limit, STATE_FILE, protect=[state.best_checkpoint])
    accelerator.wait_for_everyone()


def run(cfg: Config) -> dict[str, Any]:
    # --- setup ---------------------------------------------------------------------------------------------------
    accelerator = Accelerator(
        mixed_precision=mixed_precision(cfg),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        # --report-to: the Trainer's names and place (<output-dir>/runs for TensorBoard), so both engines read alike.
        log_with=None if cfg.report_to == "none" else cfg.report_to,
        project_config=ProjectConfiguration(cfg.output_dir, logging_dir=os.path.join(cfg.output_dir, "runs")),
    )
    prep = prepare(cfg)
    model = prep.model
    name = os.path.basename(os.path.abspath(cfg.output_dir))
    accelerator.init_trackers(name, {k: v for k, v in cfg.to_dict().items() if isinstance(v, (int, float, str, bool))})
    evaluating = prep.validation is not None and cfg.eval_strategy != "no"

    # --- data: per-epoch shuffles from our own generator, reseeded each epoch, so a restart replays them ----------
    shuffle = torch.Generator()
    sampler = (
        LengthGroupedSampler(
            cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps,
            lengths=[len(ids) for ids in prep.train["input_ids"]],
            generator=shuffle,
        )
        if cfg.group_by_length
        else None
    )
    train_dl = DataLoader(
        prep.train,
        batch_size=cfg.per_device_train_batch_size,
        sampler=sampler,
        shuffle=sampler is None,
        collate_fn=prep.train_collator,
        num_workers=cfg.dataloader_num_workers,
        generator=shuffle,
    )
    # Longest windows first on one process (batches pad little; evaluate puts rows back in order, as the Trainer
    # engine does); in dataset order across processes, whose gathered rows come back in dataset order.
    # Its own generator keeps evaluation from drawing on the global RNG, so how often we evaluate does not change
    # dropout in training.
    eval_order = (
        longest_first([len(ids) for ids in prep.validation["input_ids"]])
        if evaluating and accelerator.num_processes == 1
        else None
    )
    eval_dl = (
        DataLoader(
            prep.validation,
            batch_size=cfg.per_device_eval_batch_size,
            collate_fn=prep.collator,
            sampler=eval_order,
            generator=torch.Generator(),
        )
        if evaluating
        else None
    )

    # --- optimizer, then everything through accelerator.prepare (DDP / DeepSpeed / FSDP wrapping, device moves) ---
    # Fused AdamW (one kernel over all parameters), as the Trainer engine uses by default: per-parameter AdamW took
    # ~10% of a MiniLM training step on a CPU. Same update, so a resumed optimizer state loads into either.
    optimizer = torch.optim.AdamW(
        optimizer_groups(model, cfg.weight_decay, cfg.learning_rate, cfg.layer_lr_decay),
        lr=cfg.learning_rate,
        fused=accelerator.device.type in ("cpu", "cuda") or None,
    )
    if eval_dl is not None:
        model, optimizer, train_dl, eval_dl = accelerator.prepare(model, optimizer, train_dl, eval_dl)
    else:
        model, optimizer, train_dl = accelerator.prepare(model, optimizer, train_dl)
    # The schedule counts this process's optimizer steps (len(train_dl) is per process after prepare). It is stepped
    # by hand once per optimizer step rather than prepared: a prepared scheduler steps once per process.
    steps_per_epoch = math.ceil(len(train_dl) / cfg.gradient_accumulation_steps)
    total_steps = math.ceil(cfg.num_train_epochs * steps_per_epoch)
    num_epochs = math.ceil(cfg.num_train_epochs)
    lr_scheduler = get_scheduler(
        cfg.lr_scheduler_type,
        optimizer,
        num_warmup_steps=warmup_steps(cfg, total_steps),
        num_training_steps=total_steps,
    )
    accelerator.register_for_checkpointing(lr_scheduler)

    # --- resume: the loop state from the newest complete checkpoint, or a fresh one ------------------------------
    resume_from = checkpoints.resume_checkpoint(cfg.output_dir, cfg.resume, cfg.resume_from_checkpoint, STATE_FILE)
    if resume_from:
        state = LoopState.load(resume_from)
        if state.world_size != accelerator.num_processes:
            # Batches already trained on are counted per process; another process count would skip the wrong ones.
            raise ValueError(
                f"{resume_from} was written by {state.world_size} processes; resume it with the "
                f"same number (now {accelerator.num_processes})"
            )
        accelerator.load_state(resume_from)
        logger.info(
            "Resuming from %s: step %d, epoch %d, %d batches into it",
            resume_from,
            state.global_step,
            state.epoch,
            state.batches_in_epoch,
        )
    else:
        state = LoopState(world_size=accelerator.num_processes)
    logger.info(
        "Training: %d examples, %d processes, %d optimizer steps (%d per epoch), mixed precision %s",
        len(prep.train),
        accelerator.num_processes,
        total_steps,
        steps_per_epoch,
        accelerator.mixed_precision,
    )

    # --- the loop --------------------------------------------------------------------------------------------------
    runtime_before, segment_t0 = state.train_runtime_s, time.perf_counter()  # runtime adds up over resumed segments
    window = LossWindow(accelerator.device)  # since the last log line, this process only
    last_saved = state.global_step if resume_from else None

    def log_validate_save(logging: bool, validating: bool, saving: bool) -> None:
        """After an optimizer step or an epoch. Before a checkpoint the open loss window goes into the state, so a
        resumed run reports the same loss; validating and saving are not training time."""
        nonlocal last_saved
        epochs = state.epoch + state.batches_in_epoch / len(train_dl)
        if logging:
            window.log(accelerator, state, lr_scheduler.get_last_lr()[0], epochs, total_steps)
        if validating:
            with inference_attention(accelerator.unwrap_model(model), cfg):
                validate(accelerator, model, eval_dl, prep, cfg.output_dir, state, epochs, eval_order)
        if saving:
            state.train_runtime_s = runtime_before + time.perf_counter() - segment_t0
            checkpoint(accelerator, cfg, state)
            last_saved = state.global_step
        if validating or saving:
            window.t0 = time.perf_counter()

    model.train()
    for epoch in range(state.epoch, num_epochs):
        if state.global_step >= total_steps:
            break
        shuffle.manual_seed(cfg.seed + epoch)
        skip = state.batches_in_epoch if epoch == state.epoch else 0
        batches = accelerator.skip_first_batches(train_dl, skip) if skip else train_dl
        batches_done = skip
        for batch in batches:
            with accelerator.accumulate(model):
                loss = training_loss(model, batch, cfg)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            batches_done += 1
            # Where training stands, as a checkpoint records it: the next batch to train on.
            state.epoch, state.batches_in_epoch = (
                (epoch + 1, 0) if batches_done == len(train_dl) else (epoch, batches_done)
            )
            window.loss += loss.detach() / cfg.gradient_accumulation_steps
            window.tokens += batch["attention_mask"].sum()
            if not accelerator.sync_gradients:
                continue
            # One optimizer step done (or skipped by the fp16 scaler, which the schedule must not count).
            if not accelerator.optimizer_step_was_skipped:
                lr_scheduler.step()
            state.global_step += 1
            window.steps += 1
            step = state.global_step
            validating = (
                evaluating and cfg.eval_strategy == "steps" and (step % cfg.eval_steps == 0 or step == total_steps)
            )
            # Every evaluation is followed by a checkpoint holding its outcome. (At an epoch's last batch the
            # end-of-epoch checkpoint below follows.)
            saving = validating or (cfg.save_steps and step % cfg.save_steps == 0 and batches_done < len(train_dl))
            log_validate_save(step % cfg.logging_steps == 0 or saving, validating, saving)
            if step >= total_steps:
                break
        # End of an epoch (or of a fractional last one): evaluate with --eval-strategy epoch, checkpoint anyway
        # (unless its last step was just checkpointed above).
        validating = evaluating and cfg.eval_strategy == "epoch"
        saving = state.global_step != last_saved
        log_validate_save(validating or saving, validating, saving)
    log_validate_save(logging=True, validating=False, saving=False)  # what is left of the loss window

    # --- the best model, saved; results from the main process ------------------------------------------------------
    if not evaluating:
        save_best(accelerator, model, cfg.output_dir)  # nothing to choose by: the final model is the result
    state.train_runtime_s = runtime_before + time.perf_counter() - segment_t0
    accelerator.wait_for_everyone()
    results: dict[str, Any] = {}
    if accelerator.is_main_process:
        best = saved_model(cfg, accelerator.device)
        runtime = state.train_runtime_s
        stats = TrainStats(
            train_runtime_s=runtime,
            train_tokens_per_s=state.tokens_seen / runtime if runtime else None,
            train_loss=state.loss_sum / state.loss_steps if state.loss_steps else None,
            global_steps=state.global_step,
            best_checkpoint=state.best_checkpoint,
            best_validation_f1=state.best_metric,
            resumed_from=resume_from,
            log_history=state.log_history,
        )
        results = finish(cfg, prep, best, stats)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results
