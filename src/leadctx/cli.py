"""The ``leadctx`` command line: composes the command groups each package registers.

The libraries (``leadctx_flags``, ``leadctx_bundle``) each expose ``add_commands(subparsers)``;
this application module wires them, decides how logs look, and is the only place (with the
rest of the ``leadctx`` package) that configures logging or the OpenTelemetry SDK.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from leadctx import demo
from leadctx_bundle import cli as bundle_cli
from leadctx_flags import cli as flags_cli

__all__ = ["build_parser", "main"]


def _add_guardrails(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``leadctx guardrails ...``, or a command that names the missing extra (no traceback)."""
    try:
        from leadctx_flags.guardrails import cli as guardrails_cli  # noqa: PLC0415
    except ImportError as err:  # e.g. a partial install; the command names what is missing
        missing = err.name or "a module"

        def explain(_: argparse.Namespace) -> int:
            print(
                f"leadctx: guardrails need {missing}; "
                "install the extra: pip install 'leadctx[guardrails]'",
                file=sys.stderr,
            )
            return 2

        group = commands.add_parser("guardrails", help="rollout guardrails (needs the extra)")
        group.add_argument("rest", nargs=argparse.REMAINDER)
        group.set_defaults(handler=explain)
        return
    guardrails_cli.add_commands(commands)


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
    _add_guardrails(commands)
    demo.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``leadctx`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args = build_parser().parse_args(argv)
    # The CLI is an application: it, not the library, decides how logs look.
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
