"""Where a shared call's telemetry time goes inside a real call, against the warm-loop floors.

``bench_gate_floor.py`` prices each telemetry piece in a tight loop, where the interpreter,
the caches and the branch predictors are warm. Inside a gated call the same pieces run between
database waits and a build, cold: this script times them there. It runs ``bench_gate.py``'s
shared call (a new lead, ``--db-latency-ms`` per query) with the SDK and the INFO record, and
with the API's no-op providers, alternating call by call, and times each telemetry step of
the gate with ``perf_counter_ns`` around it (the timer's own cost, about 0.1 us a step, is in
both columns):

- ``spans started``: both spans' ``__enter__`` (start and make current);
- ``build recorded``: ``record_build`` (the duration and the section-token histograms, the
  in-process counts);
- ``spans ended``: both spans' ``__exit__`` (detach, end: the span processor's ``on_end``);
- ``resolution recorded``: ``record_resolution`` minus the log record (the resolve span's
  attributes, the resolutions count);
- ``log record``: ``log_resolution`` (the payload, the record, the handler's format and write).

Run: ``.venv/bin/python benchmarks/bench_gate_pieces.py [--calls N] [--db-latency-ms MS]``
"""

from __future__ import annotations

import argparse
import collections
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_gate as bg

from leadctx_bundle import telemetry
from leadctx_bundle.tokens import token_counter

PIECES = ("spans started", "build recorded", "spans ended", "resolution recorded", "log record")


class Stopwatch:
    """Nanoseconds spent in each wrapped function, per call of the gate."""

    def __init__(self) -> None:
        self.spent: collections.Counter[str] = collections.Counter()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter_ns() - began

        return timed


def main() -> None:
    """Time each piece in one run, SDK and no-op alternating, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=600, help="calls per side (default 600)")
    parser.add_argument("--db-latency-ms", type=float, default=0.5, metavar="MS")
    args = parser.parse_args()
    watch = Stopwatch()
    scope = telemetry._SpanScope
    scope.__enter__ = watch.wrap("spans started", scope.__enter__)  # type: ignore[method-assign]
    scope.__exit__ = watch.wrap("spans ended", scope.__exit__)  # type: ignore[method-assign]
    gate = telemetry.GateTelemetry
    gate.record_build = watch.wrap("build recorded", gate.record_build)  # type: ignore[method-assign]
    gate.record_resolution = watch.wrap("resolution", gate.record_resolution)  # type: ignore[method-assign]
    telemetry.log_resolution = watch.wrap("log record", telemetry.log_resolution)

    per_call: dict[str, dict[str, list[float]]] = {"SDK+log": {}, "no-op": {}}
    walls: dict[str, list[float]] = {"SDK+log": [], "no-op": []}
    with tempfile.TemporaryDirectory(prefix="leadctx-bench-pieces-") as folder:
        path = Path(folder) / "leads.sqlite"
        bg.create_database(path)
        database = bg.Database(path)
        undo_logging = bg.install_logging()
        bench = bg.Bench(database)
        token_counter("o200k_base")
        database.latency_s = args.db_latency_ms / 1000
        sides = {"SDK+log": bench.sdk, "no-op": bench.noop}
        for n in range(args.calls + 50):
            for side in ("SDK+log", "no-op") if n % 2 == 0 else ("no-op", "SDK+log"):
                bg.gate_logging(info=side == "SDK+log")
                watch.spent.clear()
                began = time.perf_counter_ns()
                # Ids of one length on both sides: each row's text starts with its lead's id,
                # and a longer id is more to encode.
                lead = f"lead-{(1 if side == 'SDK+log' else 2) * bg.LEADS_PER_VARIANT + n}"
                bench.resolve(lead, client_id=bg.CLIENT, source=bench.source, telemetry=sides[side])
                wall = time.perf_counter_ns() - began
                if n < 50:  # warm-up: threads, caches of the first builds
                    continue
                spent = dict(watch.spent)
                spent["resolution recorded"] = spent.pop("resolution") - spent["log record"]
                for piece in PIECES:
                    per_call[side].setdefault(piece, []).append(spent.get(piece, 0) / 1000)
                walls[side].append(wall / 1000)
        bench.close()
        undo_logging()

    print(
        f"median per call over {args.calls} calls a side, database round trip "
        f"{args.db_latency_ms:g} ms (microseconds):"
    )
    print(f"  {'piece':<22} {'SDK+log':>9} {'no-op':>9} {'difference':>11}")
    total = 0.0
    for piece in PIECES:
        sdk, noop = (statistics.median(per_call[s][piece]) for s in ("SDK+log", "no-op"))
        total += sdk - noop
        print(f"  {piece:<22} {sdk:>9.1f} {noop:>9.1f} {sdk - noop:>11.1f}")
    sdk_wall, noop_wall = (statistics.median(walls[s]) for s in ("SDK+log", "no-op"))
    print(f"  {'telemetry, summed':<22} {'':>9} {'':>9} {total:>11.1f}")
    print(
        f"  {'whole call':<22} {sdk_wall:>9.1f} {noop_wall:>9.1f} {sdk_wall - noop_wall:>11.1f}"
        f"   (pieces summed / no-op call: {total / noop_wall:.1%})"
    )


if __name__ == "__main__":
    main()
