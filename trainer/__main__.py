"""`python -m trainer`: flags or one JSON/YAML config file -> Config -> the chosen engine.

Examples:
  python -m trainer --model-name-or-path bert-base-cased --dataset-name conll2003 --output-dir model
  python -m trainer --model-name-or-path ./encoder --data-dir ../shared/data/conll2003 --output-dir model
  python -m trainer run.yaml
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Literal, Optional, Sequence, Union, get_args, get_origin, get_type_hints

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


def _as_field_type(path: str, name: str, value: Any, kind: Any) -> Any:
    """`value` of option `name` in config file `path`, as the field's type, or a ValueError that says what was
    expected. HfArgumentParser.parse_yaml_file / parse_json_file hand the file's values to the dataclass as they are,
    and YAML 1.1 reads `2e-5` (no dot) as a string: flags go through argparse's type conversion, files did not."""
    args = get_args(kind)
    if get_origin(kind) is Union:  # Optional[X]
        if value is None:
            return None
        kind = next(a for a in args if a is not type(None))
    if get_origin(kind) is Literal:
        if value not in get_args(kind):
            raise ValueError(f"{path}: {name} must be one of {', '.join(map(str, get_args(kind)))}, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{path}: {name} must be true or false, got {value!r}")
        return value
    if kind in (int, float):
        try:
            number = kind(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or (kind is int and number != value and not isinstance(value, str)):  # 2.5 is no int
            raise ValueError(f"{path}: {name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        return number
    if kind is str and not isinstance(value, str):
        raise ValueError(f"{path}: {name} must be a string, got {value!r}")
    return value


def read_config_file(path: str) -> Config:
    """A JSON or YAML file of option names (dashes or underscores) -> Config, each value checked against its field."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) if path.endswith((".yaml", ".yml")) else json.load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the config file: {e}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of option names to values, got {type(values).__name__}")
    kinds = get_type_hints(Config)
    out = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in kinds:
            raise ValueError(f"{path}: unknown option {key!r} (see python -m trainer --help)")
        out[name] = _as_field_type(path, name, value, kinds[name])
    return Config(**out)


def parse_config(argv: Sequence[str]) -> Config:
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        return read_config_file(argv[0])
    (cfg,) = make_parser().parse_args_into_dataclasses(args=[str(a) for a in argv])
    return cfg


def setup_logging() -> None:
    # One log, from the main process: under `accelerate launch` every process runs this, RANK telling them apart.
    main_process = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.INFO if main_process else logging.WARNING)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from trainer.data import DataError
    from trainer.output_dir import OutputDirError
    from trainer.processes import LaunchError
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
    except (DataError, OutputDirError, LaunchError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except HubPushError as e:  # training results are saved; the message carries the retry command
        print(f"error: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
