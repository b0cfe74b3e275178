"""`python -m trainer`: flags or one JSON/YAML config file -> Config -> the chosen engine.

Examples:
  python -m trainer --model-name-or-path bert-base-cased --dataset-name conll2003 --output-dir model
  python -m trainer --model-name-or-path ./encoder --data-dir ../shared/data/conll2003 --output-dir model
  python -m trainer run.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from transformers import HfArgumentParser

from trainer.config import Config


def make_parser() -> HfArgumentParser:
    parser = HfArgumentParser(Config, prog="python -m trainer", description=__doc__,
                              epilog="Options take dashes or underscores (--learning-rate = --learning_rate).",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    # HfArgumentParser accepts --learning_rate and --learning-rate; show the dashed spelling (the README's) first.
    for action in parser._actions:
        action.option_strings.sort(key=lambda opt: "_" in opt)
    return parser


def parse_config(argv: Sequence[str]) -> Config:
    parser = make_parser()
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        path = argv[0]
        (cfg,) = parser.parse_yaml_file(path) if path.endswith((".yaml", ".yml")) else parser.parse_json_file(path)
        return cfg
    (cfg,) = parser.parse_args_into_dataclasses(args=[str(a) for a in argv])
    return cfg


def setup_logging() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from trainer.data import DataError
    from trainer.output_dir import OutputDirError
    from trainer.push import HubPushError

    setup_logging()
    try:
        cfg = parse_config(sys.argv[1:] if argv is None else argv)
    except ValueError as e:  # Config.__post_init__ validation
        print(f"error: {e}", file=sys.stderr)
        return 2
    from trainer.engines import run
    try:
        run(cfg)
    except (DataError, OutputDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except HubPushError as e:  # training results are saved; the message carries the retry command
        print(f"error: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
