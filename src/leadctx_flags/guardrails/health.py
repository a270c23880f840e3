"""Count and threshold metrics: wrong bookings, bundle health, volume, data quality.

Wrong bookings and the volume collapse are critical and deterministic (they spend no error);
bundle health compares the canary's own rates with operator thresholds through a one-sample
anytime-valid bound, and warns against the previous window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from leadctx_flags.guardrails.classical import clopper_pearson_upper, conditional_rate_test
from leadctx_flags.guardrails.cohorts import Cohorts, arm_counts, pooled, side
from leadctx_flags.guardrails.policy import GuardrailPolicy, MetricName
from leadctx_flags.guardrails.results import MetricResult, Verdict
from leadctx_flags.guardrails.sequential import lower_bound, upper_bound
from leadctx_flags.guardrails.signals import Arm, ClientArmSignals, Signals

__all__ = [
    "WEAK_SILENCE_SHARE",
    "health_metrics",
    "quality_metric",
    "volume_metric",
    "wrong_bookings_metric",
]

WEAK_SILENCE_SHARE: Final = 0.05
"""Above this canary share of the booking attempts, a zero-tolerance rollback says how weak the
legacy path's "none" is: the rule's false-rollback risk at equal rates is about that share."""


def wrong_bookings_metric(cohorts: Cohorts, policy: GuardrailPolicy) -> MetricResult:
    """Wrong bookings in the canary: critical; zero tolerance, or an exact test against legacy.

    * The legacy path (the canary clients before the switch, the control clients) had no
      wrong booking in the window: any canary wrong booking beyond ``wrong_bookings_allowed``
      is a new one and rolls back at once (the seed's "no new wrong bookings"; no error spent).
    * The legacy path had its own (or ``wrong_bookings_zero_tolerance`` is off): the canary's
      rate is compared with the legacy path's by the exact conditional test: given ``W``
      wrong bookings in all, under equal rates the canary's count is Binomial(``W``, ``pi``),
      ``pi`` the canary's share of the attempts.
      It rolls back when the one-sided beta-mixture likelihood ratio of that binomial
      reaches ``1 / alpha`` (Ville's inequality: exact and valid at every check at once), at
      the ``alpha`` of ``alpha_weights`` (0.001 by default); scipy's ``binomtest`` p-value is
      reported beside it.

    The Clopper-Pearson upper bound of the canary's rate per attempted booking is reported;
    with no wrong booking and fewer than ``min_samples`` attempts the metric is
    ``insufficient_data`` (no evidence either way).

    Args:
        cohorts: The signals split by arm.
        policy: The allowance, the test's share of the error and the bound's level.
    """
    wrong = pooled(cohorts.canary_after, lambda s: s.booking_wrong)
    attempts = pooled(cohorts.canary_after, lambda s: s.booking_attempted)
    wrong_before = pooled(cohorts.canary_before, lambda s: s.booking_wrong)
    attempts_before = pooled(cohorts.canary_before, lambda s: s.booking_attempted)
    legacy = (cohorts.canary_before, cohorts.control_before, cohorts.control_after)
    legacy_wrong = sum(pooled(arm, lambda s: s.booking_wrong) for arm in legacy)
    legacy_attempts = sum(pooled(arm, lambda s: s.booking_attempted) for arm in legacy)
    upper = clopper_pearson_upper(wrong, max(attempts, wrong), policy.wrong_booking_alpha)
    # The canary's share of the window's booking attempts: with equal rates on both paths, the
    # first wrong booking of all is the canary's with this probability, so it is what the
    # zero-tolerance rule risks on a false rollback (docs/guardrails.md, "Wrong bookings").
    total = attempts + legacy_attempts
    share = attempts / total if total else 0.0
    extra: dict[str, Any] = {
        "wrong_rate_upper": upper,
        "level": 1.0 - policy.wrong_booking_alpha,
        "legacy": {"n": legacy_attempts, "value": legacy_wrong},
        "canary_share": share,
    }
    common: dict[str, Any] = {
        "critical": True,
        "baseline": {"n": attempts_before, "value": wrong_before},
        "canary": {"n": attempts, "value": wrong},
        "delta": wrong - wrong_before,  # a count: an int, shown as one
        "interval": (0.0, upper),
        "extra": extra,
    }
    clients = tuple(c for c, s in sorted(cohorts.canary_after.items()) if s.booking_wrong)
    zero_tolerance = legacy_wrong == 0 and policy.wrong_bookings_zero_tolerance
    if zero_tolerance and wrong > policy.wrong_bookings_allowed:
        reason = (
            f"{wrong} wrong booking(s) in the canary and none on the legacy path; "
            f"{policy.wrong_bookings_allowed} allowed"
        )
        if share > WEAK_SILENCE_SHARE:
            reason += (
                f"; the canary holds {share:.0%} of the window's booking attempts, so the "
                "legacy path's silence is weak evidence: at equal rates a first wrong booking "
                "would be the canary's that often"
            )
        return MetricResult(
            MetricName.WRONG_BOOKINGS,
            Verdict.REGRESS,
            reason,
            clients=clients,
            **common,
        )
    if wrong > policy.wrong_bookings_allowed:
        alpha = policy.alpha(MetricName.WRONG_BOOKINGS)
        # Inconsistent counts (more wrong bookings than attempts) are read as every attempt.
        test = conditional_rate_test(
            wrong, max(attempts, wrong), legacy_wrong, max(legacy_attempts, legacy_wrong)
        )
        extra |= {"alpha": alpha, "mixture_ratio": test.ratio, "binomtest_p_value": test.p_value}
        if test.ratio >= 1.0 / alpha:
            return MetricResult(
                MetricName.WRONG_BOOKINGS,
                Verdict.REGRESS,
                f"{wrong} wrong booking(s) in the canary against {legacy_wrong} on the legacy "
                f"path: the canary's rate is higher (exact test at alpha {alpha:.4g})",
                clients=clients,
                **common,
            )
        return MetricResult(
            MetricName.WRONG_BOOKINGS,
            Verdict.WARN,
            f"{wrong} wrong booking(s) in the canary against {legacy_wrong} on the legacy "
            "path: not shown to be a higher rate",
            **common,
        )
    if attempts < policy.min_samples:
        return MetricResult(
            MetricName.WRONG_BOOKINGS,
            Verdict.INSUFFICIENT_DATA,
            f"{attempts} booking attempts in the canary; needs {policy.min_samples}",
            **common,
        )
    return MetricResult(
        MetricName.WRONG_BOOKINGS,
        Verdict.OK,
        f"no wrong booking beyond the allowance; rate below {upper:.4f} "
        f"at {1.0 - policy.wrong_booking_alpha:.0%}",
        **common,
    )


def _health_metric(
    name: MetricName,
    threshold: float,
    *,
    num: Callable[[ClientArmSignals], int],
    den: Callable[[ClientArmSignals], int],
    cohorts: Cohorts,
    previous_after: Mapping[str, ClientArmSignals] | None,
    policy: GuardrailPolicy,
) -> MetricResult:
    n = pooled(cohorts.canary_after, den)
    # Inconsistent counts (more events than trials) are read as "every trial": never a crash.
    x = min(pooled(cohorts.canary_after, num), n)
    extra: dict[str, Any] = {"threshold": threshold}
    previous_rate: float | None = None
    if previous_after is not None:
        prev_n = pooled(previous_after, den)
        if prev_n >= policy.min_samples:
            previous_rate = pooled(previous_after, num) / prev_n
            extra["previous_window"] = {"n": prev_n, "value": previous_rate}
    canary = side(n, x)
    if n < policy.min_samples:
        return MetricResult(
            name,
            Verdict.INSUFFICIENT_DATA,
            f"{n} canary calls; needs {policy.min_samples}",
            baseline={"n": 0, "value": threshold},
            canary=canary,
            extra=extra,
        )
    rate = x / n
    alpha = policy.alpha(name)
    rate_se = math.sqrt(rate * (1.0 - rate) / n)
    cs = lower_bound(rate, rate_se, n, policy.planned_n_per_side, alpha)
    # EXPAND's evidence: the rate's upper bound (at expand_alpha) below the threshold.
    harm = upper_bound(rate, rate_se, n, policy.planned_n_per_side, policy.expand_alpha).bound
    extra |= {"alpha": alpha, "harm_bound": harm}
    common: dict[str, Any] = {
        "baseline": {"n": 0, "value": threshold},
        "canary": canary,
        "delta": rate - threshold,
        "interval": (cs.bound - threshold, math.inf),
        "extra": extra,
    }
    if cs.bound > threshold:
        clients = tuple(
            c
            for c, s in sorted(cohorts.canary_after.items())
            if den(s) and num(s) / den(s) > threshold
        )
        return MetricResult(
            name,
            Verdict.REGRESS,
            f"rate confirmed above the threshold {threshold:g} at alpha {alpha:.4g}",
            clients=clients,
            **common,
        )
    if rate > threshold:
        return MetricResult(
            name, Verdict.WARN, f"rate above the threshold {threshold:g}, not confirmed", **common
        )
    if previous_rate is not None and rate > previous_rate + policy.previous_window_margin:
        return MetricResult(
            name,
            Verdict.WARN,
            f"rate up more than {policy.previous_window_margin:g} on the previous window",
            **common,
        )
    if harm >= threshold:
        return MetricResult(
            name,
            Verdict.WARN,
            f"a rate up to {harm:.4g} is not excluded (bound at alpha {policy.expand_alpha:g}); "
            f"expanding needs it below the threshold {threshold:g}",
            **common,
        )
    return MetricResult(name, Verdict.OK, f"rate within the threshold {threshold:g}", **common)


def health_metrics(
    signals: Signals, cohorts: Cohorts, policy: GuardrailPolicy
) -> list[MetricResult]:
    """The bundle's own health in the canary: fallback rate and truncation rates.

    Fallback is counted among calls with the flag on; truncation among calls that took the
    shared path (flag on, no fallback), since only those carry truncation stats.

    Args:
        signals: This check's signals (``previous`` gives the previous window).
        cohorts: The signals split by arm.
        policy: Thresholds and error split.
    """
    previous_after = (
        None if signals.previous is None else arm_counts(signals.previous, Arm.CANARY_AFTER)
    )

    def shared_calls(s: ClientArmSignals) -> int:
        return max(s.calls_flag_on - s.calls_fallback, 0)

    return [
        _health_metric(
            MetricName.FALLBACK_RATE,
            policy.max_fallback_rate,
            num=lambda s: s.calls_fallback,
            den=lambda s: s.calls_flag_on,
            cohorts=cohorts,
            previous_after=previous_after,
            policy=policy,
        ),
        _health_metric(
            MetricName.ASSETS_TRUNCATION,
            policy.max_assets_truncation_rate,
            num=lambda s: s.calls_assets_truncated,
            den=shared_calls,
            cohorts=cohorts,
            previous_after=previous_after,
            policy=policy,
        ),
        _health_metric(
            MetricName.MEMORY_TRUNCATION,
            policy.max_memory_truncation_rate,
            num=lambda s: s.calls_memory_truncated,
            den=shared_calls,
            cohorts=cohorts,
            previous_after=previous_after,
            policy=policy,
        ),
    ]


def _volume(arm: Mapping[str, ClientArmSignals]) -> int:
    return sum(s.drafts_evaluated + s.overseer_gate + s.calls for s in arm.values())


def volume_metric(signals: Signals, cohorts: Cohorts, policy: GuardrailPolicy) -> MetricResult:
    """Critical: the canary's records collapsing against the previous window of equal length.

    Args:
        signals: This check's signals (``previous`` gives the previous window).
        cohorts: The signals split by arm.
        policy: The collapse ratio and the previous window's minimum.
    """
    now = _volume(cohorts.canary_after)
    if signals.previous is None:
        return MetricResult(
            MetricName.VOLUME,
            Verdict.OK,
            "no previous window to compare",
            critical=True,
            canary={"n": now, "value": now},
        )
    before = _volume(arm_counts(signals.previous, Arm.CANARY_AFTER))
    common: dict[str, Any] = {
        "critical": True,
        "baseline": {"n": before, "value": before},
        "canary": {"n": now, "value": now},
        "delta": now - before,  # a count: an int, shown as one
    }
    if before >= policy.volume_min_previous and now < policy.volume_collapse_ratio * before:
        return MetricResult(
            MetricName.VOLUME,
            Verdict.REGRESS,
            f"canary records fell below {policy.volume_collapse_ratio:.0%} of the previous window",
            clients=tuple(sorted(cohorts.canary_after)),
            **common,
        )
    return MetricResult(MetricName.VOLUME, Verdict.OK, "canary volume holds", **common)


def quality_metric(signals: Signals, policy: GuardrailPolicy) -> MetricResult:
    """Unusable records (``DataQuality``) against all records read: warn above the share.

    Args:
        signals: This check's signals.
        policy: The tolerated share.
    """
    q = signals.quality
    unusable = sum(
        (
            q.null_confidence,
            q.confidence_out_of_range,
            q.unknown_action,
            q.unknown_status,
            q.unknown_overseer_decision,
            q.malformed_metadata,
            q.missing_interaction,
        )
    )
    total = sum(s.drafts_evaluated + s.overseer_gate + s.calls for s in signals.by_client.values())
    figures = {"n": total + unusable, "value": unusable}
    if unusable > policy.max_unusable_share * (total + unusable):
        return MetricResult(
            MetricName.DATA_QUALITY,
            Verdict.WARN,
            f"{unusable} unusable records (over {policy.max_unusable_share:.0%}); see quality",
            canary=figures,
        )
    return MetricResult(
        MetricName.DATA_QUALITY, Verdict.OK, f"{unusable} unusable records", canary=figures
    )
