"""A stand-in for the statistics half, computing real figures from the signals.

It lets the report command's tests check the whole path (queries → decision → renderings →
--apply) with values derived from the records; ``test_report_cli`` also runs the real
``decision.evaluate`` when it is installed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from leadctx_flags.guardrails.signals import Arm, Signals


@dataclass(frozen=True)
class FakeMetric:
    """Mirrors ``MetricResult``'s fields the report reads."""

    name: str
    verdict: str
    reason: str
    critical: bool
    baseline: dict[str, Any]
    canary: dict[str, Any]
    delta: float | None
    interval: tuple[float, float] | None


@dataclass(frozen=True)
class FakeReport:
    """Mirrors ``GuardrailReport``."""

    decision: str
    metrics: tuple[FakeMetric, ...]
    affected_clients: tuple[str, ...] = field(default=())

    def dumps(self) -> str:
        return json.dumps(self.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "metrics": [asdict(metric) for metric in self.metrics],
            "affected_clients": list(self.affected_clients),
        }


def evaluate(signals: Signals, previous: object = None) -> FakeReport:
    """Needs-review rate canary-after vs canary-before; any wrong booking rolls back."""
    sides = {arm: [0, 0] for arm in (Arm.CANARY_BEFORE, Arm.CANARY_AFTER)}
    wrong: set[str] = set()
    for (client, arm), counts in signals.by_client.items():
        if arm in sides:
            sides[arm][0] += counts.drafts_evaluated
            sides[arm][1] += counts.needs_review
        if arm is Arm.CANARY_AFTER and counts.booking_wrong:
            wrong.add(client)
    (n0, k0), (n1, k1) = sides[Arm.CANARY_BEFORE], sides[Arm.CANARY_AFTER]
    if n0 and n1:
        delta = k1 / n1 - k0 / n0
        review = FakeMetric(
            "needs_review_rate",
            "ok",
            "within bounds with a rather long explanation of why",
            False,
            {"n": n0, "value": k0 / n0},
            {"n": n1, "value": k1 / n1},
            delta,
            (delta - 0.05, delta + 0.05),
        )
    else:
        review = FakeMetric(
            "needs_review_rate",
            "insufficient_data",
            "no canary yet",
            False,
            {"n": n0, "value": None},
            {"n": n1, "value": None},
            None,
            None,
        )
    booking = FakeMetric(
        "wrong_bookings",
        "regress" if wrong else "ok",
        f"{len(wrong)} client(s) booked a wrong time" if wrong else "none",
        True,
        {"n": 0, "value": 0},
        {"n": len(wrong), "value": len(wrong)},
        None,
        None,
    )
    decision = "rollback" if wrong else "hold" if review.verdict != "ok" else "expand"
    return FakeReport(decision, (review, booking), tuple(sorted(wrong)))
