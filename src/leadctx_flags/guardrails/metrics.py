"""The metric catalogue: each metric turns ``Signals`` into a ``MetricResult`` with a verdict.

Cohorts. The canary's records after the switch (``Arm.CANARY_AFTER``) are compared with the
same clients before it (``Arm.CANARY_BEFORE``), stratified by client with Mantel-Haenszel
weights, so a change in which clients send the traffic is not read as a change in any client.
When control clients (still on legacy) were seen before and after the switch time, the
control's own change is subtracted (difference-in-differences): a regression must show in the
canary's change *and* exceed the control's, or it is only a ``warn`` (a trend common to every
client is not the bundle's doing). The concurrent difference canary-after minus control-after
is reported as a description (different clients: not stratifiable).

Directions (a change this way is a regression) and why:

* ``auto_send.confidence`` up: the seed's concern is confidence drift that causes unsafe
  auto-sends; a higher mean confidence with no better drafts pushes more drafts over the
  threshold. A drop shows as more needs-review, which has its own guardrail. It is the one
  *drift* metric: it rolls back only after ``drift_confirmations`` consecutive regress checks.
* ``auto_send.rate`` up: more drafts sent without a human, the exposure the rollout guards.
* ``auto_send.needs_review_rate`` up: the evaluator trusts the drafts less.
* ``auto_send.edited_share`` up: reviewers had to edit more of the drafts they resolved.
* ``overseer.revise_rate`` up: the meeting overseer's gate sent more drafts back.
* ``proposed_times.attempts_per_parse`` up: an over-eager parser books more (the seed's
  booking mistakes); ``proposed_times.match_rate`` down: fewer proposed times matched.
* ``proposed_times.wrong_bookings``: critical; a count against ``wrong_bookings_allowed``.
* ``bundle.*``: the canary's own fallback and truncation rates against thresholds, and a
  warning against the previous window.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from leadctx_flags.guardrails.classical import (
    StratifiedDifference,
    Stratum,
    ks_from_histograms,
    mantel_haenszel_difference,
    psi,
    stratified_odds_ratio,
    wasserstein_over_sigma,
)
from leadctx_flags.guardrails.cohorts import Cohorts, pairs, pooled, side
from leadctx_flags.guardrails.health import (
    health_metrics,
    quality_metric,
    volume_metric,
    wrong_bookings_metric,
)
from leadctx_flags.guardrails.policy import GuardrailPolicy, MetricName
from leadctx_flags.guardrails.results import Direction, MetricResult, Verdict
from leadctx_flags.guardrails.sequential import (
    POWER,
    lower_bound,
    minimum_detectable_effect,
    upper_bound,
)
from leadctx_flags.guardrails.signals import CONFIDENCE_BUCKETS, ClientArmSignals, Moments, Signals

__all__ = [
    "RATE_METRICS",
    "Direction",
    "MetricName",
    "MetricResult",
    "MetricSpec",
    "Verdict",
    "confidence_metric",
    "evaluate_metrics",
    "overseer_buckets",
    "rate_metric",
]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A tested rate or mean: how to count it and which way is worse.

    Args:
        name: The metric's name.
        direction: Which way a change is a regression.
        numerator / denominator: The counts of one client in one arm (for a rate).
        drift: Needs ``drift_confirmations`` consecutive regress checks to roll back.
    """

    name: MetricName
    direction: Direction
    numerator: Callable[[ClientArmSignals], int]
    denominator: Callable[[ClientArmSignals], int]
    drift: bool = False


RATE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        MetricName.AUTO_SEND_RATE, Direction.UP, lambda s: s.auto_sent, lambda s: s.drafts_evaluated
    ),
    MetricSpec(
        MetricName.NEEDS_REVIEW_RATE,
        Direction.UP,
        lambda s: s.needs_review,
        lambda s: s.drafts_evaluated,
    ),
    MetricSpec(
        MetricName.EDITED_SHARE,
        Direction.UP,
        lambda s: s.review_edited,
        lambda s: s.review_resolved,
    ),
    MetricSpec(
        MetricName.OVERSEER_REVISE_RATE,
        Direction.UP,
        lambda s: s.overseer_revise,
        lambda s: s.overseer_gate,
    ),
    MetricSpec(
        MetricName.BOOKING_ATTEMPTS,
        Direction.UP,
        lambda s: s.booking_attempted,
        lambda s: s.proposed_parses,
    ),
    MetricSpec(
        MetricName.MATCH_RATE,
        Direction.DOWN,
        lambda s: s.proposed_matched,
        lambda s: s.proposed_parses,
    ),
)
"""The stratified rate metrics, in report order."""


