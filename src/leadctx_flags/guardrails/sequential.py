"""One-sided anytime-valid confidence sequences for a difference, from the published formulas.

A guardrail is checked again and again as data accumulates. A fixed-sample interval re-checked
at every look is wrong far more often than its level says (a one-sided z-test at 20 looks
rejects a true null in about a fifth of runs); a confidence sequence holds at every look at
once: ``P(exists t: theta < lower_t) <= alpha``.

The construction is the Gaussian-mixture boundary, used two ways that are the same formula:

* Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence
  sequences", Ann. Statist. 49(2), 2021: the normal-mixture boundary in its one-sided form
  (the mixture over ``lambda >= 0``, a half-normal of precision ``rho``), with the closed-form
  bound the paper gives for it: for a process ``S`` with intrinsic time ``V`` (its variance
  process),

      u(v) = sqrt( 2 (v + rho) * log( sqrt((v + rho) / rho) / (2 alpha) + 1 ) ),

  and ``P(exists v: S_v >= u(v)) <= alpha`` for a Gaussian (or sub-Gaussian) martingale.
* Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas, "Time-uniform central limit theory and
  asymptotic confidence sequences", Ann. Statist. 52(6), 2024, section 2 (the Gaussian-mixture
  asymptotic confidence sequence): with the plug-in standard deviation ``sigma_hat_t`` of an
  asymptotically linear estimator after ``t`` observations, the one-sided margin is

      sigma_hat_t * sqrt(2 (t rho^2 + 1) / (t^2 rho^2) * log(1 + sqrt(t rho^2 + 1) / (2 alpha))).

  This is ``u(v) / v`` with ``v = t / sigma_hat_t^2`` (information, i.e. ``1 / se^2``) and the
  Howard ``rho`` equal to ``1 / (rho^2 sigma_hat^2)``; the coverage is asymptotic (a CLT made
  uniform in time), which is what a difference of rates or means needs.

Here every estimate arrives as ``(estimate, se)`` with ``se`` its plug-in standard error, so the
margin is ``se * z(x)`` with ``x = t rho^2``; ``rho`` is tuned (numerically, once per ``alpha``)
so the margin is narrowest when ``t`` reaches the planned sample size ``t_star``, which is
Waudby-Smith et al.'s recommendation. Only ``t / t_star`` enters, so ``t`` may be any count that
grows with the data (the guardrails use the smaller side's sample count).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from scipy.optimize import brentq, minimize_scalar

__all__ = [
    "POWER",
    "Detectable",
    "OneSidedBound",
    "lower_bound",
    "minimum_detectable_effect",
    "mixture_z",
    "normal_mixture_boundary",
    "optimal_mixture_x",
    "upper_bound",
]


def normal_mixture_boundary(v: float, rho: float, alpha: float) -> float:
    """Howard et al. (2021) one-sided normal-mixture boundary ``u(v)`` (closed-form bound).

    Args:
        v: Intrinsic time (the variance process), ``>= 0``.
        rho: The mixture's scale, in the units of ``v``, ``> 0``.
        alpha: One-sided crossing probability, in (0, 1).

    Returns:
        ``sqrt(2 (v + rho) log(sqrt((v + rho) / rho) / (2 alpha) + 1))``.
    """
    _check_alpha(alpha)
    if v < 0 or rho <= 0:
        raise ValueError(f"normal_mixture_boundary needs v >= 0 and rho > 0, got v={v}, rho={rho}")
    return math.sqrt(2.0 * (v + rho) * math.log(math.sqrt((v + rho) / rho) / (2.0 * alpha) + 1.0))


def mixture_z(x: float, alpha: float) -> float:
    """The margin in standard errors at ``x = t rho^2`` (Waudby-Smith et al. 2024, one-sided).

    Args:
        x: ``t * rho^2``, ``> 0``.
        alpha: One-sided error, in (0, 1).

    Returns:
        ``sqrt(2 (x + 1) / x * log(1 + sqrt(x + 1) / (2 alpha)))``; equal to ``u(v) / sqrt(v)``
        of :func:`normal_mixture_boundary` with ``rho = v / x``.
    """
    _check_alpha(alpha)
    if x <= 0:
        raise ValueError(f"mixture_z needs x > 0, got {x}")
    return math.sqrt(2.0 * (x + 1.0) / x * math.log(1.0 + math.sqrt(x + 1.0) / (2.0 * alpha)))


@lru_cache(maxsize=64)
def optimal_mixture_x(alpha: float) -> float:
    """The ``x = t_star rho^2`` that makes the margin narrowest at the planned time ``t_star``.

    Args:
        alpha: One-sided error, in (0, 1).

    Returns:
        The minimiser of :func:`mixture_z` over ``x`` (about 9.5 at ``alpha = 0.025``).
    """
    _check_alpha(alpha)
    result = minimize_scalar(
        lambda log_x: mixture_z(math.exp(log_x), alpha), bounds=(-5.0, 8.0), method="bounded"
    )
    return math.exp(float(result.x))


@dataclass(frozen=True, slots=True)
class OneSidedBound:
    """A one-sided confidence-sequence bound on a difference.

    Args:
        estimate: The point estimate.
        bound: The lower (or upper) bound, valid at every look at once.
        z: The margin in standard errors (``(estimate - bound) / se`` in absolute value).
    """

    estimate: float
    bound: float
    z: float


def _margin_z(t: float, t_star: float, alpha: float) -> float:
    if t <= 0 or t_star <= 0:
        raise ValueError(
            f"confidence sequence needs t > 0 and t_star > 0, got t={t}, t_star={t_star}"
        )
    return mixture_z(optimal_mixture_x(alpha) * t / t_star, alpha)


def lower_bound(estimate: float, se: float, t: float, t_star: float, alpha: float) -> OneSidedBound:
    """Anytime-valid lower bound: ``P(exists look: theta < lower) <= alpha`` (asymptotically).

    Args:
        estimate: The estimate of ``theta`` from all data so far.
        se: Its plug-in standard error (``>= 0``).
        t: The sample count so far (any count proportional to the information).
        t_star: The planned count at which the bound is tuned to be narrowest.
        alpha: One-sided error, in (0, 1).

    Returns:
        The bound ``estimate - se * z``.
    """
    if se < 0 or not math.isfinite(se):
        raise ValueError(f"lower_bound needs a finite se >= 0, got {se}")
    z = _margin_z(t, t_star, alpha)
    return OneSidedBound(estimate=estimate, bound=estimate - se * z, z=z)


def upper_bound(estimate: float, se: float, t: float, t_star: float, alpha: float) -> OneSidedBound:
    """Anytime-valid upper bound: ``P(exists look: theta > upper) <= alpha`` (asymptotically).

    Args:
        estimate: The estimate of ``theta`` from all data so far.
        se: Its plug-in standard error (``>= 0``).
        t: The sample count so far.
        t_star: The planned count at which the bound is tuned to be narrowest.
        alpha: One-sided error, in (0, 1).

    Returns:
        The bound ``estimate + se * z``.
    """
    if se < 0 or not math.isfinite(se):
        raise ValueError(f"upper_bound needs a finite se >= 0, got {se}")
    z = _margin_z(t, t_star, alpha)
    return OneSidedBound(estimate=estimate, bound=estimate + se * z, z=z)


POWER = 0.8
"""The power at which :func:`minimum_detectable_effect` is stated."""

_Z_POWER = 0.8416212335729143  # the standard normal quantile at POWER


@dataclass(frozen=True, slots=True)
class Detectable:
    """What a check can detect: the MDE now, and the sample the target effect needs.

    Args:
        mde: The smallest true change the bound confirms with probability ``POWER`` at this
            look, given the standard error so far.
        target: The effect the sample is planned for.
        needed: The count (``t``'s unit) at which the target is detectable at ``POWER``, or
            None when no count up to a billion is enough.
        more: ``needed - t`` (0 when the target is already detectable).
    """

    mde: float
    target: float
    needed: int | None
    more: int | None


def minimum_detectable_effect(
    se: float,
    t: float,
    t_star: float,
    alpha: float,
    target: float,
    *,
    se_at: Callable[[float], float] | None = None,
) -> Detectable:
    """The effect this look detects at 80% power, and the count the ``target`` effect needs.

    The bound confirms a change ``delta`` when ``estimate - se z(t) > 0``; with the estimate
    normal around ``delta``, that happens with probability ``POWER`` when
    ``delta = se (z(t) + z_power)``. At a later count ``n`` the standard error scales as
    ``se sqrt(t / n)`` (the same traffic), so the target needs the smallest ``n >= t`` with
    ``se sqrt(t / n) (z(n) + z_power) <= target`` (found by scipy's ``brentq``). When the
    standard error depends on the effect (a rate's variance moves with the rate), ``se_at``
    gives it under a true change ``delta`` and the MDE is the fixed point of
    ``delta = se_at(delta) (z(t) + z_power)``.

    Args:
        se: The standard error of the tested change now.
        t: The count so far (the smaller side's).
        t_star: The planned count the sequence is tuned for.
        alpha: The sequence's one-sided error.
        target: The effect to plan for (``> 0``).
        se_at: The standard error now under a true change ``delta`` (default: ``se``).
    """
    if se < 0 or not math.isfinite(se) or target <= 0:
        raise ValueError(f"minimum_detectable_effect needs se >= 0 and target > 0, got {se}")
    z_now = _margin_z(t, t_star, alpha) + _Z_POWER
    mde = se * z_now
    if se_at is not None:
        for _ in range(20):  # a contraction: the variance moves slowly with the effect
            mde, last = se_at(mde) * z_now, mde
            if abs(mde - last) < 1e-9:
                break
    se_target = se if se_at is None else se_at(target)

    def mde_at(n: float) -> float:
        return se_target * math.sqrt(t / n) * (_margin_z(n, t_star, alpha) + _Z_POWER)

    if mde_at(t) <= target:
        return Detectable(mde=mde, target=target, needed=math.ceil(t), more=0)
    ceiling = 1e9
    if mde_at(ceiling) > target:
        return Detectable(mde=mde, target=target, needed=None, more=None)
    needed = brentq(lambda log_n: mde_at(math.exp(log_n)) - target, math.log(t), math.log(ceiling))
    n = math.ceil(math.exp(needed))
    return Detectable(mde=mde, target=target, needed=n, more=max(n - math.ceil(t), 0))


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
