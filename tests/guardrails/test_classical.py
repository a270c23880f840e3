"""Classical statistics on counts: closed forms, Simpson's paradox, drift descriptions."""

from __future__ import annotations

import pytest
from scipy import stats

from leadctx_flags.guardrails.classical import (
    MIN_PSI_SAMPLES,
    Stratum,
    clopper_pearson_upper,
    ks_from_histograms,
    mantel_haenszel_difference,
    psi,
    stratified_odds_ratio,
    wasserstein_over_sigma,
)


def test_clopper_pearson_with_no_event_is_the_closed_form() -> None:
    # With 0 of n, the exact one-sided upper bound solves (1 - p)^n = alpha.
    assert clopper_pearson_upper(0, 300, 0.05) == pytest.approx(1 - 0.05 ** (1 / 300))
    assert clopper_pearson_upper(3, 200, 0.05) == pytest.approx(stats.beta.ppf(0.95, 4, 197))
    assert clopper_pearson_upper(5, 5, 0.05) == 1.0
    assert clopper_pearson_upper(0, 0, 0.05) == 1.0
    with pytest.raises(ValueError, match="successes <= trials"):
        clopper_pearson_upper(3, 2, 0.05)


def test_mantel_haenszel_difference_is_the_hand_computed_weighted_mean() -> None:
    # Weights n1 n0 / (n1 + n0): 100*100/200 = 50 and 50*200/250 = 40.
    # Differences 0.30 - 0.20 = 0.10 and 0.10 - 0.025 = 0.075; (50*0.1 + 40*0.075) / 90 = 8/90.
    diff = mantel_haenszel_difference(
        [Stratum.of_rates("a", 30, 100, 20, 100), Stratum.of_rates("b", 5, 50, 5, 200)]
    )
    assert diff is not None
    assert diff.estimate == pytest.approx(8 / 90)
    assert diff.contributions == pytest.approx({"a": 5 / 90, "b": 3 / 90})

    # Agresti-Caffo per side: p~ = (x + 1) / (n + 2), variance p~ (1 - p~) / (n + 2).
    def ac(x: int, n: int) -> float:
        p = (x + 1) / (n + 2)
        return p * (1 - p) / (n + 2)

    variance = (50**2 * (ac(30, 100) + ac(20, 100)) + 40**2 * (ac(5, 50) + ac(5, 200))) / 90**2
    assert diff.se == pytest.approx(variance**0.5)
    assert (diff.n1, diff.n0, diff.strata) == (150, 300, 2)


def test_a_client_at_a_rate_of_zero_or_one_keeps_a_positive_variance() -> None:
    # Given small clients with no event, or only events, on both sides (Wald: variance 0)
    strata = [Stratum.of_rates("none", 0, 20, 0, 20), Stratum.of_rates("all", 15, 15, 15, 15)]
    diff = mantel_haenszel_difference(strata)
    assert diff is not None
    # Then the pooled standard error is positive: 1/22 (21/22) / 22 and 1/17 (16/17) / 17
    assert strata[0].var1 == pytest.approx((1 / 22) * (21 / 22) * 20 / 22)
    assert strata[1].var0 == pytest.approx((1 / 17) * (16 / 17) * 15 / 17)
    assert diff.estimate == 0.0
    assert diff.se > 0.02


def test_a_client_mix_shift_with_no_per_client_change_reads_as_no_change() -> None:
    # Per-client rates 10/20/40%, unchanged; the canary's traffic moves to the 40% client.
    before = [("a", 500, 0.1), ("b", 300, 0.2), ("c", 200, 0.4)]
    after = {"a": 300, "b": 300, "c": 400}
    strata = [
        Stratum.of_rates(c, round(after[c] * p), after[c], round(n * p), n) for c, n, p in before
    ]
    diff = mantel_haenszel_difference(strata)
    assert diff is not None
    assert diff.estimate == pytest.approx(0.0, abs=1e-12)
    pooled_after = sum(round(after[c] * p) for c, _, p in before) / 1_000
    pooled_before = sum(round(n * p) for _, n, p in before) / 1_000
    # 25% after vs 19% before: what an unstratified test sees.
    assert pooled_after - pooled_before == pytest.approx(0.06)


def test_strata_seen_on_one_side_only_are_skipped() -> None:
    assert mantel_haenszel_difference([Stratum.of_rates("a", 1, 10, 0, 0)]) is None
    diff = mantel_haenszel_difference(
        [Stratum.of_rates("a", 1, 10, 0, 0), Stratum.of_rates("b", 2, 10, 1, 10)]
    )
    assert diff is not None
    assert diff.strata == 1
    assert diff.estimate == pytest.approx(0.1)


def test_stratified_odds_ratio_is_the_mantel_haenszel_closed_form() -> None:
    # sum(a d / n) / sum(b c / n) = (12 + 3.9) / (7 + 0.9)
    summary = stratified_odds_ratio([(30, 100, 20, 100), (5, 50, 5, 200)])
    assert summary is not None
    assert summary.odds_ratio == pytest.approx(15.9 / 7.9)
    assert 0.0 < summary.p_value < 0.05
    assert stratified_odds_ratio([(0, 10, 0, 10)]) is None  # no event anywhere: uninformative


def test_psi_merges_buckets_into_baseline_deciles_and_waits_for_500_per_side() -> None:
    uniform = [50] * 20  # 1,000 records; each decile is two buckets
    assert psi(uniform, uniform) == pytest.approx(0.0)
    # Canary: 20% in the first decile, none in the second, 10% in each other.
    canary = [100, 100, 0, 0] + [50] * 16
    # (0.2 - 0.1) ln 2 + (1e-4 - 0.1) ln(1e-4 / 0.1) = 0.069315 + 0.690083
    assert psi(uniform, canary) == pytest.approx(0.759398, abs=1e-5)
    small = [MIN_PSI_SAMPLES // 20 - 1] * 20
    assert psi(small, uniform) is None


def test_ks_and_wasserstein_from_histograms() -> None:
    same = [5] * 20
    ks = ks_from_histograms(same, same)
    assert ks is not None
    assert ks.statistic == pytest.approx(0.0)
    assert ks.p_value == pytest.approx(1.0)
    low, high = [100] + [0] * 19, [0] * 19 + [100]
    apart = ks_from_histograms(low, high)
    assert apart is not None
    assert apart.statistic == pytest.approx(1.0)
    assert apart.p_value < 1e-6
    assert ks_from_histograms([0] * 20, same) is None
    # Baseline half at 0.025, half at 0.975 (sigma 0.475); canary all at 0.025: W = 0.475.
    split = [50] + [0] * 18 + [50]
    assert wasserstein_over_sigma(split, low) == pytest.approx(1.0)
    assert wasserstein_over_sigma(low, split) is None  # no spread in the baseline


def test_a_histogram_of_the_wrong_width_is_refused_naming_the_buckets() -> None:
    with pytest.raises(ValueError, match="20 buckets"):
        ks_from_histograms([1] * 10, [1] * 10)
