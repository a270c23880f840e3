"""``leadctx flags ...`` end to end: arguments in, exit code and output out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType

from leadctx.cli import main
from leadctx_flags import SHARED_BUNDLE_FLAG, OverridesDocument, client_context
from leadctx_flags.storage import read_document

EXPLAIN_KEYS = {
    "flag",
    "client_id",
    "value",
    "reason",
    "variant",
    "source",
    "error_code",
    "provider",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_json_has_exactly_the_documented_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme,globex")
    code, out, err = run(capsys, "flags", "explain", "--client-id", "acme", "--json")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert set(result) == EXPLAIN_KEYS
    assert result == {
        "flag": "shared_bundle.enabled",
        "client_id": "acme",
        "value": True,
        "reason": "TARGETING_MATCH",
        "variant": "on",
        "source": "allowlist",
        "error_code": None,
        "provider": "leadctx",
    }


def test_explain_for_a_client_off_the_allowlist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    code, out, _ = run(capsys, "flags", "explain", "--client-id", "initech", "--json")
    assert code == 0
    assert json.loads(out)["value"] is False
    assert json.loads(out)["source"] == "env"


def test_explain_prints_a_readable_table_without_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "flags", "explain", "--client-id", "acme")
    assert code == 0
    assert "reason      STATIC" in out
    assert "provider    leadctx" in out


def test_a_configuration_error_exits_non_zero_with_the_message_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_KILL", "perhaps")
    code, out, err = run(capsys, "flags", "explain", "--client-id", "acme", "--json")
    assert code == 2
    assert out == ""
    assert "LEADCTX_SHARED_BUNDLE_KILL: expected one of true/false" in err
    assert "perhaps" not in err


def test_an_invalid_client_id_argument_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "flags", "explain", "--client-id", "a\tb")
    assert code == 2
    assert "--client-id" in err
    assert "U+0009" in err


def test_editing_commands_bump_the_revision_and_explain_sees_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an allowlisted client and an empty overrides file location
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme,globex")
    path = tmp_path / "overrides.json"
    overrides = ("--overrides", str(path))
    # When an operator denies one client
    code, out, _ = run(
        capsys, "flags", "deny", "globex", *overrides, "--create", "--by", "ops", "--json"
    )
    assert code == 0
    document = OverridesDocument.model_validate_json(out)
    assert document.updated_by == "ops"
    created = document.revision
    # Then that client is off while the other stays on, decided by the document
    _, out, _ = run(capsys, "flags", "explain", "--client-id", "globex", *overrides, "--json")
    assert (json.loads(out)["value"], json.loads(out)["source"]) == (False, "override")
    _, out, _ = run(capsys, "flags", "explain", "--client-id", "acme", *overrides, "--json")
    assert json.loads(out)["value"] is True
    # When the operator kills, then unkills and clears
    assert run(capsys, "flags", "kill", *overrides)[0] == 0
    _, out, _ = run(capsys, "flags", "explain", "--client-id", "acme", *overrides, "--json")
    assert (json.loads(out)["value"], json.loads(out)["reason"]) == (False, "DISABLED")
    assert run(capsys, "flags", "unkill", *overrides)[0] == 0
    assert run(capsys, "flags", "clear", "globex", *overrides, "--note", "back on")[0] == 0
    assert read_document(path).flags["shared_bundle.enabled"].note == "back on"
    assert run(capsys, "flags", "allow", "initech", *overrides)[0] == 0
    # Then the file holds four revisions more, with the edits applied in order, and the last
    # edit, made without --note, has no note (a note tells why one edit was made)
    final = OverridesDocument.model_validate_json(path.read_text())
    flag = final.flags["shared_bundle.enabled"]
    assert final.revision == created + 4
    assert (flag.kill, flag.clients, flag.note) == (False, {"initech": True}, None)
    assert final.updated_by is not None
    assert final.updated_by.startswith("leadctx-cli:")
    code, out, _ = run(capsys, "flags", "show", *overrides, "--json")
    assert OverridesDocument.model_validate_json(out) == final


def test_editing_uses_the_env_location_when_it_is_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "overrides.json"
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(path))
    assert run(capsys, "flags", "kill", "--create")[0] == 0
    assert (
        OverridesDocument.model_validate_json(path.read_text()).flags["shared_bundle.enabled"].kill
    )


def test_editing_without_a_document_location_says_how_to_name_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "flags", "kill")
    assert code == 2
    assert "--overrides" in err


def test_editing_a_corrupt_document_fails_and_leaves_it_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "overrides.json"
    path.write_text('{"schema": "leadctx.overrides/v1", "revision": "x"}')
    code, _, err = run(capsys, "flags", "deny", "acme", "--overrides", str(path))
    assert code == 2
    assert "revision" in err
    assert str(path) in err
    assert path.read_text() == '{"schema": "leadctx.overrides/v1", "revision": "x"}'


def test_the_console_script_runs_as_installed() -> None:
    script = shutil.which("leadctx", path=str(Path(sys.executable).parent))
    assert script is not None, "the leadctx console script is installed with the package"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADCTX_")}
    env["LEADCTX_SHARED_BUNDLE_CLIENTS"] = "acme"
    result = subprocess.run(  # noqa: S603 - a fixed command line of our own script
        [script, "flags", "explain", "--client-id", "acme", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["value"] is True


@pytest.mark.integration
def test_export_loads_into_flagd_and_agrees_with_explain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given env rules and a document written through the CLI
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme,globex")
    overrides = ("--overrides", str(tmp_path / "overrides.json"))
    assert run(capsys, "flags", "deny", "globex", *overrides, "--create")[0] == 0
    assert run(capsys, "flags", "allow", "initech", *overrides)[0] == 0
    # When the effective configuration is exported
    code, out, err = run(capsys, "flags", "export", "--format", "flagd", *overrides)
    assert (code, err) == (0, "")
    exported = tmp_path / "flags.flagd.json"
    exported.write_text(out)
    # Then the real flagd provider answers what explain answers, for every client
    provider = FlagdProvider(
        resolver_type=ResolverType.FILE, offline_flag_source_path=str(exported)
    )
    api.set_provider_and_wait(provider, domain="flagd")
    try:
        for client_id in ("acme", "globex", "initech", "umbrella"):
            flagd = api.get_client(domain="flagd").get_boolean_details(
                SHARED_BUNDLE_FLAG, False, client_context(client_id)
            )
            _, out, _ = run(
                capsys, "flags", "explain", "--client-id", client_id, *overrides, "--json"
            )
            ours = json.loads(out)
            assert (flagd.value, flagd.variant) == (ours["value"], ours["variant"]), client_id
    finally:
        api.clear_providers()


def test_export_refuses_when_overrides_are_configured_but_unavailable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.json"
    code, out, err = run(
        capsys, "flags", "export", "--format", "flagd", "--overrides", str(missing)
    )
    assert (code, out) == (2, "")
    assert "refusing to export" in err
    assert str(missing) in err


def test_export_refuses_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_ENABLED", "maybe")
    code, _, err = run(capsys, "flags", "export", "--format", "flagd")
    assert code == 2
    assert "LEADCTX_SHARED_BUNDLE_ENABLED" in err


def test_editing_reads_a_file_url_from_the_env_as_the_provider_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "with space"
    folder.mkdir()
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", f"file://{tmp_path}/with%20space/o.json")
    assert run(capsys, "flags", "deny", "acme", "--create", "--revision", "7")[0] == 0
    assert OverridesDocument.model_validate_json((folder / "o.json").read_text()).revision == 7


def test_editing_refuses_an_https_location_in_the_env(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", "https://flags.example.com/o.json")
    code, _, err = run(capsys, "flags", "kill")
    assert code == 2
    assert "--overrides" in err


def test_export_refusing_an_unavailable_https_source_never_echoes_its_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an https location carrying credentials, its server down (nothing listens on 9)
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", "https://ops:s3cret@127.0.0.1:9/o.json")
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_FETCH_TIMEOUT_SECONDS", "2")
    # When the export refuses, Then it names the source as the provider does, without them
    code, out, err = run(capsys, "flags", "export", "--format", "flagd")
    assert (code, out) == (2, "")
    assert "https://127.0.0.1:9/o.json: no overrides document could be loaded" in err
    assert "s3cret" not in err
