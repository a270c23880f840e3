"""What does a fresh process pay to import the provider, and to answer ``leadctx flags explain``?

Run: ``.venv/bin/python benchmarks/bench_import.py`` (``--runs`` to change the sample,
``--profile`` to add the modules that cost most, from ``python -X importtime``). A plain
script, not a test: it prints figures, it asserts nothing.

Each run starts fresh interpreters, one per workload, in a new random order every round, so
that every workload sees the same machine; the bytecode caches are warmed first and not
timed. Every process gets a minimal environment: ``PATH``, an empty ``HOME`` and, as an
operator's pre-deploy check would have, ``LEADCTX_FLAG_OVERRIDES`` naming a local overrides
file; no ``OTEL_*`` variable, so nothing asks for the SDK. The floor is the OpenFeature SDK's
own API (``import openfeature.api``), timed in the same rounds; ``python -c pass`` shows how
much of every figure is the interpreter's start.

Both clocks are reported: wall time (what an operator waits) and the child's CPU time (user +
system), which a machine shared with other work disturbs far less. ``--revisions`` adds the
same workloads as of earlier git revisions, in the same rounds, to measure each change.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

FLOOR = "import openfeature.api"
PROVIDER = "from leadctx_flags import LeadCtxProvider"
EXPLAIN = "leadctx flags explain --client-id acme"
START_UP = "provider built, initialised, one evaluation"
START_UP_PROGRAM = (
    "from openfeature.evaluation_context import EvaluationContext as C\n"
    "from leadctx_flags import LeadCtxProvider\n"
    "p = LeadCtxProvider(); p.initialize(C())\n"
    "assert p.resolve_boolean_details('shared_bundle.enabled', False, C('acme')).value\n"
    "p.shutdown()"
)
ARGUMENTS: dict[str, tuple[str, ...]] = {
    "python -c pass": ("-c", "pass"),
    FLOOR: ("-c", "import openfeature.api"),
    PROVIDER: ("-c", "from leadctx_flags import LeadCtxProvider"),
    EXPLAIN: ("-m", "leadctx", "flags", "explain", "--client-id", "acme"),
    # What a pipeline pays before its first answer: the import, reading the environment, the
    # first read of the overrides file (the document's validator is built here) and one
    # evaluation. No target: it shows where the import's deferred costs land.
    START_UP: ("-c", START_UP_PROGRAM),
}
TARGETS: dict[str, tuple[float, float]] = {
    # workload: (milliseconds at the development machine, ratio to the floor)
    PROVIDER: (120.0, 3.0),
    EXPLAIN: (250.0, 6.25),
}
DOCUMENT = (
    '{"schema": "leadctx.overrides/v1", "revision": 3, "flags": '
    '{"shared_bundle.enabled": {"clients": {"acme": true, "globex": false}}}}\n'
)


@dataclass(frozen=True)
class Workload:
    """One command, run by a fresh interpreter, with this checkout's code or a revision's."""

    name: str
    arguments: tuple[str, ...]
    source: Path | None = None  # a revision's ``src`` put first on PYTHONPATH

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The environment of one run."""
        return {**base, "PYTHONPATH": str(self.source)} if self.source else dict(base)


