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
from typing import NamedTuple

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


def _policy(
    needs_review_weight: float | None = None, *, zero_tolerance: bool = True
) -> GuardrailPolicy:
    """The default policy, or one giving needs-review this share and the rest evenly."""
    if needs_review_weight is None:
        return GuardrailPolicy(
            odds_ratio_descriptions=False, wrong_bookings_zero_tolerance=zero_tolerance
        )
    others = [m for m in DEFAULT_ALPHA_WEIGHTS if m != MetricName.NEEDS_REVIEW_RATE]
    weights = {m: (1.0 - needs_review_weight) / len(others) for m in others}
    weights[MetricName.NEEDS_REVIEW_RATE] = needs_review_weight
    return GuardrailPolicy(alpha_weights=weights, odds_ratio_descriptions=False)


def _se(rate: float, n: int) -> float:
    return math.sqrt(rate * (1 - rate) / n)


def _pct(rate: float, n: int) -> str:
    return f"{rate:.1%} ± {_se(rate, n):.1%}"


def _row(label: str, summary: SimulationSummary, target: str) -> str:
    n = summary.rollouts
    causes = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_metric.items())) or "-"
    return (
        f"| {label} | {_pct(summary.rollback_rate, n)} | {_pct(summary.expand_any_rate, n)} "
        f"| {_pct(summary.expand_final_rate, n)} | {target} | {causes} |"
    )


def _wrong_bookings_line(
    label: str, wrong: list[list[Signals]], summary: SimulationSummary
) -> None:
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
        f"\n{label}: {sum(k is not None for k in seen)} of {n} rollouts had one; "
        f"{at_first} rolled back at the first check that saw it, {earlier} earlier (another "
        f"metric), {missed} never."
    )


CONTROLS_3X = {"control_clients": 3, "control_drafts_per_side": 6_000}


def _legacy(times: int) -> dict[str, int]:
    """Control clients giving the legacy path ``times`` the canary's drafts (and so booking
    attempts) by the last check: the canary's own 2,000 before the switch plus the controls'
    before and after."""
    return {"control_clients": 4, "control_drafts_per_side": (times - 1) * 1_000}


class Row(NamedTuple):
    """One row of the table: a scenario, its target, and how the checks run."""

    label: str
    scenario: Scenario
    target: str
    stateless: bool = False
    zero_tolerance: bool = True


