"""A seeded synthetic generator of the records the guardrails read, for tests, benchmarks, demo.

``generate(url_or_database, GeneratorConfig(...))`` writes ``AIInteraction``, ``AIDraft`` and
``MeetingOverseerDecision`` rows (creating the tables when missing) with ``metadata.leadctx``
in the shape ``resolve_context(...).metadata()`` writes and ``metadata.proposedTimes`` on the
proposed-times parses. The same seed and configuration give the same rows, byte for byte.

Each client has its own base rates (so a change of client mix moves pooled rates without any
per-client effect); canary clients switch to the shared path at ``switch_at``; the effect
knobs apply to the canary's shared-path records only.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from leadctx_flags.guardrails.db import Database, connect, create_schema, from_connection
from leadctx_flags.guardrails.tables import (
    DECISION_COLUMNS,
    DRAFT_COLUMNS,
    INTERACTION_COLUMNS,
    PROMPT_KEYS,
)
from leadctx_flags.vocabulary import FallbackReason, Pipeline, ResolutionPath

__all__ = ["GenerationSummary", "GeneratorConfig", "generate"]

_CHUNK: Final = 50_000


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """What to generate. Rates are probabilities; ``*_delta``/``*_shift`` are canary effects.

    Args:
        seed: Seeds every random draw.
        drafts: Number of ``AIDraft`` rows (each with its own ``AIInteraction``).
        overseer_per_draft: Gate decisions per draft (each with an interaction), plus as many
            ``extract``-stage decisions times ``extract_share``.
        parses_per_draft: Proposed-times parses per draft.
        clients: Number of clients, ``client-000`` …
        client_weights: Share of records per client (default: equal). A pair of weights
            (before, after) as ``client_weights_after`` moves the mix at the switch.
        client_weights_after: The mix from ``switch_at`` on (default: unchanged).
        start: Time of the first record (UTC).
        span: Time from the first to the last record.
        canary_clients: The first N clients switch to the shared path at ``switch_at``.
        switch_at: Fraction of ``span`` at which the canary clients switch.
        needs_review_rates: Per-client base needs-review rate, cycled over clients.
        skip_rate: Share of drafts the evaluator skips.
        confidence_mean: Base mean of ``autoSendConfidence`` (per-client offsets are added).
        edited_share: Share of resolved needs-review drafts that were EDITED.
        revise_rate: Overseer revise rate at the gate.
        match_rate: Proposed-times match rate.
        booking_rate: Share of parses that attempt a booking.
        wrong_rate: Share of attempted bookings that book the wrong time (both arms).
        confidence_shift: Added to the canary's confidence after the switch.
        needs_review_delta: Added to the canary's needs-review rate after the switch.
        edited_delta: Added to the canary's EDITED share.
        revise_delta: Added to the canary's overseer revise rate.
        match_delta: Added to the canary's match rate.
        wrong_bookings: Exact number of wrong bookings injected into the canary's parses.
        fallback_rate: Share of the canary's flag-on calls that fall back.
        truncation_rate: Share of the canary's shared calls with a truncated knowledge asset
            (lead memory: half of it).
    """

    seed: int = 0
    drafts: int = 2000
    overseer_per_draft: float = 0.3
    parses_per_draft: float = 0.2
    extract_share: float = 0.2
    clients: int = 6
    client_weights: Sequence[float] | None = None
    client_weights_after: Sequence[float] | None = None
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    span: timedelta = timedelta(days=14)
    canary_clients: int = 3
    switch_at: float = 0.5
    needs_review_rates: Sequence[float] = (0.1, 0.2, 0.4)
    skip_rate: float = 0.05
    confidence_mean: float = 0.75
    edited_share: float = 0.3
    revise_rate: float = 0.2
    match_rate: float = 0.8
    booking_rate: float = 0.6
    wrong_rate: float = 0.0
    confidence_shift: float = 0.0
    needs_review_delta: float = 0.0
    edited_delta: float = 0.0
    revise_delta: float = 0.0
    match_delta: float = 0.0
    wrong_bookings: int = 0
    fallback_rate: float = 0.01
    truncation_rate: float = 0.05
    client_prefix: str = "client-"
    threshold: float = 0.8

    @property
    def switch_time(self) -> datetime:
        """When the canary clients switch to the shared path."""
        return self.start + self.span * self.switch_at

    @property
    def client_ids(self) -> tuple[str, ...]:
        """Every client id, canary clients first."""
        return tuple(f"{self.client_prefix}{index:03d}" for index in range(self.clients))


@dataclass(frozen=True, slots=True)
class GenerationSummary:
    """What was written.

    Args:
        interactions: ``AIInteraction`` rows.
        drafts: ``AIDraft`` rows.
        decisions: ``MeetingOverseerDecision`` rows.
        canary_clients: The clients that switched.
        switch_time: When they switched.
    """

    interactions: int
    drafts: int
    decisions: int
    canary_clients: tuple[str, ...]
    switch_time: datetime


def generate(target: str | Database | object, config: GeneratorConfig) -> GenerationSummary:
    """Write synthetic records into ``target`` (a URL or an open connection).

    Args:
        target: ``sqlite:///path`` / ``postgresql://…`` (opened, written, closed), an open
            :class:`Database`, or an open ``sqlite3``/psycopg connection (written and
            committed, left open).
        config: What to generate.
    """
    if isinstance(target, Database):
        return _generate(target, config)
    if not isinstance(target, str):
        return _generate(from_connection(target), config)
    with connect(target, create=True) as database:
        return _generate(database, config)


def _generate(database: Database, config: GeneratorConfig) -> GenerationSummary:
    create_schema(database)
    written = {"interactions": 0, "drafts": 0, "decisions": 0}
    interactions: list[tuple[Any, ...]] = []
    drafts: list[tuple[Any, ...]] = []
    decisions: list[tuple[Any, ...]] = []

    def flush() -> None:
        written["interactions"] += database.insert_many(
            "AIInteraction", INTERACTION_COLUMNS, interactions
        )
        written["drafts"] += database.insert_many("AIDraft", DRAFT_COLUMNS, drafts)
        written["decisions"] += database.insert_many(
            "MeetingOverseerDecision", DECISION_COLUMNS, decisions
        )
        for rows in (interactions, drafts, decisions):
            rows.clear()

    # Chunks keep the generator's memory flat at a million rows.
    for interaction, kind, row in _Plan(config).records():
        interactions.append(interaction)
        if kind == "draft":
            drafts.append(row)
        elif kind == "decision":
            decisions.append(row)
        if len(interactions) >= _CHUNK:
            flush()
    flush()
    database.commit()
    return GenerationSummary(
        interactions=written["interactions"],
        drafts=written["drafts"],
        decisions=written["decisions"],
        canary_clients=config.client_ids[: config.canary_clients],
        switch_time=config.switch_time,
    )


class _Plan:
    """Draws the records in time order from one seeded generator."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.random = random.Random(config.seed)
        self.clients = config.client_ids
        self.canary = frozenset(self.clients[: config.canary_clients])
        self.offsets = [self.random.uniform(-0.08, 0.08) for _ in self.clients]
        self.metadata = _MetadataCache()
        self.wrong_left = config.wrong_bookings
        self.counter = 0

    def records(self) -> Iterator[tuple[tuple[Any, ...], str, tuple[Any, ...]]]:
        config = self.config
        rng = self.random
        # Exact counts per kind, in a seeded random order.
        gate = round(config.drafts * config.overseer_per_draft)
        extract = round(gate * config.extract_share)
        parses = round(config.drafts * config.parses_per_draft)
        kinds = bytearray([0] * config.drafts + [1] * gate + [2] * extract + [3] * parses)
        rng.shuffle(kinds)
        step = config.span / max(len(kinds) - 1, 1)
        weights_before = list(config.client_weights or [1.0] * len(self.clients))
        weights_after = list(config.client_weights_after or weights_before)
        indices = range(len(self.clients))
        for position, kind in enumerate(kinds):
            # Milliseconds, as Prisma's TIMESTAMP(3) stores them, so both dialects hold the same.
            created = _to_millisecond(config.start + step * position)
            after = created >= config.switch_time
            index = rng.choices(indices, weights_after if after else weights_before)[0]
            client = self.clients[index]
            on = after and client in self.canary
            if kind == 0:
                yield self._draft(index, client, created, on)
            elif kind == 1:
                yield self._decision(client, created, on, stage="gate")
            elif kind == 2:
                yield self._decision(client, created, on, stage="extract")
            else:
                yield self._parse(client, created, on)

    def _interaction(
        self, client: str, created: datetime, on: bool, prompt_key: str
    ) -> tuple[tuple[Any, ...], str]:
        self.counter += 1
        interaction_id = f"int-{self.counter:09d}"
        config = self.config
        path = ResolutionPath.LEGACY
        truncated_assets = truncated_memory = False
        if on:
            if self.random.random() < config.fallback_rate:
                path = ResolutionPath.FALLBACK
            else:
                path = ResolutionPath.SHARED
                truncated_assets = self.random.random() < config.truncation_rate
                truncated_memory = self.random.random() < config.truncation_rate / 2
        metadata = self.metadata.get(path, truncated_assets, truncated_memory)
        row = (interaction_id, client, created, prompt_key, metadata)
        return row, interaction_id

    def _draft(
        self, index: int, client: str, created: datetime, on: bool
    ) -> tuple[tuple[Any, ...], str, tuple[Any, ...]]:
        config = self.config
        rng = self.random
        interaction, interaction_id = self._interaction(
            client, created, on, PROMPT_KEYS[Pipeline.DRAFT]
        )
        rates = config.needs_review_rates
        needs_review = rates[index % len(rates)] + (config.needs_review_delta if on else 0.0)
        mean = config.confidence_mean + self.offsets[index]
        mean += config.confidence_shift if on else 0.0
        confidence = round(min(max(rng.gauss(mean, 0.12), 0.0), 1.0), 4)
        draw = rng.random()
        if draw < config.skip_rate:
            action, status = "skip", "PENDING"
        elif draw < config.skip_rate + needs_review:
            action = "needs_review"
            edited = config.edited_share + (config.edited_delta if on else 0.0)
            resolution = rng.random()
            status = (
                "PENDING" if resolution < 0.1 else "EDITED" if rng.random() < edited else "APPROVED"
            )
        else:
            action, status = "send", "SENT"
        self.counter += 1
        draft = (
            f"drf-{self.counter:09d}",
            client,
            created,
            interaction_id,
            status,
            confidence,
            config.threshold,
            action,
            "synthetic",
        )
        return interaction, "draft", draft

    def _decision(
        self, client: str, created: datetime, on: bool, *, stage: str
    ) -> tuple[tuple[Any, ...], str, tuple[Any, ...]]:
        config = self.config
        rng = self.random
        interaction, interaction_id = self._interaction(
            client, created, on, PROMPT_KEYS[Pipeline.OVERSEER]
        )
        revise = config.revise_rate + (config.revise_delta if on else 0.0)
        decision = "revise" if rng.random() < revise else "approve"
        confidence = round(min(max(rng.gauss(0.7, 0.15), 0.0), 1.0), 4)
        self.counter += 1
        row = (
            f"mod-{self.counter:09d}",
            client,
            created,
            interaction_id,
            stage,
            decision,
            confidence,
        )
        return interaction, "decision", row

    def _parse(
        self, client: str, created: datetime, on: bool
    ) -> tuple[tuple[Any, ...], str, tuple[Any, ...]]:
        config = self.config
        rng = self.random
        interaction, _ = self._interaction(
            client, created, on, PROMPT_KEYS[Pipeline.PROPOSED_TIMES]
        )
        matched = rng.random() < config.match_rate + (config.match_delta if on else 0.0)
        attempted = matched and rng.random() < config.booking_rate
        outcome: str | None = None
        if attempted:
            wrong = rng.random() < config.wrong_rate
            if on and self.wrong_left > 0:
                wrong, self.wrong_left = True, self.wrong_left - 1
            outcome = "wrong" if wrong else "booked" if rng.random() < 0.95 else "failed"
        leadctx = json.loads(interaction[4])
        leadctx["proposedTimes"] = {
            "matched": matched,
            "bookingAttempted": attempted,
            "bookingOutcome": outcome,
        }
        row = (*interaction[:4], json.dumps(leadctx, separators=(",", ":")))
        return row, "parse", ()


