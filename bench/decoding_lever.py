"""Does decoding only valid IOB2 sequences (trainer.decoding, Viterbi) score better than each word's argmax?

Re-scores saved models (the runs of bench/recipe_seeds.py) on validation and test, both decodings from the same
forward passes, in the windows each model was trained with; word-level seqeval as everywhere (trainer.metrics).

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


def word_logprobs(model, tokenizer, dataset, window):
    """Per sentence, per word: the log-probabilities of every label at the word's first sub-token, read from the
    window where it has the most context (trainer.windows' rule)."""
    import numpy as np
    import torch

    from trainer.backends import pad_batch
    from trainer.windows import DocumentWindows, longest_first

    windows = DocumentWindows.build(tokenizer, list(dataset["tokens"]), list(dataset["doc_id"]), window)
    names = [n for n in tokenizer.model_input_names if n in windows.inputs]
    logp: list = [None] * len(windows)
    order = longest_first([len(ids) for ids in windows.inputs["input_ids"]])
    model.eval()
    with torch.inference_mode():
        for b in range(0, len(order), 32):
            idx = order[b:b + 32]
            batch = pad_batch({n: [windows.inputs[n][w] for w in idx] for n in names}, tokenizer.pad_token_id or 0)
            out = model(**{n: torch.from_numpy(v) for n, v in batch.items()}).logits.log_softmax(-1).numpy()
            for row, w in enumerate(idx):
                logp[w] = out[row, :len(windows.inputs["input_ids"][w])]
    n_labels = model.config.num_labels
    outside = np.full(n_labels, -1e9)
    outside[model.config.label2id["O"]] = 0.0  # a word without a sub-token is predicted O, as in evaluation
    sentences = []
    for doc, first, n in windows.sentences:
        readings = windows.readings[doc]
        sentences.append(np.stack([logp[r.window][r.position] if (r := readings.get(w)) else outside
                                   for w in range(first, first + n)]) if n else np.zeros((0, n_labels)))
    return sentences


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="saved model directories")
    ap.add_argument("--result", required=True)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from trainer.decoding import Decoder
    from trainer.evaluation import eval_config, load_split
    from trainer.limits import model_window
    from trainer.metrics import score

    torch.set_num_threads(os.cpu_count() or 1)
    runs = []
    for model_dir in args.models:
        model = AutoModelForTokenClassification.from_pretrained(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        data = load_split(eval_config(model_dir), "test")
        window = model_window(tokenizer, model.config, None)
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        run = {"model": os.path.relpath(os.path.abspath(model_dir), ROOT), "context": window.context}
        for split in ("validation", "test"):
            logps = word_logprobs(model, tokenizer, data.splits[split], window)
            gold = list(data.splits[split]["tags"])
            for decoding in ("argmax", "viterbi"):
                decode = Decoder(labels, decoding)
                pred = [[labels[i] for i in decode(lp)] for lp in logps]
                run[f"{split}_{decoding}_f1"] = score(gold, pred, data.scheme)["overall"]["f1"]
        print(json.dumps(run), flush=True)
        runs.append(run)

    def mean_std(key: str, context: str) -> str:
        v = [100 * r[key] for r in runs if r["context"] == context]
        return f"{statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f} (n={len(v)})"

    summary = {c: {k: mean_std(f"{s}_{d}_f1", c) for s in ("validation", "test") for d in ("argmax", "viterbi")
                   for k in [f"{s}_{d}_f1"]}
               for c in sorted({r["context"] for r in runs})}
    res = {"what": "word-level F1 of the same saved models, decoded per word (argmax) or as the best valid IOB2 "
                   "sequence (Viterbi); mean ± std over the models of each context", "summary": summary,
           "runs": runs, "cpu": cpu_info(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