def _scenarios() -> list[Row]:
    """Every row of the operating-characteristics table.

    Rows are only ever appended: each row's seed is its position, so a new one changes none
    of the published figures above it.
    """
    rows: list[Row] = []
    for shape, fixed in (("growing", False), ("fixed", True)):
        rows += [
            Row(
                f"no effect ({shape} baseline)",
                Scenario(fixed_baseline=fixed),
                "rb <= 5%, exp >= 80%",
                False,
            ),
            Row(
                f"needs-review +5 pp ({shape} baseline)",
                Scenario(needs_review_delta=0.05, fixed_baseline=fixed),
                "rb >= 80%, exp any <= 5%",
                False,
            ),
        ]
    rows += [
        Row("needs-review +3 pp", Scenario(needs_review_delta=0.03), "exp any small"),
        Row("needs-review -5 pp (better)", Scenario(needs_review_delta=-0.05), "rb <= 5%"),
        Row("auto-send rate +5 pp", Scenario(auto_send_delta=0.05), "power"),
        Row("edited share +5 pp", Scenario(edited_delta=0.05), "power"),
        Row("overseer revise +5 pp", Scenario(revise_delta=0.05), "power"),
        Row("booking attempts +5 pp", Scenario(attempt_delta=0.05), "power"),
        Row("match rate -5 pp", Scenario(match_delta=-0.05), "power"),
        Row("confidence +0.03, with state", Scenario(confidence_shift=0.03), "power"),
        Row(
            "confidence +0.03, no state",
            Scenario(confidence_shift=0.03),
            "rb >= 95%",
            stateless=True,
        ),
        Row("client mix 50/30/20 -> 30/30/40", Scenario(**MIX), "rb <= 5%"),  # type: ignore[arg-type]
        Row(
            "60 small clients, no effect",
            Scenario(
                clients=tuple(f"c{i}" for i in range(60)),
                needs_review_rates=(0.02,) * 60,
                mix_before=(1 / 60,) * 60,
                confidence_means=(0.75,) * 60,
            ),
            "rb <= 5%",
            False,
        ),
        Row(
            "wrong bookings 1%, shared path only",
            Scenario(wrong_booking_rate=0.01),
            "rb = had one",
            False,
        ),
        Row(
            "wrong bookings 0.1% both paths, equal exposure",
            Scenario(wrong_booking_rate=0.001, legacy_wrong_booking_rate=0.001),
            "(zero tolerance's cost)",
            False,
        ),
        Row(
            "wrong bookings 0.1% both paths, canary 2.5% of attempts (legacy 39x)",
            Scenario(wrong_booking_rate=0.001, legacy_wrong_booking_rate=0.001, **_legacy(39)),  # type: ignore[arg-type]
            "rb <= 5%",
        ),
        Row("no effect, controls 3x", Scenario(**CONTROLS_3X), "rb <= 5%"),  # type: ignore[arg-type]
        Row(
            "needs-review +5 pp, controls 3x",
            Scenario(needs_review_delta=0.05, **CONTROLS_3X),  # type: ignore[arg-type]
            "rb >= 80%",
            False,
        ),
        Row(
            "needs-review +5 pp, controls 1x",
            Scenario(needs_review_delta=0.05, control_clients=2),
            "",
            False,
        ),
    ]
    for drift in (0.01, 0.02, 0.03, 0.04, 0.06):
        rows.append(
            Row(
                f"common drift +{drift * 100:.0f} pp, controls 3x",
                Scenario(trend_needs_review=drift, **CONTROLS_3X),  # type: ignore[arg-type]
                "rb <= 5%",
                False,
            )
        )
    rows.append(
        Row(
            "common drift +6 pp, no controls",
            Scenario(trend_needs_review=0.06),
            "(no controls: no defence)",
            False,
        )
    )
    # Wrong bookings at one exposure for both of their targets, and the zero-tolerance rule
    # switched off (`wrong_bookings_zero_tolerance=False`): what it costs and what it buys.
    rows += [
        Row(
            "wrong bookings 1%, shared path only, canary 2.5% of attempts",
            Scenario(wrong_booking_rate=0.01, **_legacy(39)),  # type: ignore[arg-type]
            "rb = had one",
        ),
        Row(
            "wrong bookings 0.1% both paths, canary 5% of attempts (legacy 19x)",
            Scenario(wrong_booking_rate=0.001, legacy_wrong_booking_rate=0.001, **_legacy(19)),  # type: ignore[arg-type]
            "rb <= 5%",
        ),
        Row(
            "wrong bookings 0.1% both paths, canary 17% of attempts (legacy 5x)",
            Scenario(wrong_booking_rate=0.001, legacy_wrong_booking_rate=0.001, **_legacy(5)),  # type: ignore[arg-type]
            "(between the two)",
        ),
        Row(
            "wrong bookings 0.1% both paths, equal exposure, zero tolerance off",
            Scenario(wrong_booking_rate=0.001, legacy_wrong_booking_rate=0.001),
            "rb <= 5%",
            zero_tolerance=False,
        ),
        Row(
            "wrong bookings 1%, shared path only, zero tolerance off",
            Scenario(wrong_booking_rate=0.01),
            "(the exact test's power)",
            zero_tolerance=False,
        ),
    ]
    return rows


