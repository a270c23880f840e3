"""Bad input is counted and reported, never a crash and never a silent drop."""

from __future__ import annotations

import math
import re
import sqlite3
import time
from pathlib import Path

import pytest

from leadctx_flags.guardrails import queries
from leadctx_flags.guardrails.db import (
    DatabaseInputError,
    DatabaseQueryError,
    connect,
    create_schema,
)
from leadctx_flags.guardrails.queries import Excluded
from leadctx_flags.guardrails.signals import Arm, DataQuality

from .records import leadctx
from .test_postgres import bad_records


def test_every_bad_record_is_counted(sqlite_url: str) -> None:
    # Given records with nulls, out-of-range confidences, unknown values, unreadable metadata,
    # missing interactions, plus what only SQLite can hold: text that is not JSON, a
    # confidence stored as text
    records = bad_records()
    broken = records.interaction("acme", 2.5, '{"leadctx": {"path": "shared"')
    records.draft("acme", 2.5, broken)
    ok = records.interactions[0][0]
    records.draft("acme", 2, ok, confidence="high")  # type: ignore[arg-type]
    with connect(sqlite_url, create=True) as database:
        records.write(database)
    # When they are read
    with connect(sqlite_url) as database:
        collected = queries.read_signals(database)
    # Then each is counted under its cause
    assert collected.signals.quality == DataQuality(
        null_confidence=2,  # a draft and an overseer decision
        confidence_out_of_range=3,  # 1.5, -0.1 and "high"
        unknown_action=2,  # "maybe" and NULL
        unknown_status=2,  # "LOST" and NULL
        unknown_overseer_decision=1,
        malformed_metadata=8,  # 6 interactions (one of them a shared call with no stats), 2 drafts
        missing_interaction=2,  # a draft and a decision
    )
    assert collected.excluded == Excluded(
        no_timestamp=1,
        no_client=1,
        # The parse and the unknown decision at hour 4, after acme's first shared call: a
        # record with two problems counts under both causes.
        legacy_after_switch=2,
        overseer_unknown_stage=1,
    )
    # And the usable records are still in their arms
    before = collected.signals.by_client["acme", Arm.CANARY_BEFORE]
    assert before.drafts_evaluated == 2  # the NULL-confidence send and the "high" send
    assert before.confidence.n == 0
    after = collected.signals.by_client["acme", Arm.CANARY_AFTER]
    assert (after.calls, after.calls_flag_on, after.calls_assets_truncated) == (1, 1, 0)


def test_an_empty_database_reads_as_no_signals(sqlite_url: str) -> None:
    with connect(sqlite_url, create=True) as database:
        create_schema(database)
    with connect(sqlite_url) as database:
        queries.check_schema(database)
        collected = queries.read_signals(database)
    assert collected.signals.by_client == {}
    assert collected.signals.quality == DataQuality()
    assert collected.signals.switch_time is None
    assert collected.signals.window_start is None


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    path = tmp_path / "partial.db"
    with sqlite3.connect(path) as raw:
        raw.execute(
            'CREATE TABLE "AIInteraction" (id, "clientId", "createdAt", "promptKey", metadata)'
        )
    with (
        connect(f"sqlite:///{path}") as database,
        pytest.raises(DatabaseInputError, match=r"table 'AIDraft' not found"),
    ):
        queries.check_schema(database)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "partial.db"
    url = f"sqlite:///{path}"
    with connect(url, create=True) as database:
        create_schema(database)
    with sqlite3.connect(path) as raw:
        raw.execute('ALTER TABLE "AIDraft" DROP COLUMN "autoSendAction"')
        raw.execute('ALTER TABLE "AIDraft" DROP COLUMN "status"')
    with connect(url) as database, pytest.raises(DatabaseInputError) as raised:
        queries.check_schema(database)
    assert "'AIDraft' has no column 'status', 'autoSendAction'" in str(raised.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://localhost/db", "unsupported database URL scheme 'mysql'"),
        ("records.db", "unsupported database URL scheme '(none)'"),
        ("sqlite:///", "names no file"),
    ],
)
def test_bad_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(DatabaseInputError, match=re.escape(message)):
        connect(url)


