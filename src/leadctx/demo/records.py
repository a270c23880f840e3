"""The records the guardrails read, written into the demo's SQLite file.

The tables are the guardrails' shipped DDL (``leadctx_flags.guardrails.db.create_schema``):
``AIInteraction`` (one per ``resolve_context`` call, ``metadata`` from
``ContextResolution.metadata()``), ``AIDraft`` and ``MeetingOverseerDecision``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from leadctx.demo.outcomes import DraftOutcome
from leadctx_flags.guardrails.db import Database, connect, create_schema
from leadctx_flags.guardrails.tables import (
    DECISION_COLUMNS,
    DRAFT_COLUMNS,
    INTERACTION_COLUMNS,
    PROMPT_KEYS,
)
from leadctx_flags.vocabulary import Pipeline

__all__ = ["PROMPT_KEYS", "RecordStore"]


class RecordStore:
    """Buffers records and writes them in bulk into a new SQLite file.

    Args:
        path: The database file; replaced if it exists.
    """

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.path = path
        self._database: Database = connect(f"sqlite:///{path}", create=True)
        create_schema(self._database)
        self._interactions: list[tuple[Any, ...]] = []
        self._drafts: list[tuple[Any, ...]] = []
        self._decisions: list[tuple[Any, ...]] = []
        self.counts = {"AIInteraction": 0, "AIDraft": 0, "MeetingOverseerDecision": 0}

    def interaction(
        self,
        client_id: str,
        created: datetime,
        pipeline: Pipeline,
        metadata: Mapping[str, Any],
    ) -> str:
        """Add an ``AIInteraction``; returns its id.

        Args:
            client_id: The client.
            created: ``createdAt``.
            pipeline: Which pipeline called (gives the ``promptKey``).
            metadata: ``resolution.metadata()``, with ``proposedTimes`` for a parse.
        """
        record_id = f"int-{self.counts['AIInteraction'] + len(self._interactions):07d}"
        row = (record_id, client_id, created, PROMPT_KEYS[pipeline], json.dumps(metadata))
        self._interactions.append(row)
        return record_id

    def draft(
        self, client_id: str, created: datetime, interaction_id: str, outcome: DraftOutcome
    ) -> None:
        """Add an ``AIDraft`` with the auto-send evaluator's verdict.

        Args:
            client_id: The client.
            created: ``createdAt``.
            interaction_id: The draft's interaction (its cohort).
            outcome: The verdict.
        """
        number = self.counts["AIDraft"] + len(self._drafts)
        self._drafts.append(
            (
                f"drf-{number:07d}",
                client_id,
                created,
                interaction_id,
                outcome.status,
                outcome.confidence,
                outcome.threshold,
                outcome.action,
                "simulated",
            )
        )

    def decision(
        self,
        client_id: str,
        created: datetime,
        interaction_id: str,
        decision: str,
        confidence: float,
    ) -> None:
        """Add a ``MeetingOverseerDecision`` at the ``gate`` stage.

        Args:
            client_id: The client.
            created: ``createdAt``.
            interaction_id: The overseer's interaction.
            decision: ``approve`` or ``revise``.
            confidence: The overseer's confidence.
        """
        number = self.counts["MeetingOverseerDecision"] + len(self._decisions)
        row = (
            f"mod-{number:07d}",
            client_id,
            created,
            interaction_id,
            "gate",
            decision,
            confidence,
        )
        self._decisions.append(row)

    def flush(self) -> None:
        """Write what is buffered and commit."""
        database = self._database
        self.counts["AIInteraction"] += database.insert_many(
            "AIInteraction", INTERACTION_COLUMNS, self._interactions
        )
        self.counts["AIDraft"] += database.insert_many("AIDraft", DRAFT_COLUMNS, self._drafts)
        self.counts["MeetingOverseerDecision"] += database.insert_many(
            "MeetingOverseerDecision", DECISION_COLUMNS, self._decisions
        )
        database.commit()
        for rows in (self._interactions, self._drafts, self._decisions):
            rows.clear()

    def close(self) -> None:
        """Flush and close the database."""
        self.flush()
        self._database.close()
