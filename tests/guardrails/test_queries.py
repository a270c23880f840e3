"""The queries on hand-written records: every arm, count, bucket and window is checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import pytest

from leadctx_flags.guardrails import queries
from leadctx_flags.guardrails.db import Database, Dialect, connect
from leadctx_flags.guardrails.generate import GeneratorConfig, generate
from leadctx_flags.guardrails.queries import PROPOSED_TIMES_PROMPT_KEY, Excluded, Window
from leadctx_flags.guardrails.signals import Arm, DataQuality

from .records import Records, at, leadctx


def scenario() -> Records:
    """A canary client (acme) switching at hour 10 and a control client (globex)."""
    records = Records()
    # acme: legacy before its switch, shared and fallback after, legacy again at hour 20.
    before = records.interaction("acme", 1, leadctx("legacy"))
    records.draft("acme", 1, before, action="needs_review", status="EDITED", confidence=0.05)
    shared = records.interaction("acme", 10, leadctx("shared", assets=1))
    records.draft("acme", 10, shared, action="send", confidence=1.0)
    fallback = records.interaction("acme", 12, leadctx("fallback"))
    records.draft("acme", 12, fallback, action="send", confidence=0.5)
    again = records.interaction("acme", 20, leadctx("legacy"))
    records.draft("acme", 20, again)
    gate = records.interaction("acme", 11, leadctx("shared", memory=2), "overseer.gate.v1")
    records.decision("acme", 11, gate, decision="revise", confidence=0.6)
    extract = records.interaction("acme", 11, leadctx("shared"), "overseer.gate.v1")
    records.decision("acme", 11, extract, stage="extract")
    times = json.loads(leadctx("shared"))
    times["proposedTimes"] = {"matched": True, "bookingAttempted": True, "bookingOutcome": "wrong"}
    records.interaction("acme", 13, json.dumps(times), PROPOSED_TIMES_PROMPT_KEY)
    # globex: legacy throughout, split at acme's switch (hour 10).
    early = records.interaction("globex", 5, leadctx("legacy"))
    records.draft("globex", 5, early, action="needs_review", status="APPROVED", confidence=0.32)
    late = records.interaction("globex", 15, leadctx("legacy"))
    records.draft("globex", 15, late, action="skip", status="PENDING", confidence=0.999)
    return records


@pytest.fixture
def database(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with connect(url, create=True) as writer:
        scenario().write(writer)
    return connect(url)


def test_arms_counts_and_buckets(database: Database) -> None:
    # Given the scenario; When the whole history is read
    collected = queries.read_signals(database)
    signals = collected.signals
    # Then each record is in its arm with the counts it carries
    assert set(signals.by_client) == {
        ("acme", Arm.CANARY_BEFORE),
        ("acme", Arm.CANARY_AFTER),
        ("globex", Arm.CONTROL_BEFORE),
        ("globex", Arm.CONTROL_AFTER),
    }
    before = signals.by_client["acme", Arm.CANARY_BEFORE]
    assert (before.drafts_evaluated, before.needs_review, before.review_resolved) == (1, 1, 1)
    assert before.review_edited == 1
    assert before.confidence.n == 1
    assert before.confidence.histogram[1] == 1  # 0.05 opens bucket 1
    assert before.calls == 1
    assert before.calls_flag_on == 0

    after = signals.by_client["acme", Arm.CANARY_AFTER]
    assert (after.drafts_evaluated, after.auto_sent, after.needs_review) == (2, 2, 0)
    assert after.confidence.n == 2
    assert after.confidence.total == pytest.approx(1.5)
    assert after.confidence.total_sq == pytest.approx(1.25)
    assert after.confidence.histogram[19] == 1  # 1.0 is in the last, closed bucket
    assert after.confidence.histogram[10] == 1
    assert sum(after.confidence.histogram) == 2
    assert (after.calls, after.calls_flag_on, after.calls_fallback) == (5, 5, 1)
    assert (after.calls_assets_truncated, after.calls_memory_truncated) == (1, 1)
    assert (after.overseer_gate, after.overseer_revise) == (1, 1)
    assert after.overseer_confidence_revise.n == 1
    assert after.overseer_confidence_revise.histogram[12] == 1
    assert after.overseer_confidence_approve.n == 0
    assert (after.proposed_parses, after.proposed_matched) == (1, 1)
    assert (after.booking_attempted, after.booking_wrong) == (1, 1)

    control = signals.by_client["globex", Arm.CONTROL_BEFORE]
    assert (control.needs_review, control.review_resolved, control.review_edited) == (1, 1, 0)
    assert control.confidence.histogram[6] == 1
    late = signals.by_client["globex", Arm.CONTROL_AFTER]
    assert (late.drafts_evaluated, late.auto_sent, late.needs_review) == (1, 0, 0)
    assert late.confidence.histogram[19] == 1

    # And what fits no arm is counted, not dropped
    assert collected.excluded == Excluded(legacy_after_switch=2, overseer_other_stage=1)
    assert signals.quality == DataQuality()
    assert signals.switch_time == "2026-11-01T10:00:00.000Z"
    assert signals.window_start == "2026-11-01T01:00:00.000Z"
    assert signals.window_end == "2026-11-01T20:00:00.000Z"
    assert signals.previous is None


def test_window_and_previous_window(database: Database) -> None:
    # When the window starts after acme's legacy record
    collected = queries.read_signals(database, Window(since=at(9), until=at(21)))
    signals = collected.signals
    # Then acme has no "before" in it
    assert ("acme", Arm.CANARY_BEFORE) not in signals.by_client
    assert signals.window_start == "2026-11-01T09:00:00.000Z"
    assert signals.window_end == "2026-11-01T21:00:00.000Z"
    # And the previous window of equal length ([-3h, 9h)) has no canary at all
    previous = signals.previous
    assert previous is not None
    assert previous.switch_time is None
    assert previous.window_start == "2026-10-31T21:00:00.000Z"
    assert set(previous.by_client) == {("acme", Arm.CONTROL_BEFORE), ("globex", Arm.CONTROL_BEFORE)}
    assert previous.by_client["acme", Arm.CONTROL_BEFORE].needs_review == 1
    assert previous.previous is None


def test_until_is_exclusive(database: Database) -> None:
    signals = queries.read_signals(database, Window(until=at(10))).signals
    assert signals.switch_time is None
    assert all(arm is Arm.CONTROL_BEFORE for _, arm in signals.by_client)


def test_clients_filter(database: Database) -> None:
    # When only globex is read, there is no canary and everything is "before"
    signals = queries.read_signals(database, Window(clients=("globex",))).signals
    assert set(signals.by_client) == {("globex", Arm.CONTROL_BEFORE)}
    assert signals.by_client["globex", Arm.CONTROL_BEFORE].drafts_evaluated == 2
    # And an unknown client reads nothing
    empty = queries.read_signals(database, Window(clients=("initech",))).signals
    assert empty.by_client == {}
    assert empty.window_start is None


@pytest.mark.parametrize("dialect", list(Dialect))
def test_statements_are_printable_for_a_shell(
    dialect: Dialect, capsys: pytest.CaptureFixture[str]
) -> None:
    assert queries.main([dialect.value]) == 0
    out = capsys.readouterr().out
    for name in ("columns", "drafts", "overseer", "interactions"):
        assert f"-- {name}\n" in out
    # The dialects differ in JSON access, and only the right one appears
    assert ("json_extract" in out) is (dialect is Dialect.SQLITE)
    assert ("#>>" in out) is (dialect is Dialect.POSTGRESQL)


def test_python_side_memory_does_not_grow_with_rows(tmp_path: Path) -> None:
    # Given the same clients with 2,000 and 20,000 drafts
    peaks = []
    for drafts in (2_000, 20_000):
        url = f"sqlite:///{tmp_path / f'{drafts}.db'}"
        config = GeneratorConfig(
            seed=1,
            drafts=drafts,
            clients=2,
            canary_clients=1,
            overseer_per_draft=0.1,
            parses_per_draft=0.1,
        )
        generate(url, config)
        with connect(url) as database:
            # Each connection compiles its statements once: not what is measured
            queries.read_signals(database)
            # When the signals are read again, with Python's allocations traced
            tracemalloc.start()
            try:
                signals = queries.read_signals(database).signals
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
        assert sum(c.drafts_evaluated for c in signals.by_client.values()) > drafts * 0.9
    # Then ten times the rows cost far less than ten times the memory (1.35x here, from
    # buckets that fill up): Python holds grouped counts (clients x arms x outcomes x
    # buckets), never rows
    assert peaks[1] < 1.6 * peaks[0], peaks


def test_the_documented_statements_are_the_module_s() -> None:
    # The operator pastes what docs/monitoring.md shows: it must be what the report runs
    text = (Path(__file__).resolve().parents[2] / "docs" / "monitoring.md").read_text()
    for dialect, title in ((Dialect.POSTGRESQL, "PostgreSQL (psql)"), (Dialect.SQLITE, "SQLite")):
        section = text.split(f"### {title}", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        for name, sql in queries.statements(dialect).items():
            shown = queries.for_psql(sql) if dialect is Dialect.POSTGRESQL else sql
            assert f"`{name}`:\n\n```sql\n{shown};\n```" in section, (dialect, name)


def test_the_documented_statements_run_in_the_sqlite3_shell(tmp_path: Path) -> None:
    shell = shutil.which("sqlite3")
    if shell is None:
        pytest.skip("the sqlite3 shell is not installed")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    generate(url, GeneratorConfig(drafts=300, clients=4, canary_clients=2))
    text = (Path(__file__).resolve().parents[2] / "docs" / "monitoring.md").read_text()
    section = text.split("### SQLite (sqlite3 shell)", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```sql\n")[1:]]
    script = (
        ".bail on\n"
        ".parameter set :since \"'2026-11-01 00:00:00.000'\"\n"
        ".parameter set :until \"'2026-11-20 00:00:00.000'\"\n"
        ".parameter set :all_clients 1\n"
        ".parameter set :clients \"'[]'\"\n"
        ".parameter set :table_name \"'AIDraft'\"\n" + "".join(blocks)
    )
    result = subprocess.run(  # noqa: S603 - the system's sqlite3 shell, our own script
        [shell, "-readonly", str(tmp_path / "r.db")],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(blocks) == 4
    assert "autoSendConfidence" in result.stdout
    assert "|canary_after|" in result.stdout
    assert "|control_before|" in result.stdout