def _moments_stratum(label: str, after: Moments, before: Moments) -> Stratum:
    def mean_var(m: Moments) -> tuple[float, float]:
        if m.n == 0:
            return 0.0, 0.0
        mean = m.total / m.n
        # Sample variance from the sums; floored at 0 against rounding in the database's sums.
        var = max(m.total_sq - m.n * mean * mean, 0.0) / max(m.n - 1, 1)
        return mean, var

    m1, v1 = mean_var(after)
    m0, v0 = mean_var(before)
    return Stratum(label, after.n, m1, v1, before.n, m0, v0)


def _strata(
    after: Mapping[str, ClientArmSignals],
    before: Mapping[str, ClientArmSignals],
    make: Callable[[str, ClientArmSignals, ClientArmSignals], Stratum],
) -> list[Stratum]:
    return [
        make(client, after[client], before[client]) for client in sorted(after) if client in before
    ]


def _compare(
    name: MetricName,
    direction: Direction,
    canary: StratifiedDifference | None,
    control: StratifiedDifference | None,
    *,
    policy: GuardrailPolicy,
    previous: MetricResult | None,
    drift: bool,
    baseline: dict[str, Any],
    canary_side: dict[str, Any],
    extra: dict[str, Any],
    drafts_per_sample: float = 1.0,
    rates: tuple[float, float] | None = None,
) -> MetricResult:
    """The shared verdict logic of every stratified comparison."""
    if canary is None or min(canary.n1, canary.n0) < policy.min_samples:
        have = (0, 0) if canary is None else (canary.n1, canary.n0)
        return MetricResult(
            name,
            Verdict.INSUFFICIENT_DATA,
            f"{have[0]} canary and {have[1]} baseline records from the same clients; "
            f"needs {policy.min_samples} per side",
            baseline=baseline,
            canary=canary_side,
            extra={**extra, "mde": None, "mde_power": POWER},
        )
    alpha = policy.alpha(name)
    t = min(canary.n1, canary.n0)
    up = direction is Direction.UP
    bound_of = lower_bound if up else upper_bound
    cs = bound_of(canary.estimate, canary.se, t, policy.planned_n_per_side, alpha)
    interval = (cs.bound, math.inf) if up else (-math.inf, cs.bound)
    confirmed = cs.bound > 0 if up else cs.bound < 0
    streak = 0
    extra = {**extra, "alpha": alpha, "strata": canary.strata}
    worse = "up" if up else "down"
    did_confirms = True
    # The change attributed to the bundle: the canary's own, or net of the controls' change.
    effect, effect_se = canary.estimate, canary.se
    tested_se = canary.se
    if control is not None and min(control.n1, control.n0) >= policy.min_samples:
        did = canary.estimate - control.estimate
        effect, effect_se = did, math.hypot(canary.se, control.se)
        did_cs = bound_of(did, effect_se, t, policy.planned_n_per_side, alpha)
        # The DiD is required only when the controls show a trend the regressing way: the
        # canary's own sequence keeps its power when nothing moved the controls.
        trend = _shows_trend(control, up, policy.control_trend_z)
        if trend:
            did_confirms = did_cs.bound > 0 if up else did_cs.bound < 0
            tested_se = effect_se
        extra |= {
            "control_delta": control.estimate,
            "control_trend": trend,
            "did": did,
            "did_bound": did_cs.bound,
        }
    # EXPAND's evidence: the harmful-side bound, at expand_alpha, inside the margin.
    margin = policy.margin(name)
    harm_of = upper_bound if up else lower_bound
    harm = harm_of(effect, effect_se, t, policy.planned_n_per_side, policy.expand_alpha).bound
    noninferior = harm < margin if up else harm > -margin
    extra |= {"noninferiority_margin": margin, "harm_bound": harm}
    se_at = None
    if rates is not None:
        # A rate's variance moves with it: under a change delta from the baseline's rate p0,
        # the canary side's part of the variance is v(p0 +- delta) / n1 instead of v(p1) / n1.
        p1, p0 = rates
        sign = 1.0 if up else -1.0

        def se_at(delta: float) -> float:
            shifted = min(max(p0 + sign * delta, 0.0), 1.0)
            extra_var = (shifted * (1 - shifted) - p1 * (1 - p1)) / max(canary.n1, 1)
            return math.sqrt(max(tested_se * tested_se + extra_var, 1e-18))

    extra |= _detectable(name, tested_se, t, alpha, policy, drafts_per_sample, se_at)
    if confirmed and did_confirms:
        previous_streak = 0 if previous is None else int(previous.extra.get("regress_streak", 0))
        streak = previous_streak + 1
    extra["regress_streak"] = streak
    common: dict[str, Any] = {
        "baseline": baseline,
        "canary": canary_side,
        "delta": canary.estimate,
        "interval": interval,
        "extra": extra,
    }
    if confirmed and not did_confirms:
        return MetricResult(
            name,
            Verdict.WARN,
            f"canary went {worse}, but control clients moved too (difference-in-differences "
            "not confirmed)",
            **common,
        )
    if confirmed:
        if drift and streak < policy.drift_confirmations:
            return MetricResult(
                name,
                Verdict.WARN,
                f"confirmed {worse} at {streak} consecutive check(s); a drift metric needs "
                f"{policy.drift_confirmations} to roll back",
                **common,
            )
        drivers = tuple(c for c, v in canary.contributions.items() if (v > 0 if up else v < 0))
        return MetricResult(
            name,
            Verdict.REGRESS,
            f"anytime-valid bound confirms a change {worse} at alpha {alpha:.4g}",
            clients=drivers,
            **common,
        )
    if not noninferior:
        # Not enough evidence of no harm to expand: hold. A point estimate already beyond the
        # practical margin is said as such (a trend), the rest as the harm not yet excluded.
        trending = (
            canary.estimate > policy.practical_margin
            if up
            else canary.estimate < -policy.practical_margin
        )
        reason = (
            f"change {worse} beyond the practical margin {policy.practical_margin:g}, not confirmed"
            if trending
            else f"a change {worse} of up to {abs(harm):.4g} is not excluded (bound at alpha "
            f"{policy.expand_alpha:g}); expanding needs it within the margin {margin:g}"
        )
        return MetricResult(name, Verdict.WARN, reason, **common)
    return MetricResult(
        name,
        Verdict.OK,
        f"no confirmed change {worse}; any change {worse} is below the margin {margin:g}",
        **common,
    )


