"""``--apply``: a rollback written into the overrides document, idempotently, read back."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from leadctx import cli as app_cli
from leadctx_flags import editing
from leadctx_flags.document import DocumentError
from leadctx_flags.editing import allow, edit_document
from leadctx_flags.guardrails import cli as guardrails_cli
from leadctx_flags.guardrails.apply import apply_rollback, rollback_change
from leadctx_flags.guardrails.generate import GeneratorConfig, generate
from leadctx_flags.operations import explain
from leadctx_flags.settings import RolloutSettings

from . import fake_stats
from .records import canary_with_wrong_bookings


def test_the_change_is_a_deny_per_client_or_the_kill() -> None:
    assert rollback_change([], ["a", "b"]) is None
    partial = rollback_change(["b"], ["a", "b"])
    assert partial is not None
    assert (partial.update, partial.clients) == (None, {"b": False})
    whole = rollback_change(["b", "a"], ["a", "b"])
    assert whole is not None
    assert whole.update == {"kill": True}


def test_a_missing_document_starts_above_any_held_revision(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    before = editing.clock_revision()
    result = apply_rollback(path, ["acme"], ["acme", "globex"], note="needs_review_rate")
    assert result.changed
    assert result.action == "deny"
    assert result.revision is not None
    # the clock's revision, as `leadctx flags ... --create` writes: no provider holds one above it
    assert result.revision >= before
    document = json.loads(path.read_text())
    assert document["updated_by"] == "guardrails"
    flag = document["flags"]["shared_bundle.enabled"]
    assert flag["clients"] == {"acme": False}
    assert flag["kill"] is False
    assert flag["note"] == "needs_review_rate"


def test_applying_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    first = apply_rollback(path, ["acme"], ["acme", "globex"], note="x")
    content = path.read_bytes()
    second = apply_rollback(path, ["acme"], ["acme", "globex"], note="x")
    assert not second.changed
    assert second.revision == first.revision
    assert path.read_bytes() == content


def test_other_entries_are_kept_and_the_kill_beats_them(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps({"schema": "leadctx.overrides/v1", "revision": 41}))
    edit_document(path, allow("initech"), updated_by="ops")
    result = apply_rollback(path, ["acme", "globex"], ["acme", "globex"], note="wrong_bookings")
    assert (result.action, result.revision) == ("kill", 43)
    flag = json.loads(path.read_text())["flags"]["shared_bundle.enabled"]
    assert flag["kill"] is True
    assert flag["clients"] == {"initech": True}


def test_an_invalid_document_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text('{"schema": "leadctx.overrides/v1", "revision": "x"}')
    with pytest.raises(DocumentError):
        apply_rollback(path, ["acme"], ["acme"], note="x")
    assert path.read_text() == '{"schema": "leadctx.overrides/v1", "revision": "x"}'


@pytest.fixture
def statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guardrails_cli, "_default_evaluator", lambda: fake_stats.evaluate)


def test_report_apply_turns_the_flag_off_for_the_provider(
    sqlite_url: str, tmp_path: Path, statistics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a canary of two clients, one of which booked a wrong time
    generate(
        sqlite_url,
        GeneratorConfig(seed=2, drafts=1500, clients=4, canary_clients=2, wrong_bookings=1),
    )
    overrides = tmp_path / "overrides.json"
    argv = [
        "guardrails",
        "report",
        "--db",
        sqlite_url,
        "--json",
        "--apply",
        "--overrides",
        str(overrides),
    ]
    # When the report runs with --apply
    assert app_cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    # Then the rollback is written for that client only
    assert data["decision"] == "rollback"
    assert data["applied"]["action"] == "deny"
    (affected,) = data["applied"]["clients"]  # the one client with the wrong booking
    (spared,) = {"client-000", "client-001"} - {affected}
    assert data["applied"]["changed"] is True
    revision = data["applied"]["revision"]
    # And the provider, reading the document, turns the flag off for it and only for it
    settings = RolloutSettings(
        shared_bundle_clients=("client-000", "client-001"), flag_overrides=str(overrides)
    )
    assert explain(affected, settings).value is False
    assert explain(spared, settings).value is True
    # And running the same check again writes nothing
    assert app_cli.main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["applied"] == {**data["applied"], "changed": False}
    assert json.loads(overrides.read_text())["revision"] == revision


def test_report_apply_writes_nothing_without_a_rollback(
    sqlite_url: str, tmp_path: Path, statistics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(sqlite_url, GeneratorConfig(seed=2, drafts=800, clients=4, canary_clients=2))
    overrides = tmp_path / "overrides.json"
    argv = ["guardrails", "report", "--db", sqlite_url, "--apply", "--overrides", str(overrides)]
    assert app_cli.main(argv) == 0
    assert "decision: EXPAND" in capsys.readouterr().out
    assert not overrides.exists()


def test_a_rollback_that_cannot_be_written_exits_1(
    sqlite_url: str, tmp_path: Path, statistics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = GeneratorConfig(seed=2, drafts=800, clients=4, canary_clients=2, wrong_bookings=1)
    generate(sqlite_url, config)
    # Under a regular file: no directory can be made there (the document's lock, filelock,
    # creates a missing parent directory, so a merely missing one would be written).
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    overrides = blocker / "overrides.json"
    argv = ["guardrails", "report", "--db", sqlite_url, "--apply", "--overrides", str(overrides)]
    assert app_cli.main(argv) == 1
    assert "rollback not written" in capsys.readouterr().err
    assert not overrides.exists()


PADDED = "acme pad   "  # a padded CHAR(11) column's value: breaks the id rule (trailing spaces)


def test_an_unusable_id_from_the_records_never_loses_the_others_rollback(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three canary clients; acme and a padded id booked wrong times, globex did not
    canary_with_wrong_bookings(sqlite_url, {"acme": 16, PADDED: 2, "globex": 0})
    overrides = tmp_path / "overrides.json"
    argv = ["guardrails", "report", "--db", sqlite_url, "--apply", "--overrides", str(overrides)]
    # When the report applies its rollback
    status = app_cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    # Then acme is denied, globex stays on, and the unusable id is named by its position only
    assert status == 1
    data = json.loads(captured.out)
    assert data["decision"] == "rollback"
    assert data["affected_clients"][1] == PADDED
    assert data["applied"]["action"] == "deny"
    assert data["applied"]["clients"] == ["acme"]
    assert data["applied"]["left_out"] == ["affected_clients[1]"]
    flag = json.loads(overrides.read_text())["flags"]["shared_bundle.enabled"]
    assert (flag["kill"], flag["clients"]) == (False, {"acme": False})
    assert "affected_clients[1]" in captured.err
    assert "not denied" in captured.err
    assert "Traceback" not in captured.err
    assert "acme pad" not in captured.err
    # And the table names it by position too, never echoing it
    assert app_cli.main(argv) == 1
    captured = capsys.readouterr()
    assert "acme pad" not in captured.out + captured.err
    assert "affected clients: acme, affected_clients[1] (unusable id)" in captured.out


def test_when_no_affected_id_can_be_denied_the_kill_is_written(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given only the padded id booked wrong times, and another canary client did not
    canary_with_wrong_bookings(sqlite_url, {PADDED: 3, "globex": 0})
    overrides = tmp_path / "overrides.json"
    argv = ["guardrails", "report", "--db", sqlite_url, "--json", "--apply"]
    # When the report applies its rollback
    status = app_cli.main([*argv, "--overrides", str(overrides)])
    captured = capsys.readouterr()
    # Then the kill is in force (it covers the client that cannot be named): exit 0
    assert status == 0
    data = json.loads(captured.out)
    assert data["applied"]["action"] == "kill"
    assert data["applied"]["left_out"] == []
    assert json.loads(overrides.read_text())["flags"]["shared_bundle.enabled"]["kill"] is True
    assert "affected_clients[0]" in captured.err
    assert "kill" in captured.err
    assert "acme pad" not in captured.err


def test_record_ids_are_folded_to_nfc_before_they_are_denied(tmp_path: Path) -> None:
    # NFD from the records and NFC from the canary list are one client: the deny is its NFC form
    path = tmp_path / "overrides.json"
    result = apply_rollback(path, ["cafe\u0301"], ["caf\u00e9", "globex"], note="x")
    assert (result.action, result.clients, result.left_out) == ("deny", ("caf\u00e9",), ())
    flag = json.loads(path.read_text())["flags"]["shared_bundle.enabled"]
    assert flag["clients"] == {"caf\u00e9": False}


def test_the_log_says_what_the_rollback_turned_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="leadctx_flags.guardrails.apply")
    apply_rollback(tmp_path / "a.json", ["acme", "globex"], ["acme", "globex", "x"], note="n")
    apply_rollback(tmp_path / "b.json", ["acme"], ["acme"], note="n")
    deny, kill = (record.getMessage() for record in caplog.records)
    assert "deny: 2 client(s) off" in deny
    assert "kill: every client off" in kill
    for message in (deny, kill):
        assert "acme" not in message  # no client list in the log, as everywhere
        assert "0 client(s)" not in message
