"""The ``leadctx`` command line: composes the command groups each package registers.

The libraries (``leadctx_flags``, ``leadctx_bundle``) each expose ``add_commands(subparsers)``;
this application module wires them, decides how logs look, and is the only place (with the
rest of the ``leadctx`` package) that configures logging or the OpenTelemetry SDK.

A command loads only its own group: ``leadctx flags explain``, the operator's pre-deploy check,
never imports the bundle's tokenizer, the guardrails, the demo or the server. The other groups
are listed by name and one-line help (``COMMAND_GROUPS``) without being imported.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

__all__ = ["COMMAND_GROUPS", "build_parser", "main"]


def _add_flags(commands: Any) -> None:
    from leadctx_flags import cli as flags_cli  # noqa: PLC0415 - loaded when invoked

    flags_cli.add_commands(commands)


def _add_bundle(commands: Any) -> None:
    from leadctx_bundle import cli as bundle_cli  # noqa: PLC0415 - loaded when invoked

    bundle_cli.add_commands(commands)


def _add_demo(commands: Any) -> None:
    from leadctx import demo  # noqa: PLC0415 - loaded when invoked

    demo.add_commands(commands)


def _add_smoke(commands: Any) -> None:
    from leadctx import smoke  # noqa: PLC0415 - loaded when invoked

    smoke.add_commands(commands)


def _add_serve(commands: Any) -> None:
    from leadctx import serve  # noqa: PLC0415 - loaded when invoked

    serve.add_commands(commands)


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


class CommandGroup(NamedTuple):
    """One top-level command: its help line, and how to register it with all its options."""

    help: str
    """What ``leadctx --help`` says about it; the group's own ``add_commands`` says the same."""
    add: Callable[[Any], None]
    """Imports the group's module and registers the command on the subparsers given."""


COMMAND_GROUPS: Final[dict[str, CommandGroup]] = {
    "flags": CommandGroup("inspect and operate the shared_bundle flag", _add_flags),
    "bundle": CommandGroup("build the shared LeadContextBundle", _add_bundle),
    "guardrails": CommandGroup(
        "rollout guardrails: expand, hold or roll back from the records", _add_guardrails
    ),
    "demo": CommandGroup(
        "the whole rollout story on embedded defaults (SQLite, a local overrides file)",
        _add_demo,
    ),
    "smoke": CommandGroup(
        "the pre-expansion checklist for one client, against the configured provider",
        _add_smoke,
    ),
    "serve": CommandGroup(
        "serve shared_bundle.enabled over OFREP (HTTP) to clients in any language", _add_serve
    ),
}
"""The ``leadctx`` commands in the order ``--help`` lists them."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``leadctx`` argument parser.

    Args:
        argv: The arguments it will parse. When given, only the command group they invoke is
            imported and registered with its options; the others are listed by name and help
            only. ``None``: every group is registered (for tools that walk every command).

    Raises:
        SystemExit: ``argv`` names no command or an unknown one, or asks for ``--help`` at the
            top level: the same exit and message as parsing them with the full parser.
    """
    invoked = None if argv is None else _invoked_group(argv)
    parser, commands = _top_level_parser()
    for name, group in COMMAND_GROUPS.items():
        if invoked is None or name == invoked:
            group.add(commands)
        else:
            commands.add_parser(name, help=group.help)
    return parser


def _top_level_parser() -> tuple[argparse.ArgumentParser, Any]:
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
    return parser, commands


def _invoked_group(argv: Sequence[str]) -> str:
    """The command group ``argv`` invokes, found by the top-level parser itself.

    Every group is a placeholder that takes any arguments, so only the top level is judged
    here (its options, the command's name, ``--help``); the invoked group's own options are
    parsed afterwards by its real parser.
    """
    parser, commands = _top_level_parser()
    for name, group in COMMAND_GROUPS.items():
        placeholder = commands.add_parser(name, help=group.help, add_help=False)
        placeholder.add_argument("arguments", nargs=argparse.REMAINDER)
    known, _ = parser.parse_known_args(argv)
    invoked: str = known.command
    return invoked


# The LEADCTX_* namespaces that command groups other than the one run read, with the modules
# that declare each one's variables to the unknown-variable warning. A command imports them only
# when a variable of the namespace is set, so that every command (`flags explain`, the
# pre-deploy check, included) still reports a misspelt one, and pays nothing otherwise.
_VARIABLE_DECLARATIONS: Final[dict[str, tuple[str, ...]]] = {
    "LEADCTX_SERVE_": ("leadctx.serve.settings",),
    "LEADCTX_BUNDLE_": ("leadctx_bundle.deadline", "leadctx_bundle.profiles"),
}


def _declare_variables_in_use(environ: Mapping[str, str]) -> None:
    """Import the declarations of every namespace in ``_VARIABLE_DECLARATIONS`` that is used."""
    names = [name.upper() for name in environ]
    for prefix, modules in _VARIABLE_DECLARATIONS.items():
        if any(name.startswith(prefix) for name in names):
            for module in modules:
                importlib.import_module(module)


INTERRUPTED_EXIT = 128 + 2
"""Exit code after Ctrl-C (SIGINT): 128 + SIGINT, as a shell reports an interrupted command."""

