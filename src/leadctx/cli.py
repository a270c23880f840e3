"""The ``leadctx`` command line: composes the command groups each package registers.

The libraries (``leadctx_flags``, ``leadctx_bundle``) each expose ``add_commands(subparsers)``;
this application module wires them, decides how logs look, and is the only place (with the
rest of the ``leadctx`` package) that configures logging or the OpenTelemetry SDK.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from leadctx import demo
from leadctx_bundle import cli as bundle_cli
from leadctx_flags import cli as flags_cli

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``leadctx`` argument parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="leadctx",
        description="Roll out the shared LeadContextBundle safely: flags, bundle, guardrails.",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level for leadctx's own log lines on stderr (default: WARNING)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    flags_cli.add_commands(commands)
    bundle_cli.add_commands(commands)
    demo.add_commands(commands)
    return parser


BROKEN_PIPE_EXIT = 128 + 13
"""Exit code when the reader of stdout went away (``leadctx ... | head``): 128 + SIGPIPE, as a
shell reports a command killed by SIGPIPE, so pipelines with ``pipefail`` still see it."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``leadctx`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    Args:
        argv: The arguments after the program name.
    """
    args = build_parser().parse_args(argv)
    # The CLI is an application: it, not the library, decides how logs look.
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows up here when the output was buffered
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE_EXIT
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again.

    Python flushes stdout at exit; with the reader gone that flush would print a second
    ``BrokenPipeError`` ("Exception ignored ...") to stderr.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
