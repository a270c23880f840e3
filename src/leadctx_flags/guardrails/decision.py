"""The rollout decision: expand, hold or roll back, from every metric's verdict.

Rules, in order:

1. ``rollback`` when any metric regresses: a critical one (wrong bookings, the canary's volume
   collapsing) or a statistical one whose anytime-valid sequence confirms the regression (a
   drift metric only after its consecutive confirmations).
2. ``hold`` when any metric warns or lacks data.
3. ``expand`` when every metric is ``ok`` with its minimum samples met. ``expand`` is a
   recommendation only: nothing ever widens the rollout automatically; only a rollback is
   applied (``leadctx guardrails report --apply``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum, unique
from typing import Any

from leadctx_flags.guardrails.metrics import MetricResult, Verdict, evaluate_metrics
from leadctx_flags.guardrails.policy import DEFAULT_POLICY, GuardrailPolicy
from leadctx_flags.guardrails.signals import Arm, DataQuality, Signals

__all__ = ["REPORT_SCHEMA", "GuardrailReport", "RolloutDecision", "evaluate", "window_notes"]

REPORT_SCHEMA = "leadctx.guardrails-report/v1"
"""The ``schema`` field of a report's JSON, so a state file from another version is refused."""


@unique
class RolloutDecision(StrEnum):
    """What the guardrails recommend at one check."""

    EXPAND = "expand"
    HOLD = "hold"
    ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class GuardrailReport:
    """One check's outcome: the decision, every metric, and who a rollback concerns.

    Args:
        decision: ``expand | hold | rollback``.
        metrics: Every metric's result, in catalogue order.
        affected_clients: The canary clients whose data drives a rollback (every canary client
            when the regression is global); empty unless the decision is ``rollback``.
        reasons: One line per metric that is not ``ok``, or a single line saying all are.
        quality: The unusable records counted (``DataQuality`` fields).
        canary_clients: Every client seen in the canary after the switch.
        window_start / window_end / switch_time: Copied from the signals.
        notes: What the operator should know to read the check (e.g. a window with no
            pre-switch record, and the ``--since`` that gives it one).
    """

    decision: RolloutDecision
    metrics: tuple[MetricResult, ...]
    affected_clients: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    quality: Mapping[str, int] = field(default_factory=dict)
    canary_clients: tuple[str, ...] = ()
    window_start: str | None = None
    window_end: str | None = None
    switch_time: str | None = None
    notes: tuple[str, ...] = ()

    def metric(self, name: str) -> MetricResult:
        """The result of one metric.

        Args:
            name: A ``MetricName`` value.

        Raises:
            KeyError: No metric of that name in the report.
        """
        for result in self.metrics:
            if result.name == name:
                return result
        raise KeyError(f"no metric named {name!r} in the report")

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready values (also the state the next check reads back)."""
        return {
            "schema": REPORT_SCHEMA,
            "decision": str(self.decision),
            "metrics": [m.to_json() for m in self.metrics],
            "affected_clients": list(self.affected_clients),
            "reasons": list(self.reasons),
            "quality": dict(self.quality),
            "canary_clients": list(self.canary_clients),
            "window_start": self.window_start,
            "window_end": self.window_end,
            "switch_time": self.switch_time,
            "notes": list(self.notes),
            "minimum_detectable_effects": {
                m.name: {
                    key: m.extra[key]
                    for key in (
                        "mde",
                        "mde_power",
                        "detection_target",
                        "more_samples_per_side",
                        "more_drafts_per_side",
                    )
                    if key in m.extra
                }
                for m in self.metrics
                if "mde" in m.extra
            },
        }

    def dumps(self) -> str:
        """:meth:`to_json` as indented JSON text (no NaN or infinity: they are None)."""
        return json.dumps(self.to_json(), indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GuardrailReport:
        """Read back a report written by :meth:`to_json` (the CLI's state file).

        Args:
            data: The parsed JSON.

        Raises:
            ValueError: The ``schema`` field is missing or names another version.
        """
        if data.get("schema") != REPORT_SCHEMA:
            raise ValueError(
                f"guardrails state: field 'schema' must be {REPORT_SCHEMA!r}, "
                f"got {data.get('schema')!r}"
            )
        return cls(
            decision=RolloutDecision(data["decision"]),
            metrics=tuple(MetricResult.from_json(m) for m in data.get("metrics", ())),
            affected_clients=tuple(str(c) for c in data.get("affected_clients", ())),
            reasons=tuple(str(r) for r in data.get("reasons", ())),
            quality={str(k): int(v) for k, v in data.get("quality", {}).items()},
            canary_clients=tuple(str(c) for c in data.get("canary_clients", ())),
            window_start=data.get("window_start"),
            window_end=data.get("window_end"),
            switch_time=data.get("switch_time"),
            notes=tuple(str(n) for n in data.get("notes", ())),
        )


def evaluate(
    signals: Signals,
    policy: GuardrailPolicy = DEFAULT_POLICY,
    previous: GuardrailReport | None = None,
) -> GuardrailReport:
    """Decide expand, hold or rollback from one check's signals.

    A pure function of its arguments. Drift metrics (the auto-send confidence) roll back only
    after ``policy.drift_confirmations`` consecutive confirmed checks, so the caller keeps the
    previous check's report as state: the CLI writes ``report.dumps()`` to a state file (by
    default ``guardrails-state.json`` next to the report, written to a temporary file then
    renamed) and passes ``GuardrailReport.from_json(json.load(f))`` here at the next check.
    Without it (``previous=None``) the streak is recomputed from ``signals.earlier``, the
    records the previous check saw, so no state is needed to roll back.

    Args:
        signals: This check's aggregated counts (``Signals.previous`` is the previous window,
            for bundle health and the volume-collapse check).
        policy: Error split, minimum samples and thresholds.
        previous: The previous check's report, or None.

    Returns:
        The report; ``affected_clients`` lists who to roll back when the decision is
        ``rollback``: every canary client when a critical metric regresses globally (volume)
        or when the regressing metrics' driving clients cover them all.
    """
    previous_metrics = None if previous is None else {m.name: m for m in previous.metrics}
    metrics = evaluate_metrics(signals, policy, previous_metrics)
    canary = tuple(sorted({c for (c, arm) in signals.by_client if arm is Arm.CANARY_AFTER}))
    regressed = [m for m in metrics if m.verdict is Verdict.REGRESS]
    not_ok = [m for m in metrics if m.verdict is not Verdict.OK]
    if regressed:
        decision = RolloutDecision.ROLLBACK
        drivers = {c for m in regressed for c in m.clients}
        # A regression nobody in particular drives (or everybody does) rolls back every client.
        affected = canary if not drivers or drivers >= set(canary) else tuple(sorted(drivers))
    elif not_ok:
        decision, affected = RolloutDecision.HOLD, ()
    else:
        decision, affected = RolloutDecision.EXPAND, ()
    reasons = tuple(f"{m.name}: {m.verdict} ({m.reason})" for m in not_ok) or (
        "every metric is ok with its minimum samples met",
    )
    return GuardrailReport(
        decision=decision,
        metrics=metrics,
        affected_clients=affected,
        reasons=reasons,
        quality=_quality(signals.quality),
        canary_clients=canary,
        window_start=signals.window_start,
        window_end=signals.window_end,
        switch_time=signals.switch_time,
        notes=window_notes(signals),
    )


def window_notes(signals: Signals) -> tuple[str, ...]:
    """A window with canary records but none from before the switch: say so, and what to do.

    A rolling ``--since`` that starts after the switch leaves the comparisons no baseline:
    every compared metric then lacks data, and the check would hold for ever. The note names
    the first shared/fallback record in the window and a ``--since`` that gives a baseline as
    long as the rollout so far.

    Args:
        signals: This check's signals.
    """
    arms = {arm for _, arm in signals.by_client}
    if Arm.CANARY_AFTER not in arms or Arm.CANARY_BEFORE in arms:
        return ()
    switch, end = signals.switch_time, signals.window_end
    advice = "omit --since (every pre-switch record is then the baseline)"
    if switch is not None and end is not None:
        first, last = _parse_time(switch), _parse_time(end)
        since = first - max(last - first, timedelta(days=1))
        advice = f"use --since {since.strftime('%Y-%m-%dT%H:%M:%SZ')} or earlier, or " + advice
    note = (
        "no record of the canary clients from before their switch in this window (first "
        f"shared/fallback record: {switch or '-'}, window start: {signals.window_start or '-'}): "
        f"the comparisons have no baseline and cannot conclude; {advice}"
    )
    return (note,)


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _quality(quality: DataQuality) -> dict[str, int]:
    return {k: int(v) for k, v in asdict(quality).items()}
