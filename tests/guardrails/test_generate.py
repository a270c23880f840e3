"""The seeded generator: reproducible, and each knob moves the signal it names."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from leadctx_flags.guardrails import queries
from leadctx_flags.guardrails.db import connect
from leadctx_flags.guardrails.generate import GeneratorConfig, generate
from leadctx_flags.guardrails.signals import Arm, ClientArmSignals, Signals

BASE = GeneratorConfig(seed=3, drafts=3000, clients=4, canary_clients=2)


def dump(path: Path) -> str:
    with sqlite3.connect(path) as raw:
        return hashlib.sha256("\n".join(raw.iterdump()).encode()).hexdigest()


def read(tmp_path: Path, config: GeneratorConfig, name: str) -> Signals:
    url = f"sqlite:///{tmp_path / name}"
    generate(url, config)
    with connect(url) as database:
        return queries.read_signals(database).signals


def pooled(signals: Signals, arm: Arm) -> ClientArmSignals:
    """Sum of the integer counts of every client in ``arm``."""
    totals: dict[str, int] = {}
    for (_, each), counts in signals.by_client.items():
        if each is arm:
            for name in ClientArmSignals.__slots__:
                value = getattr(counts, name)
                if isinstance(value, int):
                    totals[name] = totals.get(name, 0) + value
    return ClientArmSignals(**totals)  # type: ignore[arg-type]  # integer fields only


def test_same_seed_same_rows(tmp_path: Path) -> None:
    first = generate(f"sqlite:///{tmp_path / 'a.db'}", BASE)
    generate(f"sqlite:///{tmp_path / 'b.db'}", BASE)
    generate(f"sqlite:///{tmp_path / 'c.db'}", replace(BASE, seed=4))
    assert dump(tmp_path / "a.db") == dump(tmp_path / "b.db")
    assert dump(tmp_path / "a.db") != dump(tmp_path / "c.db")
    assert first.drafts == 3000
    assert first.canary_clients == ("client-000", "client-001")
    # Every draft and decision has its own interaction; the rest are proposed-times parses
    assert first.interactions > first.drafts + first.decisions


def test_summary_counts_match_the_tables(tmp_path: Path) -> None:
    summary = generate(f"sqlite:///{tmp_path / 'a.db'}", BASE)
    with sqlite3.connect(tmp_path / "a.db") as raw:
        counts = {
            table: raw.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]  # noqa: S608
            for table in ("AIInteraction", "AIDraft", "MeetingOverseerDecision")
        }
    assert counts == {
        "AIInteraction": summary.interactions,
        "AIDraft": summary.drafts,
        "MeetingOverseerDecision": summary.decisions,
    }


def test_canary_switches_at_the_switch_time(tmp_path: Path) -> None:
    signals = read(tmp_path, BASE, "a.db")
    canary = {client for client, arm in signals.by_client if arm is Arm.CANARY_AFTER}
    control = {client for client, arm in signals.by_client if arm is Arm.CONTROL_AFTER}
    assert canary == {"client-000", "client-001"}
    assert control == {"client-002", "client-003"}
    assert signals.switch_time is not None
    assert signals.switch_time.startswith("2026-11-08T00:")


def test_knobs_move_their_signals(tmp_path: Path) -> None:
    # Given no effect and a strong effect on every knob
    quiet = pooled(
        read(tmp_path, replace(BASE, fallback_rate=0, truncation_rate=0), "q.db"), Arm.CANARY_AFTER
    )
    loud = pooled(
        read(
            tmp_path,
            replace(
                BASE,
                needs_review_delta=0.3,
                revise_delta=0.5,
                match_delta=-0.5,
                wrong_bookings=3,
                fallback_rate=0.5,
                truncation_rate=0.6,
            ),
            "l.db",
        ),
        Arm.CANARY_AFTER,
    )
    # Then each moves the rate it names, and wrong bookings are exactly the number injected
    assert quiet.needs_review / quiet.drafts_evaluated + 0.2 < (
        loud.needs_review / loud.drafts_evaluated
    )
    assert quiet.overseer_revise / quiet.overseer_gate + 0.3 < (
        loud.overseer_revise / loud.overseer_gate
    )
    assert quiet.proposed_matched / quiet.proposed_parses - 0.3 > (
        loud.proposed_matched / loud.proposed_parses
    )
    assert (quiet.booking_wrong, loud.booking_wrong) == (0, 3)
    assert quiet.calls_fallback == 0
    assert 0.4 < loud.calls_fallback / loud.calls_flag_on < 0.6
    assert quiet.calls_assets_truncated == 0
    shared = loud.calls_flag_on - loud.calls_fallback
    assert 0.5 < loud.calls_assets_truncated / shared < 0.7
    assert 0.2 < loud.calls_memory_truncated / shared < 0.4


def test_confidence_shift_moves_the_mean(tmp_path: Path) -> None:
    signals = read(tmp_path, replace(BASE, confidence_shift=-0.1), "s.db")
    before = after = 0.0
    n_before = n_after = 0
    for (_, arm), counts in signals.by_client.items():
        if arm is Arm.CANARY_BEFORE:
            before, n_before = before + counts.confidence.total, n_before + counts.confidence.n
        if arm is Arm.CANARY_AFTER:
            after, n_after = after + counts.confidence.total, n_after + counts.confidence.n
    assert after / n_after < before / n_before - 0.07


def test_client_mix_moves_at_the_switch(tmp_path: Path) -> None:
    config = replace(
        BASE, clients=3, canary_clients=3, client_weights=(5, 3, 2), client_weights_after=(3, 3, 4)
    )
    signals = read(tmp_path, config, "m.db")
    share = {
        arm: signals.by_client["client-002", arm].drafts_evaluated
        / sum(counts.drafts_evaluated for (_, a), counts in signals.by_client.items() if a is arm)
        for arm in (Arm.CANARY_BEFORE, Arm.CANARY_AFTER)
    }
    assert 0.15 < share[Arm.CANARY_BEFORE] < 0.25
    assert 0.35 < share[Arm.CANARY_AFTER] < 0.45


def test_an_open_connection_is_written_and_left_open(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "open.db")
    summary = generate(raw, GeneratorConfig(drafts=50, clients=2, canary_clients=1))
    assert raw.execute('SELECT COUNT(*) FROM "AIDraft"').fetchone() == (50,)
    assert summary.drafts == 50
    raw.close()
    with pytest.raises(TypeError, match="expected a sqlite3 or psycopg connection"):
        generate(object(), BASE)
