"""``leadctx smoke``: the pre-expansion checklist, run as an operator runs it.

The provider is the real ``LeadCtxProvider`` started from the environment (and, where a test
sets it, a real overrides document written by ``leadctx flags``); the gate, the bundle builder
and the OpenTelemetry SDK are the real ones. Only the leaking assemblers below are test-made,
to prove that check (c) can fail.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from opentelemetry import trace

from leadctx.cli import main
from leadctx.smoke import (
    CHECK_FLAG,
    CHECK_NO_MEMORY_TEXT,
    CHECK_PRICING,
    CHECK_SCHEDULING,
    legacy_context,
    run_smoke,
)
from leadctx_bundle.models import BundleInput

USER_LEAD = {
    "client_id": "someone-else",
    "lead_id": "lead-7",
    "pipeline": "auto_send",
    "knowledge_assets": [
        {"id": "plans", "title": "Plans", "content": "Team plan: 30 EUR a seat.", "rank": 1},
        {"id": "sla", "title": "Support", "content": "Replies within one business day."},
    ],
    "lead_memory": [
        {
            "id": "m1",
            "content": "Wants to start before the end of the quarter, budget approved.",
            "created_at": "2026-11-21T08:00:00Z",
        }
    ],
    "thread": [
        {"role": "lead", "content": "What does the team plan cost?", "sent_at": "2026-11-25"}
    ],
}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["smoke", *args])
    out, err = capsys.readouterr()
    return code, out, err


def smoke_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code, out, _ = run_cli(capsys, *args, "--json")
    return code, json.loads(out)


def checks_of(report: dict[str, object]) -> dict[str, dict[str, object]]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {check["name"]: check for check in checks}


def test_an_allowlisted_client_passes_every_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme,globex")
    code, out, err = run_cli(capsys, "--client-id", "acme")
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == f"✓ {CHECK_FLAG('acme')} — on (reason TARGETING_MATCH, rule allowlist)"
    assert lines[1].startswith(f"✓ {CHECK_SCHEDULING} — draft: shared, ")
    assert "fallback (source_error, ConnectionError), legacy context returned" in lines[1]
    assert lines[2].startswith(f"✓ {CHECK_PRICING} — knowledge_assets: 3/3 assets")
    assert lines[3].startswith(f"✓ {CHECK_NO_MEMORY_TEXT} — none found in ")
    assert lines[4] == "smoke passed for acme: 4/4 checks"
    assert "✗" not in out


def test_json_has_exactly_the_documented_shape(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    code, report = smoke_json(capsys, "--client-id", "acme")
    assert code == 0
    assert list(report) == ["client_id", "checks", "passed"]
    assert report["client_id"] == "acme"
    assert report["passed"] is True
    checks = report["checks"]
    assert isinstance(checks, list)
    assert [check["name"] for check in checks] == [
        CHECK_FLAG("acme"),
        CHECK_SCHEDULING,
        CHECK_PRICING,
        CHECK_NO_MEMORY_TEXT,
    ]
    for check in checks:
        assert list(check) == ["name", "passed", "detail"]
        assert check["passed"] is True
        assert isinstance(check["detail"], str)
        assert check["detail"]


def test_a_client_with_the_flag_off_fails_and_says_what_was_not_exercised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    code, report = smoke_json(capsys, "--client-id", "initech")
    assert code == 1
    assert report["passed"] is False
    checks = checks_of(report)
    assert checks[CHECK_FLAG("initech")] == {
        "name": CHECK_FLAG("initech"),
        "passed": False,
        "detail": "off (reason STATIC, rule env)",
    }
    for name in (CHECK_SCHEDULING, CHECK_PRICING):
        assert checks[name]["passed"] is False
        assert str(checks[name]["detail"]).startswith("not exercised: the flag is off")
    assert "the shared path was not exercised" in str(checks[CHECK_NO_MEMORY_TEXT]["detail"])


def test_a_deny_in_the_overrides_document_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given acme on by the env allowlist, and a document that rolls acme back
    document = tmp_path / "overrides.json"
    assert main(["flags", "deny", "acme", "--overrides", str(document), "--create"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(document))
    # When the checklist runs against the configured provider
    code, report = smoke_json(capsys, "--client-id", "acme")
    # Then the document's deny decides, as it would in a pipeline
    assert code == 1
    flag = checks_of(report)[CHECK_FLAG("acme")]
    assert flag["passed"] is False
    assert flag["detail"] == "off (reason TARGETING_MATCH, rule override)"


def test_a_kill_in_the_environment_is_reported_with_its_rule(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_KILL", "true")
    code, report = smoke_json(capsys, "--client-id", "acme")
    assert code == 1
    assert checks_of(report)[CHECK_FLAG("acme")]["detail"] == "off (reason DISABLED, rule kill)"


def test_the_users_own_lead_from_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps(USER_LEAD), encoding="utf-8")
    code, report = smoke_json(capsys, "--client-id", "acme", "--input", str(lead))
    assert code == 0, report
    assert report["client_id"] == "acme"  # the file's client_id is replaced by --client-id
    assert str(checks_of(report)[CHECK_PRICING]["detail"]).startswith(
        "knowledge_assets: 2/2 assets"
    )


def test_input_without_knowledge_assets_fails_the_pricing_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({**USER_LEAD, "knowledge_assets": []}), encoding="utf-8")
    code, report = smoke_json(capsys, "--client-id", "acme", "--input", str(lead))
    assert code == 1
    pricing = checks_of(report)[CHECK_PRICING]
    assert pricing["passed"] is False
    assert pricing["detail"] == "knowledge_assets section empty (0 assets given)"


def leaking_to_logs(lead: BundleInput) -> str:
    """A legacy assembly that logs the lead's memory: what check (c) exists to catch."""
    logging.getLogger("pipeline.legacy").warning(
        "assembling context with memory %s", [entry.content for entry in lead.lead_memory]
    )
    return legacy_context(lead)


