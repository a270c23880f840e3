"""Confidence sequences: closed forms, the two papers agree, coverage by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from leadctx_flags.guardrails.sequential import (
    lower_bound,
    minimum_detectable_effect,
    mixture_z,
    normal_mixture_boundary,
    optimal_mixture_x,
    upper_bound,
)


def test_boundary_at_intrinsic_time_equal_to_rho_is_the_hand_computed_value() -> None:
    # Given v = rho = 1 and alpha = 0.05, u = sqrt(4 ln(sqrt(2) / 0.1 + 1)) = sqrt(4 ln 15.1421)
    # = sqrt(4 * 2.71748) = 3.29696 (worked by hand from Howard et al.'s one-sided bound).
    assert normal_mixture_boundary(1.0, 1.0, 0.05) == pytest.approx(3.29696, abs=1e-5)
    # And it scales as sqrt: at v = rho = 4 the boundary doubles.
    assert normal_mixture_boundary(4.0, 4.0, 0.05) == pytest.approx(2 * 3.29696, abs=1e-4)


@pytest.mark.parametrize(
    ("v", "x", "alpha"), [(7.0, 7 / 3, 0.05), (250.0, 9.5, 0.025), (1e4, 0.3, 0.001)]
)
def test_waudby_smith_margin_is_howard_boundary_over_sqrt_v(
    v: float, x: float, alpha: float
) -> None:
    # Given the same mixture (Howard's rho = v / x in intrinsic time)
    # Then the asymptotic-CS margin in standard errors is u(v) / sqrt(v).
    assert mixture_z(x, alpha) == pytest.approx(
        normal_mixture_boundary(v, v / x, alpha) / math.sqrt(v)
    )


def test_rho_is_tuned_so_the_bound_is_narrowest_at_the_planned_count() -> None:
    alpha = 0.03
    x = optimal_mixture_x(alpha)
    z_at_plan = lower_bound(0.0, 1.0, 2_000, 2_000, alpha).z
    assert z_at_plan == pytest.approx(mixture_z(x, alpha))
    # Any other tuning gives a wider margin at the planned count.
    assert all(mixture_z(x * f, alpha) > z_at_plan for f in (0.5, 0.8, 1.25, 2.0))
    # Wider than the fixed-sample one-sided z (1.88 at 3%): the price of looking at any time.
    assert 2.9 < z_at_plan < 3.1


def test_lower_and_upper_bounds_are_the_estimate_minus_and_plus_the_margin() -> None:
    low = lower_bound(0.05, 0.01, 500, 2_000, 0.025)
    high = upper_bound(0.05, 0.01, 500, 2_000, 0.025)
    assert low.bound == pytest.approx(0.05 - 0.01 * low.z)
    assert high.bound == pytest.approx(0.05 + 0.01 * high.z)
    assert low.z == high.z
    # Fewer samples than planned: a wider margin than at the plan.
    assert low.z > lower_bound(0.05, 0.01, 2_000, 2_000, 0.025).z


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: normal_mixture_boundary(1.0, 0.0, 0.05), "rho > 0"),
        (lambda: mixture_z(1.0, 1.5), "alpha"),
        (lambda: lower_bound(0.0, -1.0, 10, 10, 0.05), "se"),
        (lambda: upper_bound(0.0, 1.0, 0, 10, 0.05), "t > 0"),
    ],
)
def test_bad_arguments_are_refused_naming_them(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def _crossing_rates(
    paths: int, looks: int, per_look: int, alpha: float, rate: float
) -> tuple[float, float]:
    """Share of null paths whose lower bound ever exceeds the truth: sequence vs fixed z."""
    rng = np.random.default_rng(20260101)
    # Bernoulli(rate) minus Bernoulli(rate): the difference of two rates, plug-in variance.
    a = rng.binomial(per_look, rate, size=(paths, looks)).cumsum(axis=1)
    b = rng.binomial(per_look, rate, size=(paths, looks)).cumsum(axis=1)
    n = per_look * np.arange(1, looks + 1)
    pa, pb = a / n, b / n
    se = np.sqrt(pa * (1 - pa) / n + pb * (1 - pb) / n)
    z_seq = np.array([lower_bound(0.0, 1.0, float(t), float(n[-1]), alpha).z for t in n])
    seq = ((pa - pb - se * z_seq) > 0).any(axis=1).mean()
    fixed = ((pa - pb - se * 1.6449) > 0).any(axis=1).mean()
    return float(seq), float(fixed)


@pytest.mark.parametrize("rate", [0.2, 0.02])
def test_time_uniform_coverage_holds_where_a_rechecked_z_interval_fails(rate: float) -> None:
    # Given 2,000 null paths checked at 200 looks (50 per side per look), a common rate and a
    # rare one (where the plug-in variance is at its least reliable)
    paths, alpha = 2_000, 0.05
    seq, fixed = _crossing_rates(paths, looks=200, per_look=50, alpha=alpha, rate=rate)
    # Then the sequence's lower bound crosses the truth at most alpha of the time (within
    # three Monte-Carlo standard errors) while a 95% one-sided z-interval re-checked at every
    # look crosses it in far more than 5% of paths.
    mc = 3 * math.sqrt(alpha * (1 - alpha) / paths)
    assert seq <= alpha + mc
    assert fixed > 0.2


def test_the_minimum_detectable_effect_is_the_margin_plus_the_power_quantile() -> None:
    found = minimum_detectable_effect(0.02, 500, 2_000, 0.03, target=0.05)
    z = lower_bound(0.0, 1.0, 500, 2_000, 0.03).z
    assert found.mde == pytest.approx(0.02 * (z + stats.norm.ppf(0.8)))
    # The target needs n with se sqrt(500 / n) (z(n) + z_0.8) = target, and no fewer
    assert found.needed is not None
    assert found.more == found.needed - 500
    at = lower_bound(0.0, 1.0, found.needed, 2_000, 0.03).z
    assert 0.02 * math.sqrt(500 / found.needed) * (at + stats.norm.ppf(0.8)) <= 0.05
    before = lower_bound(0.0, 1.0, found.needed - 1, 2_000, 0.03).z
    assert 0.02 * math.sqrt(500 / (found.needed - 1)) * (before + stats.norm.ppf(0.8)) > 0.05
    # Already detectable: nothing more; never detectable: None
    assert minimum_detectable_effect(0.001, 500, 2_000, 0.03, target=0.05).more == 0
    assert minimum_detectable_effect(1e6, 500, 2_000, 0.03, target=0.05).needed is None


def test_an_effect_dependent_standard_error_gives_the_fixed_point() -> None:
    # se grows with the effect: se(d) = 0.01 (1 + d); the MDE solves d = 0.01 (1 + d) k
    k = lower_bound(0.0, 1.0, 2_000, 2_000, 0.03).z + stats.norm.ppf(0.8)
    found = minimum_detectable_effect(
        0.01, 2_000, 2_000, 0.03, target=0.05, se_at=lambda d: 0.01 * (1 + d)
    )
    assert found.mde == pytest.approx(0.01 * k / (1 - 0.01 * k))