def _shows_trend(control: StratifiedDifference, up: bool, z: float) -> bool:
    """The controls' own change is beyond ``z`` standard errors the regressing way."""
    change = control.estimate if up else -control.estimate
    if control.se == 0.0:
        return change > 0.0
    return change / control.se > z


def _detectable(  # noqa: PLR0917 - private, called once
    name: MetricName,
    se: float,
    t: int,
    alpha: float,
    policy: GuardrailPolicy,
    drafts_per_sample: float,
    se_at: Callable[[float], float] | None,
) -> dict[str, Any]:
    """The minimum detectable effect at 80% power now, and what the target effect needs."""
    target = policy.detection_targets.get(name)
    found = minimum_detectable_effect(
        se, t, policy.planned_n_per_side, alpha, target if target is not None else 1.0, se_at=se_at
    )
    figures: dict[str, Any] = {"mde": found.mde, "mde_power": POWER}
    if target is not None:
        figures |= {
            "detection_target": target,
            "samples_for_target_per_side": found.needed,
            "more_samples_per_side": found.more,
            "more_drafts_per_side": None
            if found.more is None
            else math.ceil(found.more * drafts_per_sample),
        }
    return figures


def rate_metric(
    spec: MetricSpec,
    cohorts: Cohorts,
    policy: GuardrailPolicy,
    previous: MetricResult | None,
) -> MetricResult:
    """A stratified rate comparison (canary after vs the same clients before, and the control).

    Args:
        spec: The metric.
        cohorts: The signals split by arm.
        policy: Thresholds and error split.
        previous: This metric in the previous report (for the drift streak), or None.
    """
    num, den = spec.numerator, spec.denominator

    def stratum(client: str, a: ClientArmSignals, b: ClientArmSignals) -> Stratum:
        return Stratum.of_rates(client, num(a), den(a), num(b), den(b))

    strata = _strata(cohorts.canary_after, cohorts.canary_before, stratum)
    canary = mantel_haenszel_difference(strata)
    control = mantel_haenszel_difference(
        _strata(cohorts.control_after, cohorts.control_before, stratum)
    )
    extra: dict[str, Any] = {}
    n_control = pooled(cohorts.control_after, den)
    if n_control:
        n_canary = pooled(cohorts.canary_after, den)
        extra["vs_control_after"] = (
            pooled(cohorts.canary_after, num) / n_canary if n_canary else 0.0
        ) - pooled(cohorts.control_after, num) / n_control
    odds = (
        stratified_odds_ratio([(num(a), den(a), num(b), den(b)) for a, b in pairs(cohorts)])
        if policy.odds_ratio_descriptions
        else None
    )
    if odds is not None:
        extra |= {"mh_odds_ratio": odds.odds_ratio, "cmh_p_value": odds.p_value}
    return _compare(
        spec.name,
        spec.direction,
        canary,
        control,
        policy=policy,
        previous=previous,
        drift=spec.drift,
        baseline=side(pooled(cohorts.canary_before, den), pooled(cohorts.canary_before, num)),
        canary_side=side(pooled(cohorts.canary_after, den), pooled(cohorts.canary_after, num)),
        extra=extra,
        drafts_per_sample=_drafts_per(cohorts, den),
        rates=_matched_rates(cohorts, num, den),
    )


