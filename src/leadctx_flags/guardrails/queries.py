"""Every SQL statement the guardrails run, one set per dialect, aggregating in the database.

Python receives counts grouped by client, arm and outcome (and confidence bucket), never rows, so
the report's memory does not grow with the number of records. The statements differ between
dialects only where JSON access and time parsing do (``json_extract`` vs ``#>>``); print them
with ``python -m leadctx_flags.guardrails.queries sqlite|postgresql`` to paste into a shell.

Arms (see ``signals.Arm``): a record's cohort is ``metadata.leadctx.path`` of its
``AIInteraction``. Canary clients have a ``shared``/``fallback`` record in the window; a
canary client's switch time is its first such record; the other (control) clients are split
at the earliest switch time. Records that fit no arm are counted, never dropped: see
``DataQuality`` and :class:`Excluded`.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from leadctx_flags.client_ids import canonical_client_id
from leadctx_flags.guardrails.db import Database, DatabaseInputError, Dialect
from leadctx_flags.guardrails.signals import (
    CONFIDENCE_BUCKETS,
    Arm,
    ClientArmSignals,
    DataQuality,
    Moments,
    Signals,
)
from leadctx_flags.guardrails.tables import PROPOSED_TIMES_PROMPT_KEY, REQUIRED_COLUMNS
from leadctx_flags.vocabulary import ResolutionPath

__all__ = [
    "PROPOSED_TIMES_PROMPT_KEY",
    "Collected",
    "Excluded",
    "Window",
    "check_schema",
    "for_psql",
    "read_signals",
    "statements",
]

_EARLIEST: Final = datetime(1, 1, 1, tzinfo=UTC)
_LATEST: Final = datetime(9999, 12, 31, tzinfo=UTC)

# Pseudo-arms the SQL gives records that belong to no comparison; Python counts them.
_NO_TIMESTAMP: Final = "no_timestamp"
_NO_CLIENT: Final = "no_client"
_MISSING_INTERACTION: Final = "missing_interaction"
_MALFORMED: Final = "malformed_metadata"
_LEGACY_AFTER_SWITCH: Final = "legacy_after_switch"


@dataclass(frozen=True, slots=True)
class Window:
    """Which records a check reads.

    Args:
        since: Records created at or after this time (default: the earliest).
        until: Records created before this time (default: the latest).
        clients: Only these client ids (default: every client).
    """

    since: datetime | None = None
    until: datetime | None = None
    clients: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Excluded:
    """Records read but outside every arm, beyond what ``DataQuality`` names.

    Args:
        no_timestamp: ``createdAt`` null or not a time.
        no_client: ``clientId`` null.
        legacy_after_switch: A canary client's legacy-path record after its switch time
            (e.g. the flag was turned off again); neither before nor after.
        overseer_other_stage: Overseer decisions at the ``extract`` stage (only ``gate`` is read).
        overseer_unknown_stage: Overseer decisions with a stage other than ``extract``/``gate``.
    """

    no_timestamp: int = 0
    no_client: int = 0
    legacy_after_switch: int = 0
    overseer_other_stage: int = 0
    overseer_unknown_stage: int = 0


@dataclass(frozen=True, slots=True)
class Collected:
    """One check's signals and what was left out of every arm.

    Args:
        signals: The counts the statistics read (``signals.previous`` for the window before).
        excluded: Records that fit no arm, by cause.
        records: Every record read in the window from the three tables, usable or not: 0
            means the selection (window, clients) holds nothing to decide on.
    """

    signals: Signals
    excluded: Excluded
    records: int = 0


# --- dialect fragments ---------------------------------------------------------------------


def _json_path_sqlite(keys: Sequence[str]) -> str:
    return "'$." + ".".join(keys) + "'"


def _json_path_pg(keys: Sequence[str]) -> str:
    return "'{" + ",".join(keys) + "}'"


@dataclass(frozen=True, slots=True)
class _Fragments:
    metadata: Callable[[str], str]  # parsed metadata, NULL when missing or not JSON
    time: Callable[[str], str]
    text: Callable[[str, Sequence[str]], str]  # JSON string at a path, as SQL text
    is_object: Callable[[str, Sequence[str]], str]
    is_true: Callable[[str, Sequence[str]], str]
    positive: Callable[[str, Sequence[str]], str]  # a JSON number > 0
    bucket: Callable[[str], str]
    in_json_list: Callable[[str, str], str]


_SQLITE: Final = _Fragments(
    metadata=lambda column: f"CASE WHEN json_valid({column}) THEN {column} END",
    # Prisma's SQLite connector stores DateTime as Unix milliseconds; text is ISO-8601.
    time=lambda column: (
        f"CASE WHEN typeof({column}) IN ('integer', 'real') "
        f"THEN strftime('%Y-%m-%d %H:%M:%f', {column} / 1000.0, 'unixepoch') "
        f"ELSE strftime('%Y-%m-%d %H:%M:%f', {column}) END"
    ),
    text=lambda m, keys: f"json_extract({m}, {_json_path_sqlite(keys)})",
    is_object=lambda m, keys: f"json_type({m}, {_json_path_sqlite(keys)}) = 'object'",
    is_true=lambda m, keys: f"json_type({m}, {_json_path_sqlite(keys)}) = 'true'",
    positive=lambda m, keys: (
        f"(json_type({m}, {_json_path_sqlite(keys)}) IN ('integer', 'real') "
        f"AND json_extract({m}, {_json_path_sqlite(keys)}) > 0)"
    ),
    bucket=lambda c: (
        f"CASE WHEN {c} >= 0 AND {c} <= 1 "
        f"THEN min(CAST({c} * {CONFIDENCE_BUCKETS} AS INTEGER), {CONFIDENCE_BUCKETS - 1}) END"
    ),
    in_json_list=lambda value, param: f"{value} IN (SELECT value FROM json_each(:{param}))",
)

_POSTGRESQL: Final = _Fragments(
    metadata=lambda column: f"CAST({column} AS JSONB)",
    time=lambda column: column,
    text=lambda m, keys: f"({m} #>> {_json_path_pg(keys)})",
    is_object=lambda m, keys: f"jsonb_typeof({m} #> {_json_path_pg(keys)}) = 'object'",
    is_true=lambda m, keys: f"({m} #> {_json_path_pg(keys)}) = CAST('true' AS JSONB)",
    # CASE keeps the cast from running on a value that is not a number.
    positive=lambda m, keys: (
        f"(CASE WHEN jsonb_typeof({m} #> {_json_path_pg(keys)}) = 'number' "
        f"THEN CAST({m} #>> {_json_path_pg(keys)} AS DOUBLE PRECISION) > 0 ELSE FALSE END)"
    ),
    bucket=lambda c: (
        f"CASE WHEN {c} >= 0 AND {c} <= 1 "
        f"THEN LEAST(CAST(FLOOR({c} * {CONFIDENCE_BUCKETS}) AS INTEGER), "
        f"{CONFIDENCE_BUCKETS - 1}) END"
    ),
    in_json_list=lambda value, param: (
        f"{value} IN (SELECT jsonb_array_elements_text(CAST(:{param} AS JSONB)))"
    ),
)


def _fragments(dialect: Dialect) -> _Fragments:
    return _SQLITE if dialect is Dialect.SQLITE else _POSTGRESQL


# --- statements ------------------------------------------------------------------------------

_SHARED: Final = ResolutionPath.SHARED.value
_FALLBACK: Final = ResolutionPath.FALLBACK.value
_LEGACY: Final = ResolutionPath.LEGACY.value


def _path(f: _Fragments, column: str) -> str:
    """``metadata.leadctx.path`` of a raw metadata column (NULL when unreadable)."""
    return f.text(f.metadata(column), ("leadctx", "path"))


def _interaction_rows(f: _Fragments) -> str:
    time = f.time('"createdAt"')
    return (
        f'SELECT "id" AS id, "clientId" AS client, {time} AS ts,\n'
        '           "promptKey" AS prompt_key, "metadata" AS metadata\n'
        '    FROM "AIInteraction"'
    )


def _switches(f: _Fragments, source: str, path: str) -> str:
    """Each canary client's first shared/fallback record in the window, and the earliest."""
    return f"""switches AS (
    SELECT client, MIN(ts) AS switched_at
    FROM {source}
    WHERE ts >= :since AND ts < :until
      AND (:all_clients = 1 OR {f.in_json_list("client", "clients")})
      AND {path} IN ('{_SHARED}', '{_FALLBACK}')
    GROUP BY client
),
first_switch AS (
    SELECT MIN(switched_at) AS switched_at FROM switches
)"""


