"""Which inference backend is faster as texts grow: ms per text for texts of increasing length (the first N words of
bench/space_load.py's paragraph), in batches of 16 and one at a time, each backend's best of 3 timings, backends
interleaved. It sets backends.SHORT_WINDOW, the longest window "onnx-int8+openvino" runs on onnx-int8. torch-bf16
needs a CPU with native bf16 (it is refused elsewhere: leave it out of --backends there).

  python bench/backend_by_length.py --model MODEL --result bench/results/backend_by_length.json
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from machine import cpu_info  # noqa: E402
from space_load import PARAGRAPH  # noqa: E402


def best_ms(run, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return 1000 * min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a trained output directory")
    ap.add_argument("--backends", default="onnx-int8,openvino,torch-bf16")
    ap.add_argument("--words", type=int, nargs="+", default=[12, 18, 25, 35, 50, 80, 110, 160, 250])
    ap.add_argument("--result", required=True)
    args = ap.parse_args()

    from trainer.inference.tagger import NerTagger

    taggers = {b: NerTagger.from_pretrained(args.model, backend=b) for b in args.backends.split(",")}
    tokenizer = next(iter(taggers.values())).tokenizer
    words, rows = PARAGRAPH.split(), []
    for n in args.words:
        text = " ".join(words[:n])
        row = {"words": min(n, len(words)), "sub_tokens": len(tokenizer(text)["input_ids"])}
        for name, tagger in taggers.items():
            tagger.predict_batch([text] * 16)  # warm-up at this shape
            row[name] = {
                "batch_ms_per_text": best_ms(lambda: tagger.predict_batch([text] * 16)) / 16,
                "one_ms": best_ms(lambda: tagger.predict(text)),
            }
        rows.append(row)
        print(
            row["sub_tokens"],
            "sub-tokens:",
            ", ".join(f"{b} {row[b]['batch_ms_per_text']:.2f} / {row[b]['one_ms']:.2f}" for b in taggers),
            "ms per text (batch of 16 / one at a time)",
            flush=True,
        )
    res = {
        "what": "ms per text by length, batches of 16 and one at a time, best of 3",
        "rows": rows,
        "cpu": cpu_info(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