def export_revision(revision: str, into: Path) -> Path:
    """Extract ``src/`` as of the git ``revision`` into ``into``; returns that ``src``."""
    into.mkdir(parents=True)
    archive = subprocess.run(  # noqa: S603 - git with fixed arguments and a revision name
        ["git", "archive", "--format=tar", revision, "src"],  # noqa: S607 - git from PATH
        check=True,
        capture_output=True,
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


class Timing(NamedTuple):
    """One run: wall-clock seconds from spawn to exit, and the child's CPU seconds."""

    wall: float
    cpu: float


def run_once(arguments: Sequence[str], env: Mapping[str, str]) -> Timing:
    """Time ``python <arguments>`` from spawn to exit (which must be 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, *arguments],
        env=dict(env),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu)


def costliest_imports(arguments: Sequence[str], env: Mapping[str, str], top: int) -> list[str]:
    """The ``top`` modules with the highest cumulative import time, from ``-X importtime``."""
    finished = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-X", "importtime", *arguments],
        env=dict(env),
        check=True,
        capture_output=True,
        text=True,
    )
    rows: list[tuple[int, int, str]] = []
    for line in finished.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        rows.append((int(cumulative), int(own), name))
    rows.sort(reverse=True)
    return [
        f"{cumulative / 1000:7.1f} ms  {own / 1000:6.1f} ms  {name}"
        for cumulative, own, name in rows[:top]
    ]


def _ratio(runs: Sequence[Timing], floor: Sequence[Timing], clock: str) -> float:
    """Median over rounds of this workload's time over the floor's in the same round."""
    ratios: list[float] = [
        getattr(run, clock) / getattr(base, clock) for run, base in zip(runs, floor, strict=True)
    ]
    return statistics.median(ratios)


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile of ``values`` (inclusive method)."""
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved measurement and print medians, p90 and ratios to the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=21, help="fresh processes per workload")
    parser.add_argument("--seed", type=int, default=0, help="seed of the order")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also list the N costliest imports"
    )
    parser.add_argument(
        "--revisions",
        nargs="+",
        default=[],
        metavar="REV",
        help="also time the provider import, explain and start-up as of these git revisions "
        "(their src/ first on PYTHONPATH), in the same rounds: the effect of each change",
    )
    args = parser.parse_args(argv)
    if args.runs < 15:
        parser.error("--runs: at least 15 runs per workload")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as directory:
        overrides = Path(directory) / "overrides.json"
        overrides.write_text(DOCUMENT, encoding="utf-8")
        home = Path(directory) / "home"
        home.mkdir()
        base = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(home),
            "LEADCTX_FLAG_OVERRIDES": str(overrides),
        }
        workloads = [Workload(name, arguments) for name, arguments in ARGUMENTS.items()]
        for revision in args.revisions:
            source = export_revision(revision, Path(directory) / f"rev-{len(workloads)}")
            workloads += [
                Workload(f"{name} @{revision}", ARGUMENTS[name], source)
                for name in (PROVIDER, EXPLAIN, START_UP)
            ]
        for workload in workloads:  # bytecode caches written, not timed
            run_once(workload.arguments, workload.env(base))
        timings: dict[str, list[Timing]] = {workload.name: [] for workload in workloads}
        for _ in range(args.runs):
            order = list(workloads)
            rng.shuffle(order)
            for workload in order:
                timings[workload.name].append(run_once(workload.arguments, workload.env(base)))
        profiles = {
            name: costliest_imports(ARGUMENTS[name], base, args.profile)
            for name in TARGETS
            if args.profile
        }
    print(
        f"{args.runs} fresh processes per workload, interleaved in a random order per round; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    width = max(len(name) for name in timings)
    verdicts: dict[str, list[str]] = {name: [] for name in TARGETS}
    for clock in Timing._fields:
        print(f"\n{clock} time")
        print(f"{'workload':<{width}} {'median':>9} {'p90':>9} {'x floor':>8}")
        for name, runs in timings.items():
            values = [getattr(run, clock) for run in runs]
            ratio = _ratio(runs, timings[FLOOR], clock)
            print(
                f"{name:<{width}} {1000 * statistics.median(values):6.1f} ms "
                f"{1000 * percentile(values, 0.9):6.1f} ms {ratio:7.2f}x"
            )
            if name in TARGETS:
                milliseconds, most = TARGETS[name]
                median_ms = 1000 * statistics.median(values)
                met = median_ms <= milliseconds and ratio <= most
                verdicts[name].append(
                    f"{clock} {median_ms:.1f} ms, {ratio:.2f}x: {'met' if met else 'NOT met'}"
                )
    print(f"\nx floor: median over rounds of (workload / {FLOOR}) in the same round")
    for name, (milliseconds, most) in TARGETS.items():
        print(
            f"target {name}: <= {milliseconds:g} ms and <= {most:g}x; {'; '.join(verdicts[name])}"
        )
    for name, rows in profiles.items():
        print(f"\ncostliest imports of {name} (cumulative, self):")
        print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
