"""`python -m trainer.evaluate`: score a saved model on any split, writing the same `eval_results.json` and
`predictions_<split>.jsonl` as training does.

  python -m trainer.evaluate --model model --data-dir ../shared/data/conll2003 --split test --output-dir eval-test

The data source defaults to the one the model was trained on (its `run_config.json`), and the text is read in the
windows the model was trained with (documents or sentences, recorded in its `config.json`); flags override both.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Optional, Sequence

from transformers import AutoModelForTokenClassification

from trainer.card import CardError, write_model_card
from trainer.data import DataError
from trainer.evaluation import DATA_FIELDS, eval_config, evaluate, load_split
from trainer.limits import model_window
from trainer.outputs import (CARD_FILE, EVAL_RESULTS_FILE, RUN_CONFIG_FILE, THIS_MODEL, check_results_model,
                             results_model)
from trainer.prepare import load_tokenizer

logger = logging.getLogger(__name__)


def evaluate_saved(model: str, split: str, output_dir: Optional[str] = None, batch_size: int = 32,
                   **overrides: Any) -> dict[str, Any]:
    """Score the saved model `model` on `split` and write the result files (default: into the model directory).
    Results are merged only with the same model's; into a trained run's own directory, its model card is rewritten
    to match them."""
    out = output_dir or model
    model_id = results_model(model, out)
    check_results_model(out, model_id)  # before the work, not after it
    cfg = eval_config(model, overrides)
    data = load_split(cfg, split)
    net = AutoModelForTokenClassification.from_pretrained(model)
    tokenizer = load_tokenizer(model)
    # The model's recorded window and decoding unless --context / --stride / --max-seq-length / --decoding say
    # otherwise.
    window = model_window(tokenizer, net.config, cfg.max_seq_length, overrides.get("stride"), overrides.get("context"),
                          overrides.get("decoding"))
    record = evaluate(net, tokenizer, data, split, batch_size=batch_size, output_dir=out, window=window,
                      model_id=model_id, first_sentences=cfg.max_eval_samples).record
    if model_id == THIS_MODEL and os.path.exists(os.path.join(out, RUN_CONFIG_FILE)):
        # A trained run's directory: its card reports eval_results.json, so it is rebuilt from the new results
        # rather than left saying the old ones.
        try:
            write_model_card(out)
        except CardError as e:
            logger.warning("model card not rewritten (%s may disagree with %s): %s", os.path.join(out, CARD_FILE),
                           EVAL_RESULTS_FILE, e)
    return record


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="saved model directory (or Hub id)")
    ap.add_argument("--split", default="validation", help="split to score: train, validation or test")
    ap.add_argument("--output-dir", help="where the result files go (default: the model directory, whose model card "
                    "is then rewritten); results of another model there are not merged with, but refused")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-seq-length", type=int, help="sub-tokens per window (default: the model's, as trained)")
    ap.add_argument("--context", choices=("document", "sentence"),
                    help="read documents or single sentences (default: as the model was trained)")
    ap.add_argument("--stride", type=int, help="sub-tokens shared by consecutive windows (default: the model's)")
    ap.add_argument("--decoding", choices=("argmax", "viterbi"),
                    help="per-word argmax, or the best valid IOB2 sequence (default: as the model records)")
    ap.add_argument("--task", choices=("ner", "pos", "chunk"))
    for flag in DATA_FIELDS:
        ap.add_argument("--" + flag.replace("_", "-"), dest=flag)
    ap.add_argument("--label-column", type=int)
    ap.add_argument("--max-eval-samples", type=int, help="score only the split's first N sentences")
    args = vars(ap.parse_args(argv))
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        rec = evaluate_saved(args.pop("model"), args.pop("split"), args.pop("output_dir"), args.pop("batch_size"),
                             **args)
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    o = rec["overall"]
    print(f"{rec['split']}: precision {o['precision']:.4f} recall {o['recall']:.4f} F1 {o['f1']:.4f} "
          f"accuracy {o['accuracy']:.4f} ({rec['num_sentences']} sentences)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
