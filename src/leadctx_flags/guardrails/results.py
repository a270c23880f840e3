"""A metric's outcome: its verdict and the figures behind it (counts, never content)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum, unique
from typing import Any

__all__ = ["Direction", "MetricResult", "Verdict"]


@unique
class Verdict(StrEnum):
    """A metric's verdict at one check."""

    OK = "ok"
    WARN = "warn"
    REGRESS = "regress"
    INSUFFICIENT_DATA = "insufficient_data"


@unique
class Direction(StrEnum):
    """Which way a change is a regression."""

    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric at one check: its verdict and the figures behind it (counts, never content).

    Args:
        name: The metric's ``MetricName`` value.
        verdict: ``ok | warn | regress | insufficient_data``.
        reason: One plain-English line.
        critical: A regress rolls back at once, whatever else holds.
        baseline: ``{"n": ..., "value": ...}`` for the comparison side (the canary before).
        canary: ``{"n": ..., "value": ...}`` for the canary after the switch.
        delta: The (stratified) change, canary minus baseline, or None; an ``int`` for a
            count metric (wrong bookings, the canary volume), so it is shown as one.
        interval: ``(lower, upper)`` anytime-valid bound on ``delta`` (one side is infinite),
            or None.
        clients: The canary clients whose data drives a regress (empty otherwise).
        extra: Further figures (descriptions, cohort comparisons); JSON-ready values.
    """

    name: str
    verdict: Verdict
    reason: str
    critical: bool = False
    baseline: Mapping[str, Any] = field(default_factory=dict)
    canary: Mapping[str, Any] = field(default_factory=dict)
    delta: float | None = None
    interval: tuple[float, float] | None = None
    clients: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """This result as JSON-ready values; an infinite interval end becomes None."""
        interval = (
            None
            if self.interval is None
            else [_finite_or_none(self.interval[0]), _finite_or_none(self.interval[1])]
        )
        return {
            "name": self.name,
            "verdict": str(self.verdict),
            "reason": self.reason,
            "critical": self.critical,
            "baseline": dict(self.baseline),
            "canary": dict(self.canary),
            "delta": self.delta,
            "interval": interval,
            "clients": list(self.clients),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricResult:
        """Read back what :meth:`to_json` wrote (a None interval end is infinite again).

        Args:
            data: One element of the report's ``metrics`` list.
        """
        raw = data.get("interval")
        interval = (
            None
            if raw is None
            else (
                -math.inf if raw[0] is None else float(raw[0]),
                math.inf if raw[1] is None else float(raw[1]),
            )
        )
        return cls(
            name=str(data["name"]),
            verdict=Verdict(data["verdict"]),
            reason=str(data.get("reason", "")),
            critical=bool(data.get("critical", False)),
            baseline=dict(data.get("baseline", {})),
            canary=dict(data.get("canary", {})),
            delta=_figure(data.get("delta")),
            interval=interval,
            clients=tuple(str(c) for c in data.get("clients", ())),
            extra=dict(data.get("extra", {})),
        )


def _figure(value: Any) -> float | None:
    """A delta read back: a count stays an ``int`` (it is shown as one), a rate a float."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return float(value)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
