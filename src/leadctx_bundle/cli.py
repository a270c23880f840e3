"""``leadctx bundle ...``: build a bundle from a JSON file and see what it cost.

``leadctx bundle build --input request.json [--json]`` reads the ``BundleInput`` shape (see
``leadctx_bundle.models.BundleInput``; ``-`` reads stdin) and prints the bundle text and its
stats, or with ``--json`` one object: ``{"path": "shared", "text": ..., "stats": {...}}``.
``--spans FILE`` writes the ``leadctx.bundle.build`` span as JSON lines: the option is declared
here, the exporter is set up by the ``leadctx`` application (this package never imports the
OpenTelemetry SDK) and handed in as ``args.gate_telemetry``.

Exit codes: 0 built; 2 the input or the configuration is invalid (the message on stderr
names the file, variable or field); 1 the tokenizer data cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from leadctx_bundle.errors import BundleInputError, EncodingDataError
from leadctx_bundle.gate import build_traced
from leadctx_bundle.models import LeadContextBundle
from leadctx_bundle.profiles import PROFILES_ENV, BundleSettings, load_profiles
from leadctx_bundle.telemetry import GateTelemetry
from leadctx_bundle.validation import parse_bundle_input
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.vocabulary import ResolutionPath

__all__ = ["MAX_INPUT_BYTES", "add_commands", "read_input"]

MAX_INPUT_BYTES = 64 * 1024 * 1024
"""Largest ``--input`` read (64 MiB), far above any lead's context: the rest is never read."""


def add_commands(subparsers: Any) -> None:
    """Register ``leadctx bundle ...`` on the top-level parser's subparsers.

    Args:
        subparsers: The object ``argparse.ArgumentParser.add_subparsers()`` returned.
    """
    bundle = subparsers.add_parser("bundle", help="build the shared LeadContextBundle")
    commands = bundle.add_subparsers(dest="bundle_command", required=True, metavar="COMMAND")

    build = commands.add_parser(
        "build", help="build a bundle from a JSON input file and print it with its stats"
    )
    build.add_argument(
        "--input", required=True, help="JSON file of the BundleInput shape ('-' for stdin)"
    )
    build.add_argument(
        "--profiles", type=Path, help=f"JSON profile overrides (default: ${PROFILES_ENV})"
    )
    build.add_argument("--json", action="store_true", help="print one JSON object")
    build.add_argument(
        "--spans",
        type=Path,
        metavar="FILE",
        help="write the build's spans to FILE as JSON lines (the leadctx application sets up "
        "the exporter; OTEL_EXPORTER_OTLP_ENDPOINT exports them too)",
    )
    build.set_defaults(handler=_build_command)


def read_input(name: str) -> Any:
    """Parse the JSON document in file ``name`` (``-``: stdin).

    Lone-surrogate escapes such as ``"\\ud800"`` are accepted here and repaired to U+FFFD by
    the models; bytes that are not UTF-8 are an error.

    Args:
        name: The file's path, or ``-``.

    Raises:
        BundleInputError: The file cannot be read, is above ``MAX_INPUT_BYTES`` (an endless
            one such as ``/dev/zero`` included), is not UTF-8, is not JSON or is nested too
            deeply to parse; the message names the file, never its content.
    """
    try:
        if name == "-":
            raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with Path(name).open("rb") as handle:
                raw = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as err:
        raise BundleInputError([f"cannot read ({err.strerror})"], where=f"--input {name}") from None
    if len(raw) > MAX_INPUT_BYTES:  # /dev/zero, a log pasted by mistake: never read it whole
        raise BundleInputError(
            [f"larger than {MAX_INPUT_BYTES} bytes; not read"], where=f"--input {name}"
        )
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise BundleInputError([f"not UTF-8 (byte {err.start})"], where=f"--input {name}") from None
    except json.JSONDecodeError as err:
        raise BundleInputError(
            [f"not JSON ({err.msg}, line {err.lineno}, column {err.colno})"],
            where=f"--input {name}",
        ) from None
    except RecursionError:
        # Arrays or objects nested hundreds deep: no bundle input has that shape.
        raise BundleInputError(["JSON nested too deeply"], where=f"--input {name}") from None


def _build_command(args: argparse.Namespace) -> int:
    try:
        try:
            bundle_input = parse_bundle_input(read_input(args.input))
        except BundleInputError as err:
            raise (err if err.where else err.located(f"--input {args.input}")) from None
        profile = None
        if args.profiles is not None:
            settings = BundleSettings(profiles=args.profiles)
            profile = load_profiles(settings)[bundle_input.pipeline]
        # The application passes its SDK-backed telemetry in; alone, the global API is used.
        telemetry: GateTelemetry | None = getattr(args, "gate_telemetry", None)
        bundle = build_traced(bundle_input, profile=profile, telemetry=telemetry)
    except (BundleInputError, ConfigurationError) as err:
        print(f"leadctx: {err}", file=sys.stderr)
        return 2
    except EncodingDataError as err:
        print(f"leadctx: tokenizer data error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(_as_json(bundle)))
    else:
        _print_human(bundle)
    return 0


def _as_json(bundle: LeadContextBundle) -> dict[str, Any]:
    return {
        "path": ResolutionPath.SHARED.value,
        "text": bundle.text,
        "stats": bundle.stats.model_dump(),
    }


def _print_human(bundle: LeadContextBundle) -> None:
    stats = bundle.stats
    print(bundle.text)
    print()
    print(
        f"--- {stats.tokens_total}/{stats.budget_total} tokens ({stats.encoding}), "
        f"built in {stats.build_ms:.1f} ms"
    )
    print(f"{'section':<17} {'tokens':>7} {'budget':>7} {'items':>6} {'kept':>5} {'cut':>4}")
    for name, section in stats.sections.items():
        print(
            f"{name:<17} {section.tokens:>7} {section.budget:>7} {section.items_total:>6} "
            f"{section.items_included:>5} {section.items_truncated:>4}"
        )
