"""Classical statistics on aggregated counts: exact bounds, stratified differences, drift.

Everything here reads counts or 20-bucket histograms (``signals.CONFIDENCE_BUCKETS``), never
rows. scipy and statsmodels do the work wherever they can:

* :func:`clopper_pearson_upper`: the exact one-sided upper bound of a binomial rate
  (scipy's inverse regularised incomplete beta function).
* :func:`mantel_haenszel_difference`: the stratified difference of rates or means with
  Mantel-Haenszel weights ``w_k = n1_k n0_k / (n1_k + n0_k)``, so a shift in client mix is not
  read as a change (Simpson's paradox); :func:`stratified_odds_ratio` adds statsmodels'
  ``StratifiedTable`` (the classical pooled odds ratio and its test) as a description.
* :func:`psi`, :func:`ks_from_histograms`, :func:`wasserstein_over_sigma`: drift descriptions of
  the confidence distribution. They may only warn: they are not sequentially valid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats
from statsmodels.stats.contingency_tables import StratifiedTable

from leadctx_flags.guardrails.signals import CONFIDENCE_BUCKETS

__all__ = [
    "MIN_PSI_SAMPLES",
    "KSResult",
    "OddsRatioSummary",
    "RateTest",
    "StratifiedDifference",
    "Stratum",
    "clopper_pearson_upper",
    "conditional_rate_test",
    "ks_from_histograms",
    "mantel_haenszel_difference",
    "psi",
    "stratified_odds_ratio",
    "wasserstein_over_sigma",
]

MIN_PSI_SAMPLES = 500
"""PSI needs this many records per side: with no change its mean is about 0.19 at 100 per side."""

_PSI_EPSILON = 1e-4  # an empty bin would make log(c/b) infinite; this floor is the usual one


def clopper_pearson_upper(successes: int, trials: int, alpha: float) -> float:
    """The exact one-sided ``1 - alpha`` upper bound of a binomial rate.

    Args:
        successes: Events counted (``0 <= successes <= trials``).
        trials: Trials counted; with none the bound is 1.
        alpha: One-sided error, in (0, 1).

    Returns:
        The Clopper-Pearson upper bound, the ``1 - alpha`` quantile of
        ``Beta(successes + 1, trials - successes)`` (the upper end of statsmodels'
        ``proportion_confint(method="beta")`` at ``2 alpha``; scipy's inverse incomplete beta
        is called directly because the guardrails evaluate it at every check).
    """
    if not 0 <= successes <= trials:
        raise ValueError(
            f"clopper_pearson_upper needs 0 <= successes <= trials, got {successes}/{trials}"
        )
    if trials == 0:
        return 1.0
    if successes == trials:
        return 1.0
    return float(special.betaincinv(successes + 1, trials - successes, 1.0 - alpha))


@dataclass(frozen=True, slots=True)
class RateTest:
    """The exact conditional comparison of two event rates (``conditional_rate_test``).

    Args:
        ratio: The one-sided beta-mixture likelihood ratio (a test martingale under equal
            rates: ``P(ever >= 1 / alpha) <= alpha``).
        p_value: scipy's one-sided ``binomtest`` p-value at this check alone (a description).
        share: The first side's share of the exposure, ``pi``.
    """

    ratio: float
    p_value: float
    share: float


def conditional_rate_test(x1: int, n1: int, x0: int, n0: int) -> RateTest:
    """Is the rate ``x1 / n1`` higher than ``x0 / n0``? Exact, from the counts only.

    Conditional on ``W = x1 + x0`` events, under equal rates ``x1 ~ Binomial(W, pi)`` with
    ``pi = n1 / (n1 + n0)``. Each event falls on side 1 with probability ``pi``, so the
    likelihood ratio of a rate ``q`` against ``pi``, mixed over ``q ~ Uniform(pi, 1)``, is a
    nonnegative martingale in the sequence of events under the null (Robbins' mixture; Howard
    et al. 2021, section 3): by Ville's inequality it reaches ``1 / alpha`` with probability at
    most ``alpha``, over every check at once. In closed form,

        ratio = B(x1 + 1, x0 + 1) (1 - I_pi(x1 + 1, x0 + 1)) / ((1 - pi) pi^x1 (1 - pi)^x0).

    The exposure share is taken as steady within the window (the counts carry no order).

    Args:
        x1 / n1: Events and exposure on the side tested for a higher rate (the canary).
        x0 / n0: Events and exposure on the reference side (the legacy path).

    Raises:
        ValueError: A count is negative, or a side has events but no exposure.
    """
    if min(x1, n1, x0, n0) < 0 or x1 > n1 or x0 > n0 or n1 + n0 == 0:
        raise ValueError(
            f"conditional_rate_test needs 0 <= events <= exposure, got {x1}/{n1} and {x0}/{n0}"
        )
    pi = n1 / (n1 + n0)
    total = x1 + x0
    if total == 0 or pi in (0.0, 1.0):
        return RateTest(ratio=1.0 if total == 0 else 0.0, p_value=1.0, share=pi)
    log_mixture = special.betaln(x1 + 1, x0 + 1) + math.log(
        max(float(special.betaincc(x1 + 1, x0 + 1, pi)), 1e-300)
    )
    log_null = x1 * math.log(pi) + (x0 + 1) * math.log1p(-pi)
    ratio = math.exp(min(log_mixture - log_null, 700.0))
    p_value = float(stats.binomtest(x1, total, pi, alternative="greater").pvalue)
    return RateTest(ratio=ratio, p_value=p_value, share=pi)


@dataclass(frozen=True, slots=True)
class Stratum:
    """One client's two samples: mean and variance per observation, and counts.

    Args:
        label: The client id.
        n1 / mean1 / var1: The canary side (count, mean, per-observation variance).
        n0 / mean0 / var0: The baseline side.
    """

    label: str
    n1: int
    mean1: float
    var1: float
    n0: int
    mean0: float
    var0: float

    @classmethod
    def of_rates(cls, label: str, x1: int, n1: int, x0: int, n0: int) -> Stratum:
        """A stratum of two binomial rates.

        Args:
            label: The client id.
            x1 / n1: Canary events and trials.
            x0 / n0: Baseline events and trials.
        """
        # Counts where events exceed trials (inconsistent records) are read as a rate of 1.
        x1, x0 = min(x1, n1), min(x0, n0)
        p1 = x1 / n1 if n1 else 0.0
        p0 = x0 / n0 if n0 else 0.0
        return cls(label, n1, p1, _adjusted_variance(x1, n1), n0, p0, _adjusted_variance(x0, n0))


def _adjusted_variance(x: int, n: int) -> float:
    """Per-observation variance of a rate with one success and one failure added (Agresti-Caffo).

    ``p~ = (x + 1) / (n + 2)`` and the variance of the rate is ``p~ (1 - p~) / (n + 2)``;
    returned times ``n`` (the stratum divides by ``n``). Unlike the Wald ``p (1 - p)`` it stays
    positive for a client whose rate is 0 or 1, so a small client seen with no event (or only
    events) does not shrink the standard error. Agresti & Caffo, "Simple and effective
    confidence intervals for proportions and differences of proportions result from adding two
    successes and two failures", The American Statistician 54(4), 2000.
    """
    if n == 0:
        return 0.0
    tilde = (x + 1) / (n + 2)
    return tilde * (1.0 - tilde) * n / (n + 2)


@dataclass(frozen=True, slots=True)
class StratifiedDifference:
    """A Mantel-Haenszel stratified difference (canary minus baseline).

    Args:
        estimate: ``sum w_k (mean1_k - mean0_k) / sum w_k``.
        se: Its standard error, ``sqrt(sum w_k^2 (var1_k / n1_k + var0_k / n0_k)) / sum w_k``.
        n1 / n0: Observations used per side (strata with both sides only).
        strata: Strata used.
        contributions: Per client, ``w_k (mean1_k - mean0_k) / sum w_k`` (sums to ``estimate``).
    """

    estimate: float
    se: float
    n1: int
    n0: int
    strata: int
    contributions: dict[str, float]


def mantel_haenszel_difference(strata: Sequence[Stratum]) -> StratifiedDifference | None:
    """The stratified difference with MH weights; None when no stratum has both sides.

    The variance is the unpooled one per stratum (for rates, Agresti-Caffo's: one success and
    one failure added to each side, so it stays positive at a rate of 0 or 1); the weights are
    the MH risk-difference weights, which are also the inverse-variance weights when the
    variance is the same on both sides, and never let a client seen on one side only move the
    estimate.

    Args:
        strata: One per client; a stratum with a side of zero count is skipped.
    """
    used = [s for s in strata if s.n1 > 0 and s.n0 > 0]
    if not used:
        return None
    weights = [s.n1 * s.n0 / (s.n1 + s.n0) for s in used]
    total = math.fsum(weights)
    diffs = [s.mean1 - s.mean0 for s in used]
    estimate = math.fsum(w * d for w, d in zip(weights, diffs, strict=True)) / total
    variance = math.fsum(
        w * w * (s.var1 / s.n1 + s.var0 / s.n0) for w, s in zip(weights, used, strict=True)
    ) / (total * total)
    return StratifiedDifference(
        estimate=estimate,
        se=math.sqrt(max(variance, 0.0)),
        n1=sum(s.n1 for s in used),
        n0=sum(s.n0 for s in used),
        strata=len(used),
        contributions={
            s.label: w * d / total for s, w, d in zip(used, weights, diffs, strict=True)
        },
    )


@dataclass(frozen=True, slots=True)
class OddsRatioSummary:
    """statsmodels' ``StratifiedTable`` summary (a description, never a verdict).

    Args:
        odds_ratio: The Mantel-Haenszel pooled odds ratio.
        p_value: The Cochran-Mantel-Haenszel test of a common odds ratio of 1 (two-sided).
    """

    odds_ratio: float
    p_value: float


def stratified_odds_ratio(tables: Sequence[tuple[int, int, int, int]]) -> OddsRatioSummary | None:
    """The classical stratified odds ratio over 2x2 tables ``(x1, n1, x0, n0)``.

    Args:
        tables: Per client: canary events and trials, baseline events and trials. Tables with
            an empty row or column carry no information and are skipped.

    Returns:
        The summary, or None when no table is informative or the figures are not finite.
    """
    informative = [
        [[x1, n1 - x1], [x0, n0 - x0]]
        for x1, n1, x0, n0 in tables
        if n1 > 0 and n0 > 0 and 0 < x1 + x0 < n1 + n0
    ]
    if not informative:
        return None
    table = StratifiedTable(np.asarray(informative, dtype=float).transpose(1, 2, 0))
    # A zero cell makes some ratios infinite; the summary is then just not reported.
    with np.errstate(divide="ignore", invalid="ignore"):
        odds_ratio = float(table.oddsratio_pooled)
        p_value = float(table.test_null_odds(correction=True).pvalue)
    if not (math.isfinite(odds_ratio) and math.isfinite(p_value)):
        return None
    return OddsRatioSummary(odds_ratio=odds_ratio, p_value=p_value)


def _proportions(histogram: Sequence[int]) -> np.ndarray:
    counts = np.asarray(histogram, dtype=float)
    if counts.shape != (CONFIDENCE_BUCKETS,):
        raise ValueError(
            f"a confidence histogram needs {CONFIDENCE_BUCKETS} buckets, got {counts.shape[0]}"
        )
    proportions: np.ndarray = counts / counts.sum()
    return proportions


def psi(baseline: Sequence[int], canary: Sequence[int]) -> float | None:
    """Population stability index over the baseline's deciles, from 20-bucket histograms.

    The 20 buckets are merged, in order, into up to 10 bins that each hold about a tenth of
    the baseline (a bin closes once the baseline's cumulative share reaches the next decile),
    then ``PSI = sum (c_i - b_i) ln(c_i / b_i)`` with shares floored at 1e-4.

    Args:
        baseline: The baseline's bucket counts.
        canary: The canary's bucket counts.

    Returns:
        The PSI, or None below ``MIN_PSI_SAMPLES`` records on either side.
    """
    if sum(baseline) < MIN_PSI_SAMPLES or sum(canary) < MIN_PSI_SAMPLES:
        return None
    b, c = _proportions(baseline), _proportions(canary)
    bins_b: list[float] = []
    bins_c: list[float] = []
    acc_b = acc_c = 0.0
    cumulative = 0.0
    next_decile = 0.1
    for share_b, share_c in zip(b, c, strict=True):
        acc_b += share_b
        acc_c += share_c
        cumulative += share_b
        if cumulative >= next_decile - 1e-12:
            bins_b.append(acc_b)
            bins_c.append(acc_c)
            acc_b = acc_c = 0.0
            while next_decile <= cumulative + 1e-12:
                next_decile += 0.1
    if acc_b > 0 or acc_c > 0:
        bins_b.append(acc_b)
        bins_c.append(acc_c)
    pb = np.maximum(np.asarray(bins_b), _PSI_EPSILON)
    pc = np.maximum(np.asarray(bins_c), _PSI_EPSILON)
    return float(np.sum((pc - pb) * np.log(pc / pb)))


@dataclass(frozen=True, slots=True)
class KSResult:
    """The two-sample Kolmogorov-Smirnov statistic on bucket edges, and its asymptotic p-value.

    Args:
        statistic: ``max |F_canary - F_baseline|`` over the 19 inner bucket edges (a lower
            bound of the statistic on the raw values).
        p_value: Kolmogorov's asymptotic p-value at ``sqrt(n1 n0 / (n1 + n0)) * statistic``.
    """

    statistic: float
    p_value: float


def ks_from_histograms(baseline: Sequence[int], canary: Sequence[int]) -> KSResult | None:
    """Two-sample KS from histograms; None when a side is empty.

    Args:
        baseline: The baseline's bucket counts.
        canary: The canary's bucket counts.
    """
    n0, n1 = sum(baseline), sum(canary)
    if n0 == 0 or n1 == 0:
        return None
    gap = np.abs(np.cumsum(_proportions(canary)) - np.cumsum(_proportions(baseline)))
    statistic = float(gap.max())
    effective_n = n1 * n0 / (n1 + n0)
    p_value = float(special.kolmogorov(math.sqrt(effective_n) * statistic))
    return KSResult(statistic=statistic, p_value=min(max(p_value, 0.0), 1.0))


def wasserstein_over_sigma(baseline: Sequence[int], canary: Sequence[int]) -> float | None:
    """The first Wasserstein distance between the histograms, over the baseline's spread.

    Each bucket stands at its midpoint; the distance is divided by the baseline's standard
    deviation from the same histogram, so 0.1 reads "a tenth of a standard deviation".

    Args:
        baseline: The baseline's bucket counts.
        canary: The canary's bucket counts.

    Returns:
        The ratio, or None when a side is empty or the baseline has no spread.
    """
    if sum(baseline) == 0 or sum(canary) == 0:
        return None
    mids = (np.arange(CONFIDENCE_BUCKETS) + 0.5) / CONFIDENCE_BUCKETS
    wb, wc = _proportions(baseline), _proportions(canary)
    mean_b = float(np.dot(mids, wb))
    sigma_b = math.sqrt(float(np.dot((mids - mean_b) ** 2, wb)))
    if sigma_b == 0.0:
        return None
    return float(stats.wasserstein_distance(mids, mids, wb, wc)) / sigma_b
