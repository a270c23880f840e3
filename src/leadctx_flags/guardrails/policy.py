"""What the guardrails tolerate: the family error and its split, minimum samples, thresholds.

The family error (``family_alpha``, 5%) bounds the chance that a rollout with no true effect is
ever rolled back by a statistical metric, over every check at once: each metric's confidence
sequence is anytime-valid at its own ``alpha_i = family_alpha * weight_i`` and the weights sum
to at most 1 (Bonferroni over metrics, so no independence is assumed). The weights favour the
needs-review rate, the metric the rollout is most likely to move: an even split over five
metrics gives 73-77% power at +5 pp with 2,000 drafts per side; 60% of the budget on
needs-review gives about 84% (``docs/guardrails.md`` has the measured figures).

Deterministic rules spend no error: wrong bookings while the legacy path had none (any one in
the canary rolls back: the count is compared, not tested) and the canary's volume collapsing.
When the legacy path has wrong bookings of its own, the canary's rate is compared with an exact
test that spends the wrong-bookings share (0.02, so alpha 0.001).

EXPAND is a separate claim with its own error: a metric counts toward it only when its
confidence sequence's harmful-side bound, at ``expand_alpha``, excludes a harm larger than the
metric's non-inferiority margin (``noninferiority_margins``). EXPAND needs every metric to pass,
so it is an intersection-union test (Berger 1982): each metric at ``expand_alpha`` bounds the
chance of expanding into any one harm beyond its margin by ``expand_alpha``, with no split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum, unique
from types import MappingProxyType

__all__ = [
    "DEFAULT_ALPHA_WEIGHTS",
    "DEFAULT_DETECTION_TARGETS",
    "DEFAULT_NONINFERIORITY_MARGINS",
    "DEFAULT_POLICY",
    "GuardrailPolicy",
    "MetricName",
]


@unique
class MetricName(StrEnum):
    """The metric catalogue's names: stable, they key the JSON report and the policy."""

    CONFIDENCE = "auto_send.confidence"
    AUTO_SEND_RATE = "auto_send.rate"
    NEEDS_REVIEW_RATE = "auto_send.needs_review_rate"
    EDITED_SHARE = "auto_send.edited_share"
    OVERSEER_REVISE_RATE = "overseer.revise_rate"
    BOOKING_ATTEMPTS = "proposed_times.attempts_per_parse"
    MATCH_RATE = "proposed_times.match_rate"
    WRONG_BOOKINGS = "proposed_times.wrong_bookings"
    FALLBACK_RATE = "bundle.fallback_rate"
    ASSETS_TRUNCATION = "bundle.assets_truncation_rate"
    MEMORY_TRUNCATION = "bundle.memory_truncation_rate"
    VOLUME = "canary.volume"
    DATA_QUALITY = "data.quality"


DEFAULT_ALPHA_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        MetricName.NEEDS_REVIEW_RATE: 0.60,  # 0.03: the likeliest to move; most of the power
        MetricName.CONFIDENCE: 0.06,  # 0.003 each for the four other auto-send/overseer metrics
        MetricName.AUTO_SEND_RATE: 0.06,
        MetricName.EDITED_SHARE: 0.06,
        MetricName.OVERSEER_REVISE_RATE: 0.06,
        MetricName.BOOKING_ATTEMPTS: 0.04,  # 0.002 each: proposed-times volume is small
        MetricName.MATCH_RATE: 0.04,
        MetricName.FALLBACK_RATE: 0.02,  # 0.001 each: thresholds an operator sets, rarely near
        MetricName.ASSETS_TRUNCATION: 0.02,
        MetricName.MEMORY_TRUNCATION: 0.02,
        MetricName.WRONG_BOOKINGS: 0.02,  # 0.001: the exact test, when legacy books wrong too
    }
)
"""Shares of ``family_alpha`` per sequentially tested metric (sum 1.00 <= 1)."""

