"""What does reading the client id in canonical form (NFC) cost an evaluation?

Run: ``.venv/bin/python benchmarks/bench_client_ids.py`` (``--rounds``/``--batch`` to change the
sample). A plain script, not a test: it prints figures, it asserts nothing.

Workloads, batches alternating in a fresh random order every round in one process, each time
the median over rounds of the per-call time in a batch, each ratio the median of per-round
ratios:

* ``client_id_of, ascii``: ``leadctx_flags.context.client_id_of`` on ``acme`` (the common case,
  which the ``isascii`` fast path returns as it is).
* ``verbatim, ascii``: the same function without the canonical step (the reading evaluations
  did before ids were canonical), the baseline.
* ``client_id_of, nfc`` and ``client_id_of, nfd``: a non-ASCII id already in NFC, and one in
  NFD that is normalised.
* ``resolve, ascii`` and ``resolve, nfd``: ``LeadCtxProvider.resolve_boolean_details``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from openfeature.evaluation_context import EvaluationContext

from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.context import CLIENT_ID_ATTRIBUTE, client_id_of

ASCII = client_context("acme")
NFC = client_context("caf\u00e9-paris")
NFD = client_context("cafe\u0301-paris")


def verbatim_client_id_of(context: EvaluationContext | None) -> str | None:
    """The reading without a canonical step: the baseline."""
    if context is None:
        return None
    key: object = context.targeting_key
    if type(key) is str:
        if key:
            return key
    elif key is not None:
        return str(key)
    attribute: object = context.attributes.get(CLIENT_ID_ATTRIBUTE)
    return None if attribute is None or attribute == "" else str(attribute)


def workloads() -> dict[str, Callable[[], object]]:
    """Name → one call."""
    provider = LeadCtxProvider(RolloutSettings(shared_bundle_clients=["acme", "caf\u00e9-paris"]))
    if provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, NFD).value is not True:
        raise RuntimeError("the NFD spelling does not match the NFC allowlist entry")
    return {
        "verbatim, ascii": lambda: verbatim_client_id_of(ASCII),
        "client_id_of, ascii": lambda: client_id_of(ASCII),
        "client_id_of, nfc": lambda: client_id_of(NFC),
        "client_id_of, nfd": lambda: client_id_of(NFD),
        "resolve, ascii": lambda: provider.resolve_boolean_details(
            SHARED_BUNDLE_FLAG, False, ASCII
        ),
        "resolve, nfd": lambda: provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, NFD),
    }


def time_batch(call: Callable[[], object], batch: int) -> float:
    """Nanoseconds per call over one batch, the garbage collector paused."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(batch):
            call()
        elapsed = time.perf_counter_ns() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return elapsed / batch


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of ``numerator[i] / denominator[i]``."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved benchmark and print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=100, help="batches per workload")
    parser.add_argument("--batch", type=int, default=5_000, help="calls per batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch order")
    args = parser.parse_args(argv)

    calls = workloads()
    rng = random.Random(args.seed)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        time_batch(call, args.batch)
    for _ in range(args.rounds):
        order = list(calls)
        rng.shuffle(order)
        for name in order:
            samples[name].append(time_batch(calls[name], args.batch))

    print(
        f"python {platform.python_version()}, {args.rounds} rounds x {args.batch} calls "
        "per workload, interleaved"
    )
    medians: dict[str, Any] = {name: statistics.median(values) for name, values in samples.items()}
    for name, median in medians.items():
        print(f"{name:<24} {median:>8.1f} ns")
    ascii_ratio = paired_ratio(samples["client_id_of, ascii"], samples["verbatim, ascii"])
    resolve_ratio = paired_ratio(samples["resolve, nfd"], samples["resolve, ascii"])
    print(f"ratio client_id_of / verbatim, ascii ids: {ascii_ratio:.3f}")
    print(f"ratio resolve nfd / resolve ascii:        {resolve_ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
