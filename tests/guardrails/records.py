"""Hand-written records for the guardrails' tests: a few rows whose every count is known."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from leadctx_flags.guardrails.db import Database, connect, create_schema
from leadctx_flags.guardrails.tables import (
    DECISION_COLUMNS,
    DRAFT_COLUMNS,
    INTERACTION_COLUMNS,
    PROPOSED_TIMES_PROMPT_KEY,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    """``T0`` plus ``hours``."""
    return T0 + timedelta(hours=hours)


def leadctx(path: str | None, *, assets: int = 0, memory: int = 0, stats: bool = True) -> str:
    """An interaction's metadata with ``metadata.leadctx`` (``path=None``: no leadctx at all)."""
    if path is None:
        return json.dumps({"other": 1})
    section = {
        "tokens": 1,
        "budget": 1,
        "items_total": 1,
        "items_included": 1,
        "items_truncated": 0,
        "items_dropped": 0,
        "tokens_truncated": 0,
    }
    sections = {
        "knowledge_assets": {**section, "items_truncated": assets},
        "lead_memory": {**section, "items_truncated": memory},
        "thread": section,
    }
    body: dict[str, Any] = {
        "path": path,
        "fallback_reason": None,
        "flag": {"enabled": path != "legacy"},
        "stats": {
            "tokens_total": 3,
            "budget_total": 3,
            "encoding": "o200k_base",
            "build_ms": 1.0,
            "sections": sections,
        }
        if stats and path == "shared"
        else None,
    }
    return json.dumps({"leadctx": body})


@dataclass
class Records:
    """Rows to insert, built up by the test."""

    interactions: list[tuple[Any, ...]] = field(default_factory=list)
    drafts: list[tuple[Any, ...]] = field(default_factory=list)
    decisions: list[tuple[Any, ...]] = field(default_factory=list)

    def interaction(
        self,
        client: str | None,
        hours: float | None,
        metadata: str | None,
        prompt_key: str = "draft.reply.v1",
    ) -> str:
        """Add an interaction; returns its id."""
        interaction_id = f"i{len(self.interactions)}"
        created = None if hours is None else at(hours)
        self.interactions.append((interaction_id, client, created, prompt_key, metadata))
        return interaction_id

    def draft(
        self,
        client: str | None,
        hours: float | None,
        interaction_id: str | None,
        *,
        action: str | None = "send",
        status: str | None = "SENT",
        confidence: float | None = 0.9,
    ) -> None:
        """Add a draft."""
        created = None if hours is None else at(hours)
        self.drafts.append(
            (
                f"d{len(self.drafts)}",
                client,
                created,
                interaction_id,
                status,
                confidence,
                0.8,
                action,
                "r",
            )
        )

    def decision(
        self,
        client: str | None,
        hours: float | None,
        interaction_id: str | None,
        *,
        stage: str | None = "gate",
        decision: str | None = "approve",
        confidence: float | None = 0.7,
    ) -> None:
        """Add an overseer decision."""
        created = None if hours is None else at(hours)
        self.decisions.append(
            (
                f"o{len(self.decisions)}",
                client,
                created,
                interaction_id,
                stage,
                decision,
                confidence,
            )
        )

    def write(self, database: Database) -> None:
        """Create the schema and insert every row."""
        create_schema(database)
        database.insert_many("AIInteraction", INTERACTION_COLUMNS, self.interactions)
        database.insert_many("AIDraft", DRAFT_COLUMNS, self.drafts)
        database.insert_many("MeetingOverseerDecision", DECISION_COLUMNS, self.decisions)
        database.commit()


def booking(path: str, outcome: str) -> str:
    """A proposed-times parse on ``path`` whose booking went ``outcome``."""
    metadata = json.loads(leadctx(path))
    metadata["proposedTimes"] = {
        "matched": True,
        "bookingAttempted": True,
        "bookingOutcome": outcome,
    }
    return json.dumps(metadata)


def canary_with_wrong_bookings(url: str, clients: dict[str, int]) -> None:
    """Records where each of ``clients`` went on the shared path and booked that many wrong."""
    records = Records()
    for client, wrong in clients.items():
        records.interaction(client, 1, leadctx("legacy"))
        records.interaction(client, 2, leadctx("shared"))
        for hour in range(wrong):
            key = PROPOSED_TIMES_PROMPT_KEY
            records.interaction(client, 3 + hour, booking("shared", "wrong"), prompt_key=key)
    with connect(url, create=True) as database:
        records.write(database)
