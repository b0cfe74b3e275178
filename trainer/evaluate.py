"""`python -m trainer.evaluate`: score a saved model on any split, writing the same `eval_results.json` and
`predictions_<split>.jsonl` as training does.

  python -m trainer.evaluate --model model --data-dir ../shared/data/conll2003 --split test --output-dir eval-test

The data source defaults to the one the model was trained on (its `run_config.json`); flags override it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Optional, Sequence

from trainer.config import Config
from trainer.data import DataError, load_data
from trainer.outputs import RUN_CONFIG_FILE

logger = logging.getLogger(__name__)

DATA_FLAGS = ("dataset_name", "dataset_config_name", "dataset_revision", "data_dir", "train_file", "validation_file",
              "test_file")


def eval_config(model: str, overrides: dict[str, Any]) -> Config:
    """The model's training config (if saved) with the data source and options replaced by what was given."""
    # Sample limits of the training run do not carry over: evaluation scores the whole split unless asked.
    given = {"max_train_samples": None, "max_eval_samples": None,
             **{k: v for k, v in overrides.items() if v is not None}}
    saved = os.path.join(model, RUN_CONFIG_FILE)
    if not os.path.exists(saved):
        return Config(model_name_or_path=model, **given)
    if any(k in given for k in DATA_FLAGS):  # a new source replaces the old one entirely
        given = {**{k: None for k in DATA_FLAGS}, **given}
    return Config.load(saved, model_name_or_path=model, **given)


def evaluate(model: str, split: str, output_dir: Optional[str] = None, batch_size: int = 32,
             **overrides: Any) -> dict[str, Any]:
    from transformers import AutoModelForTokenClassification

    from trainer.encode import max_length
    from trainer.predict import evaluate_split
    from trainer.prepare import load_tokenizer

    cfg = eval_config(model, overrides)
    data = load_data(cfg)
    if split not in data.splits:
        raise DataError(f"{data.source}: no {split} split (found {', '.join(data.splits)})")
    net = AutoModelForTokenClassification.from_pretrained(model)
    unknown = sorted({t for tags in data.splits[split]["tags"] for t in tags} - set(net.config.label2id))
    if unknown:
        logger.warning("%s labels unknown to the model (they can only be missed): %s", split, ", ".join(unknown))
    tokenizer = load_tokenizer(model)
    where = data.files.get(split, data.source)
    return evaluate_split(net, tokenizer, data.splits[split], split, data.scheme, f"{data.source} [{split}: {where}]",
                          output_dir or model, max_length(tokenizer, cfg.max_seq_length), batch_size)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="saved model directory (or Hub id)")
    ap.add_argument("--split", default="validation", help="split to score: train, validation or test")
    ap.add_argument("--output-dir", help="where the result files go (default: the model directory)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-seq-length", type=int)
    ap.add_argument("--task", choices=("ner", "pos", "chunk"))
    for flag in DATA_FLAGS:
        ap.add_argument("--" + flag.replace("_", "-"), dest=flag)
    ap.add_argument("--label-column", type=int)
    ap.add_argument("--max-eval-samples", type=int)
    args = vars(ap.parse_args(argv))
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        rec = evaluate(args.pop("model"), args.pop("split"), args.pop("output_dir"), args.pop("batch_size"), **args)
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    o = rec["overall"]
    print(f"{rec['split']}: precision {o['precision']:.4f} recall {o['recall']:.4f} F1 {o['f1']:.4f} "
          f"accuracy {o['accuracy']:.4f} ({rec['num_sentences']} sentences)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