def _common(f: _Fragments) -> str:
    """The switch times, read from the window's interactions only."""
    source = f"(\n    {_interaction_rows(f)}\n) w"
    return "WITH " + _switches(f, source, _path(f, "w.metadata"))


def _arm(record: str) -> str:
    """The arm of a row ``{record}`` with columns client, ts, interaction_id, path.

    ``CASE path WHEN ...`` reads the path once per row (it may be a JSON parse).
    """
    return f"""CASE
        WHEN {record}.ts IS NULL THEN '{_NO_TIMESTAMP}'
        WHEN {record}.client IS NULL THEN '{_NO_CLIENT}'
        WHEN {record}.interaction_id IS NULL THEN '{_MISSING_INTERACTION}'
        ELSE CASE {record}.path
            WHEN '{_SHARED}' THEN '{Arm.CANARY_AFTER}'
            WHEN '{_FALLBACK}' THEN '{Arm.CANARY_AFTER}'
            WHEN '{_LEGACY}' THEN CASE
                WHEN s.client IS NOT NULL AND {record}.ts < s.switched_at
                    THEN '{Arm.CANARY_BEFORE}'
                WHEN s.client IS NOT NULL THEN '{_LEGACY_AFTER_SWITCH}'
                WHEN fs.switched_at IS NULL OR {record}.ts < fs.switched_at
                    THEN '{Arm.CONTROL_BEFORE}'
                ELSE '{Arm.CONTROL_AFTER}'
            END
            ELSE '{_MALFORMED}'
        END
    END"""


