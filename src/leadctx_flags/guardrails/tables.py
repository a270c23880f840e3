"""The three record tables' columns, in the order the shipped DDL (``schema/*.sql``) creates them.

The DDL, the schema check, the synthetic generator, the demo's record store and the tests all
take their column lists from here, so a column added to the DDL is added here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = [
    "COLUMNS",
    "DECISION_COLUMNS",
    "DRAFT_COLUMNS",
    "INTERACTION_COLUMNS",
    "REQUIRED_COLUMNS",
]

INTERACTION_COLUMNS: Final = ("id", "clientId", "createdAt", "promptKey", "metadata")
"""``AIInteraction``: one row per model call; ``metadata.leadctx`` gives its cohort."""

DRAFT_COLUMNS: Final = (
    "id",
    "clientId",
    "createdAt",
    "aiInteractionId",
    "status",
    "autoSendConfidence",
    "autoSendThreshold",
    "autoSendAction",
    "autoSendReason",
)
"""``AIDraft``: a draft reply and the auto-send evaluator's verdict."""

DECISION_COLUMNS: Final = (
    "id",
    "clientId",
    "createdAt",
    "aiInteractionId",
    "stage",
    "decision",
    "confidence",
)
"""``MeetingOverseerDecision``: the overseer's verdict at one stage."""

COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "AIInteraction": INTERACTION_COLUMNS,
    "AIDraft": DRAFT_COLUMNS,
    "MeetingOverseerDecision": DECISION_COLUMNS,
}
"""Every table and all of its columns, as the DDL creates them and inserts write them."""

# The queries never read these two, so a database without them still passes the schema check.
_NOT_READ: Final = frozenset({"autoSendThreshold", "autoSendReason"})

REQUIRED_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    table: tuple(column for column in columns if column not in _NOT_READ)
    for table, columns in COLUMNS.items()
}
"""The tables and columns the queries read (``autoSendThreshold``/``autoSendReason`` are not)."""
