"""Each context's models read the other way: the document-window models (no attention dropout, trained word
embeddings) scored on isolated sentences, and the sentence models scored in document windows (256 sub-tokens, stride
64), 3 seeds each, word-level validation and test F1 as mean ± std, beside each model read as it was trained
(bench/recipe_seeds.py's results).

Why it matters: the Space reads a visitor's text as one document, so a single pasted sentence reaches a document model
without the context it was trained with. Scoring uses `python -m trainer.evaluate` on the models bench/recipe_seeds.py
trained (its --out-dir), so run that first.

  python bench/cross_context.py --result bench/results/cross_context.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from machine import cpu_info
from recipe_seeds import mean_std, summarize

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# trained as -> (the recipe_seeds mode, the flags that read it the other way)
CROSS = {
    "document": ("document_case_attn0", ["--context", "sentence"]),
    "sentence": ("sentence_case_attn0", ["--context", "document", "--max-seq-length", "256", "--stride", "64"]),
}
SPLITS = ("validation", "test")


def read_other_way(model_dir: str, flags: list[str], split: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "trainer.evaluate",
                "--model",
                model_dir,
                "--split",
                split,
                "--output-dir",
                out,
                *flags,
            ],
            cwd=ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(os.path.join(out, "eval_results.json"), encoding="utf-8") as f:
            return json.load(f)[split]["overall"]["f1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--result", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--out-dir", default=os.path.join(HERE, "out", "recipe"), help="bench/recipe_seeds.py's models")
    args = ap.parse_args()
    res: dict = {
        "what": "word-level F1 in %, mean ± std over seeds, of bench/recipe_seeds.py's models read as "
        "trained and read the other way (trainer.evaluate --context)"
    }
    for trained, (mode, flags) in CROSS.items():
        # Read as trained: the runs' own scores, as bench/recipe_seeds.py summarizes them.
        as_trained = summarize(
            {mode: [os.path.join(HERE, "results", "recipe", f"{mode}_seed{seed}.json") for seed in args.seeds]}
        )[mode]
        other_way = {
            split: [
                read_other_way(os.path.join(args.out_dir, f"{mode}_seed{seed}"), flags, split) for seed in args.seeds
            ]
            for split in SPLITS
        }
        res[f"trained_on_{trained}s"] = {
            "mode": mode,
            "seeds": args.seeds,
            "read_other_way_with": flags,
            **{f"{split}_f1_as_trained": as_trained[f"{split}_f1"] for split in SPLITS},
            **{f"{split}_f1_read_other_way": mean_std(other_way[split]) for split in SPLITS},
        }
        print(
            trained,
            {
                k: f"{v['mean']:.2f} ± {v['std']:.2f}"
                for k, v in res[f"trained_on_{trained}s"].items()
                if isinstance(v, dict)
            },
            flush=True,
        )
    res.update(cpu=cpu_info(), measured=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