BROKEN_PIPE_EXIT = 128 + 13
"""Exit code when the reader of stdout went away (``leadctx ... | head``): 128 + SIGPIPE, as a
shell reports a command killed by SIGPIPE, so pipelines with ``pipefail`` still see it."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``leadctx`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    Args:
        argv: The arguments after the program name.
    """
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # Ctrl-C: the shell's status for SIGINT, and no traceback
        print("leadctx: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT


def _main(arguments: Sequence[str]) -> int:
    args = build_parser(arguments).parse_args(arguments)
    _declare_variables_in_use(os.environ)
    # The CLI is an application: it, not the library, decides how logs look.
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    stdout = _GuardedStdout(sys.stdout)
    sys.stdout = stdout  # print() and rich write to it; the real stream is kept
    try:
        code = _run(handler, args)
        stdout.flush()  # a closed pipe shows up here when the output was buffered
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE_EXIT
    finally:
        sys.stdout = stdout.stream
    if stdout.error is not None:
        _silence_stdout()
        print(
            f"leadctx: cannot write the output to stdout ({stdout.error.strerror}); "
            f"the output was lost, the command itself ended with status {code}",
            file=sys.stderr,
        )
        return code or 1
    return code


class _GuardedStdout:
    """``sys.stdout`` while a command runs: a failed write is recorded, never a traceback.

    stdout closed (``>&-``: Python's ``sys.stdout`` is ``None``) or on a full device
    (``> /dev/full``) records the error and drops the rest of the output, so the command
    still ends with its own status (a kill written is in force) and ``main`` reports the loss
    in one line. A character the stream's encoding cannot hold (``PYTHONIOENCODING=ascii``
    and a client id such as ``café``) is written as its JSON escape (``\\u00e9``). A closed pipe
    (``| head -1``) still stops the command with ``BrokenPipeError``, as Python documents.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.error: OSError | None = None

    @property
    def encoding(self) -> str:
        """The real stream's encoding (UTF-8 when stdout is closed)."""
        return str(getattr(self.stream, "encoding", None) or "utf-8")

    def write(self, text: str) -> int:
        """Write ``text``, or record why it cannot be written; returns ``len(text)``."""
        if self.error is None:
            self._attempt(lambda stream: stream.write(self._encodable(text)))
        return len(text)

    def flush(self) -> None:
        """Flush the real stream, or record why it cannot be flushed."""
        if self.error is None:
            self._attempt(lambda stream: stream.flush())

    def isatty(self) -> bool:
        """Whether the real stream is a terminal (``False`` when it is closed)."""
        try:
            return self.stream is not None and bool(self.stream.isatty())
        except (OSError, ValueError):
            return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def _attempt(self, action: Callable[[Any], object]) -> None:
        if self.stream is None:
            self.error = OSError(errno.EBADF, "stdout is closed")
            return
        try:
            action(self.stream)
        except BrokenPipeError as err:
            self.error = err
            raise
        except OSError as err:
            self.error = err

    def _encodable(self, text: str) -> str:
        try:
            text.encode(self.encoding)
        except UnicodeEncodeError:
            return "".join(_escaped(character, self.encoding) for character in text)
        except LookupError:  # an encoding name Python does not know: leave it to the stream
            pass
        return text


def _escaped(character: str, encoding: str) -> str:
    """``character``, or its ``\\uXXXX`` escape when ``encoding`` cannot hold it.

    JSON's escape (a surrogate pair above U+FFFF): inside the JSON the commands print, the
    escaped text still parses to the same string.
    """
    try:
        character.encode(encoding)
    except UnicodeEncodeError:
        code = ord(character)
        if code <= 0xFFFF:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return character


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run the command, with the OpenTelemetry SDK set up when it asks for spans or OTEL_* do."""
    spans: Path | None = getattr(args, "spans", None)
    if spans is None and not _otel_export_configured():
        return handler(args)
    # Any command that declares --spans, or any command when OTEL_* asks for export, runs with
    # the SDK set up here; the command's package sees only a GateTelemetry (API objects).
    from leadctx.telemetry import configure_telemetry  # noqa: PLC0415 - the SDK only when exporting

    try:
        setup = configure_telemetry(spans_file=spans)
    except OSError as err:
        print(f"leadctx: --spans {spans}: cannot write ({err.strerror})", file=sys.stderr)
        return 2
    if setup is None:
        return handler(args)
    args.gate_telemetry = setup.gate_telemetry()
    try:
        code = handler(args)
    finally:
        try:
            setup.shutdown()
        except OSError as err:  # the spans file's last write (a full disk): said, not raised
            print(f"leadctx: --spans {spans}: cannot write ({err.strerror})", file=sys.stderr)
            code = 2
    return code


def _otel_export_configured() -> bool:
    """Whether ``OTEL_*`` variables ask for export (checked without loading the SDK)."""
    names = (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
    )
    return any(os.environ.get(name) for name in names)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again.

    Python flushes stdout at exit; with the reader gone that flush would print a second
    ``BrokenPipeError`` ("Exception ignored ...") to stderr.
    """
    if sys.stdout is None:  # closed from the start: nothing is left to flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no descriptor to replace
        pass
    finally:
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
