"""A fast in-memory simulator of rollouts: per-client counts drawn directly, no database.

Each simulated rollout is a sequence of checks over growing data: at check ``k`` of ``K`` every
arm holds ``k / K`` of its final records. Counts are drawn per (rollout, check increment,
client) with numpy (multinomial client mix, binomial outcomes; the confidence sums from their
normal approximation and its histogram from a beta distribution's buckets), summed over
increments, and packed into the same ``Signals`` the database layer fills, so the whole
``evaluate`` path runs on them. The confidence's sums and its histogram are drawn
independently (they describe the same distribution, not the same draws): the mean test reads
the sums, the drift descriptions the histogram.

Used by the tests (a few hundred rollouts) and by ``benchmarks/bench_guardrails.py``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from leadctx_flags.guardrails.classical import ks_from_histograms
from leadctx_flags.guardrails.decision import GuardrailReport, RolloutDecision, evaluate
from leadctx_flags.guardrails.metrics import Verdict
from leadctx_flags.guardrails.policy import DEFAULT_POLICY, GuardrailPolicy
from leadctx_flags.guardrails.sequential import lower_bound
from leadctx_flags.guardrails.signals import (
    CONFIDENCE_BUCKETS,
    Arm,
    ClientArmSignals,
    DataQuality,
    Moments,
    Signals,
)

__all__ = [
    "RolloutOutcome",
    "Scenario",
    "SimulationSummary",
    "contrast_rate",
    "naive_ks_rejects",
    "naive_z_rejects",
    "pooled_sequence_rejects",
    "run_rollouts",
    "simulate_checks",
    "summarise",
]


@dataclass(frozen=True, slots=True)
class Scenario:
    """The knobs of a simulated rollout. Rates are per client unless a scalar.

    Args:
        clients: Canary client ids.
        needs_review_rates: Each canary client's needs-review rate before the switch.
        mix_before / mix_after: The canary clients' shares of records before / after the
            switch (``mix_after`` None: unchanged).
        confidence_means: Each canary client's mean auto-send confidence.
        drafts_per_side: Records per canary arm at the last check.
        checks: Checks over the rollout (data grows linearly).
        control_clients: Number of control clients (0: no control cohort); they share the
            first canary client's rates and an even mix.
        control_drafts_per_side: Records per control arm at the last check (None: as many
            as the canary's).
        send_share: Share of the drafts not needing review that are sent.
        confidence_sd: Per-draft confidence standard deviation.
        resolved_share / edited_share: Needs-review drafts resolved, and edited among those.
        overseer_share / revise_rate: Drafts gated by the overseer, and revised among those.
        parse_share / match_rate / attempt_rate: Drafts with a proposed-times parse, matched
            and booking-attempted among those.
        fallback_rate / assets_truncation / memory_truncation: Bundle health in the canary.
        needs_review_delta / auto_send_delta / confidence_shift / edited_delta /
            revise_delta / match_delta / attempt_delta: True effects in the canary after.
        wrong_booking_rate: Wrong bookings per attempt in the canary after (0: none).
        legacy_wrong_booking_rate: Wrong bookings per attempt on the legacy path (the canary
            before, the controls).
        fixed_baseline: The before arms hold all their records from the first check (what the
            SQL reads without ``--since``: every pre-switch record), instead of growing with
            the after arms (a rolling window).
        trend_needs_review: A change common to every client after the switch time (canary
            and control): not the bundle's doing.
    """

    clients: tuple[str, ...] = ("c0", "c1", "c2")
    needs_review_rates: tuple[float, ...] = (0.2, 0.2, 0.2)
    mix_before: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)
    mix_after: tuple[float, ...] | None = None
    confidence_means: tuple[float, ...] = (0.75, 0.75, 0.75)
    drafts_per_side: int = 2_000
    checks: int = 20
    control_clients: int = 0
    control_drafts_per_side: int | None = None
    send_share: float = 0.7
    confidence_sd: float = 0.12
    resolved_share: float = 0.8
    edited_share: float = 0.3
    overseer_share: float = 0.5
    revise_rate: float = 0.2
    parse_share: float = 0.3
    match_rate: float = 0.7
    attempt_rate: float = 0.5
    fallback_rate: float = 0.01
    assets_truncation: float = 0.1
    memory_truncation: float = 0.1
    needs_review_delta: float = 0.0
    auto_send_delta: float = 0.0
    confidence_shift: float = 0.0
    edited_delta: float = 0.0
    revise_delta: float = 0.0
    match_delta: float = 0.0
    attempt_delta: float = 0.0
    wrong_booking_rate: float = 0.0
    legacy_wrong_booking_rate: float = 0.0
    fixed_baseline: bool = False
    trend_needs_review: float = 0.0

    def __post_init__(self) -> None:
        """Refuse knobs of different lengths or mixes that do not sum to 1, naming the field."""
        n = len(self.clients)
        for name in ("needs_review_rates", "mix_before", "confidence_means"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Scenario.{name} needs one value per client ({n})")
        for name in ("mix_before", "mix_after"):
            mix = getattr(self, name)
            if mix is not None and (len(mix) != n or not math.isclose(sum(mix), 1.0)):
                raise ValueError(f"Scenario.{name} needs {n} shares summing to 1")
        if self.checks < 1 or self.drafts_per_side < self.checks:
            raise ValueError("Scenario.checks must be >= 1 and <= drafts_per_side")


@dataclass(frozen=True, slots=True)
class _Group:
    """The clients of one arm with their parameters (vectors over clients)."""

    clients: tuple[str, ...]
    mix: np.ndarray
    needs_review: np.ndarray
    confidence: np.ndarray
    after: bool
    canary: bool
    drafts: int


def _bucket_probabilities(mean: float, sd: float) -> np.ndarray:
    k = mean * (1.0 - mean) / (sd * sd) - 1.0
    edges = np.linspace(0.0, 1.0, CONFIDENCE_BUCKETS + 1)
    probs: np.ndarray = np.diff(stats.beta.cdf(edges, mean * k, (1.0 - mean) * k))
    normalised: np.ndarray = probs / probs.sum()
    return normalised


def _clip(p: float) -> float:
    return min(max(p, 0.0), 1.0)


def _draw_group(
    rng: np.random.Generator, scenario: Scenario, group: _Group, rollouts: int
) -> dict[str, dict[str, np.ndarray]]:
    """Cumulative counts, per client and field, shaped (rollouts, checks[, buckets])."""
    s, k = scenario, scenario.checks
    size = (rollouts, k)
    if s.fixed_baseline and not group.after:
        per_check = np.zeros(size, dtype=np.int64)
        per_check[:, 0] = group.drafts  # every pre-switch record is there from the start
    else:
        per_check = np.full(size, group.drafts // k)
        per_check[:, : group.drafts % k] += 1
    by_client = rng.multinomial(per_check, group.mix)  # (rollouts, checks, clients)
    effect = group.after and group.canary
    trend = s.trend_needs_review if group.after else 0.0
    out: dict[str, dict[str, np.ndarray]] = {}
    for i, client in enumerate(group.clients):
        n = by_client[..., i]
        nr = _clip(group.needs_review[i] + trend + (s.needs_review_delta if effect else 0.0))
        send = _clip((1.0 - nr) * s.send_share + (s.auto_send_delta if effect else 0.0))
        actions = rng.multinomial(n, [send, nr, max(1.0 - send - nr, 0.0)])
        resolved = rng.binomial(actions[..., 1], s.resolved_share)
        edited = rng.binomial(resolved, _clip(s.edited_share + (s.edited_delta if effect else 0)))
        mean = group.confidence[i] + (s.confidence_shift if effect else 0.0)
        sd = s.confidence_sd
        nf = n.astype(float)
        total = rng.normal(nf * mean, np.sqrt(nf) * sd)
        sample_var = sd * sd * rng.chisquare(np.maximum(nf - 1.0, 1.0)) / np.maximum(nf - 1, 1)
        total_sq = np.maximum(nf - 1.0, 0.0) * sample_var + total**2 / np.maximum(nf, 1.0)
        histogram = rng.multinomial(n, _bucket_probabilities(mean, sd))
        gates = rng.binomial(n, s.overseer_share)
        revise = rng.binomial(gates, _clip(s.revise_rate + (s.revise_delta if effect else 0.0)))
        parses = rng.binomial(n, s.parse_share)
        matched = rng.binomial(parses, _clip(s.match_rate + (s.match_delta if effect else 0.0)))
        attempted = rng.binomial(
            parses, _clip(s.attempt_rate + (s.attempt_delta if effect else 0.0))
        )
        wrong = rng.binomial(
            attempted, s.wrong_booking_rate if effect else s.legacy_wrong_booking_rate
        )
        flag_on = n if effect else np.zeros_like(n)
        fallback = rng.binomial(flag_on, s.fallback_rate)
        shared = flag_on - fallback
        fields = {
            "drafts_evaluated": n,
            "auto_sent": actions[..., 0],
            "needs_review": actions[..., 1],
            "review_resolved": resolved,
            "review_edited": edited,
            "conf_n": n,
            "conf_total": total,
            "conf_total_sq": total_sq,
            "conf_histogram": histogram,
            "overseer_gate": gates,
            "overseer_revise": revise,
            "proposed_parses": parses,
            "proposed_matched": matched,
            "booking_attempted": attempted,
            "booking_wrong": wrong,
            "calls": n,
            "calls_flag_on": flag_on,
            "calls_fallback": fallback,
            "calls_assets_truncated": rng.binomial(shared, s.assets_truncation),
            "calls_memory_truncated": rng.binomial(shared, s.memory_truncation),
        }
        out[client] = {name: np.cumsum(v, axis=1) for name, v in fields.items()}
    return out


_INT_FIELDS = (
    "drafts_evaluated",
    "auto_sent",
    "needs_review",
    "review_resolved",
    "review_edited",
    "overseer_gate",
    "overseer_revise",
    "proposed_parses",
    "proposed_matched",
    "booking_attempted",
    "booking_wrong",
    "calls",
    "calls_flag_on",
    "calls_fallback",
    "calls_assets_truncated",
    "calls_memory_truncated",
)


def _groups(scenario: Scenario) -> dict[Arm, _Group]:
    s = scenario
    nr, conf = np.asarray(s.needs_review_rates), np.asarray(s.confidence_means)
    n = s.drafts_per_side
    groups = {
        Arm.CANARY_BEFORE: _Group(s.clients, np.asarray(s.mix_before), nr, conf, False, True, n),
        Arm.CANARY_AFTER: _Group(
            s.clients, np.asarray(s.mix_after or s.mix_before), nr, conf, True, True, n
        ),
    }
    if s.control_clients:
        ids = tuple(f"control{i}" for i in range(s.control_clients))
        even = np.full(s.control_clients, 1.0 / s.control_clients)
        cnr, cconf = np.full_like(even, nr[0]), np.full_like(even, conf[0])
        cn = s.control_drafts_per_side or n
        groups[Arm.CONTROL_BEFORE] = _Group(ids, even, cnr, cconf, False, False, cn)
        groups[Arm.CONTROL_AFTER] = _Group(ids, even, cnr, cconf, True, False, cn)
    return groups


def simulate_checks(scenario: Scenario, rollouts: int, seed: int) -> list[list[Signals]]:
    """Draw ``rollouts`` simulated rollouts, each a list of ``scenario.checks`` Signals.

    Args:
        scenario: The knobs.
        rollouts: How many independent rollouts.
        seed: numpy's seed: the same seed gives the same rollouts.
    """
    rng = np.random.default_rng(seed)
    drawn = {arm: _draw_group(rng, scenario, g, rollouts) for arm, g in _groups(scenario).items()}
    result: list[list[Signals]] = []
    for r in range(rollouts):
        checks: list[Signals] = []
        for k in range(scenario.checks):
            by_client: dict[tuple[str, Arm], ClientArmSignals] = {}
            for arm, clients in drawn.items():
                for client, f in clients.items():
                    if f["drafts_evaluated"][r, k] == 0:
                        continue
                    confidence = Moments(
                        n=int(f["conf_n"][r, k]),
                        total=float(f["conf_total"][r, k]),
                        total_sq=float(f["conf_total_sq"][r, k]),
                        histogram=tuple(int(x) for x in f["conf_histogram"][r, k]),
                    )
                    ints: dict[str, Any] = {name: int(f[name][r, k]) for name in _INT_FIELDS}
                    by_client[client, arm] = ClientArmSignals(confidence=confidence, **ints)
            checks.append(Signals(by_client, DataQuality(), None, None, None))
        result.append(checks)
    return result


@dataclass(frozen=True, slots=True)
class RolloutOutcome:
    """How one simulated rollout ended.

    Args:
        rolled_back: Some check decided ``rollback``.
        check: The first rollback's check index (0-based), or None.
        metrics: The metrics that regressed at that check.
        final: The last check's decision (the rollback's if one happened).
        expanded: Some check recommended ``expand`` (before any rollback).
    """

    rolled_back: bool
    check: int | None
    metrics: tuple[str, ...]
    final: RolloutDecision
    expanded: bool = False


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    """Rates over simulated rollouts.

    Args:
        rollouts: How many.
        rollback_rate: Share that ended in a rollback (at any check).
        by_metric: Rollbacks per regressing metric (a rollback may count for several).
        final_decisions: The last decision of each rollout, counted.
        outcomes: Each rollout's outcome.
    """

    rollouts: int
    rollback_rate: float
    by_metric: dict[str, int] = field(default_factory=dict)
    final_decisions: dict[str, int] = field(default_factory=dict)
    outcomes: tuple[RolloutOutcome, ...] = ()

    @property
    def expand_any_rate(self) -> float:
        """Share of rollouts told ``expand`` at some check."""
        return sum(o.expanded for o in self.outcomes) / max(len(self.outcomes), 1)

    @property
    def expand_final_rate(self) -> float:
        """Share of rollouts whose last check recommended ``expand``."""
        return self.final_decisions.get(str(RolloutDecision.EXPAND), 0) / max(self.rollouts, 1)


def _run_one(
    checks: Sequence[Signals], policy: GuardrailPolicy, *, stateless: bool = False
) -> RolloutOutcome:
    previous: GuardrailReport | None = None
    earlier: Signals | None = None
    expanded = False
    for k, drawn in enumerate(checks):
        if stateless:
            # No state file: each check sees the records of the checks before it instead.
            signals = dataclasses.replace(drawn, earlier=earlier)
            earlier = signals
            report = evaluate(signals, policy, None)
        else:
            report = evaluate(drawn, policy, previous)
        if report.decision is RolloutDecision.ROLLBACK:
            regressed = tuple(m.name for m in report.metrics if m.verdict is Verdict.REGRESS)
            return RolloutOutcome(True, k, regressed, report.decision, expanded)
        expanded = expanded or report.decision is RolloutDecision.EXPAND
        previous = report
    final = RolloutDecision.HOLD if previous is None else previous.decision
    return RolloutOutcome(False, None, (), final, expanded)


def run_rollouts(
    scenario: Scenario, rollouts: int, seed: int, policy: GuardrailPolicy = DEFAULT_POLICY
) -> SimulationSummary:
    """Run ``evaluate`` at every check of simulated rollouts; a rollback ends a rollout.

    Args:
        scenario: The knobs.
        rollouts: How many rollouts.
        seed: numpy's seed.
        policy: The policy under test.
    """
    return summarise(simulate_checks(scenario, rollouts, seed), policy)


def summarise(
    rollouts: Sequence[Sequence[Signals]],
    policy: GuardrailPolicy = DEFAULT_POLICY,
    *,
    stateless: bool = False,
) -> SimulationSummary:
    """Run ``evaluate`` at every check of already simulated rollouts.

    Args:
        rollouts: From :func:`simulate_checks` (so contrasts can read the same draws).
        policy: The policy under test.
        stateless: Pass no previous report (a lost state file, ``--no-state``): each check
            gets the earlier checks' signals as ``Signals.earlier`` instead, as the CLI reads
            them from the records.
    """
    outcomes = tuple(_run_one(c, policy, stateless=stateless) for c in rollouts)
    by_metric: Counter[str] = Counter(m for o in outcomes for m in o.metrics)
    return SimulationSummary(
        rollouts=len(outcomes),
        rollback_rate=sum(o.rolled_back for o in outcomes) / len(outcomes),
        by_metric=dict(by_metric),
        final_decisions=dict(Counter(str(o.final) for o in outcomes)),
        outcomes=outcomes,
    )


def _pooled_rates(signals: Signals) -> tuple[int, int, int, int]:
    x1 = n1 = x0 = n0 = 0
    for (_, arm), s in signals.by_client.items():
        if arm is Arm.CANARY_AFTER:
            x1, n1 = x1 + s.needs_review, n1 + s.drafts_evaluated
        elif arm is Arm.CANARY_BEFORE:
            x0, n0 = x0 + s.needs_review, n0 + s.drafts_evaluated
    return x1, n1, x0, n0


def naive_z_rejects(signals: Signals, alpha: float = 0.05) -> bool:
    """The naive contrast: an unstratified one-sided z-test of the needs-review rate.

    Re-checked at every look it rolls back far more often than ``alpha``; kept only to measure
    that.

    Args:
        signals: One check.
        alpha: The fixed-sample one-sided level.
    """
    x1, n1, x0, n0 = _pooled_rates(signals)
    if not n1 or not n0:
        return False
    p1, p0 = x1 / n1, x0 / n0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    return se > 0 and (p1 - p0) / se > float(stats.norm.ppf(1.0 - alpha))


def naive_ks_rejects(signals: Signals, alpha: float = 0.05) -> bool:
    """The naive contrast: a KS test of the confidence histograms at a fixed level, every look.

    Args:
        signals: One check.
        alpha: The fixed-sample level.
    """
    after = [0] * CONFIDENCE_BUCKETS
    before = [0] * CONFIDENCE_BUCKETS
    for (_, arm), s in signals.by_client.items():
        target = after if arm is Arm.CANARY_AFTER else before if arm is Arm.CANARY_BEFORE else None
        if target is not None:
            for i, c in enumerate(s.confidence.histogram):
                target[i] += c
    ks = ks_from_histograms(before, after)
    return ks is not None and ks.p_value < alpha


def pooled_sequence_rejects(signals: Signals, alpha: float = 0.03, t_star: int = 2_000) -> bool:
    """The unstratified contrast: our confidence sequence on the pooled needs-review rates.

    Valid over looks, but blind to client mix: a canary whose traffic moves to clients with
    higher rates reads as a regression.

    Args:
        signals: One check.
        alpha: One-sided error.
        t_star: The planned count per side.
    """
    x1, n1, x0, n0 = _pooled_rates(signals)
    if min(n1, n0) < 100:
        return False
    p1, p0 = x1 / n1, x0 / n0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    return lower_bound(p1 - p0, se, min(n1, n0), t_star, alpha).bound > 0


_CONTRASTS = {
    "z": naive_z_rejects,
    "ks": naive_ks_rejects,
    "pooled_sequence": pooled_sequence_rejects,
}


def contrast_rate(rollouts: Sequence[Sequence[Signals]], *, test: str) -> float:
    """Share of rollouts a contrast test would roll back (any check rejects).

    Args:
        rollouts: Simulated rollouts.
        test: ``"z"`` (unstratified needs-review z-test at 5% per look), ``"ks"`` (confidence
            KS at 5% per look) or ``"pooled_sequence"`` (unstratified confidence sequence).
    """
    check = _CONTRASTS[test]
    return sum(any(check(s) for s in checks) for checks in rollouts) / len(rollouts)