DEFAULT_NONINFERIORITY_MARGINS: Mapping[str, float] = MappingProxyType(
    {
        # The detection target: a 5-point rise is what the rollout must never expand into.
        MetricName.NEEDS_REVIEW_RATE: 0.05,
        # A mean shift of 0.03 is the drift the confidence guardrail is sized to catch.
        MetricName.CONFIDENCE: 0.03,
        # The others are sized to what 2,000 drafts per side can show: about 5 standard errors
        # of each metric's change at the planned size with typical traffic (56% sent, 16% of
        # drafts a resolved review, 50% gated, 30% parsed), so that with no effect each one is
        # shown within its margin in about 99% of rollouts. Tighter margins need more data: the
        # report's minimum detectable effect says how much.
        MetricName.AUTO_SEND_RATE: 0.08,
        MetricName.EDITED_SHARE: 0.20,
        MetricName.OVERSEER_REVISE_RATE: 0.10,
        MetricName.BOOKING_ATTEMPTS: 0.15,
        MetricName.MATCH_RATE: 0.15,
    }
)
"""Per compared metric, the largest harm (in the metric's units, in its regressing direction)
that EXPAND tolerates; the bundle-health rates use their thresholds instead."""

DEFAULT_DETECTION_TARGETS: Mapping[str, float] = MappingProxyType(
    {
        MetricName.CONFIDENCE: 0.03,
        MetricName.AUTO_SEND_RATE: 0.05,
        MetricName.NEEDS_REVIEW_RATE: 0.05,
        MetricName.EDITED_SHARE: 0.05,
        MetricName.OVERSEER_REVISE_RATE: 0.05,
        MetricName.BOOKING_ATTEMPTS: 0.05,
        MetricName.MATCH_RATE: 0.05,
    }
)
"""Per compared metric, the effect the report plans for: how many more records it needs for
it to be detected at 80% power (5 points on each rate, 0.03 on the mean confidence)."""