def leaking_to_spans(lead: BundleInput) -> str:
    """A legacy assembly that puts one memory entry on the current span."""
    trace.get_current_span().set_attribute("debug.memory", lead.lead_memory[0].content)
    return legacy_context(lead)


@pytest.mark.parametrize(
    ("legacy", "place"), [(leaking_to_logs, "logs"), (leaking_to_spans, "spans")]
)
@pytest.mark.parametrize("lead", [None, USER_LEAD], ids=["sample", "input"])
def test_memory_text_that_is_emitted_fails_the_no_content_check(
    monkeypatch: pytest.MonkeyPatch,
    legacy: object,
    place: str,
    lead: dict[str, object] | None,
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    report = run_smoke("acme", lead=lead, legacy=legacy)  # type: ignore[arg-type]
    checks = {check.name: check for check in report.checks}
    no_content = checks[CHECK_NO_MEMORY_TEXT]
    assert no_content.passed is False
    assert no_content.detail.startswith(f"lead memory text found in {place};")
    assert not report.passed
    # The leak is the only failure: the other checks still ran and held.
    assert [check.passed for check in report.checks] == [True, True, True, False]


def test_errors_exit_2_with_one_line_naming_the_file_or_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"lead_id": "l1", "lead_memory": [{"id": "m", "content": "x"}]}')
    code, out, err = run_cli(capsys, "--client-id", "acme", "--input", str(broken))
    assert (code, out) == (2, "")
    # One line, the file named once, then each problem by its field path
    assert err == (
        f"leadctx: invalid bundle input: --input {broken}: pipeline: Field required; "
        "lead_memory[0].created_at: Field required\n"
    )

    code, out, err = run_cli(capsys, "--client-id", "acme", "--input", str(tmp_path / "none"))
    assert (code, out) == (2, "")
    assert err.startswith(f"leadctx: invalid bundle input: --input {tmp_path / 'none'}: cannot")

    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_KILL", "maybe")
    code, out, err = run_cli(capsys, "--client-id", "acme")
    assert (code, out) == (2, "")
    assert err.startswith("leadctx: invalid rollout configuration: LEADCTX_SHARED_BUNDLE_KILL:")
    assert "maybe" not in err
    assert err.count("\n") == 1

    monkeypatch.delenv("LEADCTX_SHARED_BUNDLE_KILL")
    monkeypatch.setenv("LEADCTX_BUNDLE_DEADLINE_SECONDS_OVERSEER", "soon")
    code, out, err = run_cli(capsys, "--client-id", "acme")
    assert (code, out) == (2, "")
    assert err.startswith("leadctx: LEADCTX_BUNDLE_DEADLINE_SECONDS_OVERSEER")
    assert err.count("\n") == 1


def test_without_the_sdk_it_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A None entry in sys.modules makes the import fail, as on an install without the extra.
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.metrics", None)
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    code, out, err = run_cli(capsys, "--client-id", "acme")
    assert (code, out) == (2, "")
    assert err == (
        "leadctx: smoke needs opentelemetry.sdk.metrics; "
        "install the extra: pip install 'leadctx[otel]'\n"
    )
