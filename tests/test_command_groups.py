"""The ``leadctx`` command loads only the group it runs, and lists every group the same way."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

import pytest

from leadctx.cli import COMMAND_GROUPS, build_parser


def _commands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action


def test_every_group_is_listed_with_the_help_its_own_module_registers() -> None:
    # Given the parser with every group registered by its own module
    commands = _commands(build_parser())

    # Then its commands, in order and with their help, are the ones listed without loading
    registered = {choice.dest: choice.help for choice in commands._choices_actions}
    assert registered == {name: group.help for name, group in COMMAND_GROUPS.items()}
    assert list(registered) == list(COMMAND_GROUPS)


@pytest.mark.parametrize(
    "argv",
    [
        ["flags", "explain", "--client-id", "acme", "--json"],
        ["--log-level", "DEBUG", "flags", "kill", "--overrides", "o.json", "--note", "why"],
        ["--log-lev=INFO", "bundle", "build", "--input", "request.json"],
        ["serve", "--port", "0"],
        ["smoke", "--client-id", "acme"],
    ],
)
def test_a_command_parses_the_same_with_only_its_group_loaded(argv: list[str]) -> None:
    # When the arguments are parsed by the parser that loads only their group
    lazily = build_parser(argv).parse_args(argv)

    # Then the result is the one the parser with every group gives (a handler built per
    # parser, such as an edit's `change`, is the same function)
    fully = build_parser().parse_args(argv)
    assert _comparable(vars(lazily)) == _comparable(vars(fully))


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value.__qualname__ if callable(value) else value for key, value in values.items()}


def test_the_other_groups_are_listed_but_not_registered() -> None:
    # When only `flags` is invoked
    commands = _commands(build_parser(["flags", "show"]))

    # Then every group is a choice, but only `flags` has its subcommands
    assert list(commands.choices) == list(COMMAND_GROUPS)
    assert commands.choices["flags"]._subparsers is not None
    assert all(
        commands.choices[name]._subparsers is None for name in COMMAND_GROUPS if name != "flags"
    )


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        ("LEADCTX_BUNDLE_DEADLINE_SECONDZ", "LEADCTX_BUNDLE_DEADLINE_SECONDS"),
        ("LEADCTX_SERVE_HEARTBEAT_SECOND", "LEADCTX_SERVE_HEARTBEAT_SECONDS"),
    ],
)
def test_a_command_reports_a_misspelt_variable_of_another_group(variable: str, meant: str) -> None:
    # Given a misspelt variable read by a group other than `flags`
    env = {"PATH": os.environ.get("PATH", os.defpath), variable: "1"}

    # When the pre-deploy check runs in a fresh interpreter (no group imported yet)
    done = subprocess.run(
        [sys.executable, "-m", "leadctx", "flags", "explain", "--client-id", "acme"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it still names the variable and the one meant, as when every group was imported,
    # and fails as the pre-deploy check (exit 3: the answer ignores the variable)
    assert done.returncode == 3, done.stderr
    assert f"unknown environment variable {variable} is ignored; did you mean {meant}?" in (
        done.stderr
    )