def _to_millisecond(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class _MetadataCache:
    """A handful of distinct ``metadata`` documents, serialised once each."""

    def __init__(self) -> None:
        self._cache: dict[tuple[ResolutionPath, bool, bool], str] = {}

    def get(self, path: ResolutionPath, assets: bool, memory: bool) -> str:
        key = (path, assets, memory)
        if key not in self._cache:
            self._cache[key] = json.dumps(_metadata(path, assets, memory), separators=(",", ":"))
        return self._cache[key]


def _section(tokens: int, budget: int, total: int, included: int, truncated: int) -> dict[str, int]:
    return {
        "tokens": tokens,
        "budget": budget,
        "items_total": total,
        "items_included": included,
        "items_truncated": truncated,
        "items_dropped": total - included,
        "tokens_truncated": 120 * truncated,
    }


def _metadata(path: ResolutionPath, assets: bool, memory: bool) -> dict[str, Any]:
    on = path is not ResolutionPath.LEGACY
    stats = None
    if path is ResolutionPath.SHARED:
        stats = {
            "tokens_total": 5400,
            "budget_total": 8000,
            "encoding": "o200k_base",
            "build_ms": 3.1,
            "sections": {
                "knowledge_assets": _section(3000, 4000, 6, 4, 1 if assets else 0),
                "lead_memory": _section(1400, 2000, 5, 5, 1 if memory else 0),
                "thread": _section(1000, 2000, 3, 3, 0),
            },
        }
    return {
        "leadctx": {
            "path": path.value,
            "fallback_reason": FallbackReason.SOURCE_ERROR.value
            if path is ResolutionPath.FALLBACK
            else None,
            "flag": {"enabled": on, "reason": "TARGETING_MATCH" if on else "DEFAULT"},
            "stats": stats,
        }
    }
