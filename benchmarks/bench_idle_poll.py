"""What does an idle process spend on polling its overrides file, per poll interval?

Run: ``.venv/bin/python benchmarks/bench_idle_poll.py`` (``--seconds``/``--rounds`` to change
the sample). A plain script, not a test: it prints figures, it asserts nothing.

One ``OverridesPoller`` on an unchanged local file at a time, intervals taking turns in a fresh
random order every round in one process; for each, the process CPU time over a wall-clock
window in which the main thread only waits, as a share of one core (median over rounds). The
poller is built directly, because ``LEADCTX_FLAG_OVERRIDES_POLL_SECONDS`` now refuses the
first interval, the one that made an idle process spin; ``MIN_POLL_SECONDS`` is the floor.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from leadctx_flags.document import OverridesDocument
from leadctx_flags.overrides_sources import FileSource
from leadctx_flags.poller import OverridesPoller
from leadctx_flags.settings import MIN_POLL_SECONDS

INTERVALS = (1e-9, MIN_POLL_SECONDS, 0.2, 10.0)


def idle_share(path: Path, interval: float, seconds: float) -> float:
    """Share of one core the process used while a poller at ``interval`` ran on ``path``."""
    poller = OverridesPoller(FileSource(path), interval=interval, on_document=lambda _: None)
    poller.poll_once()
    poller.start()
    try:
        cpu, wall = time.process_time(), time.monotonic()
        threading.Event().wait(seconds)
        return (time.process_time() - cpu) / (time.monotonic() - wall)
    finally:
        poller.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved measurement and print each interval's median share of a core."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=1.0, help="window per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="measurements per interval")
    parser.add_argument("--seed", type=int, default=0, help="seed of the order")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    shares: dict[float, list[float]] = {interval: [] for interval in INTERVALS}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "overrides.json"
        path.write_text(OverridesDocument(revision=1).to_json(), encoding="utf-8")
        for _ in range(args.rounds):
            order = list(INTERVALS)
            rng.shuffle(order)
            for interval in order:
                shares[interval].append(idle_share(path, interval, args.seconds))
    print(f"{args.rounds} rounds x {args.seconds:g} s per interval, interleaved")
    for interval, values in shares.items():
        print(f"poll interval {interval:>7g} s: {100 * statistics.median(values):5.1f}% of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
