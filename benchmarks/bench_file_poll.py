"""What does reading the overrides file on every poll cost, next to checking its metadata only?

Run: ``.venv/bin/python benchmarks/bench_file_poll.py`` (``--rounds``/``--batch`` to change the
sample). A plain script, not a test: it prints figures, it asserts nothing.

``FileSource.fetch`` reads and hashes the whole file on every poll, so that a same-size rewrite
with the mtime kept (``cp -p``) is noticed. The alternative it replaced opened the file and
compared inode, mtime and size, reading nothing when they matched. Both run here on the same
unchanged file, batches alternating in one process, for a small document (about 2 KiB), a
large one (64 KiB, about 2,000 clients) and one near the 1 MiB cap:

* ``metadata only``: ``open`` + ``fstat``, the old fast path.
* ``FileSource.fetch``: ``open`` + read (at most 1 MiB + 1) + SHA-256, the new one (the
  document is parsed only when the hash changed, so never here).

Each time is the median over rounds of the per-poll time in a batch; each ratio is the median
over rounds of the ratio between the two batches of that round. The share of one default poll
interval (10 s) is what a provider's poller thread spends on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from leadctx_flags import SHARED_BUNDLE_FLAG, OverridesDocument
from leadctx_flags.overrides_sources import FileSource
from leadctx_flags.storage import write_document

DEFAULT_INTERVAL = 10.0


def document_of_size(target: int) -> OverridesDocument:
    """A valid document of about ``target`` bytes (clients added until it is large enough)."""
    clients: dict[str, bool] = {}
    document = OverridesDocument(revision=1)
    while len(document.to_json()) < target:
        clients.update({f"client-{len(clients) + n:06d}": n % 2 == 0 for n in range(64)})
        document = OverridesDocument.model_validate(
            {"revision": 1, "flags": {SHARED_BUNDLE_FLAG: {"clients": clients}}}
        )
    return document


def metadata_only(path: Path) -> Callable[[], object]:
    def poll() -> object:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            return (info.st_ino, info.st_mtime_ns, info.st_size)

    return poll


def file_source(path: Path) -> Callable[[], object]:
    source = FileSource(path)
    source.fetch()  # the first poll parses; every later one finds the same hash
    return source.fetch


def per_call(poll: Callable[[], object], batch: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(batch):
        poll()
    return (time.perf_counter_ns() - started) / batch / 1e9


def main() -> None:
    """Print a table of per-poll times and ratios for three document sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"rounds={args.rounds} batch={args.batch}; medians over rounds")
    print()
    print("| document | metadata only | FileSource.fetch | ratio | share of a 10 s interval |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="leadctx-bench-") as folder:
        for label, size in (("small", 1024), ("large", 64 * 1024), ("near the cap", 1024 * 1024)):
            path = Path(folder) / f"{size}.json"
            document = document_of_size(size if size < 1024 * 1024 else size - 64 * 1024)
            write_document(path, document)
            old, new = metadata_only(path), file_source(path)
            olds: list[float] = []
            news: list[float] = []
            ratios: list[float] = []
            for round_index in range(args.rounds):
                pair = [(old, olds), (new, news)]
                if round_index % 2:
                    pair.reverse()
                times = {}
                for poll, sink in pair:
                    times[id(sink)] = per_call(poll, args.batch)
                    sink.append(times[id(sink)])
                ratios.append(times[id(news)] / times[id(olds)])
            old_median, new_median = statistics.median(olds), statistics.median(news)
            print(
                f"| {label} ({path.stat().st_size:,} B) | {old_median * 1e6:.1f} µs "
                f"| {new_median * 1e6:.1f} µs | {statistics.median(ratios):.1f}x "
                f"| {new_median / DEFAULT_INTERVAL:.1e} |"
            )


if __name__ == "__main__":
    main()
