"""Validation by simulation (fast versions; the full run is benchmarks/bench_guardrails.py).

Each test simulates 200 rollouts of 20 checks over growing data with a fixed seed and runs the
whole ``evaluate`` at every check, the previous report passed along as the CLI's state would.
"""

from __future__ import annotations

import math

import pytest

from leadctx_flags.guardrails.decision import evaluate
from leadctx_flags.guardrails.policy import GuardrailPolicy, MetricName
from leadctx_flags.guardrails.signals import Arm, Signals
from leadctx_flags.guardrails.simulate import (
    Scenario,
    contrast_rate,
    run_rollouts,
    simulate_checks,
    summarise,
)

pytestmark = pytest.mark.simulation

ROLLOUTS = 200
SEED = 20261126
# The odds-ratio descriptions do not change a verdict; skipping them halves the run time.
FAST = GuardrailPolicy(odds_ratio_descriptions=False)
MIX = Scenario(
    needs_review_rates=(0.1, 0.2, 0.4),
    mix_before=(0.5, 0.3, 0.2),
    mix_after=(0.3, 0.3, 0.4),
    confidence_means=(0.80, 0.75, 0.65),
)


def test_no_true_effect_rolls_back_at_most_five_percent_of_rollouts() -> None:
    # Given 200 rollouts with no effect, 20 checks each up to 2,000 drafts per side
    rollouts = simulate_checks(Scenario(), ROLLOUTS, SEED)
    summary = summarise(rollouts, FAST)
    # Then at most 5% end in a rollback, over every metric and every check at once
    assert summary.rollback_rate <= 0.05
    # while a 5% one-sided z-test of the needs-review rate re-checked at every look, on the
    # very same rollouts, rolls back far more of them.
    assert contrast_rate(rollouts, test="z") >= 0.10


def test_a_five_point_needs_review_regression_is_caught_at_least_80_percent() -> None:
    summary = run_rollouts(Scenario(needs_review_delta=0.05), ROLLOUTS, SEED, FAST)
    assert summary.rollback_rate >= 0.80
    assert set(summary.by_metric) == {MetricName.NEEDS_REVIEW_RATE}


def test_a_client_mix_shift_without_per_client_effect_rolls_back_at_most_five_percent() -> None:
    rollouts = simulate_checks(MIX, ROLLOUTS, SEED)
    assert summarise(rollouts, FAST).rollback_rate <= 0.05
    # The same sequence on pooled (unstratified) rates reads the mix shift as a regression.
    assert contrast_rate(rollouts, test="pooled_sequence") >= 0.5


def test_any_wrong_booking_in_the_canary_rolls_back_at_the_first_check_that_sees_it() -> None:
    # Given rollouts where about 3 of the canary's 300 booking attempts go wrong (some none)
    rollouts = simulate_checks(Scenario(wrong_booking_rate=0.01), 40, SEED)
    summary = summarise(rollouts, FAST)

    def first_wrong(checks: list[Signals]) -> int | None:
        for k, s in enumerate(checks):
            if any(
                c.booking_wrong for (_, arm), c in s.by_client.items() if arm is Arm.CANARY_AFTER
            ):
                return k
        return None

    expected = [first_wrong(c) for c in rollouts]
    # Then each rollout rolls back exactly at its first check with a wrong booking, if any.
    assert [o.check for o in summary.outcomes] == expected
    assert 30 <= sum(k is not None for k in expected) < 40  # both cases are exercised
    assert all(MetricName.WRONG_BOOKINGS in o.metrics for o in summary.outcomes if o.rolled_back)


