"""``leadctx guardrails report``: read the records, decide, show, and optionally roll back.

Exit codes (the same numbers as ``leadctx flags``: 0 done, 1 not written, 2 unusable input,
3 answered without the input it needs):

* 0: the report was made (whatever the decision) and, with ``--apply``, a rollback is in
  force for every affected client.
* 1: a rollback was decided with ``--apply`` but is not (wholly) in force: the overrides
  document could not be written, or an affected client id from the records breaks the id
  rule and was left out (named by its position, e.g. ``affected_clients[1]``).
* 2: the check could not run: an unsupported or unreachable ``--db``, a missing table or
  column, a statement the database failed or did not answer within ``--query-timeout``, a
  bad ``--since``/``--until``/``--clients``, a ``--since`` not before ``--until``, an
  invalid overrides document, ``--apply`` with no document (``--overrides`` or
  ``LEADCTX_FLAG_OVERRIDES``), a missing extra.
* 3: nothing to decide on: the selection holds no record (empty tables, a window with no
  records, ``--clients`` matching no client with records) or no canary (no client on the
  shared path in the window). One line on stderr says which; no report, state file or
  rollback is written. A scheduled check exits 3 forever after a typo: alert on it.

The decision itself is in the output (``decision`` in ``--json``), not in the exit code, so a
scheduler can tell "could not check" from "checked and said rollback".
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leadctx_flags import editing
from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.document import DocumentError
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.guardrails import queries
from leadctx_flags.guardrails import report as rendering
from leadctx_flags.guardrails.apply import apply_rollback
from leadctx_flags.guardrails.db import DatabaseInputError, connect
from leadctx_flags.guardrails.queries import Collected, Window
from leadctx_flags.storage import NotARegularFileError, atomic_write, open_regular

__all__ = [
    "DEFAULT_QUERY_TIMEOUT",
    "EXIT_NOTHING_TO_DECIDE",
    "PLOT_CHECKS",
    "RECOMPUTED_CHECKS",
    "Evaluator",
    "add_commands",
    "nothing_to_decide",
    "run_report",
]

EXIT_NOTHING_TO_DECIDE = 3

DEFAULT_QUERY_TIMEOUT = timedelta(minutes=5)
"""How long each of the check's queries may take unless ``--query-timeout`` says otherwise:
well above a million records' read (7 s on PostgreSQL, docs/performance.md) and well below an
hourly schedule, so that a table locked by a migration ends the check with exit 2 instead of
holding it, and its rollback, for as long as the lock."""
"""The status when the selection holds no record or no canary: alert on it."""

PLOT_CHECKS = 8
"""Cut-off times at which ``--plot`` re-runs the check to draw each difference over time."""

Evaluator = Callable[..., Any]
"""``evaluate(signals, previous=report_or_None)`` -> a ``GuardrailReport``."""

DEFAULT_STATE = Path("guardrails-state.json")
"""Where the previous check's report is kept, so drift metrics can confirm across checks."""

RECOMPUTED_CHECKS = 1
"""Earlier checks read back from the records when there is no state: the drift metric's
``drift_confirmations`` (2) minus this one."""

_EXTRA_HINT = "install the extra: pip install 'leadctx[guardrails]'"


