"""The same queries on SQLite and a real PostgreSQL server give the same ``Signals``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leadctx_flags.guardrails import queries
from leadctx_flags.guardrails.db import Database, DatabaseInputError, DatabaseQueryError, connect
from leadctx_flags.guardrails.generate import GeneratorConfig, generate
from leadctx_flags.guardrails.queries import Window
from leadctx_flags.guardrails.signals import Signals

from .conftest import NO_BINARIES, SCRIPT
from .records import Records, at, leadctx

pytestmark = pytest.mark.integration

CONFIG = GeneratorConfig(
    seed=7,
    drafts=1500,
    clients=5,
    canary_clients=2,
    needs_review_delta=0.05,
    fallback_rate=0.05,
    truncation_rate=0.2,
    wrong_bookings=1,
)


def comparable(signals: Signals | None) -> Any:
    """``signals`` as plain data, sums rounded: the two servers add floats in their own order."""
    if signals is None:
        return None
    plain = dataclasses.asdict(signals)

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 9)
        if isinstance(value, dict):
            return {str(key): rounded(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [rounded(item) for item in value]
        return value

    return rounded(plain)


def bad_records() -> Records:
    """Bad input that PostgreSQL can store (its JSONB column refuses text that is not JSON)."""
    records = Records()
    ok = records.interaction("acme", 2, leadctx("legacy"))
    records.draft("acme", 2, ok, confidence=None)
    records.draft("acme", 2, ok, confidence=1.5, action="maybe", status="LOST")
    records.draft("acme", 2, ok, confidence=-0.1, action=None, status=None)
    records.draft("acme", 2, "no-such-interaction")
    records.draft(None, 3, ok)
    records.draft("acme", None, ok)
    odd = records.interaction("acme", 3, json.dumps({"leadctx": "shared"}))
    records.draft("acme", 3, odd)
    records.interaction("acme", 3, json.dumps({"leadctx": {"path": 5}}))
    records.interaction("acme", 3, json.dumps([1, 2]))
    records.interaction("acme", 3, None)
    records.interaction("acme", 3, leadctx("shared", stats=False))
    records.interaction("acme", 4, leadctx("legacy"), queries.PROPOSED_TIMES_PROMPT_KEY)
    records.decision("acme", 4, ok, decision="maybe", confidence=None)
    records.decision("acme", 4, ok, stage="other")
    records.decision("acme", 4, "no-such-interaction")
    return records


def test_generated_records_read_the_same_on_both(postgres_url: str, sqlite_url: str) -> None:
    # Given the same seeded records in SQLite and PostgreSQL
    generate(sqlite_url, CONFIG)
    generate(postgres_url, CONFIG)
    windows = [
        Window(),
        Window(since=CONFIG.start + timedelta(days=5), until=CONFIG.start + timedelta(days=12)),
        Window(since=CONFIG.start + timedelta(days=9)),
        Window(clients=("client-000", "client-004")),
    ]
    with connect(sqlite_url) as lite, connect(postgres_url) as pg:
        queries.check_schema(lite)
        queries.check_schema(pg)
        for window in windows:
            # When each window is read on both
            on_sqlite = queries.read_signals(lite, window)
            on_postgres = queries.read_signals(pg, window)
            # Then the signals are the same, previous window included
            assert comparable(on_postgres.signals) == comparable(on_sqlite.signals)
            assert on_postgres.excluded == on_sqlite.excluded
    full = on_sqlite.signals
    assert full.by_client  # the comparison above was not between two empty results


def test_bad_input_reads_the_same_on_both(postgres_url: str, sqlite_url: str) -> None:
    records = bad_records()
    with connect(sqlite_url, create=True) as lite:
        records.write(lite)
    with connect(postgres_url) as pg:
        records.write(pg)
    with connect(sqlite_url) as lite, connect(postgres_url) as pg:
        on_sqlite = queries.read_signals(lite)
        on_postgres = queries.read_signals(pg)
    assert comparable(on_postgres.signals) == comparable(on_sqlite.signals)
    assert on_postgres.excluded == on_sqlite.excluded
    quality = on_sqlite.signals.quality
    assert quality.missing_interaction == 2
    assert quality.unknown_overseer_decision == 1
    assert quality.malformed_metadata > 0


def test_missing_column_is_named_on_postgres(postgres_db: Database) -> None:
    postgres_db.fetch('CREATE TABLE "AIInteraction" (id TEXT, "clientId" TEXT)')
    postgres_db.commit()
    with pytest.raises(DatabaseInputError, match=r"'AIInteraction' has no column 'createdAt'"):
        queries.check_schema(postgres_db)


def test_missing_table_is_named_on_postgres(postgres_db: Database) -> None:
    with pytest.raises(DatabaseInputError, match=r"table 'AIInteraction' not found"):
        queries.check_schema(postgres_db)


def test_a_refused_connection_is_an_input_error(postgres_server: str) -> None:
    base, _ = postgres_server.rsplit("/", 1)
    with pytest.raises(DatabaseInputError, match="cannot connect to PostgreSQL"):
        connect(f"{base}/no_such_database")


def test_times_round_trip_at_millisecond_precision(postgres_url: str, sqlite_url: str) -> None:
    records = Records()
    ok = records.interaction("acme", 1.0001, leadctx("shared"))
    records.draft("acme", 1.0001, ok)
    for url in (sqlite_url, postgres_url):
        with connect(url, create=True) as database:
            records.write(database)
    with connect(sqlite_url) as lite, connect(postgres_url) as pg:
        times = {queries.read_signals(db).signals.switch_time for db in (lite, pg)}
    assert times == {(at(1.0001)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}


def test_the_throwaway_server_listens_on_loopback_and_stops(postgres_server: str) -> None:
    # Given a second throwaway server (the session's one is already running)
    import psycopg  # noqa: PLC0415 - the postgres extra

    started = subprocess.run(  # noqa: S603 - our own script
        [str(SCRIPT), "start"], capture_output=True, text=True, timeout=120, check=True
    )
    lines = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    url, stop = lines["URL"], lines["STOP"]
    assert url.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg.connect(url) as connection:
        row = connection.execute("SHOW listen_addresses").fetchone()
    assert row == ("127.0.0.1",)
    # When it is stopped, its directory is gone and it refuses connections
    subprocess.run(stop.split(), check=True, timeout=60)  # noqa: S603
    assert not Path(stop.split()[-1]).exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def test_the_script_says_when_the_binaries_are_missing(tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603 - our own script
        [str(SCRIPT), "start"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "PG_BIN": str(tmp_path)},
    )
    assert result.returncode == NO_BINARIES
    assert "apt-get install -y postgresql" in result.stderr


def test_the_report_is_the_same_from_both_databases(
    postgres_url: str, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the same records (with a needs-review regression and a wrong booking) in both
    pytest.importorskip("leadctx_flags.guardrails.decision")
    from leadctx import cli as app_cli  # noqa: PLC0415

    config = dataclasses.replace(CONFIG, drafts=3000, needs_review_delta=0.1)
    generate(sqlite_url, config)
    generate(postgres_url, config)
    reports = []
    for url in (sqlite_url, postgres_url):
        # When the report command runs on each
        argv = [
            "guardrails",
            "report",
            "--db",
            url,
            "--json",
            "--no-state",
            "--since",
            "2026-11-03",
        ]
        assert app_cli.main(argv) == 0
        reports.append(json.loads(capsys.readouterr().out))
    # Then the decisions, verdicts and figures are the same
    on_sqlite, on_postgres = (comparable_report(report) for report in reports)
    assert on_postgres == on_sqlite
    assert reports[0]["decision"] == "rollback"
    assert {m["name"]: m["verdict"] for m in reports[0]["metrics"]}[
        "proposed_times.wrong_bookings"
    ] == "regress"


def comparable_report(report: dict[str, Any]) -> Any:
    """The report with floats rounded (sums add up in each server's own order)."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 6)
        if isinstance(value, dict):
            return {key: rounded(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rounded(item) for item in value]
        return value

    return rounded(report)


def test_the_documented_statements_run_in_psql(postgres_url: str, tmp_path: Path) -> None:
    # Given the statements docs/monitoring.md shows for psql, and psql beside the server
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    if not found:
        pytest.skip("psql is not installed")
    generate(postgres_url, dataclasses.replace(CONFIG, drafts=300))
    text = (Path(__file__).resolve().parents[2] / "docs" / "monitoring.md").read_text()
    section = text.split("### PostgreSQL (psql)", 1)[1].split("\n### ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```sql\n")[1:]]
    script = tmp_path / "paste.sql"
    script.write_text(
        "\\set since '2026-11-01 00:00:00'\n\\set until '2026-11-20 00:00:00'\n"
        "\\set all_clients 1\n\\set clients '[]'\n\\set table_name AIDraft\n" + "".join(blocks)
    )
    # When an operator pastes them
    result = subprocess.run(  # noqa: S603 - the server package's psql, our own script
        [str(found[-1]), postgres_url, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-f", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then every statement runs and reads the arms
    assert result.returncode == 0, result.stderr
    assert len(blocks) == 4
    assert "autoSendConfidence" in result.stdout  # the catalog statement
    assert "canary_after" in result.stdout
    assert "control_before" in result.stdout


def test_a_text_metadata_column_is_refused_before_any_query(postgres_db: Database) -> None:
    # A text column could hold what is not JSON; the JSONB cast would fail the whole query
    postgres_db.fetch(
        'CREATE TABLE "AIInteraction" (id TEXT, "clientId" TEXT, "createdAt" TIMESTAMP(3), '
        '"promptKey" TEXT, metadata TEXT)'
    )
    postgres_db.fetch(
        'CREATE TABLE "AIDraft" (id TEXT, "clientId" TEXT, "createdAt" TIMESTAMP(3), '
        '"aiInteractionId" TEXT, status TEXT, "autoSendConfidence" REAL, "autoSendAction" TEXT)'
    )
    postgres_db.commit()
    with pytest.raises(DatabaseInputError, match=r"'AIInteraction.metadata' is text; .* jsonb"):
        queries.check_schema(postgres_db)


def test_a_failed_query_names_the_error_class_not_the_value(postgres_db: Database) -> None:
    with pytest.raises(DatabaseQueryError) as raised:
        postgres_db.fetch("SELECT CAST(:value AS JSONB)", {"value": "secret-memory-text"})
    message = str(raised.value)
    assert "InvalidTextRepresentation" in message
    assert "22P02" in message
    assert "secret-memory-text" not in message


def test_a_check_on_a_locked_table_ends_with_exit_2_at_its_query_timeout(
    postgres_url: str, tmp_path: Path
) -> None:
    # Given the records of a rollout, and a session holding a table's lock (a migration)
    import psycopg  # noqa: PLC0415 - the module is skipped without it

    generate(postgres_url, dataclasses.replace(CONFIG, drafts=300))
    overrides = tmp_path / "overrides.json"
    with psycopg.connect(postgres_url) as migration:
        migration.execute('LOCK TABLE "AIDraft" IN ACCESS EXCLUSIVE MODE')
        # When the scheduled check runs with --apply and a 1 s bound
        argv = ["report", "--db", postgres_url, "--no-state", "--apply", "--overrides"]
        started = time.monotonic()
        try:
            done = subprocess.run(  # noqa: S603 - this interpreter, our own CLI
                [
                    sys.executable,
                    "-m",
                    "leadctx",
                    "guardrails",
                    *argv,
                    str(overrides),
                    "--query-timeout",
                    "1s",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("the check waited on the lock past its query timeout")
        elapsed = time.monotonic() - started
    # Then it stops at the bound with exit 2, one line saying why, and no traceback
    assert done.returncode == 2, done.stderr
    assert "did not answer a query within 1 s: a lock held by another session" in done.stderr
    assert "QueryCanceled (57014)" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert elapsed < 30


def test_each_statement_is_bounded_on_the_server_and_keepalives_are_sent(
    postgres_url: str,
) -> None:
    # Given a connection with a 2.5 s bound, and one whose URL sets its own keepalives
    with connect(postgres_url, timeout_s=2.5) as bounded:
        # Then the server stops a statement at the bound: statement_timeout in milliseconds
        assert bounded.fetch("SHOW statement_timeout") == [("2500ms",)]
        assert "keepalives_idle=15" in bounded.connection.info.dsn
        with pytest.raises(DatabaseQueryError, match=r"within 2\.5 s"):
            bounded.fetch("SELECT pg_sleep(10)")
    with connect(f"{postgres_url}?keepalives_idle=7") as own:
        # And the URL's own keepalive settings are kept; without a bound, the server's default
        assert "keepalives_idle=7" in own.connection.info.dsn
        assert own.fetch("SHOW statement_timeout") == [("0",)]