@dataclass(frozen=True, slots=True)
class GuardrailPolicy:
    """The guardrails' settings; every field has a documented default.

    Args:
        family_alpha: Bound on the chance of a false rollback over all metrics and all checks.
        alpha_weights: Share of ``family_alpha`` per tested metric name; must sum to <= 1.
        planned_n_per_side: The sample size per side at which the confidence sequences are
            tuned to be narrowest (they stay valid before and after it).
        min_samples: Records per side below which a tested metric is ``insufficient_data``.
        practical_margin: A point estimate this far in the regressing direction is called a
            trend in the reason of a metric that holds because its harm is not excluded.
        drift_confirmations: Consecutive regress checks a drift metric needs before it rolls
            back (the first ones hold).
        wrong_bookings_allowed: Wrong bookings the canary may have before it rolls back.
        wrong_booking_alpha: Level of the reported Clopper-Pearson upper bound.
        wrong_bookings_zero_tolerance: While the legacy path has no wrong booking in the
            window, any canary wrong booking beyond the allowance rolls back (the seed's rule;
            its false-rollback risk grows as the legacy path's exposure shrinks, see
            ``docs/guardrails.md``). False: the exact test decides in that case too.
        max_fallback_rate / max_assets_truncation_rate / max_memory_truncation_rate: Bundle
            health thresholds on the canary's own rates.
        previous_window_margin: A bundle-health rate this much above the previous window's warns.
        volume_collapse_ratio: The canary's record count below this share of the previous
            window's rolls back (something stopped writing records).
        volume_min_previous: The previous window needs this many canary records to compare.
        psi_warn / ks_p_warn / wasserstein_warn: Description thresholds (warn only).
        max_unusable_share: Unusable records (``DataQuality``) above this share of records warn.
        odds_ratio_descriptions: Add statsmodels' stratified odds ratio and CMH p-value to each
            rate metric's figures (descriptions only; the simulations turn them off for speed).
        noninferiority_margins: Per compared metric, the harm EXPAND must exclude: the metric
            is ``ok`` only when its harmful-side bound is inside the margin.
        expand_alpha: Level of that harmful-side bound (each metric at the full level: EXPAND
            needs all of them, an intersection-union test).
        detection_targets: Per compared metric, the effect the report's "more records
            needed" plans for (the minimum detectable effect itself needs no setting).
        control_trend_z: The control clients "show a trend" when their own change is beyond
            this many standard errors the regressing way (one-sided 10%); only then must the
            difference-in-differences confirm a regression too.
    """

    family_alpha: float = 0.05
    alpha_weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_ALPHA_WEIGHTS)
    planned_n_per_side: int = 2_000
    min_samples: int = 100
    practical_margin: float = 0.05
    drift_confirmations: int = 2
    wrong_bookings_allowed: int = 0
    wrong_booking_alpha: float = 0.05
    wrong_bookings_zero_tolerance: bool = True
    max_fallback_rate: float = 0.05
    max_assets_truncation_rate: float = 0.30
    max_memory_truncation_rate: float = 0.30
    previous_window_margin: float = 0.05
    volume_collapse_ratio: float = 0.5
    volume_min_previous: int = 200
    psi_warn: float = 0.2
    ks_p_warn: float = 0.001
    wasserstein_warn: float = 0.25
    max_unusable_share: float = 0.01
    odds_ratio_descriptions: bool = True
    noninferiority_margins: Mapping[str, float] = field(
        default_factory=lambda: DEFAULT_NONINFERIORITY_MARGINS
    )
    expand_alpha: float = 0.05
    detection_targets: Mapping[str, float] = field(
        default_factory=lambda: DEFAULT_DETECTION_TARGETS
    )
    control_trend_z: float = 1.2816

    def __post_init__(self) -> None:
        """Refuse a policy whose error split or thresholds make no sense, naming the field."""
        if not 0.0 < self.family_alpha < 1.0:
            raise ValueError(f"family_alpha must be in (0, 1), got {self.family_alpha}")
        unknown = sorted(set(self.alpha_weights) - {str(m) for m in MetricName})
        if unknown:
            raise ValueError(f"alpha_weights names unknown metrics: {', '.join(unknown)}")
        _check_per_metric("noninferiority_margins", self.noninferiority_margins)
        _check_per_metric("detection_targets", self.detection_targets)
        if not math.isfinite(self.control_trend_z) or self.control_trend_z < 0:
            raise ValueError(f"control_trend_z must be finite and >= 0, got {self.control_trend_z}")
        if not 0.0 < self.expand_alpha < 1.0:
            raise ValueError(f"expand_alpha must be in (0, 1), got {self.expand_alpha}")
        if any(w <= 0 or not math.isfinite(w) for w in self.alpha_weights.values()):
            raise ValueError("alpha_weights must be positive and finite")
        if math.fsum(self.alpha_weights.values()) > 1.0 + 1e-9:
            raise ValueError(
                f"alpha_weights sum to {math.fsum(self.alpha_weights.values()):.4f}; at most 1"
            )
        for name in ("planned_n_per_side", "min_samples", "drift_confirmations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "max_fallback_rate",
            "max_assets_truncation_rate",
            "max_memory_truncation_rate",
            "volume_collapse_ratio",
            "max_unusable_share",
            "wrong_booking_alpha",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.wrong_bookings_allowed < 0:
            raise ValueError(
                f"wrong_bookings_allowed must be >= 0, got {self.wrong_bookings_allowed}"
            )

    def alpha(self, metric: str) -> float:
        """The one-sided error this metric's confidence sequence is run at.

        Args:
            metric: A ``MetricName`` value.

        Raises:
            KeyError: The metric has no share of the family error (it is not tested).
        """
        try:
            return self.family_alpha * self.alpha_weights[metric]
        except KeyError:
            raise KeyError(f"metric {metric!r} has no alpha weight in the policy") from None

    def margin(self, metric: str) -> float:
        """The non-inferiority margin EXPAND needs this metric's harmful-side bound inside.

        Args:
            metric: A ``MetricName`` value.

        Raises:
            KeyError: The metric has no margin in the policy.
        """
        try:
            return self.noninferiority_margins[metric]
        except KeyError:
            raise KeyError(
                f"metric {metric!r} has no non-inferiority margin in the policy"
            ) from None


def _check_per_metric(label: str, mapping: Mapping[str, float]) -> None:
    unknown = sorted(set(mapping) - {str(m) for m in MetricName})
    if unknown:
        raise ValueError(f"{label} names unknown metrics: {', '.join(unknown)}")
    if any(v <= 0 or not math.isfinite(v) for v in mapping.values()):
        raise ValueError(f"{label} must be positive and finite")


DEFAULT_POLICY = GuardrailPolicy()
"""The policy ``evaluate`` uses when given none."""
