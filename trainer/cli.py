"""How every command line of the project parses and logs: `python -m trainer`, `trainer.evaluate`, `trainer.predict`,
`trainer.push` and `app.py` each describe their options as one dataclass and call `parse`.

- Options come from `HfArgumentParser` over the dataclass: each field is a flag named like it, with its help text and
  its default shown in `--help`; dashes and underscores are alike (`--learning-rate` = `--learning_rate`,
  `--no-progress` = `--no_progress`).
- A YAML or JSON recipe file may come first (`python -m trainer recipes/minilm-cpu.yaml --output-dir x`): its values
  replace the defaults, and flags after it override them, as spaCy's `spacy train config.cfg --paths.train ...` does.
  Each value is checked against its field's type: HfArgumentParser's own `parse_yaml_file` hands values to the
  dataclass as they are, and YAML 1.1 reads `2e-5` (no dot) as a string.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from typing import Any, Callable, Literal, Optional, Sequence, TypeVar, Union, get_args, get_origin, get_type_hints

from transformers import HfArgumentParser

T = TypeVar("T")
RECIPE_SUFFIXES = (".yaml", ".yml", ".json")


class PositiveInt(int):
    """The type of an option that must be a whole number >= 1: argparse refuses others (exit 2) with the usage."""

    def __new__(cls, value: Any) -> int:  # type: ignore[misc]
        n = int(value)
        if n < 1:
            raise ValueError(f"expected a positive integer, got {value}")
        return n


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and each option's default after its help (where it has one to show and the
    help does not already say it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            action.required
            or action.default in (None, argparse.SUPPRESS)
            or "default:" in text.lower()
            or isinstance(action, argparse._StoreFalseAction)
        ):
            return text
        return f"{text} (default: {action.default})"


def make_parser(kind: type, prog: str, description: Optional[str] = None, recipes: bool = False) -> HfArgumentParser:
    epilog = "Options take dashes or underscores (--learning-rate = --learning_rate)."
    if recipes:
        epilog += " A YAML or JSON recipe file may come first; flags after it override its values."
    # allow_abbrev=False: a misspelt flag (`--learning-rat`) is an error, not the option it abbreviates.
    parser = HfArgumentParser(
        kind, prog=prog, description=description, epilog=epilog, formatter_class=_Formatter, allow_abbrev=False
    )
    for f in dataclasses.fields(kind):  # `--no-X` for every true-or-false X (HfArgumentParser adds it to true ones)
        flag = f.name.replace("_", "-")
        if f.type in (bool, "bool") and f"--no-{flag}" not in parser._option_string_actions:
            parser.add_argument(f"--no-{flag}", action="store_false", dest=f.name, default=argparse.SUPPRESS)
    for action in list(parser._actions):
        for opt in list(action.option_strings):
            for other in (opt.replace("_", "-"), "--" + opt[2:].replace("-", "_")):
                if opt.startswith("--") and other not in parser._option_string_actions:
                    action.option_strings.append(other)
                    parser._option_string_actions[other] = action
        # The dashed spelling first: the one the README and the help text use.
        action.option_strings.sort(key=lambda opt: "_" in opt)
        if isinstance(action, argparse._StoreFalseAction):  # HfArgumentParser's --no-X for a field X defaulting to true
            action.help = f"Turn off --{action.dest.replace('_', '-')}."
    return parser


def _as_field_type(path: str, name: str, value: Any, kind: Any) -> Any:
    """`value` of option `name` in recipe file `path`, as the field's type, or a ValueError saying what was expected."""
    if get_origin(kind) is Union:  # Optional[X]
        if value is None:
            return None
        kind = next(a for a in get_args(kind) if a is not type(None))
    if get_origin(kind) is Literal:
        if value not in get_args(kind):
            raise ValueError(f"{path}: {name} must be one of {', '.join(map(str, get_args(kind)))}, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{path}: {name} must be true or false, got {value!r}")
        return value
    if kind is PositiveInt:
        kind = int
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


def read_recipe(path: str, kind: type) -> dict[str, Any]:
    """A YAML or JSON file of option names (dashes or underscores) -> {field: value}, each checked against its field."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) if path.endswith((".yaml", ".yml")) else json.load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the config file: {e}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of option names to values, got {type(values).__name__}")
    kinds = get_type_hints(kind)
    out = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in kinds:
            raise ValueError(f"{path}: unknown option {key!r} (see --help)")
        out[name] = _as_field_type(path, name, value, kinds[name])
    return out


def parse(kind: type[T], argv: Sequence[str], prog: str, description: Optional[str] = None, recipes: bool = False) -> T:
    """`argv` -> an instance of the dataclass `kind`. Wrong flags end the process with argparse's exit 2 and usage;
    a wrong value in a recipe file, or one the dataclass's own checks refuse, raises ValueError."""
    argv = [str(a) for a in argv]
    parser = make_parser(kind, prog, description, recipes)
    if recipes and argv and argv[0].endswith(RECIPE_SUFFIXES) and not argv[0].startswith("-"):
        values = read_recipe(argv[0], kind)
        parser.set_defaults(**values)
        # A recipe may give what would otherwise be required.
        for action in parser._actions:
            if action.dest in values:
                action.required = False
        argv = argv[1:]
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def run_door(
    kind: type[T],
    argv: Optional[Sequence[str]],
    prog: str,
    description: Optional[str],
    body: Callable[[T], str],
    refusals: tuple[type[BaseException], ...],
    code: int = 2,
) -> int:
    """A door's main: logging, `argv` (default: the process's) parsed into `kind`, then `body(args)`, whose message is
    printed on success (exit 0). An exception of `refusals` is printed as `error: ...` (exit `code`), no traceback:
    its message says what was wrong and what to do."""
    setup_logging()
    args = parse(kind, sys.argv[1:] if argv is None else argv, prog, description)
    try:
        message = body(args)
    except refusals as e:
        print(f"error: {e}", file=sys.stderr)
        return code
    print(message)
    return 0


def field_help(text: str, **kw: Any) -> Any:
    """A dataclass field with its `--help` text."""
    return dataclasses.field(metadata={"help": text, **kw.pop("metadata", {})}, **kw)


def setup_logging() -> None:
    """INFO from the project's own loggers, on the main process only (under `accelerate launch` every process runs
    the command, RANK telling them apart); other libraries stay at WARNING (onnxruntime's quantizer alone would log
    dozens of INFO lines)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main_process = int(os.environ.get("RANK", "0")) == 0
    for name in ("trainer", "__main__"):
        logging.getLogger(name).setLevel(logging.INFO if main_process else logging.WARNING)
