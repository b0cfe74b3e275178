"""Does decoding only valid IOB2 sequences (trainer.reading.decoding, Viterbi) score better than each word's argmax?

Re-scores saved models (the runs of bench/recipe_seeds.py) on validation and test with
`trainer.evaluation.word_level.evaluate`, the one scoring path, in the windows each model was trained with, once per
decoding.

  python bench/decoding_lever.py --result bench/results/decoding_lever.json bench/out/recipe/*_seed*/
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from machine import cpu_info  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="saved model directories")
    ap.add_argument("--result", required=True)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from trainer.evaluation.word_level import eval_config, evaluate, load_split
    from trainer.reading.windows import model_window

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    done = {}
    if os.path.exists(args.result):  # models scored by an earlier run (written as each finishes) are kept
        with open(args.result, encoding="utf-8") as f:
            done = {r["model"]: r for r in json.load(f)["runs"]}
    runs = []
    for model_dir in args.models:
        name = os.path.relpath(os.path.abspath(model_dir), ROOT)
        if name in done:
            runs.append(done[name])
            continue
        model = AutoModelForTokenClassification.from_pretrained(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        cfg = eval_config(model_dir)
        data = {split: load_split(cfg, split) for split in ("validation", "test")}  # each reads only its own split
        run = {"model": name, "context": model_window(tokenizer, model.config).context}
        for decoding in ("argmax", "viterbi"):
            window = model_window(tokenizer, model.config, decoding=decoding)  # the model's window, this decoding
            for split in ("validation", "test"):
                record = evaluate(model, tokenizer, data[split], split, window=window).record
                run[f"{split}_{decoding}_f1"] = record["overall"]["f1"]
        print(json.dumps(run), flush=True)
        runs.append(run)
        write(args.result, runs)
    print(json.dumps(write(args.result, runs), indent=2))


def write(path: str, runs: list[dict]) -> dict:
    """The result file for the models scored so far; returns its summary: mean ± std per context."""

    def mean_std(key: str, context: str) -> str:
        v = [100 * r[key] for r in runs if r["context"] == context]
        return f"{statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f} (n={len(v)})"

    summary = {
        c: {f"{s}_{d}_f1": mean_std(f"{s}_{d}_f1", c) for s in ("validation", "test") for d in ("argmax", "viterbi")}
        for c in sorted({r["context"] for r in runs})
    }
    res = {
        "what": "word-level F1 of the same saved models, decoded per word (argmax) or as the best valid IOB2 "
        "sequence (Viterbi); mean ± std over the models of each context",
        "summary": summary,
        "runs": runs,
        "cpu": cpu_info(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    return summary


if __name__ == "__main__":
    main()