def _matched_rates(
    cohorts: Cohorts,
    num: Callable[[ClientArmSignals], int],
    den: Callable[[ClientArmSignals], int],
) -> tuple[float, float] | None:
    """The pooled rate after and before over the clients seen on both sides, or None."""
    matched = pairs(cohorts)
    n1, n0 = sum(den(a) for a, _ in matched), sum(den(b) for _, b in matched)
    if not n1 or not n0:
        return None
    x1 = min(sum(num(a) for a, _ in matched), n1)
    x0 = min(sum(num(b) for _, b in matched), n0)
    return x1 / n1, x0 / n0


def _drafts_per(cohorts: Cohorts, den: Callable[[ClientArmSignals], int]) -> float:
    """Evaluated drafts per record of a metric's denominator, in the canary (1 when unknown)."""
    samples = pooled(cohorts.canary_after, den)
    drafts = pooled(cohorts.canary_after, lambda s: s.drafts_evaluated)
    return drafts / samples if samples and drafts else 1.0


def _sum_histograms(moments: list[Moments]) -> list[int]:
    total = [0] * CONFIDENCE_BUCKETS
    for m in moments:
        for i, count in enumerate(m.histogram):
            total[i] += count
    return total


def _moments_side(moments: list[Moments]) -> dict[str, Any]:
    n = sum(m.n for m in moments)
    return {"n": n, "value": (sum(m.total for m in moments) / n) if n else None}