def add_commands(subparsers: Any) -> None:
    """Register ``leadctx guardrails report`` on the top-level parser's subparsers.

    Args:
        subparsers: The object ``argparse.ArgumentParser.add_subparsers()`` returned.
    """
    group = subparsers.add_parser(
        "guardrails", help="rollout guardrails: expand, hold or roll back from the records"
    )
    commands = group.add_subparsers(dest="guardrails_command", required=True, metavar="COMMAND")
    report = commands.add_parser(
        "report",
        help="check the shared cohort against its baselines; --apply rolls back",
        description=(
            "Exit codes: 0 report made (and, with --apply, the rollback in force); 1 a "
            "rollback not (wholly) written; 2 bad input (the check could not run); 3 nothing "
            "to decide on: no records in the selection, --clients matching no client, or no "
            "canary in the window (alert on exit 3 as on exit 2)."
        ),
    )
    report.add_argument(
        "--db", required=True, help="sqlite:///path (embedded default) or postgresql://…"
    )
    report.add_argument("--since", type=_time("--since"), help="ISO-8601 start (UTC if no zone)")
    report.add_argument("--until", type=_time("--until"), help="ISO-8601 end, exclusive")
    report.add_argument("--clients", type=_clients, help="comma-separated client ids")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.add_argument("--markdown", type=Path, metavar="FILE", help="also write Markdown")
    report.add_argument("--plot", type=Path, metavar="FILE", help="also write a PNG")
    report.add_argument(
        "--apply",
        action="store_true",
        help="on rollback, write the affected clients off (or the kill) into --overrides",
    )
    report.add_argument(
        "--overrides",
        type=Path,
        metavar="PATH",
        help="the overrides document (default: LEADCTX_FLAG_OVERRIDES when it is a path)",
    )
    report.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        metavar="PATH",
        help=f"the previous check's report, read then replaced (default: ./{DEFAULT_STATE})",
    )
    report.add_argument(
        "--no-state", action="store_true", help="neither read nor write the state file"
    )
    report.add_argument(
        "--check-interval",
        type=_duration("--check-interval", "30m, 1h or 1d"),
        default=timedelta(hours=1),
        metavar="DURATION",
        help="the schedule's interval (30m, 1h, 1d; default 1h): without a state file the "
        "previous check is recomputed from the records one interval back",
    )
    report.add_argument(
        "--query-timeout",
        type=_duration("--query-timeout", "30s, 5m or 1h"),
        default=DEFAULT_QUERY_TIMEOUT,
        metavar="DURATION",
        help="how long each query may take, waits for another session's locks included "
        "(default 5m); beyond it the check stops with exit 2",
    )
    report.set_defaults(handler=_report_command)


def _report_command(args: argparse.Namespace) -> int:
    try:
        evaluate = _default_evaluator()
    except ImportError as err:
        print(
            f"leadctx: guardrails need {err.name or 'a missing module'}; {_EXTRA_HINT}",
            file=sys.stderr,
        )
        return 2
    return run_report(args, evaluate)


def run_report(args: argparse.Namespace, evaluate: Evaluator) -> int:
    """Run the report command with ``evaluate`` deciding from the signals.

    Args:
        args: The parsed ``leadctx guardrails report`` arguments.
        evaluate: ``decision.evaluate`` or a stand-in with its signature (tests).
    """
    state = None if args.no_state else args.state
    previous = _read_state(state)
    # Without the previous report, what it held is recomputed from the records themselves.
    earlier = 0 if previous is not None else RECOMPUTED_CHECKS
    try:
        overrides = _document(args)
        collected, sequence = _collect(args, evaluate, earlier=earlier)
    except _StoppedError as stopped:
        print(f"leadctx: {stopped}", file=sys.stderr)
        return stopped.status
    report = evaluate(collected.signals, previous=previous)
    if state is not None:
        _write_state(state, report)
    applied, status = _apply(overrides, report, collected)
    if applied is not None and overrides is not None:
        warning = (
            editing.unfollowed_document_warning(overrides)
            if args.overrides is not None
            else editing.relative_document_warning(overrides)
        )
        if warning is not None:
            print(f"leadctx: {warning}", file=sys.stderr)
    # The files first (stdout may be a pipe closed early, `| head`), then the report, then
    # what could not be written: a --markdown or --plot that fails hides neither the decision
    # nor the rollback already in force.
    unwritten = None
    try:
        _write_outputs(args, report, collected, sequence)
    except ImportError as err:
        unwritten = f"--plot needs {err.name or 'matplotlib'}; {_EXTRA_HINT}"
    except OSError as err:
        unwritten = f"cannot write {err.filename or 'the report file'}: {err.strerror}"
    if args.json:
        print(json.dumps(rendering.to_json(report, collected, applied)))
    else:
        print(rendering.table(report, collected), end="")
        if applied is not None:
            print(f"applied: {json.dumps(applied)}")
    if unwritten is not None:
        if applied is not None and status == 0:
            unwritten += "; the rollback was written and is in force"
        print(f"leadctx: {unwritten}", file=sys.stderr)
        # A rollback not in force (1) is the more urgent alert.
        return status or 2
    return status


