"""The reference pages are checked against the code, not only written next to it.

* ``docs/configuration.md`` names every ``LEADCTX_*`` and ``OTEL_*`` variable ``src/`` mentions,
  and every option of every ``leadctx`` command, in that command's section.
* ``docs/architecture.md``'s tree lists every module under ``src/``, and nothing that is not
  there.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from leadctx.cli import build_parser
from leadctx_bundle.deadline import deadline_env_name
from leadctx_flags.vocabulary import PIPELINES

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")

VARIABLE = re.compile(r"\b(?:LEADCTX|OTEL)_[A-Z0-9_]+")


def variables_in_src() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found.update(VARIABLE.findall(path.read_text(encoding="utf-8")))
    return found


def documented(name: str, text: str) -> bool:
    """``name`` as a whole variable name; a name ending in ``_`` is a prefix of one."""
    tail = "" if name.endswith("_") else r"(?![A-Z0-9_])"
    return re.search(rf"(?<![A-Z0-9_]){re.escape(name)}{tail}", text) is not None


def test_every_environment_variable_in_src_is_documented() -> None:
    names = variables_in_src() | {deadline_env_name(pipeline) for pipeline in PIPELINES}
    assert "LEADCTX_SHARED_BUNDLE_KILL" in names  # the scan finds what it should
    missing = sorted(name for name in names if not documented(name, CONFIGURATION))
    assert missing == []


def test_the_variable_check_can_fail() -> None:
    assert not documented("LEADCTX_NO_SUCH_VARIABLE", CONFIGURATION)
    # A documented name does not vouch for a longer one it is the start of.
    assert not documented("LEADCTX_SHARED_BUNDLE_KILL_NOW", CONFIGURATION)


def leaf_commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], list[str]]:
    """Each runnable command (``("flags", "deny")``) and its option strings (long forms)."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    options = [
        max(action.option_strings, key=len)
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
    ]
    if not subparsers:
        return {path: options}
    found: dict[tuple[str, ...], list[str]] = {path: options} if options else {}
    for group in subparsers:
        for name, child in group.choices.items():
            found.update(leaf_commands(child, (*path, name)))
    return found


def command_sections() -> dict[tuple[str, ...], str]:
    """The ``### `leadctx ...` `` sections of the commands part, keyed by each command named."""
    part = CONFIGURATION.split("## Commands and options", 1)[1]
    top, *sections = part.split("\n### ")
    found: dict[tuple[str, ...], str] = {(): top}
    for section in sections:
        heading = section.splitlines()[0]
        names = re.findall(r"`([^`]+)`", heading)
        first = tuple(names[0].split()[1:])  # drop "leadctx"
        found[first] = section
        for sibling in names[1:]:  # `unkill`, `allow ID`: siblings of the first command
            found[(*first[:-1], sibling.split()[0])] = section
    return found


def test_every_command_option_is_documented_in_its_section() -> None:
    commands = leaf_commands(build_parser())
    assert ("smoke",) in commands
    assert ("flags", "deny") in commands
    sections = command_sections()
    missing_sections = sorted(" ".join(path) for path in commands if path not in sections)
    assert missing_sections == []
    missing = sorted(
        f"{' '.join(path) or 'leadctx'} {option}"
        for path, options in commands.items()
        for option in options
        if f"`{option}`" not in sections[path]
    )
    assert missing == []


def architecture_tree() -> set[str]:
    """The paths the tree in ``docs/architecture.md`` lists (directories end with ``/``)."""
    block = ARCHITECTURE.split("## The tree", 1)[1].split("```", 2)[1]
    listed: set[str] = set()
    stack: list[str] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        stack = [*stack[:depth], name]
        listed.add("".join(stack))
    return listed


def test_the_architecture_tree_matches_the_files() -> None:
    listed = architecture_tree()
    assert "src/leadctx/smoke.py" in listed  # the parse reads what it should
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in SRC.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert sorted(modules - listed) == []
    # Package data is listed by its folder; every listed path exists.
    assert sorted(path for path in listed if not (ROOT / path).exists()) == []


@pytest.mark.parametrize(
    "folder", ["src/leadctx_bundle/data/", "src/leadctx_flags/guardrails/schema/"]
)
def test_package_data_folders_are_in_the_tree(folder: str) -> None:
    assert folder in architecture_tree()