def confidence_metric(
    cohorts: Cohorts, policy: GuardrailPolicy, previous: MetricResult | None
) -> MetricResult:
    """The auto-send confidence: a stratified mean shift drives it; drift descriptions warn.

    PSI (baseline deciles, from 500 records per side), KS and Wasserstein/sigma compare the
    pooled histograms of the canary after and before; they are not sequentially valid, so they
    may turn an ``ok`` into a ``warn`` (hold) but never into a regress.

    Args:
        cohorts: The signals split by arm.
        policy: Thresholds and error split.
        previous: This metric in the previous report (for the drift streak), or None.
    """
    matched = pairs(cohorts)

    def stratum(client: str, a: ClientArmSignals, b: ClientArmSignals) -> Stratum:
        return _moments_stratum(client, a.confidence, b.confidence)

    canary = mantel_haenszel_difference(
        _strata(cohorts.canary_after, cohorts.canary_before, stratum)
    )
    control = mantel_haenszel_difference(
        _strata(cohorts.control_after, cohorts.control_before, stratum)
    )
    after = [a.confidence for a, _ in matched]
    before = [b.confidence for _, b in matched]
    hist_after, hist_before = _sum_histograms(after), _sum_histograms(before)
    extra: dict[str, Any] = {"histogram_baseline": hist_before, "histogram_canary": hist_after}
    drift_psi = psi(hist_before, hist_after)
    ks = ks_from_histograms(hist_before, hist_after)
    w_sigma = wasserstein_over_sigma(hist_before, hist_after)
    extra |= {
        "psi": drift_psi,
        "ks": None if ks is None else ks.statistic,
        "ks_p_value": None if ks is None else ks.p_value,
        "wasserstein_over_sigma": w_sigma,
    }
    result = _compare(
        MetricName.CONFIDENCE,
        Direction.UP,
        canary,
        control,
        policy=policy,
        previous=previous,
        drift=True,
        baseline=_moments_side(before),
        canary_side=_moments_side(after),
        extra=extra,
    )
    if result.verdict is not Verdict.OK:
        return result
    described = [
        label
        for label, hit in (
            ("PSI", drift_psi is not None and drift_psi >= policy.psi_warn),
            ("KS", ks is not None and ks.p_value < policy.ks_p_warn),
            ("Wasserstein/sigma", w_sigma is not None and w_sigma >= policy.wasserstein_warn),
        )
        if hit
    ]
    if not described:
        return result
    return MetricResult(
        result.name,
        Verdict.WARN,
        f"distribution moved ({', '.join(described)}); the mean test does not confirm a regression",
        baseline=result.baseline,
        canary=result.canary,
        delta=result.delta,
        interval=result.interval,
        extra=result.extra,
    )


def overseer_buckets(cohorts: Cohorts) -> dict[str, list[int]]:
    """The overseer's gate confidence in 20 buckets, by decision, canary after and before.

    Reported with the revise rate (the seed asks for the confidence buckets); a description,
    never a verdict. Only clients seen on both sides are counted, as for the rate.

    Args:
        cohorts: The signals split by arm.
    """
    matched = pairs(cohorts)
    return {
        "approve_buckets_canary": _sum_histograms(
            [a.overseer_confidence_approve for a, _ in matched]
        ),
        "revise_buckets_canary": _sum_histograms(
            [a.overseer_confidence_revise for a, _ in matched]
        ),
        "approve_buckets_baseline": _sum_histograms(
            [b.overseer_confidence_approve for _, b in matched]
        ),
        "revise_buckets_baseline": _sum_histograms(
            [b.overseer_confidence_revise for _, b in matched]
        ),
    }


def _recomputed(
    earlier: Signals | None, policy: GuardrailPolicy, depth: int
) -> MetricResult | None:
    """The drift metric as the previous check saw it, from ``earlier``'s records.

    ``depth`` earlier checks are read at most: a streak longer than ``drift_confirmations - 1``
    before this check changes nothing.
    """
    if earlier is None or depth <= 0:
        return None
    before = _recomputed(earlier.earlier, policy, depth - 1)
    return confidence_metric(Cohorts.of(earlier), policy, before)


def evaluate_metrics(
    signals: Signals,
    policy: GuardrailPolicy,
    previous: Mapping[str, MetricResult] | None = None,
) -> tuple[MetricResult, ...]:
    """Every metric of the catalogue at one check, in report order.

    Args:
        signals: This check's signals.
        policy: Thresholds and error split.
        previous: The previous report's metrics by name (drift streaks), or None: the
            streaks are then recomputed from ``signals.earlier``.
    """
    cohorts = Cohorts.of(signals)
    prev = previous or {}
    previous_confidence = prev.get(MetricName.CONFIDENCE)
    if previous_confidence is None:
        # No state: the streak is recomputed from the records the earlier checks saw.
        previous_confidence = _recomputed(signals.earlier, policy, policy.drift_confirmations - 1)
    results = [confidence_metric(cohorts, policy, previous_confidence)]
    for spec in RATE_METRICS:
        result = rate_metric(spec, cohorts, policy, prev.get(spec.name))
        if spec.name is MetricName.OVERSEER_REVISE_RATE:
            result = dataclasses.replace(
                result, extra={**result.extra, **overseer_buckets(cohorts)}
            )
        results.append(result)
    results.append(wrong_bookings_metric(cohorts, policy))
    results += health_metrics(signals, cohorts, policy)
    results.append(volume_metric(signals, cohorts, policy))
    results.append(quality_metric(signals, policy))
    return tuple(results)