def _classify_from(f: _Fragments, rows: str) -> str:
    """``FROM`` ``rows`` (a CTE or subquery) as ``r``, with what ``_arm("r")`` reads, in window."""
    return f"""FROM {rows} r
    LEFT JOIN switches s ON s.client = r.client
    CROSS JOIN first_switch fs
    WHERE {_in_window(f, "r")}"""


# A confidence column's moments over the rows of a bucketed ``classified`` CTE; rows whose
# confidence is out of [0, 1] have no bucket and are counted instead of summed.
_CONFIDENCE_MOMENTS: Final = """\
       SUM(CASE WHEN confidence IS NULL THEN 1 ELSE 0 END) AS null_confidence,
       SUM(CASE WHEN confidence IS NOT NULL AND bucket IS NULL THEN 1 ELSE 0 END)
           AS confidence_out_of_range,
       SUM(CASE WHEN bucket IS NOT NULL THEN confidence ELSE 0 END) AS confidence_sum,
       SUM(CASE WHEN bucket IS NOT NULL THEN confidence * confidence ELSE 0 END)
           AS confidence_sum_sq"""


def _in_window(f: _Fragments, record: str) -> str:
    # Records with no usable time are read in every window so that they are counted.
    return (
        f"({record}.ts IS NULL OR ({record}.ts >= :since AND {record}.ts < :until))\n"
        f"  AND (:all_clients = 1 OR {f.in_json_list(f'{record}.client', 'clients')})"
    )