def test_the_same_seed_gives_the_same_rollouts() -> None:
    a = simulate_checks(Scenario(checks=3, drafts_per_side=300), 2, 7)
    b = simulate_checks(Scenario(checks=3, drafts_per_side=300), 2, 7)
    c = simulate_checks(Scenario(checks=3, drafts_per_side=300), 2, 8)
    assert a == b
    assert a != c
    # Data grows: the last check holds every record of each arm.
    last = a[0][-1]
    assert sum(s.drafts_evaluated for s in last.by_client.values()) == 600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mix_before": (0.5, 0.5, 0.5)}, "mix_before"),
        ({"needs_review_rates": (0.2,)}, "needs_review_rates"),
        ({"checks": 0}, "checks"),
    ],
)
def test_bad_scenarios_are_refused_naming_the_knob(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scenario(**kwargs)  # type: ignore[arg-type]


def _mc_se(rate: float, n: int) -> float:
    """The Monte-Carlo standard error of a rate over ``n`` rollouts."""
    return math.sqrt(max(rate * (1.0 - rate), 0.01) / n)


def test_a_five_point_regression_is_almost_never_told_expand() -> None:
    # Given 200 rollouts whose needs-review truly rises 5 points (the margin itself)
    summary = run_rollouts(Scenario(needs_review_delta=0.05), ROLLOUTS, SEED + 1, FAST)
    # Then EXPAND is recommended at some check in at most 5% of them (2 MC errors of slack;
    # the bound guarantees it at the margin, so the measured figure sits well below).
    assert summary.expand_any_rate <= 0.05 + 2 * _mc_se(0.05, ROLLOUTS)


def test_with_no_effect_most_rollouts_end_on_expand() -> None:
    summary = run_rollouts(Scenario(), ROLLOUTS, SEED + 2, FAST)
    # Then at least 80% end on EXPAND at the last check (2 MC errors of slack)
    assert summary.expand_final_rate >= 0.80 - 2 * _mc_se(0.80, ROLLOUTS)


def test_without_state_a_confidence_drift_still_rolls_back_at_most_one_check_later() -> None:
    # Given 200 rollouts whose mean auto-send confidence drifts up by 0.03
    rollouts = simulate_checks(Scenario(confidence_shift=0.03), ROLLOUTS, SEED + 3)
    with_state = summarise(rollouts, FAST)
    without_state = summarise(rollouts, FAST, stateless=True)
    # Then checks without a state file roll back at least 95% of them (2 MC errors of slack)
    assert without_state.rollback_rate >= 0.95 - 2 * _mc_se(0.95, ROLLOUTS)
    # and each rollout rolls back at most one check later than with the state file.
    for kept, lost in zip(with_state.outcomes, without_state.outcomes, strict=True):
        assert lost.rolled_back == kept.rolled_back
        if kept.check is not None and lost.check is not None:
            assert kept.check <= lost.check <= kept.check + 1


def test_the_same_wrong_booking_rate_on_both_paths_rarely_rolls_back() -> None:
    # Given 200 rollouts with wrong bookings at 0.1% of attempts on both paths, the canary at
    # 2.5% of the booking attempts (the legacy path 39 times its exposure: its own 2,000
    # drafts before the switch and 4 control clients' 38,000 before and after)
    scenario = Scenario(
        wrong_booking_rate=0.001,
        legacy_wrong_booking_rate=0.001,
        control_clients=4,
        control_drafts_per_side=19 * 2_000,
    )
    summary = run_rollouts(scenario, ROLLOUTS, SEED + 4, FAST)
    # Then at most 5% roll back, over every metric (2 MC errors of slack)
    assert summary.rollback_rate <= 0.05 + 2 * _mc_se(0.05, ROLLOUTS)


def test_wrong_bookings_on_the_shared_path_only_roll_back_every_rollout_that_has_one() -> None:
    rollouts = simulate_checks(Scenario(wrong_booking_rate=0.01), 60, SEED + 5)
    summary = summarise(rollouts, FAST)
    had_one = [
        any(
            c.booking_wrong
            for (_, arm), c in checks[-1].by_client.items()
            if arm is Arm.CANARY_AFTER
        )
        for checks in rollouts
    ]
    assert [o.rolled_back for o in summary.outcomes] == had_one


def _power_at_last_check(effect: float, rollouts: int, seed: int) -> tuple[float, float]:
    """Share of rollouts whose needs-review bound confirms at one look of 2,000 per side,
    and the mean MDE the reports state there."""
    checks = simulate_checks(Scenario(needs_review_delta=effect, checks=1), rollouts, seed)
    confirmed, mdes = 0, []
    for (signals,) in checks:
        metric = evaluate(signals, FAST).metric(MetricName.NEEDS_REVIEW_RATE)
        assert metric.interval is not None
        confirmed += metric.interval[0] > 0
        mdes.append(metric.extra["mde"])
    return confirmed / rollouts, sum(mdes) / len(mdes)


def test_the_stated_minimum_detectable_effect_is_detected_80_percent_of_the_time() -> None:
    # Given the MDE the report states with no effect at 2,000 drafts per side
    _, mde = _power_at_last_check(0.0, 100, SEED + 6)
    # Then a true change of that size is confirmed at that look in 80% of rollouts (3 MC
    # errors), and the effect with 80% power is within 1 pp of it: 1 pp less is detected
    # less often than 80%, 1 pp more more often.
    at, _ = _power_at_last_check(mde, 300, SEED + 7)
    assert abs(at - 0.80) <= 3 * _mc_se(0.80, 300)
    below, _ = _power_at_last_check(mde - 0.01, 300, SEED + 8)
    above, _ = _power_at_last_check(mde + 0.01, 300, SEED + 9)
    assert below < 0.80 < above


def _controls_3x(**effects: float) -> Scenario:
    """Three control clients with three times the canary's volume between them."""
    return Scenario(control_clients=3, control_drafts_per_side=6_000, **effects)  # type: ignore[arg-type]


def test_controls_at_three_times_the_volume_keep_the_power() -> None:
    # Given +5 points on needs-review, with control clients at three times the volume
    summary = run_rollouts(_controls_3x(needs_review_delta=0.05), ROLLOUTS, SEED + 10, FAST)
    # Then at least 80% roll back (2 MC errors of slack)
    assert summary.rollback_rate >= 0.80 - 2 * _mc_se(0.80, ROLLOUTS)


def test_a_common_drift_seen_by_the_controls_rarely_rolls_back() -> None:
    # Given +6 points on every client (canary and controls) and no effect
    summary = run_rollouts(_controls_3x(trend_needs_review=0.06), ROLLOUTS, SEED + 11, FAST)
    # Then at most 5% roll back (2 MC errors of slack)
    assert summary.rollback_rate <= 0.05 + 2 * _mc_se(0.05, ROLLOUTS)


def test_a_fixed_baseline_holds_every_pre_switch_record_from_the_first_check() -> None:
    scenario = Scenario(checks=4, drafts_per_side=400, fixed_baseline=True)
    (checks,) = simulate_checks(scenario, 1, 3)
    before = [
        sum(c.drafts_evaluated for (_, a), c in s.by_client.items() if a is Arm.CANARY_BEFORE)
        for s in checks
    ]
    after = [
        sum(c.drafts_evaluated for (_, a), c in s.by_client.items() if a is Arm.CANARY_AFTER)
        for s in checks
    ]
    assert before == [400, 400, 400, 400]
    assert after == [100, 200, 300, 400]
