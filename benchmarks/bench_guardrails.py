"""Guardrails validation by simulation: false rollbacks, detection, client mix, contrasts.

Run: ``.venv/bin/python benchmarks/bench_guardrails.py`` (about two minutes on 2 cores;
``--rollouts`` and ``--seed`` to change the run). Prints a Markdown table; ``docs/guardrails.md``
and ``docs/performance.md`` hold a copy.

Every scenario simulates rollouts of 20 checks over growing data (up to 2,000 drafts per
canary arm at the last check) with ``leadctx_flags.guardrails.simulate`` and runs the whole
``evaluate`` at every check, the previous report passed along as the CLI's state file would;
a rollout "rolls back" when any check decides ``rollback``. Each rate has its Monte-Carlo
standard error beside it. The contrasts (a naive z-test and a KS test at 5% per look, the same
confidence sequence on unstratified rates) read the very same simulated rollouts.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from leadctx_flags.guardrails.decision import evaluate
from leadctx_flags.guardrails.policy import DEFAULT_ALPHA_WEIGHTS, GuardrailPolicy, MetricName
from leadctx_flags.guardrails.signals import Signals
from leadctx_flags.guardrails.simulate import (
    Scenario,
    SimulationSummary,
    contrast_rate,
    simulate_checks,
    summarise,
)

MIX = {
    "needs_review_rates": (0.1, 0.2, 0.4),
    "mix_before": (0.5, 0.3, 0.2),
    "mix_after": (0.3, 0.3, 0.4),
    "confidence_means": (0.80, 0.75, 0.65),
}


def _policy(needs_review_weight: float | None = None) -> GuardrailPolicy:
    """The default policy, or one giving needs-review this share and the rest evenly."""
    if needs_review_weight is None:
        return GuardrailPolicy(odds_ratio_descriptions=False)
    others = [m for m in DEFAULT_ALPHA_WEIGHTS if m != MetricName.NEEDS_REVIEW_RATE]
    weights = {m: (1.0 - needs_review_weight) / len(others) for m in others}
    weights[MetricName.NEEDS_REVIEW_RATE] = needs_review_weight
    return GuardrailPolicy(alpha_weights=weights, odds_ratio_descriptions=False)


def _row(label: str, summary: SimulationSummary, target: str) -> str:
    rate = summary.rollback_rate
    se = math.sqrt(rate * (1 - rate) / summary.rollouts)
    causes = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_metric.items())) or "-"
    return f"| {label} | {rate:.1%} ± {se:.1%} | {target} | {causes} |"


def _wrong_bookings_line(wrong: list[list[Signals]], summary: SimulationSummary) -> None:
    """Did every rollout with a wrong booking roll back at the first check that saw one?"""
    n = len(wrong)
    seen = [
        next(
            (
                k
                for k, s in enumerate(checks)
                if any(c.booking_wrong for (_, a), c in s.by_client.items() if a == "canary_after")
            ),
            None,
        )
        for checks in wrong
    ]
    outcomes = summary.outcomes
    at_first = sum(o.check == k for o, k in zip(outcomes, seen, strict=True) if k is not None)
    earlier = sum(
        o.check is not None and o.check < k
        for o, k in zip(outcomes, seen, strict=True)
        if k is not None
    )
    missed = sum(not o.rolled_back for o, k in zip(outcomes, seen, strict=True) if k is not None)
    print(
        f"\nWrong bookings: {sum(k is not None for k in seen)} of {n} rollouts had one; "
        f"{at_first} rolled back at the first check that saw it, {earlier} earlier (another "
        f"metric), {missed} never."
    )


def main() -> None:
    """Run every scenario and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rollouts", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    n, seed = args.rollouts, args.seed
    started = time.perf_counter()
    print(f"{n} rollouts x 20 checks per scenario, seed {seed}\n")
    print("| scenario | rollouts rolled back | target | regressing metrics (count) |")
    print("| --- | ---: | --- | --- |")

    # Each scenario has its own seed (seed, seed + 1, ...) so that adding one changes no other.
    scenarios = (
        ("no effect", Scenario(), "<= 5%"),
        ("needs-review 20% -> 25%", Scenario(needs_review_delta=0.05), ">= 80%"),
        ("client mix 50/30/20 -> 30/30/40", Scenario(**MIX), "<= 5%"),  # type: ignore[arg-type]
        (
            "wrong bookings 1% of attempts",
            Scenario(wrong_booking_rate=0.01),
            "each one with a wrong booking",
        ),
        ("no effect, 2 control clients", Scenario(control_clients=2), "<= 5%"),
        (
            "+5 pp for every client (controls too)",
            Scenario(control_clients=2, trend_needs_review=0.05),
            "<= 5% (DiD)",
        ),
        (
            "needs-review +5 pp, 2 control clients",
            Scenario(control_clients=2, needs_review_delta=0.05),
            "(DiD costs power)",
        ),
        (
            "needs-review +5 pp, 5 control clients, 5x the volume",
            Scenario(control_clients=5, control_drafts_per_side=10_000, needs_review_delta=0.05),
            "(larger controls recover it)",
        ),
    )
    runs = []
    for offset, (label, scenario, target) in enumerate(scenarios):
        checks = simulate_checks(scenario, n, seed + offset)
        summary = summarise(checks, _policy())
        print(_row(label, summary, target))
        runs.append((checks, summary))
    # The first four runs are read again below: the contrasts, the power split, the bookings.
    (null, _), (effect, _), (mix, _), (wrong, wrong_summary) = runs[:4]
    _wrong_bookings_line(wrong, wrong_summary)

    print("\nContrasts on the same rollouts (rolled back at any of 20 looks):\n")
    print("| test | no effect | client mix |")
    print("| --- | ---: | ---: |")
    for label, test in (
        ("one-sided z-test of needs-review, 5% per look", "z"),
        ("KS test of the confidence histograms, 5% per look", "ks"),
        ("our sequence on pooled (unstratified) needs-review", "pooled_sequence"),
    ):
        on_null, on_mix = contrast_rate(null, test=test), contrast_rate(mix, test=test)
        print(f"| {label} | {on_null:.1%} | {on_mix:.1%} |")

    print("\nPower at +5 pp by the needs-review share of the 5% family error:\n")
    print("| split | needs-review alpha | detected |")
    print("| --- | ---: | ---: |")
    for label, weight in (
        ("default (0.60)", None),
        ("0.50", 0.5),
        ("Sidak over five metrics", (1 - 0.95 ** (1 / 5)) / 0.05),
        ("even over the ten tested metrics", 0.1),
    ):
        policy = _policy(weight)
        rate = summarise(effect, policy).rollback_rate
        alpha = policy.alpha(MetricName.NEEDS_REVIEW_RATE)
        print(f"| {label} | {alpha:.4f} | {rate:.1%} |")

    sample = null[0]
    timings = []
    policy = GuardrailPolicy()
    for _ in range(5):
        t0 = time.perf_counter()
        for signals in sample:
            evaluate(signals, policy)
        timings.append((time.perf_counter() - t0) / len(sample))
    print(
        f"\nevaluate(): {statistics.median(timings) * 1e3:.2f} ms per check (3 canary clients, "
        "odds-ratio descriptions on)"
    )
    print(f"total run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