def _drafts(f: _Fragments) -> str:
    return f"""{_common(f)},
drafts AS (
    SELECT d."clientId" AS client, {f.time('d."createdAt"')} AS ts, d."status" AS status,
           d."autoSendAction" AS action, d."autoSendConfidence" AS confidence,
           i."id" AS interaction_id, {_path(f, 'i."metadata"')} AS path
    FROM "AIDraft" d
    LEFT JOIN "AIInteraction" i ON i."id" = d."aiInteractionId"
),
classified AS (
    SELECT {_arm("r")} AS arm,
           r.client, r.status, r.action, r.confidence,
           {f.bucket("r.confidence")} AS bucket
    {_classify_from(f, "drafts")}
)
SELECT client, arm, bucket,
       COUNT(*) AS records,
       SUM(CASE WHEN action IN ('send', 'needs_review', 'skip') THEN 1 ELSE 0 END) AS evaluated,
       SUM(CASE WHEN action = 'send' THEN 1 ELSE 0 END) AS auto_sent,
       SUM(CASE WHEN action = 'needs_review' THEN 1 ELSE 0 END) AS needs_review,
       SUM(CASE WHEN action = 'needs_review' AND status IN ('APPROVED', 'EDITED')
                THEN 1 ELSE 0 END) AS review_resolved,
       SUM(CASE WHEN action = 'needs_review' AND status = 'EDITED'
                THEN 1 ELSE 0 END) AS review_edited,
       SUM(CASE WHEN action IS NULL OR action NOT IN ('send', 'needs_review', 'skip')
                THEN 1 ELSE 0 END) AS unknown_action,
       SUM(CASE WHEN status IS NULL
                     OR status NOT IN ('PENDING', 'APPROVED', 'EDITED', 'REJECTED', 'SENT')
                THEN 1 ELSE 0 END) AS unknown_status,
{_CONFIDENCE_MOMENTS}
FROM classified
GROUP BY client, arm, bucket
ORDER BY client, arm, bucket"""


def _overseer(f: _Fragments) -> str:
    return f"""{_common(f)},
decisions AS (
    SELECT o."clientId" AS client, {f.time('o."createdAt"')} AS ts, o."stage" AS stage,
           o."decision" AS decision, o."confidence" AS confidence,
           i."id" AS interaction_id, {_path(f, 'i."metadata"')} AS path
    FROM "MeetingOverseerDecision" o
    LEFT JOIN "AIInteraction" i ON i."id" = o."aiInteractionId"
),
classified AS (
    SELECT {_arm("r")} AS arm,
           r.client,
           CASE WHEN r.stage IN ('gate', 'extract') THEN r.stage ELSE 'unknown' END AS stage,
           -- Only the gate is measured: other stages are one count per client and arm.
           CASE WHEN r.stage <> 'gate' OR r.stage IS NULL THEN NULL
                WHEN r.decision IN ('approve', 'revise') THEN r.decision
                ELSE 'unknown' END AS decision,
           CASE WHEN r.stage = 'gate' THEN r.confidence END AS confidence,
           CASE WHEN r.stage = 'gate' THEN {f.bucket("r.confidence")} END AS bucket
    {_classify_from(f, "decisions")}
)
SELECT client, arm, stage, decision, bucket,
       COUNT(*) AS records,
{_CONFIDENCE_MOMENTS}
FROM classified
GROUP BY client, arm, stage, decision, bucket
ORDER BY client, arm, stage, decision, bucket"""


