"""The guardrails report at 100,000 and 1,000,000 ``AIDraft`` rows: time and peak memory.

Each report runs in its own subprocess (connect, check the catalog, read this window's and the
previous window's signals, evaluate), so its peak resident memory (``ru_maxrss``) and its
Python-side peak (``tracemalloc``) are its own. The aggregation stays in SQL: the claim is that
the 1,000,000-row peak is within 1.2x of the 100,000-row peak.

    python benchmarks/bench_guardrails_scale.py                  # SQLite, and PostgreSQL when
                                                                 # scripts/pg_throwaway.sh works
    python benchmarks/bench_guardrails_scale.py --rows 20000,200000 --dialects sqlite
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from leadctx_flags.guardrails.generate import GeneratorConfig, generate

ROOT = Path(__file__).resolve().parents[1]
PG_SCRIPT = ROOT / "scripts" / "pg_throwaway.sh"


def config(rows: int) -> GeneratorConfig:
    """The records: 20 clients, 6 of them canary, switching halfway through 28 days."""
    return GeneratorConfig(
        seed=1,
        drafts=rows,
        clients=20,
        canary_clients=6,
        span=timedelta(days=28),
        needs_review_delta=0.0,
    )


def child(url: str, since: str) -> None:
    """Run one report and print its figures as JSON (the parent reads them)."""
    # Imports first: their memory is the same at every size and is reported apart.
    from leadctx_flags.guardrails import queries  # noqa: PLC0415
    from leadctx_flags.guardrails.db import Database, connect  # noqa: PLC0415
    from leadctx_flags.guardrails.decision import evaluate  # noqa: PLC0415
    from leadctx_flags.guardrails.queries import Window  # noqa: PLC0415

    # Count the grouped rows Python receives: bounded by clients x arms x outcomes x buckets.
    received = [0]
    fetch = Database.fetch

    def counting(self: Database, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        rows = fetch(self, sql, params)
        received[0] += len(rows)
        return rows

    Database.fetch = counting  # type: ignore[method-assign]
    imported_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    with connect(url) as database:
        queries.check_schema(database)
        window = Window(since=datetime.fromisoformat(since))
        collected = queries.read_signals(database, window)
    report = evaluate(collected.signals)
    seconds = time.perf_counter() - start
    python_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    drafts = sum(c.drafts_evaluated for c in collected.signals.by_client.values())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "python_peak_bytes": python_peak,
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "imported_kb": imported_kb,
                "drafts_in_window": drafts,
                "rows_received": received[0],
                "decision": str(report.decision),
            }
        )
    )


def measure(url: str, since: str) -> dict[str, Any]:
    """One report in a fresh subprocess."""
    result = subprocess.run(  # noqa: S603 - this script, fixed arguments
        [sys.executable, __file__, "--child", url, "--since", since],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def start_postgres() -> tuple[str, str] | None:
    """A throwaway server's URL and stop command, or None when it cannot start."""
    result = subprocess.run(  # noqa: S603 - our own script
        [str(PG_SCRIPT), "start"], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        print(f"PostgreSQL skipped: {result.stderr.strip()}")
        return None
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return lines["URL"], lines["STOP"]


def main() -> int:
    """Generate, measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated AIDraft rows")
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--since", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.since)
        return 0

    sizes = [int(part) for part in args.rows.split(",")]
    dialects = args.dialects.split(",")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="leadctx-bench-") as scratch:
        server = start_postgres() if "postgresql" in dialects else None
        try:
            for dialect in dialects:
                if dialect == "postgresql" and server is None:
                    continue
                for rows in sizes:
                    url = _database(dialect, rows, Path(scratch), server)
                    began = time.perf_counter()
                    summary = generate(url, config(rows))
                    generated = time.perf_counter() - began
                    # The last 7 days: the report reads them and the 7 days before.
                    since = (config(rows).start + timedelta(days=21)).isoformat()
                    figures = measure(url, since)
                    results.append(
                        {"dialect": dialect, "rows": summary.drafts, "generate_s": generated}
                        | figures
                    )
                    _print_row(results[-1])
        finally:
            if server is not None:
                subprocess.run(server[1].split(), check=False, timeout=60)  # noqa: S603
    print()
    for dialect in dialects:
        runs = [r for r in results if r["dialect"] == dialect]
        if len(runs) >= 2:
            small, large = runs[0], runs[-1]
            print(
                f"{dialect}: {large['rows']:,} vs {small['rows']:,} rows: "
                f"peak RSS x{large['maxrss_kb'] / small['maxrss_kb']:.2f}, "
                f"Python peak x{large['python_peak_bytes'] / small['python_peak_bytes']:.2f}, "
                f"time x{large['seconds'] / small['seconds']:.1f}"
            )
    return 0


def _database(dialect: str, rows: int, scratch: Path, server: tuple[str, str] | None) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{scratch / f'records-{rows}.db'}"
    import psycopg  # noqa: PLC0415 - the postgres extra

    assert server is not None  # noqa: S101 - the caller checked
    name = f"bench_{rows}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server[0], autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return server[0].rsplit("/", 1)[0] + f"/{name}"


def _print_row(row: dict[str, Any]) -> None:
    print(
        f"{row['dialect']:<10} {row['rows']:>9,} drafts  generate {row['generate_s']:6.1f} s  "
        f"report {row['seconds']:6.2f} s  peak RSS {row['maxrss_kb'] / 1024:6.1f} MiB "
        f"(after imports {row['imported_kb'] / 1024:6.1f} MiB)  "
        f"Python peak {row['python_peak_bytes'] / 1024:7.1f} KiB  "
        f"{row['drafts_in_window']:,} drafts in window  {row['rows_received']:,} grouped rows  "
        f"{row['decision']}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