class _StoppedError(Exception):
    """The check stops before deciding: the message for stderr, and the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _document(args: argparse.Namespace) -> Path | None:
    """The document ``--apply`` writes (``None`` without ``--apply``), checked before reading."""
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise _StoppedError(
            f"--since ({_iso(args.since)}) must be before --until ({_iso(args.until)}): "
            "the window [since, until) is empty",
            2,
        )
    if not args.apply:
        return None
    try:
        return editing.configured_document(args.overrides)
    except ValueError as err:  # ConfigurationError included: it names the variable
        raise _StoppedError(f"--apply: {err}", 2) from None


def _collect(
    args: argparse.Namespace, evaluate: Evaluator, *, earlier: int
) -> tuple[Collected, list[tuple[datetime, Any]]]:
    """The window's signals (and the ``--plot`` sequence), or stop: unusable or nothing."""
    window = Window(since=args.since, until=args.until, clients=args.clients)
    try:
        with connect(args.db, timeout_s=args.query_timeout.total_seconds()) as database:
            queries.check_schema(database)
            collected = queries.read_signals(
                database, window, earlier=earlier, interval=args.check_interval
            )
            nothing = nothing_to_decide(collected, window)
            if nothing is not None:
                raise _StoppedError(f"nothing to decide: {nothing}", EXIT_NOTHING_TO_DECIDE)
            sequence = _sequence(database, window, collected, evaluate) if args.plot else []
    except DatabaseInputError as err:
        raise _StoppedError(str(err), 2) from None
    return collected, sequence


def nothing_to_decide(collected: Collected, window: Window) -> str | None:
    """Why ``collected`` holds nothing to decide on, in one line; ``None`` when it holds some.

    A decision on nothing would be ``hold`` every time: a scheduled ``--apply`` with a typo
    in ``--clients`` would hold forever and never alert. The cases, in order: no record at
    all in the selection (the message says whether the tables, the window or ``--clients``
    is empty), then records but no canary (no client on the shared path in the window).

    Args:
        collected: What the window's queries read.
        window: The selection they read (for the message).
    """
    signals = collected.signals
    if collected.records == 0:
        if window.clients is not None:
            return (
                f"no record of the {len(window.clients)} --clients id(s) in the window; "
                "check the ids against the records' clientId"
            )
        if window.since is not None or window.until is not None:
            start, end = signals.window_start or "-", signals.window_end or "-"
            return f"no records in the window {start} .. {end}"
        return "the record tables hold no records"
    if not rendering.canary_clients(collected):
        return (
            f"no canary in the window ({collected.records} records read, none on the shared "
            "path): is the flag on for any client?"
        )
    return None


def _apply(
    overrides: Path | None, report: Any, collected: Collected
) -> tuple[dict[str, object] | None, int]:
    if overrides is None or str(report.decision) != "rollback":
        return None, 0
    canary = rendering.canary_clients(collected)
    # A rollback that names no client (e.g. the shared cohort's volume collapsed) is a rollback
    # of every canary client. Positions of unusable ids refer to the list the JSON shows.
    affected, label = list(report.affected_clients), "affected_clients"
    if not affected:
        affected, label = list(canary), "canary_clients"
    regressed = sorted(
        str(metric.name) for metric in report.metrics if str(metric.verdict) == "regress"
    )
    note = "guardrails rollback: " + (", ".join(regressed) or "decision rollback")
    try:
        result = apply_rollback(overrides, affected, canary, note=note[:1000], label=label)
    except DocumentError as err:
        print(f"leadctx: {err}", file=sys.stderr)
        return None, 2
    except ConfigurationError as err:  # the cache variable, unusable to the providers too
        print(f"leadctx: configuration error: {err}; the rollback was not written", file=sys.stderr)
        return None, 2
    except OSError as err:
        print(f"leadctx: rollback not written to {overrides}: {err}", file=sys.stderr)
        return None, 1
    for unusable in result.unusable:
        fate = (
            "the kill covers it"
            if result.action == "kill"
            else "that client was not denied (the others were): fix its id in the records, "
            "or roll everyone back with `leadctx flags kill`"
        )
        print(f"leadctx: rollback: {unusable.problem}; {fate}", file=sys.stderr)
    return result.to_json(), 1 if result.left_out else 0