def _interactions(f: _Fragments) -> str:
    sections = ("leadctx", "stats", "sections")
    # The window's interactions, parsed once (the statement reads them twice).
    interactions = f"""interactions AS (
    SELECT id, client, ts, prompt_key, m, {f.text("m", ("leadctx", "path"))} AS path
    FROM (
        SELECT id, client, ts, prompt_key, {f.metadata("metadata")} AS m
        FROM ({_interaction_rows(f)}) raw
        WHERE (ts IS NULL OR (ts >= :since AND ts < :until))
          AND (:all_clients = 1 OR {f.in_json_list("client", "clients")})
    ) p
)"""
    return f"""WITH {interactions},
{_switches(f, "interactions", "path")},
classified AS (
    SELECT {_arm("r")} AS arm,
           r.client,
           r.path,
           CASE WHEN {f.is_object("r.m", ("leadctx", "stats"))} THEN 1 ELSE 0 END AS has_stats,
           CASE WHEN {f.positive("r.m", (*sections, "knowledge_assets", "items_truncated"))}
                THEN 1 ELSE 0 END AS assets_truncated,
           CASE WHEN {f.positive("r.m", (*sections, "lead_memory", "items_truncated"))}
                THEN 1 ELSE 0 END AS memory_truncated,
           CASE WHEN r.prompt_key = '{PROPOSED_TIMES_PROMPT_KEY}' THEN 1 ELSE 0 END AS parse,
           CASE WHEN {f.is_object("r.m", ("proposedTimes",))} THEN 1 ELSE 0 END AS has_times,
           CASE WHEN {f.is_true("r.m", ("proposedTimes", "matched"))} THEN 1 ELSE 0 END
               AS matched,
           CASE WHEN {f.is_true("r.m", ("proposedTimes", "bookingAttempted"))} THEN 1 ELSE 0 END
               AS booking_attempted,
           CASE WHEN {f.text("r.m", ("proposedTimes", "bookingOutcome"))} = 'wrong'
                THEN 1 ELSE 0 END AS booking_wrong,
           r.ts,
           fs.switched_at
    {_classify_from(f, "(SELECT interactions.*, id AS interaction_id FROM interactions)")}
)
SELECT client, arm,
       COUNT(*) AS records,
       SUM(CASE WHEN path IN ('{_SHARED}', '{_FALLBACK}') THEN 1 ELSE 0 END) AS calls_flag_on,
       SUM(CASE WHEN path = '{_FALLBACK}' THEN 1 ELSE 0 END) AS calls_fallback,
       SUM(CASE WHEN path = '{_SHARED}' AND has_stats = 0 THEN 1 ELSE 0 END) AS shared_no_stats,
       SUM(CASE WHEN path = '{_SHARED}' THEN assets_truncated ELSE 0 END)
           AS calls_assets_truncated,
       SUM(CASE WHEN path = '{_SHARED}' THEN memory_truncated ELSE 0 END)
           AS calls_memory_truncated,
       SUM(CASE WHEN parse = 1 AND has_times = 1 THEN 1 ELSE 0 END) AS proposed_parses,
       SUM(CASE WHEN parse = 1 AND has_times = 0 THEN 1 ELSE 0 END) AS parse_no_times,
       SUM(CASE WHEN parse = 1 AND has_times = 1 THEN matched ELSE 0 END) AS proposed_matched,
       SUM(CASE WHEN parse = 1 AND has_times = 1 THEN booking_attempted ELSE 0 END)
           AS booking_attempted,
       SUM(CASE WHEN parse = 1 AND has_times = 1 THEN booking_wrong ELSE 0 END)
           AS booking_wrong,
       MIN(ts) AS first_record,
       MAX(ts) AS last_record,
       MIN(switched_at) AS switch_time
FROM classified
GROUP BY client, arm
ORDER BY client, arm"""


def _columns(dialect: Dialect) -> str:
    if dialect is Dialect.SQLITE:
        return "SELECT name, type FROM pragma_table_info(:table_name)"
    return """SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = :table_name"""


def statements(dialect: Dialect) -> dict[str, str]:
    """Every statement in ``dialect``, by name, with ``:name`` parameters.

    Parameters: ``:since`` and ``:until`` (the window, half-open), ``:all_clients`` (1 for
    every client, 0 to read only ``:clients``, a JSON array of client ids), ``:table_name``.

    Args:
        dialect: ``sqlite`` or ``postgresql``.
    """
    f = _fragments(dialect)
    return {
        "columns": _columns(dialect),
        "drafts": _drafts(f),
        "overseer": _overseer(f),
        "interactions": _interactions(f),
    }


# --- reading -------------------------------------------------------------------------------


