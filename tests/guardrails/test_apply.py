"""``--apply``: a rollback written into the overrides document, idempotently, read back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from leadctx import cli as app_cli
from leadctx_flags.document import DocumentError
from leadctx_flags.editing import allow, edit_document
from leadctx_flags.guardrails import cli as guardrails_cli
from leadctx_flags.guardrails.apply import apply_rollback, rollback_change
from leadctx_flags.guardrails.generate import GeneratorConfig, generate
from leadctx_flags.operations import explain
from leadctx_flags.settings import RolloutSettings

from . import fake_stats


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
    before = int(time.time())
    result = apply_rollback(path, ["acme"], ["acme", "globex"], note="needs_review_rate")
    assert result.changed
    assert result.action == "deny"
    assert result.revision is not None
    assert result.revision > before  # a clock revision: no provider holds one above it
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
    overrides = tmp_path / "no-such-directory" / "overrides.json"
    argv = ["guardrails", "report", "--db", sqlite_url, "--apply", "--overrides", str(overrides)]
    assert app_cli.main(argv) == 1
    assert "rollback not written" in capsys.readouterr().err
    assert not overrides.exists()