def test_a_folder_given_as_the_sqlite_file_is_named_as_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DatabaseInputError, match="SQLite database file is a folder, not"):
        connect(f"sqlite:///{tmp_path}")


def test_a_sqlite_query_slower_than_the_bound_is_stopped_and_says_so(sqlite_url: str) -> None:
    # Given a statement that runs for tens of seconds (a hundred million rows counted)
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "SELECT count(*) FROM n"
    )
    with (
        connect(sqlite_url, create=True) as database,
        connect(sqlite_url, timeout_s=0.2) as bounded,
    ):
        create_schema(database)
        started = time.monotonic()
        # When it runs with a 0.2 s bound, Then it is stopped soon after, and the message says so
        with pytest.raises(DatabaseQueryError, match=r"did not answer a query within 0\.2 s"):
            bounded.fetch(slow)
        assert time.monotonic() - started < 5
        # And the connection is usable, its next statements bounded anew
        assert bounded.fetch("SELECT 1") == [(1,)]


def test_a_sqlite_database_locked_by_a_writer_waits_the_bound_then_says_so(
    sqlite_url: str,
) -> None:
    # Given a database another process is writing to, holding its lock
    with connect(sqlite_url, create=True) as database:
        create_schema(database)
    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=DELETE")
        writer.execute("BEGIN EXCLUSIVE")
        with connect(sqlite_url, timeout_s=0.3) as bounded:
            started = time.monotonic()
            with pytest.raises(DatabaseQueryError, match=r"did not answer a query within 0\.3 s"):
                queries.check_schema(bounded)
            assert 0.25 < time.monotonic() - started < 5
    finally:
        writer.close()


@pytest.mark.parametrize("timeout", [0.0, -1.0, math.inf, math.nan])
def test_a_query_timeout_that_is_not_a_positive_number_is_refused(
    sqlite_url: str, timeout: float
) -> None:
    with pytest.raises(DatabaseInputError, match="query timeout must be a positive number"):
        connect(sqlite_url, create=True, timeout_s=timeout)


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(DatabaseInputError, match="SQLite database file not found"):
        connect(f"sqlite:///{path}")
    assert not path.exists()


def test_the_report_opens_sqlite_read_only(sqlite_url: str) -> None:
    with connect(sqlite_url, create=True) as database:
        create_schema(database)
    with (
        connect(sqlite_url) as database,
        pytest.raises(DatabaseQueryError, match="SQLITE_READONLY"),
    ):
        database.fetch('DELETE FROM "AIDraft"')


def test_prisma_millisecond_times_are_read(sqlite_url: str) -> None:
    # Prisma's SQLite connector stores DateTime as Unix milliseconds
    with connect(sqlite_url, create=True) as database:
        create_schema(database)
        database.fetch(
            'INSERT INTO "AIInteraction" VALUES (:id, :client, :created, :key, :metadata)',
            {
                "id": "i1",
                "client": "acme",
                "created": 1_793_577_600_000,
                "key": "k",
                "metadata": leadctx("shared"),
            },
        )
        database.commit()
    with connect(sqlite_url) as database:
        signals = queries.read_signals(database).signals
    assert signals.switch_time == "2026-11-02T00:00:00.000Z"
    assert signals.by_client["acme", Arm.CANARY_AFTER].calls == 1


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the records you are looking for" * 100)
    with connect(f"sqlite:///{path}") as database, pytest.raises(DatabaseQueryError) as raised:
        queries.check_schema(database)
    message = str(raised.value)
    assert str(path) in message
    assert "DatabaseError" in message
    assert "records you are looking for" not in message