def check_schema(database: Database) -> None:
    """Check the catalog for every table and column the queries read.

    Raises:
        DatabaseInputError: Naming the first missing table, or a table's missing columns, or
            (PostgreSQL) a ``metadata`` column that is neither ``json`` nor ``jsonb``.
    """
    sql = statements(database.dialect)["columns"]
    for table, required in REQUIRED_COLUMNS.items():
        types = {row[0]: str(row[1]).lower() for row in database.fetch(sql, {"table_name": table})}
        if not types:
            raise DatabaseInputError(f"{database.where}: table {table!r} not found")
        missing = [column for column in required if column not in types]
        if missing:
            raise DatabaseInputError(
                f"{database.where}: table {table!r} has no column "
                + ", ".join(repr(column) for column in missing)
            )
        # PostgreSQL casts metadata to JSONB: in a text column, one value that is not JSON
        # would fail the whole query instead of being counted (SQLite checks each value).
        metadata = types.get("metadata")
        if (
            database.dialect is Dialect.POSTGRESQL
            and table == "AIInteraction"
            and (metadata not in {"json", "jsonb"})
        ):
            raise DatabaseInputError(
                f"{database.where}: column 'AIInteraction.metadata' is {metadata}; "
                "the queries need json or jsonb (Prisma's Json)"
            )


def read_signals(
    database: Database,
    window: Window | None = None,
    *,
    previous: bool = True,
    earlier: int = 0,
    interval: timedelta = timedelta(hours=1),
) -> Collected:
    """Aggregate the records of ``window`` into ``Signals`` (and the previous window's).

    The previous window has the same length and ends where this one starts; it is read only
    when ``window.since`` is given (otherwise this window has no start to measure from).

    Args:
        database: An open database whose schema passed :func:`check_schema`.
        window: The time window and clients to read; ``None``: every record.
        previous: Also read the previous window into ``signals.previous``.
        earlier: Also read what the ``earlier`` previous checks saw into the chain
            ``signals.earlier``: the same window moved back by one ``interval`` each (its end
            is ``window.until``, or the last record), so the drift streak needs no state.
        interval: The time between two checks (the schedule's).
    """
    if window is None:
        window = Window()
    collected = _read_one(database, window)
    if earlier > 0:
        collected = _with_earlier(database, window, collected, earlier, interval)
    if not previous or window.since is None:
        return collected
    end = window.until
    if end is None:
        last = collected.signals.window_end
        end = _parse_time(last) if last is not None else window.since
    length = max(end - _aware(window.since), timedelta(0))
    window_before = replace(window, since=_aware(window.since) - length, until=_aware(window.since))
    before = _read_one(database, window_before)
    return replace(collected, signals=replace(collected.signals, previous=before.signals))


def _with_earlier(
    database: Database, window: Window, collected: Collected, count: int, interval: timedelta
) -> Collected:
    if interval <= timedelta(0):
        raise ValueError(f"interval must be positive, got {interval}")
    last = collected.signals.window_end
    if window.until is None and last is None:
        return collected  # no record at all: nothing earlier either
    end = _aware(window.until) if window.until is not None else _parse_time(last)
    chain: Signals | None = None
    for back in range(count, 0, -1):  # the earliest first, so each links to the one before
        shift = interval * back
        since = None if window.since is None else _aware(window.since) - shift
        then = _read_one(database, replace(window, since=since, until=end - shift)).signals
        chain = replace(then, earlier=chain)
    return replace(collected, signals=replace(collected.signals, earlier=chain))


def _spellings(clients: tuple[str, ...]) -> list[str]:
    """Each id in its composed (NFC) and decomposed (NFD) form, for the SQL's ``IN`` list.

    Ids are canonical (NFC) wherever leadctx compares them, but the records hold whatever the
    application wrote: ``--clients café`` must select ``cafe\u0301``'s records too. The
    statements compare raw strings (no Unicode normalisation exists in SQLite), so the list
    carries both spellings; an id written in a mix of the two forms is not matched.
    """
    forms = {form for client in clients for form in (client, *_normal_forms(client))}
    return sorted(forms)


def _normal_forms(client: str) -> tuple[str, str]:
    return unicodedata.normalize("NFC", client), unicodedata.normalize("NFD", client)


