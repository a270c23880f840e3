"""How much does asking ``shared_bundle.enabled`` cost, next to the SDK's own in-memory provider?

Run: ``.venv/bin/python benchmarks/bench_flags.py`` (``--rounds``/``--batch`` to change the
sample). A plain script, not a test: it prints figures, it asserts nothing.

Workloads, each a batch of calls timed with ``perf_counter_ns``; batches of all workloads
alternate (in a fresh random order every round) in one process so they share the machine's
state. Each time is the median over rounds of the per-call time in a batch; each ratio is the
median over rounds of the ratio between the two batches of that round:

* ``client / leadctx``: ``client.get_boolean_value(SHARED_BUNDLE_FLAG, False, ctx)`` on
  ``LeadCtxProvider`` with an env allowlist.
* ``client / in-memory, evaluator``: the same call on the SDK's ``InMemoryProvider`` whose flag
  has a context evaluator doing the same work (allowlist lookup on the targeting key, a
  ``FlagResolutionDetails`` with value, variant and reason). The fair comparison: the ratio
  to it is the headline.
* ``client / in-memory, static``: ``InMemoryProvider`` with static variants, no evaluator: the
  SDK's floor (no targeting at all).
* ``resolve / leadctx``, ``resolve / in-memory, evaluator``: ``resolve_boolean_details`` alone.
* ``decide``: the pure precedence function alone.

With ``--watched``, ``LeadCtxProvider`` also follows an (empty) overrides file the way a
service does at default settings: a poller thread and a watcher thread run during the timing.

Contexts alternate between an allowlisted and a non-allowlisted client, so both branches run.
The garbage collector is paused inside timed batches (as ``timeit`` does).
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openfeature.version
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

from leadctx_flags import (
    SHARED_BUNDLE_FLAG,
    EnvRules,
    LeadCtxProvider,
    OverridesDocument,
    RolloutSettings,
    RolloutState,
    client_context,
    decide,
)
from leadctx_flags.storage import write_document

ALLOWLIST = frozenset({"acme", "globex"})
CONTEXTS = (client_context("acme"), client_context("initech"))


def allowlist_evaluator(
    flag: InMemoryFlag[bool],  # noqa: ARG001 - the signature InMemoryFlag calls
    context: EvaluationContext,
) -> FlagResolutionDetails[bool]:
    """The in-memory equivalent of our env rules: allowlist on, everyone else off."""
    if context.targeting_key in ALLOWLIST:
        return FlagResolutionDetails(value=True, variant="on", reason=Reason.TARGETING_MATCH)
    return FlagResolutionDetails(value=False, variant="off", reason=Reason.STATIC)


def in_memory_provider(*, evaluator: bool) -> InMemoryProvider:
    """``InMemoryProvider`` serving the flag with or without the allowlist evaluator."""
    flag = InMemoryFlag(
        default_variant="off",
        variants={"on": True, "off": False},
        context_evaluator=allowlist_evaluator if evaluator else None,
    )
    return InMemoryProvider({SHARED_BUNDLE_FLAG: flag})


def workloads(overrides: str | None = None) -> dict[str, Callable[[Any], object]]:
    """Name → one call taking an evaluation context. Providers are bound to their own domains."""
    leadctx = LeadCtxProvider(
        RolloutSettings(shared_bundle_clients=sorted(ALLOWLIST), flag_overrides=overrides)
    )
    evaluating = in_memory_provider(evaluator=True)
    api.set_provider_and_wait(leadctx, domain="bench-leadctx")
    api.set_provider_and_wait(evaluating, domain="bench-in-memory-evaluator")
    api.set_provider_and_wait(in_memory_provider(evaluator=False), domain="bench-in-memory-static")
    clients = {
        name: api.get_client(domain=f"bench-{name}")
        for name in ("leadctx", "in-memory-evaluator", "in-memory-static")
    }
    state = RolloutState(env=EnvRules(allowlist=ALLOWLIST))
    # Sanity: the compared workloads answer the same thing, or the comparison means nothing.
    for context in CONTEXTS:
        expected = context.targeting_key in ALLOWLIST
        for name in ("leadctx", "in-memory-evaluator"):
            if (
                clients[name].get_boolean_value(SHARED_BUNDLE_FLAG, not expected, context)
                != expected
            ):
                raise RuntimeError(f"{name} answers wrongly for {context.targeting_key}")
    return {
        "client / leadctx": lambda ctx: clients["leadctx"].get_boolean_value(
            SHARED_BUNDLE_FLAG, False, ctx
        ),
        "client / in-memory, evaluator": lambda ctx: clients[
            "in-memory-evaluator"
        ].get_boolean_value(SHARED_BUNDLE_FLAG, False, ctx),
        "client / in-memory, static": lambda ctx: clients["in-memory-static"].get_boolean_value(
            SHARED_BUNDLE_FLAG, False, ctx
        ),
        "resolve / leadctx": lambda ctx: leadctx.resolve_boolean_details(
            SHARED_BUNDLE_FLAG, False, ctx
        ),
        "resolve / in-memory, evaluator": lambda ctx: evaluating.resolve_boolean_details(
            SHARED_BUNDLE_FLAG, False, ctx
        ),
        "decide": lambda ctx: decide(state, ctx.targeting_key),
    }


def time_batch(call: Callable[[Any], object], batch: int) -> float:
    """Nanoseconds per call over one batch, contexts alternating."""
    first, second = CONTEXTS
    half = batch // 2
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(half):
            call(first)
            call(second)
        elapsed = time.perf_counter_ns() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return elapsed / (2 * half)


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of ``numerator[i] / denominator[i]``."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved benchmark and print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=200, help="batches per workload")
    parser.add_argument("--batch", type=int, default=2_000, help="calls per batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch order")
    parser.add_argument(
        "--watched", action="store_true", help="leadctx follows a watched overrides file"
    )
    args = parser.parse_args(argv)

    folder = tempfile.TemporaryDirectory()
    overrides = None
    if args.watched:
        overrides = str(Path(folder.name) / "overrides.json")
        write_document(Path(overrides), OverridesDocument())
    calls = workloads(overrides)
    rng = random.Random(args.seed)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up: caches, branch predictors, lazy imports
        time_batch(call, args.batch)
    for _ in range(args.rounds):
        order = list(calls)
        rng.shuffle(order)
        for name in order:
            samples[name].append(time_batch(calls[name], args.batch))
    api.clear_providers()
    folder.cleanup()

    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(
        f"python {platform.python_version()}, openfeature-sdk {openfeature.version.__version__}, "
        f"{args.rounds} rounds x {args.batch} calls per workload, interleaved"
    )
    print(f"{'workload':<32} {'median':>12} {'p10':>10} {'p90':>10}")
    for name, values in samples.items():
        deciles = statistics.quantiles(values, n=10)
        print(
            f"{name:<32} {medians[name] / 1000:>9.3f} µs "
            f"{deciles[0] / 1000:>7.3f} µs {deciles[-1] / 1000:>7.3f} µs"
        )
    # Batches of one round ran back to back: the median of per-round ratios pairs them.
    fair = paired_ratio(samples["client / leadctx"], samples["client / in-memory, evaluator"])
    floor = paired_ratio(samples["client / leadctx"], samples["client / in-memory, static"])
    resolve = medians["resolve / leadctx"]
    print(f"ratio leadctx / in-memory with evaluator (target <= 1.10): {fair:.3f}")
    print(f"ratio leadctx / in-memory static (the SDK floor):          {floor:.3f}")
    print(f"resolve_boolean_details alone (target < 1000 ns): {resolve:.0f} ns")
    print(f"decide alone: {medians['decide']:.0f} ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
