"""The three record tables' columns, in the order the shipped DDL (``schema/*.sql``) creates them,
and the ``AIInteraction.promptKey`` each pipeline writes.

The schema check, the synthetic generator, the demo's record store and the tests all take
their column lists and prompt keys from here, so a column added to the DDL is added here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from leadctx_flags.vocabulary import Pipeline

__all__ = [
    "COLUMNS",
    "DECISION_COLUMNS",
    "DRAFT_COLUMNS",
    "INTERACTION_COLUMNS",
    "PROMPT_KEYS",
    "PROPOSED_TIMES_PROMPT_KEY",
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

PROPOSED_TIMES_PROMPT_KEY: Final = "followup.parse_proposed_times.v1"
"""The proposed-times parses' ``promptKey``: the only one the queries recognise."""

PROMPT_KEYS: Final[Mapping[Pipeline, str]] = {
    Pipeline.DRAFT: "draft.reply.v1",
    Pipeline.OVERSEER: "overseer.gate.v1",
    Pipeline.AUTO_SEND: "auto_send.evaluate.v1",
    Pipeline.PROPOSED_TIMES: PROPOSED_TIMES_PROMPT_KEY,
}
"""``AIInteraction.promptKey`` per pipeline, as the generator and the demo write them."""
