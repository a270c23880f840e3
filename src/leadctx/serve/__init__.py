"""``leadctx serve``: this project's provider over OFREP, for pipelines in any language.

The server adds transport only (Starlette on uvicorn, the ``serve`` extra): every answer is
``LeadCtxProvider.resolve_boolean_details`` for the request's context, so a Node pipeline and
a Python one cannot disagree. See docs/serve.md.

Importing this package loads neither Starlette nor uvicorn; the command does when it runs.
"""

from __future__ import annotations

import argparse
import sys

from leadctx.serve import settings as _settings  # registers LEADCTX_SERVE_* before any check

__all__ = ["add_commands"]

_ = _settings


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``leadctx serve`` with the ``leadctx`` command.

    Args:
        commands: The ``leadctx`` command's subparsers.
    """
    parser = commands.add_parser(
        "serve",
        help="serve shared_bundle.enabled over OFREP (HTTP) to clients in any language",
        description=(
            "Serve this project's provider over the OpenFeature Remote Evaluation Protocol. "
            "Rollout settings: the same LEADCTX_* variables as in process; transport: "
            "LEADCTX_SERVE_TOKEN, LEADCTX_SERVE_MAX_STREAMS, LEADCTX_SERVE_HEARTBEAT_SECONDS, "
            "LEADCTX_SERVE_HEAD_DEADLINE_SECONDS and LEADCTX_SERVE_BODY_DEADLINE_SECONDS (how "
            "long a request's head and its body may take to arrive, 10 s each by default)."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8016,
        help="port to listen on (default: 8016, flagd's OFREP port)",
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help=(
            "listen on a non-loopback address without LEADCTX_SERVE_TOKEN "
            "(only behind a network that authenticates callers)"
        ),
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        from leadctx.serve.server import (  # noqa: PLC0415 - the extra only when serving
            ServeOptions,
            serve,
        )
    except ImportError as err:
        print(
            f"leadctx serve: needs {err.name or 'a module'}; install the extra: "
            "pip install 'leadctx[serve]'",
            file=sys.stderr,
        )
        return 2
    return serve(
        ServeOptions(
            host=args.host, port=args.port, allow_unauthenticated=args.allow_unauthenticated
        )
    )
