"""`python -m trainer`: fine-tune an encoder for token classification, then evaluate, save and (if asked) push it.

  python -m trainer recipes/minilm-cpu.yaml --output-dir models/minilm-conll
  python -m trainer --model-name-or-path bert-base-cased --dataset-name conll2003 --output-dir model
  python -m trainer --model-name-or-path ./encoder --train-file train.jsonl --validation-file dev.jsonl

Options come from a recipe file, flags, or both (flags win); `recipes/` holds the recommended ones.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from transformers import HfArgumentParser

from trainer import cli
from trainer.config import Config

PROG = "python -m trainer"


def make_parser() -> HfArgumentParser:
    return cli.make_parser(Config, PROG, __doc__, recipes=True)


def parse_config(argv: Sequence[str]) -> Config:
    return cli.parse(Config, argv, PROG, __doc__, recipes=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from trainer.data.files import DataError
    from trainer.hub.push import HubPushError
    from trainer.inference.tagger import ModelLoadError
    from trainer.processes import LaunchError
    from trainer.training.engines import run
    from trainer.training.output_dir import OutputDirError

    cli.setup_logging()
    try:
        cfg = parse_config(sys.argv[1:] if argv is None else argv)
    except ValueError as e:  # a recipe file's values, the config's own checks
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        run(cfg)
    except (DataError, OutputDirError, LaunchError, ModelLoadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except HubPushError as e:  # training results are saved; the message carries the retry command
        print(f"error: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