def _mde_rows(n: int, seed: int) -> None:
    """The stated MDE against the simulated power at one look of 2,000 per side."""
    policy = _policy()

    def power(effect: float, rollouts: int, offset: int) -> tuple[float, float]:
        checks = simulate_checks(
            Scenario(needs_review_delta=effect, checks=1), rollouts, seed + offset
        )
        hits, mdes = 0, []
        for (signals,) in checks:
            metric = evaluate(signals, policy).metric(MetricName.NEEDS_REVIEW_RATE)
            hits += metric.interval is not None and metric.interval[0] > 0
            mdes.append(float(metric.extra["mde"]))
        return hits / rollouts, statistics.fmean(mdes)

    _, mde = power(0.0, 200, 900)
    print(
        f"\nMinimum detectable effect, needs-review at 2,000 per side, one look: stated {mde:.4f}\n"
    )
    print("| true change | confirmed at that look | target |")
    print("| ---: | ---: | --- |")
    for offset, (delta, target) in enumerate(
        ((mde - 0.01, "< 80%"), (mde, "80%"), (mde + 0.01, "> 80%")), start=901
    ):
        rate, _ = power(delta, n, offset)
        print(f"| {delta:.4f} | {_pct(rate, n)} | {target} |")


def main() -> None:
    """Run every scenario and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rollouts", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument(
        "--only",
        default="",
        metavar="TEXT",
        help="run only the scenarios whose label contains TEXT (each keeps its own seed, so "
        "its figures are those of the full run); the tables after the first are left out",
    )
    args = parser.parse_args()
    n, seed = args.rollouts, args.seed
    started = time.perf_counter()
    print(
        f"{n} rollouts x 20 checks per scenario, seed {seed}; each rate ± its MC standard error\n"
    )
    print(
        "| scenario | rolled back | EXPAND at any check | EXPAND at the last check | target "
        "| regressing metrics (count) |"
    )
    print("| --- | ---: | ---: | ---: | --- | --- |")
    kept: dict[str, list[list[Signals]]] = {}
    wrong_bookings: list[tuple[str, list[list[Signals]], SimulationSummary]] = []
    # Each scenario has its own seed (seed, seed + 1, ...) so that adding one changes no other.
    for offset, row in enumerate(_scenarios()):
        if args.only not in row.label:
            continue
        checks = simulate_checks(row.scenario, n, seed + offset)
        policy = _policy(zero_tolerance=row.zero_tolerance)
        summary = summarise(checks, policy, stateless=row.stateless)
        print(_row(row.label, summary, row.target), flush=True)
        kept[row.label] = checks
        if row.label.startswith("wrong bookings 1%"):
            wrong_bookings.append((row.label, checks, summary))
    for label, checks, summary in wrong_bookings:
        _wrong_bookings_line(label, checks, summary)
    if args.only:
        print(f"total run time {time.perf_counter() - started:.0f} s")
        return
    null, effect = (
        kept["no effect (growing baseline)"],
        kept["needs-review +5 pp (growing baseline)"],
    )
    mix = kept["client mix 50/30/20 -> 30/30/40"]
    _mde_rows(n, seed)

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
        ("Sidak over five metrics", (1 - 0.95 ** (1 / 5)) / 0.05),
        ("even over the ten tested metrics", 0.1),
    ):
        split = _policy(weight)
        rate = summarise(effect, split).rollback_rate
        alpha = split.alpha(MetricName.NEEDS_REVIEW_RATE)
        print(f"| {label} | {alpha:.4f} | {_pct(rate, n)} |")

    sample = null[0]
    timings = []
    full = GuardrailPolicy()
    for _ in range(5):
        t0 = time.perf_counter()
        for signals in sample:
            evaluate(signals, full)
        timings.append((time.perf_counter() - t0) / len(sample))
    print(
        f"\nevaluate(): {statistics.median(timings) * 1e3:.2f} ms per check (3 canary clients, "
        "odds-ratio descriptions on)"
    )
    print(f"total run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