def _write_outputs(
    args: argparse.Namespace,
    report: Any,
    collected: Collected,
    sequence: list[tuple[datetime, Any]],
) -> None:
    if args.markdown is not None:
        args.markdown.write_text(rendering.markdown(report, collected), encoding="utf-8")
    if args.plot is not None:
        from leadctx_flags.guardrails.plot import write_plot  # noqa: PLC0415 - matplotlib

        write_plot(args.plot, collected, sequence)


def _sequence(
    database: Any, window: Window, collected: Collected, evaluate: Evaluator
) -> list[tuple[datetime, Any]]:
    """The check re-run at ``PLOT_CHECKS`` cut-off times from the switch to the window's end."""
    signals = collected.signals
    start = signals.switch_time or signals.window_start
    end = signals.window_end
    if start is None or end is None:
        return []
    first, last = _parse(start), _parse(end)
    if last <= first:
        return []
    sequence = []
    for index in range(1, PLOT_CHECKS + 1):
        cut = first + (last - first) * index / PLOT_CHECKS
        # The window's own start stays, so each check is the one an operator would have run.
        earlier = Window(since=window.since, until=cut, clients=window.clients)
        signals_then = queries.read_signals(database, earlier).signals
        sequence.append((cut, evaluate(signals_then, previous=None)))
    return sequence


def _read_state(path: Path | None) -> Any:
    """The previous check's report, or ``None`` (no file, or one that cannot be read).

    Without a previous report the drift streak is recomputed from the records the previous
    check saw (one ``--check-interval`` back); an unreadable file is said on stderr.
    """
    if path is None:
        return None
    try:
        # Opened as every document is: a FIFO would block the read until a writer came. No
        # exists() first: it raises for a folder the account may not search, or a name too long.
        with open_regular(path) as handle:
            text = handle.read().decode("utf-8")
        decision = importlib.import_module("leadctx_flags.guardrails.decision")
        return decision.GuardrailReport.from_json(json.loads(text))
    except (FileNotFoundError, NotADirectoryError):
        return None  # no previous check: the first one, or a new --state
    except NotARegularFileError:
        print(f"leadctx: ignoring the state file {path}: not a regular file", file=sys.stderr)
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"leadctx: ignoring the state file {path}: {type(err).__name__}", file=sys.stderr)
        return None


def _write_state(path: Path, report: Any) -> None:
    try:
        atomic_write(path, (report.dumps() + "\n").encode())
    except OSError as err:
        print(f"leadctx: state file {path} not written: {err.strerror}", file=sys.stderr)


def _default_evaluator() -> Evaluator:
    # Loaded on use: the statistics need scipy and statsmodels (the guardrails extra).
    decision = importlib.import_module("leadctx_flags.guardrails.decision")
    evaluate: Evaluator = decision.evaluate
    return evaluate


def _parse(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time(option: str) -> Callable[[str], datetime]:
    def parse(text: str) -> datetime:
        try:
            return _parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{option} must be an ISO-8601 time, e.g. 2026-11-25T16:00:00Z"
            ) from None

    return parse


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(option: str, examples: str) -> Callable[[str], timedelta]:
    def parse(text: str) -> timedelta:
        number, unit = text.strip()[:-1], text.strip()[-1:].lower()
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if unit not in _UNITS or not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(
                f"{option} must be a positive duration such as {examples}, got {text!r}"
            )
        return timedelta(seconds=value * _UNITS[unit])

    return parse


def _clients(text: str) -> tuple[str, ...]:
    try:
        clients = tuple(
            validate_client_id(part.strip(), field="--clients")
            for part in text.split(",")
            if part.strip()
        )
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not clients:
        raise argparse.ArgumentTypeError("--clients names no client id")
    return clients
