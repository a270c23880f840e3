"""The signals split by arm, and the pooled counts every metric reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from leadctx_flags.guardrails.signals import Arm, ClientArmSignals, Signals

__all__ = ["Cohorts", "arm_counts", "pairs", "pooled", "side"]


def arm_counts(signals: Signals, arm: Arm) -> dict[str, ClientArmSignals]:
    """Per client, the counts of one arm.

    Args:
        signals: One check's signals.
        arm: The arm to keep.
    """
    return {client: counts for (client, a), counts in signals.by_client.items() if a is arm}


@dataclass(frozen=True, slots=True)
class Cohorts:
    """One check's counts per client, by arm.

    Args:
        canary_after / canary_before / control_after / control_before: Client id -> counts;
            a client absent from an arm has no entry.
    """

    canary_after: dict[str, ClientArmSignals]
    canary_before: dict[str, ClientArmSignals]
    control_after: dict[str, ClientArmSignals]
    control_before: dict[str, ClientArmSignals]

    @classmethod
    def of(cls, signals: Signals) -> Cohorts:
        """Split the signals by arm.

        Args:
            signals: One check's signals.
        """
        return cls(
            arm_counts(signals, Arm.CANARY_AFTER),
            arm_counts(signals, Arm.CANARY_BEFORE),
            arm_counts(signals, Arm.CONTROL_AFTER),
            arm_counts(signals, Arm.CONTROL_BEFORE),
        )


def pooled(arm: Mapping[str, ClientArmSignals], count: Callable[[ClientArmSignals], int]) -> int:
    """One count summed over the clients of an arm.

    Args:
        arm: Client id -> counts.
        count: Which count.
    """
    return sum(count(s) for s in arm.values())


def side(n: int, x: int) -> dict[str, Any]:
    """A report side: ``{"n": n, "value": x / n}`` (value None when ``n`` is 0).

    Args:
        n: The denominator.
        x: The numerator.
    """
    return {"n": n, "value": (x / n) if n else None}


def pairs(cohorts: Cohorts) -> list[tuple[ClientArmSignals, ClientArmSignals]]:
    """(after, before) counts of the canary clients seen on both sides, by client id.

    Args:
        cohorts: The signals split by arm.
    """
    return [
        (cohorts.canary_after[c], cohorts.canary_before[c])
        for c in sorted(cohorts.canary_after)
        if c in cohorts.canary_before
    ]