def _read_one(database: Database, window: Window) -> Collected:
    sql = statements(database.dialect)
    params: dict[str, object] = {
        "since": _aware(window.since or _EARLIEST),
        "until": _aware(window.until or _LATEST),
        "all_clients": 1 if window.clients is None else 0,
        "clients": json.dumps(_spellings(window.clients or ())),
    }
    tally = _Tally()
    for row in database.fetch(sql["drafts"], params):
        tally.add_drafts(row)
    for row in database.fetch(sql["overseer"], params):
        tally.add_overseer(row)
    for row in database.fetch(sql["interactions"], params):
        tally.add_interactions(row)
    first, last, switch_time = tally.first_record, tally.last_record, tally.switch_time
    signals = Signals(
        by_client={key: _freeze(value) for key, value in sorted(tally.counts.items())},
        quality=DataQuality(**tally.quality),
        window_start=_iso(window.since) if window.since else _iso_or_none(first),
        window_end=_iso(window.until) if window.until else _iso_or_none(last),
        switch_time=_iso_or_none(switch_time),
    )
    return Collected(signals=signals, excluded=Excluded(**tally.excluded), records=tally.records)


@dataclass(slots=True)
class _Tally:
    """Adds the grouped rows of each statement into per-(client, arm) counts."""

    counts: dict[tuple[str, Arm], dict[str, Any]] = field(
        default_factory=lambda: defaultdict(_empty_counts)
    )
    quality: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    excluded: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # The window's first and last interaction and the earliest switch (one dialect's type).
    first_record: Any = None
    last_record: Any = None
    switch_time: Any = None
    records: int = 0  # every record read, in an arm or not

    def target(self, client: str | None, arm: str, records: int) -> dict[str, Any] | None:
        """The counts a group adds to, or ``None`` after counting why it has no arm."""
        if arm in {_MISSING_INTERACTION, _MALFORMED}:
            self.quality[arm] += records
            return None
        if client is None:
            self.excluded[_NO_CLIENT] += records
            return None
        if arm in {_NO_TIMESTAMP, _NO_CLIENT, _LEGACY_AFTER_SWITCH}:
            self.excluded[arm] += records
            return None
        # One client however the application spelt it: ids are compared in NFC everywhere,
        # and the rollback names the canonical id the providers compare.
        return self.counts[canonical_client_id(str(client)), Arm(arm)]

    def add_drafts(self, row: Sequence[Any]) -> None:
        client, arm, bucket, records, *values = row
        self.records += int(records)
        evaluated, auto_sent, needs_review, resolved, edited = values[:5]
        unknown_action, unknown_status, null_conf, out_of_range, conf_sum, conf_sq = values[5:]
        self.quality["unknown_action"] += int(unknown_action)
        self.quality["unknown_status"] += int(unknown_status)
        self.quality["null_confidence"] += int(null_conf)
        self.quality["confidence_out_of_range"] += int(out_of_range)
        target = self.target(client, arm, int(records))
        if target is None:
            return
        target["drafts_evaluated"] += int(evaluated)
        target["auto_sent"] += int(auto_sent)
        target["needs_review"] += int(needs_review)
        target["review_resolved"] += int(resolved)
        target["review_edited"] += int(edited)
        _add_moments(target["confidence"], bucket, int(records), conf_sum, conf_sq)

    def add_overseer(self, row: Sequence[Any]) -> None:
        client, arm, stage, decision, bucket, records, *values = row
        self.records += int(records)
        null_conf, out_of_range, conf_sum, conf_sq = values
        if stage == "extract":
            self.excluded["overseer_other_stage"] += int(records)
            return
        if stage != "gate":
            self.excluded["overseer_unknown_stage"] += int(records)
            return
        self.quality["null_confidence"] += int(null_conf)
        self.quality["confidence_out_of_range"] += int(out_of_range)
        if decision == "unknown":
            self.quality["unknown_overseer_decision"] += int(records)
        target = self.target(client, arm, int(records))
        if target is None or decision == "unknown":
            return
        target["overseer_gate"] += int(records)
        if decision == "revise":
            target["overseer_revise"] += int(records)
        moments = target[f"overseer_confidence_{decision}"]
        _add_moments(moments, bucket, int(records), conf_sum, conf_sq)

    def add_interactions(self, row: Sequence[Any]) -> None:
        client, arm, records, flag_on, fallback, no_stats, assets, memory, *rest = row
        self.records += int(records)
        parses, parse_no_times, matched, attempted, wrong, first, last, switch = rest
        if first is not None and (self.first_record is None or first < self.first_record):
            self.first_record = first
        if last is not None and (self.last_record is None or last > self.last_record):
            self.last_record = last
        if switch is not None:
            self.switch_time = switch
        target = self.target(client, arm, int(records))
        if target is None:
            return
        # Counted into the arm as calls, and as unreadable parts of otherwise usable records.
        self.quality["malformed_metadata"] += int(no_stats) + int(parse_no_times)
        target["calls"] += int(records)
        target["calls_flag_on"] += int(flag_on)
        target["calls_fallback"] += int(fallback)
        target["calls_assets_truncated"] += int(assets)
        target["calls_memory_truncated"] += int(memory)
        target["proposed_parses"] += int(parses)
        target["proposed_matched"] += int(matched)
        target["booking_attempted"] += int(attempted)
        target["booking_wrong"] += int(wrong)


