"""``leadctx demo``: the arguments, and the story shown with rich (or one JSON object).

The story itself is in ``story.py``; this module only parses, renders and picks the exit
status: 0 the story ran (whatever the guardrails decided), 1 a step failed, 2 a missing extra,
an output folder that cannot be written, or (with ``--use-env``) invalid ``LEADCTX_*``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from leadctx_flags.errors import ConfigurationError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["DEFAULT_OUT", "RichReporter", "add_commands"]

DEFAULT_OUT: Final = Path("leadctx-demo-out")
"""Where the demo writes by default: a folder of its own in the current directory, named for
what it holds, so the report and the plot are found where ``make demo`` ran, a re-run replaces
the demo's own files there and nothing else, and ``.gitignore`` keeps it out of a checkout."""

_EXTRA_HINT: Final = "install the extras: pip install 'leadctx[guardrails,otel]'"


def add_commands(subparsers: Any) -> None:
    """Register ``leadctx demo`` on the top-level parser's subparsers.

    Args:
        subparsers: The object ``argparse.ArgumentParser.add_subparsers()`` returned.
    """
    parser = subparsers.add_parser(
        "demo",
        help="the whole rollout story on embedded defaults (SQLite, a local overrides file)",
        description=(
            "Run four pipelines over synthetic leads for four clients through resolve_context, "
            "allowlist acme through the overrides document, show a fallback, run the guardrails "
            "and turn the flag off again, timing each switch. Writes only into --out."
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"the output folder, created if missing (default: ./{DEFAULT_OUT})",
    )
    parser.add_argument(
        "--inject-regression",
        action="store_true",
        help="the shared path's outcomes regress: the guardrails roll acme back",
    )
    parser.add_argument(
        "--use-env",
        action="store_true",
        help="honour the shell's LEADCTX_* variables (ignored by default)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary instead")
    parser.add_argument("--seed", type=int, default=7, help="seeds the synthetic data (default 7)")
    parser.add_argument(
        "--leads",
        type=_positive,
        default=600,
        metavar="N",
        help="leads per client and period; each goes through the 4 pipelines (default 600)",
    )
    parser.set_defaults(handler=_demo_command)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--leads must be a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("--leads must be at least 1")
    return value


def _demo_command(args: argparse.Namespace) -> int:
    try:
        # Loaded on use: the guardrails' statistics, matplotlib and rich are extras.
        from rich.console import Console  # noqa: PLC0415

        from leadctx.demo.story import (  # noqa: PLC0415
            DemoConfig,
            DemoError,
            SilentReporter,
            run_demo,
        )
        from leadctx_flags.guardrails import decision, plot  # noqa: F401, PLC0415
    except ImportError as err:
        print(
            f"leadctx demo: needs {err.name or 'a missing module'}; {_EXTRA_HINT}", file=sys.stderr
        )
        return 2
    config = DemoConfig(
        out=args.out,
        leads=args.leads,
        seed=args.seed,
        inject_regression=args.inject_regression,
        use_env=args.use_env,
    )
    # The application set up OTLP from OTEL_* (leadctx.cli): spans go there, not to a file.
    telemetry = getattr(args, "gate_telemetry", None)
    spans = _otlp_target() if telemetry is not None else None
    # A pipe or a log gets 100 columns (the metric names' width), a terminal its own width.
    # Bound to this stdout: the guardrails step reads the report's JSON from a redirected one.
    console = _console(Console)(
        file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 100
    )
    reporter = None if args.json else RichReporter(console)
    try:
        summary = run_demo(config, reporter or SilentReporter(), telemetry, spans)
    except DemoError as err:
        print(f"leadctx demo: {err}", file=sys.stderr)
        return 1
    except ConfigurationError as err:  # --use-env with a shell whose LEADCTX_* do not parse
        print(f"leadctx demo: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout's reader went away (`| head`): leadctx exits 141
        raise
    except OSError as err:
        print(
            f"leadctx demo: cannot write {err.filename or args.out}: {err.strerror}",
            file=sys.stderr,
        )
        return 2
    if reporter is None:
        print(json.dumps(summary))
    else:
        reporter.finish(summary)
    return 0


def _console(base: type[Console]) -> type[Console]:
    """``rich``'s ``Console`` that lets a closed pipe stop the command as any other does.

    rich's own answer to a ``BrokenPipeError`` is ``SystemExit(1)``: ``leadctx demo | head``
    would exit 1, as if a step had failed, instead of 128 + SIGPIPE.
    """

    class PipeConsole(base):  # type: ignore[misc, valid-type]
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "the reader of stdout went away")

    return PipeConsole


def _otlp_target() -> str:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return f"OTLP {endpoint}" if endpoint else "the exporters OTEL_* configures"


class RichReporter:
    """Shows the story on a rich console: progress bars, tables, one line per switch.

    Args:
        console: Where to print.
    """

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextlib.contextmanager
    def track(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A progress bar of ``total`` steps; the context value advances it."""
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console) as progress:
            task = progress.add_task(description, total=total)
            yield lambda steps: progress.advance(task, steps)

    def show(self, step: str, data: Mapping[str, Any]) -> None:
        """Render one step's outcome (counts, names and reasons only)."""
        render = getattr(self, f"_{step}", None)
        if render is not None:
            render(data)

    def _start(self, data: Mapping[str, Any]) -> None:
        shell = "honoured" if data["use_env"] else "ignored (--use-env honours them)"
        regression = ", regression injected" if data["inject_regression"] else ""
        self.console.print(
            f"[bold]leadctx demo[/]: {data['leads']} synthetic leads per client and period for "
            f"{', '.join(data['clients'])}; {data['canary']} is the canary{regression}. "
            f"Writing into {data['out']}; the shell's LEADCTX_* {shell}."
        )

    def _before(self, data: Mapping[str, Any]) -> None:
        self._heading("1. Before: the flag off for every client")
        self._calls(data["calls"])

    def _allowlist(self, data: Mapping[str, Any]) -> None:
        self._heading("2. Allowlist acme in the overrides document (no redeploy)")
        answer = "on" if data["flag"]["value"] else "off"
        self.console.print(
            f"the running provider answered [bold]{answer}[/] for acme {data['seconds']:.3f} s "
            f"after the edit (poll interval {data['poll_interval_s']} s; "
            f"rule: {data['flag']['source']})"
        )

    def _after(self, data: Mapping[str, Any]) -> None:
        self._heading("3. After: acme on the shared bundle")
        self._calls(data["calls"])
        shared = data["shared"]
        calls = shared["calls"] or 1
        self.console.print(
            f"shared calls: {shared['calls']}, mean {shared['tokens_total'] / calls:.0f} tokens; "
            f"knowledge assets truncated in {shared['assets_truncated']}, "
            f"lead memory in {shared['memory_truncated']}"
        )

    def _fallback(self, data: Mapping[str, Any]) -> None:
        self._heading("4. A failing source: fallback, never a blocked pipeline")
        pipelines = ", ".join(f"{name} {count}" for name, count in data["by_pipeline"].items())
        reasons = ", ".join(f"{name} {count}" for name, count in data["reasons"].items())
        self.console.print(
            f"{data['calls']} calls fell back ({reasons or 'none'}; {pipelines or 'no pipeline'}); "
            f"{data['legacy_text']} of {data['calls']} got the pipeline's legacy context"
        )

    def _guardrails(self, data: Mapping[str, Any]) -> None:
        from rich.table import Table  # noqa: PLC0415

        self._heading("5. Guardrails (leadctx guardrails report --apply)")
        table = Table("metric", "baseline n/value", "canary n/value", "delta", "verdict")
        table.columns[0].overflow = "fold"
        table.columns[4].no_wrap = True
        colours = {"ok": "green", "regress": "bold red", "warn": "yellow"}
        for metric in data.get("metrics", []):
            verdict = str(metric.get("verdict"))
            table.add_row(
                str(metric.get("name")) + (" *" if metric.get("critical") else ""),
                _side(metric.get("baseline")),
                _side(metric.get("canary")),
                _number(metric.get("delta"), signed=True),
                f"[{colours.get(verdict, 'dim')}]{verdict}[/]",
            )
        self.console.print(table)
        self.console.print("* critical: a regression rolls back at once")
        self.console.print(f"decision: [bold]{str(data.get('decision')).upper()}[/]")
        for reason in data.get("reasons", []):
            self.console.print(f"  {reason}")
        applied = data.get("applied")
        if applied:
            from leadctx_flags.guardrails.apply import describe_rollback  # noqa: PLC0415 - on use

            clients = list(applied.get("clients", []))
            named = f" ({', '.join(clients)})" if clients else ""
            # The same phrase as the log record the rollback wrote, so the two agree.
            self.console.print(
                f"applied: {describe_rollback(str(applied.get('action')), clients)}{named}, "
                f"revision {applied.get('revision')}, signed guardrails"
            )

    def _off(self, data: Mapping[str, Any]) -> None:
        self._heading(f"6. Off again: {data['route']}")
        flag = data["flag"]
        self.console.print(
            f"the running provider answered [bold]off[/] for acme {data['seconds']:.3f} s after "
            f"the edit (poll interval {data['poll_interval_s']} s; rule: {flag['source']}; "
            f"document revision {data['document']['revision']} by "
            f"{data['document']['updated_by']}); acme's next draft: {data['next_draft_path']}"
        )

    def finish(self, summary: Mapping[str, Any]) -> None:
        """The closing summary: where everything is, and how long it took."""
        from rich.table import Table  # noqa: PLC0415

        self._heading("Summary")
        table = Table("what", "where", show_header=False)
        table.columns[1].overflow = "fold"  # a long path goes on over lines, never cut short
        files = summary["files"]
        for label, role in (
            ("report (Markdown)", "report"),
            ("plot (PNG)", "plot"),
            ("spans (JSON lines)", "spans"),
            ("database (SQLite)", "database"),
            ("overrides document", "overrides"),
            ("guardrails state", "state"),
            ("this summary (JSON)", "summary"),
        ):
            table.add_row(label, files[role])
        self.console.print(table)
        records = ", ".join(f"{name} {count}" for name, count in summary["records"].items())
        timings = summary["timings_s"]
        self.console.print(
            f"decision: {str(summary['decision']).upper()}; records: {records}; "
            f"total {timings['total']:.1f} s"
        )
        ignored = summary.get("ignored_variables") or []
        if ignored:
            self.console.print(
                f"ignored {len(ignored)} LEADCTX_* variable(s) of the shell "
                f"({', '.join(ignored)}); --use-env honours them"
            )

    def _heading(self, title: str) -> None:
        self.console.rule(title, align="left")

    def _calls(self, calls: Mapping[str, Mapping[str, int]]) -> None:
        from rich.table import Table  # noqa: PLC0415

        table = Table("client", "shared", "legacy", "fallback", title="calls by path")
        for client, paths in calls.items():
            table.add_row(
                client, *(str(paths.get(path, 0)) for path in ("shared", "legacy", "fallback"))
            )
        self.console.print(table)


def _side(value: Any) -> str:
    if not isinstance(value, Mapping):
        return "-"
    return f"{value.get('n', '-')}/{_number(value.get('value'))}"


def _number(value: Any, *, signed: bool = False) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    if isinstance(value, int):  # a count (bookings, records): never with decimals
        return f"{value:+d}" if signed else str(value)
    return f"{value:+.4f}" if signed else f"{value:.4f}"
