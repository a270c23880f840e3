"""The aggregated rollout signals the guardrails decide from: counts, never rows.

The database layer (``queries``) fills these from SQL aggregates; the statistics layer
(``metrics``/``decision``) reads them. Every count is per client and per (cohort, period).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

CONFIDENCE_BUCKETS = 20
"""Confidence histograms have 20 equal buckets over [0, 1].

Bucket i is [i/20, (i+1)/20), the last one closed.
"""


class Arm(StrEnum):
    """Which side of a comparison a count belongs to."""

    # Canary clients, legacy-path records before the client's first shared/fallback record.
    CANARY_BEFORE = "canary_before"
    # Canary clients, records whose AIInteraction path is shared or fallback (flag on).
    CANARY_AFTER = "canary_after"
    # Clients with no shared/fallback record in the window, before the canary switch time.
    CONTROL_BEFORE = "control_before"
    # The same control clients, at or after the canary switch time.
    CONTROL_AFTER = "control_after"


@dataclass(frozen=True, slots=True)
class Moments:
    """A numeric sample summarised: count, sum, sum of squares and a bucketed histogram."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    histogram: tuple[int, ...] = (0,) * CONFIDENCE_BUCKETS


@dataclass(frozen=True, slots=True)
class ClientArmSignals:
    """Everything counted for one client in one arm."""

    # AIDraft (auto-send evaluator)
    drafts_evaluated: int = 0  # autoSendAction in (send, needs_review, skip)
    auto_sent: int = 0  # autoSendAction = send
    needs_review: int = 0  # autoSendAction = needs_review
    review_resolved: int = 0  # needs_review drafts whose status is APPROVED or EDITED
    review_edited: int = 0  # ... of which EDITED
    confidence: Moments = field(default_factory=Moments)  # autoSendConfidence in [0, 1]
    # MeetingOverseerDecision rows at the gate stage
    overseer_gate: int = 0
    overseer_revise: int = 0
    overseer_confidence_approve: Moments = field(default_factory=Moments)
    overseer_confidence_revise: Moments = field(default_factory=Moments)
    # AIInteraction with promptKey followup.parse_proposed_times.v1
    proposed_parses: int = 0
    proposed_matched: int = 0
    booking_attempted: int = 0
    booking_wrong: int = 0
    # AIInteraction metadata.leadctx (bundle health)
    calls: int = 0  # interactions carrying metadata.leadctx
    calls_flag_on: int = 0  # path shared or fallback
    calls_fallback: int = 0
    calls_assets_truncated: int = 0  # knowledge_assets.items_truncated > 0 (shared path)
    calls_memory_truncated: int = 0  # lead_memory.items_truncated > 0 (shared path)


@dataclass(frozen=True, slots=True)
class DataQuality:
    """Records that could not be used as they are: counted and reported, never silently dropped."""

    null_confidence: int = 0
    confidence_out_of_range: int = 0
    unknown_action: int = 0
    unknown_status: int = 0
    unknown_overseer_decision: int = 0
    malformed_metadata: int = 0
    # AIDraft/MeetingOverseerDecision whose aiInteractionId matches no AIInteraction (no cohort)
    missing_interaction: int = 0


@dataclass(frozen=True, slots=True)
class Signals:
    """One check's worth of aggregated signals.

    Args:
        by_client: (client id, arm) -> counts. Clients absent from an arm have no entry.
        quality: Unusable records, counted.
        window_start / window_end: ISO-8601 UTC bounds of the records read.
        switch_time: ISO-8601 UTC time of the earliest shared/fallback record (None: no canary yet).
        previous: The same signals for the previous window of equal length (for the bundle-health
            "against the previous window" comparison and the volume-collapse check), or None.
        earlier: The signals the previous check saw (the same window, one check interval
            earlier), or None. Without a state file the drift metric's confirmation streak
            is recomputed from it (and from its own ``earlier``), so no state is needed.
    """

    by_client: dict[tuple[str, Arm], ClientArmSignals]
    quality: DataQuality
    window_start: str | None
    window_end: str | None
    switch_time: str | None
    previous: Signals | None = None
    earlier: Signals | None = None