_MOMENT_FIELDS: Final = frozenset(
    {"confidence", "overseer_confidence_approve", "overseer_confidence_revise"}
)


def _empty_counts() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in fields(ClientArmSignals):
        if spec.name in _MOMENT_FIELDS:
            values[spec.name] = {"n": 0, "total": 0.0, "total_sq": 0.0, "histogram": _zeros()}
        else:
            values[spec.name] = 0
    return values


def _zeros() -> list[int]:
    return [0] * CONFIDENCE_BUCKETS


def _add_moments(
    moments: dict[str, Any], bucket: object, records: int, total: object, total_sq: object
) -> None:
    if bucket is None:
        return
    moments["n"] += records
    moments["total"] += float(total or 0.0)  # type: ignore[arg-type]
    moments["total_sq"] += float(total_sq or 0.0)  # type: ignore[arg-type]
    moments["histogram"][int(bucket)] += records  # type: ignore[call-overload]


def _freeze(values: Mapping[str, Any]) -> ClientArmSignals:
    frozen: dict[str, Any] = {}
    for name, value in values.items():
        if name in _MOMENT_FIELDS:
            frozen[name] = Moments(
                n=value["n"],
                total=value["total"],
                total_sq=value["total_sq"],
                histogram=tuple(value["histogram"]),
            )
        else:
            frozen[name] = value
    return ClientArmSignals(**frozen)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _parse_time(value: object) -> datetime:
    if isinstance(value, datetime):
        return _aware(value)
    text = str(value).replace("Z", "+00:00")
    return _aware(datetime.fromisoformat(text))


def _iso(value: datetime) -> str:
    utc = _aware(value).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _iso_or_none(value: object) -> str | None:
    return None if value is None else _iso(_parse_time(value))


_QUOTED_IN_PSQL: Final = ("since", "until", "clients", "table_name")


def for_psql(sql: str) -> str:
    """``sql`` with psql's quoted variables (``:'since'``) for the text parameters.

    Args:
        sql: A statement from :func:`statements` (``:name`` parameters).
    """
    for name in _QUOTED_IN_PSQL:
        sql = re.sub(rf"(?<![:\w]):{name}\b", f":'{name}'", sql)
    return sql


def main(argv: Sequence[str] | None = None) -> int:
    """Print every statement of one dialect, for an operator's SQL shell.

    ``postgresql`` prints psql's quoted variables (``:'since'``); ``sqlite`` prints ``:since``
    as the sqlite3 shell's ``.parameter set`` expects.

    Args:
        argv: ``[sqlite|postgresql]`` (default: ``sys.argv[1:]``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    dialect = Dialect(args[0]) if args else Dialect.POSTGRESQL
    for name, sql in statements(dialect).items():
        shown = for_psql(sql) if dialect is Dialect.POSTGRESQL else sql
        sys.stdout.write(f"-- {name}\n{shown};\n\n")
    return 0


if __name__ == "__main__":  # pragma: no cover - a developer's command
    sys.exit(main())
