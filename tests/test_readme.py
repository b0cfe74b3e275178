"""The README and docs/ stay true: every `python -m trainer...` and `python app.py` command in them is accepted by the
command line it names, and every relative link resolves (to a file, and to a heading where it names one)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "README.md"]
DOORS = ("python -m trainer.evaluate", "python -m trainer.predict", "python -m trainer.push", "python -m trainer",
         "python app.py", "-m trainer")  # fmt: skip


def without_substitutions(line: str) -> str:
    """`line` with each shell command substitution `$(...)` (nested parentheses too) replaced by a word."""
    while "$(" in line:
        start = depth = line.index("$(")
        for end in range(start + 1, len(line)):
            depth += {"(": 1, ")": -1}.get(line[end], 0)
            if depth == start:
                break
        line = line[:start] + "ENCODER" + line[end + 1 :]
    return line


def code_spans(text: str) -> list[str]:
    """Lines of fenced code blocks (continued lines joined) and inline code spans, command substitutions replaced."""
    fenced = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    rest = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    lines = [line for block in fenced for line in block.replace("\\\n", " ").splitlines()]
    return [without_substitutions(line) for line in lines + re.findall(r"`([^`\n]+)`", rest)]


def commands(text: str) -> list[tuple[str, list[str]]]:
    """(door, argv) of every command of the project's command lines in `text`."""
    found = []
    for span in code_spans(text):
        for part in re.split(r"&&|\|\||;|\|", span):
            door = next((d for d in DOORS if d in part), None)
            if door is None:
                continue
            tail = part.split(door, 1)[1]
            if tail and not tail[0].isspace():
                continue  # e.g. `python -m trainer.pushx`, or prose
            args = [a for a in shlex.split(tail.replace("[", " ").replace("]", " "), comments=True) if a != "..."]
            if not args or "--help" in args:
                continue  # the command named in prose, or its help
            found.append(("python -m trainer" if door == "-m trainer" else door, args))
    return found


ALL = [(page.relative_to(REPO), door, argv) for page in PAGES for door, argv in commands(page.read_text("utf-8"))]


def test_the_pages_hold_commands_of_every_door():
    doors = {door for _, door, _ in ALL}
    assert doors == {"python -m trainer", "python -m trainer.evaluate", "python -m trainer.predict",
                     "python -m trainer.push", "python app.py"}  # fmt: skip


@pytest.mark.parametrize("page, door, argv", ALL, ids=[f"{p}: {d} {' '.join(a)}"[:100] for p, d, a in ALL])
def test_every_command_in_the_docs_is_accepted_by_its_command_line(page, door, argv, monkeypatch):
    import app
    from trainer import cli
    from trainer.__main__ import parse_config
    from trainer.evaluate import EvaluateArgs
    from trainer.predict import PredictArgs
    from trainer.push import PushArgs

    monkeypatch.chdir(REPO)  # recipe files are named from the repository
    if door == "python -m trainer":
        parse_config(argv)
    else:
        kind = {"python -m trainer.evaluate": EvaluateArgs, "python -m trainer.predict": PredictArgs,
                "python -m trainer.push": PushArgs, "python app.py": app.AppArgs}[door]  # fmt: skip
        cli.parse(kind, argv, door)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


LINKS = [(page, target) for page in PAGES for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text("utf-8"))
         if not re.match(r"[a-z]+:", target)]  # fmt: skip


@pytest.mark.parametrize("page, target", LINKS, ids=[f"{p.relative_to(REPO)} -> {t}" for p, t in LINKS])
def test_every_relative_link_resolves(page, target):
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.relative_to(REPO)}: {target} names no file"
    if anchor and file.suffix == ".md":
        headings = re.findall(r"^#+ (.+)$", file.read_text("utf-8"), flags=re.M)
        assert anchor in {slug(h) for h in headings}, f"{page.relative_to(REPO)}: no heading #{anchor} in {path}"
