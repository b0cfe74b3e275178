"""The Accelerate engine: a custom training loop that reads top to bottom (nanoGPT's train.py is the model).

Same data, alignment, metrics, saving and reporting as the Trainer engine (prepare.py, metrics.py, finish.py); what
is its own is the loop: AdamW, a transformers schedule, mixed precision, gradient accumulation and clipping, word-level
evaluation gathered across processes, the best model by validation F1, and checkpoints that resume mid-epoch.

Run it on one process with `python -m trainer --engine accelerate ...`, or on several GPUs / nodes (DDP, DeepSpeed,
FSDP, as `accelerate config` says) with `accelerate launch -m trainer --engine accelerate ...`.

Resume is exact: each epoch's shuffle comes from a generator seeded with `seed + epoch` (not from the global RNG, so
it is the same after a restart), the checkpoint holds model, optimizer, scheduler, gradient scaler and every
process's RNG state (`accelerator.save_state`), and the batches of the interrupted epoch already trained on are
skipped (`skip_first_batches`). A resumed run therefore performs the same floating-point operations in the same order
as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from transformers import (AutoModelForTokenClassification, DataCollatorForTokenClassification, Trainer,
                          get_scheduler)
from transformers.trainer_pt_utils import LengthGroupedSampler

from trainer import checkpoints
from trainer.config import Config
from trainer.finish import finish
from trainer.labels import IGNORE_INDEX
from trainer.metrics import validation_scores
from trainer.outputs import TrainStats
from trainer.prepare import prepare

logger = logging.getLogger(__name__)
logging.getLogger("accelerate.checkpointing").setLevel(logging.WARNING)  # a line per file; we log one per checkpoint

STATE_FILE = "loop_state.json"  # written last into each checkpoint: its presence marks the checkpoint complete


def mixed_precision(cfg: Config) -> str:
    return "bf16" if cfg.bf16 else "fp16" if cfg.fp16 else "no"


def warmup_steps(cfg: Config, total_steps: int) -> int:
    """`--warmup-steps` as the Trainer reads it: a step count, or a fraction of all steps below 1."""
    return int(cfg.warmup_steps) if cfg.warmup_steps >= 1 else math.ceil(total_steps * cfg.warmup_steps)


def optimizer_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # The Trainer's own rule (no decay on biases and LayerNorm weights), so both engines regularise the same
    # parameters; the method reads nothing from the Trainer instance.
    decay = set(Trainer.get_decay_parameter_names(None, model))
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in params if n in decay], "weight_decay": weight_decay},
            {"params": [p for n, p in params if n not in decay], "weight_decay": 0.0}]


@torch.no_grad()
def evaluate(accelerator: Accelerator, model: torch.nn.Module, dataloader: DataLoader, gold: list[list[str]],
             id2label: dict[int, str], scheme: str) -> dict[str, float]:
    """Word-level validation scores over every sentence exactly once, whatever the number of processes.

    Each process predicts its shard; batches differ in padded length across processes, so they are padded to a
    common length before the gather, and `gather_for_metrics` drops the samples the last uneven batch repeated to
    keep processes in step. Gathered rows come back in dataset order (process i holds batch i of each round).
    The loss is the Trainer's eval_loss: batch losses weighted by batch size.
    """
    model.eval()
    preds: list[list[int]] = []
    labels: list[list[int]] = []
    losses: list[float] = []
    for batch in dataloader:
        out = model(**batch)
        pred = accelerator.pad_across_processes(out.logits.argmax(-1), dim=1, pad_index=IGNORE_INDEX)
        lab = accelerator.pad_across_processes(batch["labels"], dim=1, pad_index=IGNORE_INDEX)
        loss = out.loss.detach().float().repeat(len(batch["labels"]))
        pred, lab, loss = accelerator.gather_for_metrics((pred, lab, loss))
        preds += pred.tolist()
        labels += lab.tolist()
        losses += loss.tolist()
    model.train()
    return {"loss": sum(losses) / len(losses), **validation_scores(preds, labels, gold, id2label, scheme)}


def save_best(accelerator: Accelerator, model: torch.nn.Module, output_dir: str) -> None:
    # get_state_dict gathers sharded weights (DeepSpeed ZeRO-3, FSDP), so every process must call it.
    state_dict = accelerator.get_state_dict(model)
    accelerator.unwrap_model(model).save_pretrained(output_dir, is_main_process=accelerator.is_main_process,
                                                    save_function=accelerator.save, state_dict=state_dict)


def save_checkpoint(accelerator: Accelerator, cfg: Config, state: dict[str, Any]) -> None:
    path = checkpoints.checkpoint_dir(cfg.output_dir, state["global_step"])
    accelerator.save_state(path)  # model, optimizer, registered scheduler, scaler, per-process RNG states
    accelerator.wait_for_everyone()  # every process's RNG file is written before the marker says "complete"
    if accelerator.is_main_process:
        tmp = os.path.join(path, STATE_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=2)
        os.replace(tmp, os.path.join(path, STATE_FILE))
        checkpoints.rotate(cfg.output_dir, cfg.save_total_limit, STATE_FILE, protect=[state["best_checkpoint"]])
    accelerator.wait_for_everyone()


def run(cfg: Config) -> dict[str, Any]:
    # --- setup ---------------------------------------------------------------------------------------------------
    accelerator = Accelerator(mixed_precision=mixed_precision(cfg),
                              gradient_accumulation_steps=cfg.gradient_accumulation_steps)
    if not accelerator.is_main_process:
        logging.getLogger().setLevel(logging.WARNING)  # one log, from the main process
    with accelerator.main_process_first():  # downloads and caches once
        prep = prepare(cfg)
    model, tokenizer = prep.model, prep.tokenizer
    gold = prep.data.splits["validation"]["tags"] if prep.validation is not None else None
    evaluating = gold is not None and cfg.eval_strategy != "no"
    id2label = model.config.id2label

    # --- data: per-epoch shuffles from our own generator, reseeded each epoch, so a restart replays them ----------
    collator = DataCollatorForTokenClassification(tokenizer)
    shuffle = torch.Generator()
    if cfg.group_by_length:
        sampler = LengthGroupedSampler(cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps,
                                       lengths=[len(ids) for ids in prep.train["input_ids"]], generator=shuffle)
        train_dl = DataLoader(prep.train, batch_size=cfg.per_device_train_batch_size, sampler=sampler,
                              collate_fn=collator, num_workers=cfg.dataloader_num_workers, generator=shuffle)
    else:
        train_dl = DataLoader(prep.train, batch_size=cfg.per_device_train_batch_size, shuffle=True,
                              collate_fn=collator, num_workers=cfg.dataloader_num_workers, generator=shuffle)
    # In order (word_predictions maps rows back to sentences by index); its own generator keeps evaluation from
    # drawing on the global RNG, so how often we evaluate does not change dropout in training.
    eval_dl = (DataLoader(prep.validation, batch_size=cfg.per_device_eval_batch_size, collate_fn=collator,
                          generator=torch.Generator()) if evaluating else None)

    # --- optimizer, then everything through accelerator.prepare (DDP / DeepSpeed / FSDP wrapping, device moves) ---
    optimizer = torch.optim.AdamW(optimizer_groups(model, cfg.weight_decay), lr=cfg.learning_rate)
    if eval_dl is not None:
        model, optimizer, train_dl, eval_dl = accelerator.prepare(model, optimizer, train_dl, eval_dl)
    else:
        model, optimizer, train_dl = accelerator.prepare(model, optimizer, train_dl)
    # The schedule counts this process's optimizer steps (len(train_dl) is per process after prepare). It is stepped
    # by hand once per optimizer step rather than prepared: a prepared scheduler steps once per process.
    steps_per_epoch = math.ceil(len(train_dl) / cfg.gradient_accumulation_steps)
    total_steps = math.ceil(cfg.num_train_epochs * steps_per_epoch)
    num_epochs = math.ceil(cfg.num_train_epochs)
    lr_scheduler = get_scheduler(cfg.lr_scheduler_type, optimizer, num_warmup_steps=warmup_steps(cfg, total_steps),
                                 num_training_steps=total_steps)
    accelerator.register_for_checkpointing(lr_scheduler)

    # --- state: everything a resumed run needs besides what save_state holds --------------------------------------
    state: dict[str, Any] = {
        "global_step": 0, "epoch": 0, "batches_in_epoch": 0,  # where training stands: the next batch to train on
        "best_metric": None, "best_step": None, "best_checkpoint": None,
        "loss_sum": 0.0, "loss_steps": 0, "tokens_seen": 0, "train_runtime_s": 0.0,
        "world_size": accelerator.num_processes, "log_history": [],
    }
    resume_from = checkpoints.resume_checkpoint(cfg.output_dir, cfg.resume, cfg.resume_from_checkpoint, STATE_FILE)
    if resume_from:
        with open(os.path.join(resume_from, STATE_FILE), encoding="utf-8") as f:
            state = json.load(f)
        if state["world_size"] != accelerator.num_processes:
            # Batches already trained on are counted per process; another process count would skip the wrong ones.
            raise ValueError(f"{resume_from} was written by {state['world_size']} processes; resume it with the "
                             f"same number (now {accelerator.num_processes})")
        accelerator.load_state(resume_from)
        logger.info("Resuming from %s: step %d, epoch %d, %d batches into it", resume_from, state["global_step"],
                    state["epoch"], state["batches_in_epoch"])
    logger.info("Training: %d examples, %d processes, %d optimizer steps (%d per epoch), mixed precision %s",
                len(prep.train), accelerator.num_processes, total_steps, steps_per_epoch, accelerator.mixed_precision)

    # --- the loop --------------------------------------------------------------------------------------------------
    # Runtime and tokens add up over resumed segments, so a resumed run reports the whole training.
    runtime_before, segment_t0 = state["train_runtime_s"], time.perf_counter()
    window_loss = torch.zeros((), device=accelerator.device)  # since the last log line, this process only
    window_tokens = torch.zeros((), dtype=torch.long, device=accelerator.device)
    window_steps, window_t0 = 0, time.perf_counter()
    last_saved = state["global_step"] if resume_from else None

    def log_window() -> None:
        nonlocal window_steps, window_t0
        if window_steps == 0:
            return
        loss = accelerator.reduce(window_loss, "mean").item() / window_steps
        tokens = accelerator.reduce(window_tokens, "sum").item()
        window_loss.zero_()
        window_tokens.zero_()
        entry = {"step": state["global_step"], "epoch": round(epoch + batches_done / len(train_dl), 4),
                 "loss": loss, "learning_rate": lr_scheduler.get_last_lr()[0],
                 "tokens_per_s": tokens / (time.perf_counter() - window_t0)}
        state["log_history"].append(entry)
        state["loss_sum"] += loss * window_steps
        state["loss_steps"] += window_steps
        state["tokens_seen"] += tokens
        logger.info("step %d/%d epoch %.2f: loss %.4f, lr %.2e, %.0f tokens/s", entry["step"], total_steps,
                    entry["epoch"], loss, entry["learning_rate"], entry["tokens_per_s"])
        window_steps, window_t0 = 0, time.perf_counter()

    def checkpoint() -> None:
        nonlocal last_saved, window_t0
        if last_saved == state["global_step"]:
            return
        log_window()  # the open loss window goes into the state, so a resumed run reports the same loss
        state["epoch"], state["batches_in_epoch"] = ((epoch + 1, 0) if batches_done == len(train_dl)
                                                     else (epoch, batches_done))
        state["train_runtime_s"] = runtime_before + time.perf_counter() - segment_t0
        save_checkpoint(accelerator, cfg, state)
        last_saved = state["global_step"]
        window_t0 = time.perf_counter()

    def validate() -> None:
        nonlocal window_t0
        log_window()
        scores = evaluate(accelerator, model, eval_dl, gold, id2label, prep.data.scheme)
        step = state["global_step"]
        state["log_history"].append({"step": step, "epoch": round(epoch + batches_done / len(train_dl), 4),
                                     **{f"eval_{k}": v for k, v in scores.items()}})
        logger.info("step %d validation: loss %.4f precision %.4f recall %.4f F1 %.4f (%d sentences)", step,
                    scores["loss"], scores["precision"], scores["recall"], scores["f1"], scores["num_sentences"])
        if state["best_metric"] is None or scores["f1"] > state["best_metric"]:
            state["best_metric"], state["best_step"] = scores["f1"], step
            state["best_checkpoint"] = checkpoints.checkpoint_dir(cfg.output_dir, step)
            save_best(accelerator, model, cfg.output_dir)
        checkpoint()  # every evaluation is followed by a checkpoint holding its outcome
        window_t0 = time.perf_counter()

    model.train()
    epoch, batches_done = state["epoch"], state["batches_in_epoch"]
    for epoch in range(state["epoch"], num_epochs):
        if state["global_step"] >= total_steps:
            break
        shuffle.manual_seed(cfg.seed + epoch)
        skip = state["batches_in_epoch"] if epoch == state["epoch"] else 0
        batches = accelerator.skip_first_batches(train_dl, skip) if skip else train_dl
        batches_done = skip
        for batch in batches:
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            batches_done += 1
            window_loss += loss.detach() / cfg.gradient_accumulation_steps
            window_tokens += batch["attention_mask"].sum()
            if not accelerator.sync_gradients:
                continue
            # One optimizer step done (or skipped by the fp16 scaler, which the schedule must not count).
            if not accelerator.optimizer_step_was_skipped:
                lr_scheduler.step()
            state["global_step"] += 1
            window_steps += 1
            step = state["global_step"]
            if step % cfg.logging_steps == 0:
                log_window()
            if evaluating and cfg.eval_strategy == "steps" and (step % cfg.eval_steps == 0 or step == total_steps):
                validate()
            elif cfg.save_steps and step % cfg.save_steps == 0 and batches_done < len(train_dl):
                checkpoint()  # (at an epoch's last batch the end-of-epoch checkpoint below follows)
            if step >= total_steps:
                break
        # End of an epoch (or of a fractional last one): evaluate with --eval-strategy epoch, checkpoint anyway.
        if evaluating and cfg.eval_strategy == "epoch":
            validate()
        else:
            checkpoint()
    log_window()

    # --- the best model, saved; results from the main process ------------------------------------------------------
    if not evaluating:
        save_best(accelerator, model, cfg.output_dir)  # nothing to choose by: the final model is the result
    state["train_runtime_s"] = runtime_before + time.perf_counter() - segment_t0
    accelerator.wait_for_everyone()
    results: dict[str, Any] = {}
    if accelerator.is_main_process:
        # Scored from disk, so the numbers are those of the saved model that users load.
        best = AutoModelForTokenClassification.from_pretrained(cfg.output_dir).to(accelerator.device)
        runtime = state["train_runtime_s"]
        stats = TrainStats(
            train_runtime_s=runtime,
            train_tokens_per_s=state["tokens_seen"] / runtime if runtime else None,
            train_samples=len(prep.train),
            train_loss=state["loss_sum"] / state["loss_steps"] if state["loss_steps"] else None,
            epochs=cfg.num_train_epochs,
            global_steps=state["global_step"],
            best_checkpoint=state["best_checkpoint"],
            best_validation_f1=state["best_metric"],
            world_size=accelerator.num_processes,
            mixed_precision=accelerator.mixed_precision,
            resumed_from=resume_from,
            log_history=state["log_history"],
        )
        results = finish(cfg, prep, best, stats)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results
