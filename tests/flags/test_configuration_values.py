"""Configuration cannot silently cut a process off from the overrides document.

A value an operator pasted with its shell quoting, a variable set twice under two spellings, a
poll interval that makes an idle process spin: each is refused by name, and the provider then
fails closed. ``flags explain``, the pre-deploy check, fails when the configured source cannot
be read at all.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from leadctx.cli import main
from leadctx_flags import (
    SHARED_BUNDLE_FLAG,
    ConfigurationError,
    LeadCtxProvider,
    RolloutSettings,
    client_context,
)
from leadctx_flags.cli import EXIT_OVERRIDES_UNREADABLE
from leadctx_flags.settings import MIN_FETCH_TIMEOUT_SECONDS, MIN_POLL_SECONDS, env_name
from leadctx_flags.storage import read_document, write_document
from tests.flags.overrides_helpers import document

LOCATION_VARIABLES = ["LEADCTX_FLAG_OVERRIDES", "LEADCTX_FLAG_OVERRIDES_CACHE"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def killed_document(tmp_path: Path) -> Path:
    """An overrides file whose document holds the kill switch."""
    path = tmp_path / "overrides.json"
    write_document(path, document(7, kill=True))
    return path


def padded_or_quoted(text: str) -> list[str]:
    return [f" {text}", f"{text} ", f"\t{text}\n", f'"{text}"', f"'{text}'", f"`{text}`"]


# --- quotes and padding ----------------------------------------------------------------------


@pytest.mark.parametrize("variable", LOCATION_VARIABLES)
@pytest.mark.parametrize("index", range(6))
def test_a_padded_or_quoted_location_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, index: int
) -> None:
    # Given a path as a manifest may paste it: padded, or with its quotes kept
    raw = padded_or_quoted(str(killed_document(tmp_path)))[index]
    monkeypatch.setenv(variable, raw)
    # When the settings are read, then they are refused by the variable's name, without the value
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    message = str(caught.value)
    assert f"{variable}: starts or ends with" in message
    assert str(tmp_path) not in message


@pytest.mark.parametrize(
    "variable",
    [
        "LEADCTX_SHARED_BUNDLE_CLIENTS",
        "LEADCTX_FLAG_OVERRIDES",
        "LEADCTX_FLAG_OVERRIDES_CACHE",
        "LEADCTX_FLAG_OVERRIDES_EVENTS",
    ],
)
def test_bytes_that_are_not_utf8_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    # Given a value holding a Latin-1 byte (b"caf\xe9"), as a manifest written in another
    # encoding gives it: Python reads it as a lone surrogate, which no pipeline sends as an id
    # and no other process reads as the same path
    raw = {
        "LEADCTX_SHARED_BUNDLE_CLIENTS": "acme,caf\udce9",
        "LEADCTX_FLAG_OVERRIDES_EVENTS": "https://flags.example.com/caf\udce9",
    }.get(variable, f"{tmp_path}/caf\udce9.json")
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(tmp_path / "o.json"))
    monkeypatch.setenv(variable, raw)
    # When the settings are read, Then they are refused by the variable's name, not the value
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    message = str(caught.value)
    assert f"{variable}: " in message
    assert "not UTF-8" in message
    assert "caf" not in message


@pytest.mark.parametrize(
    ("escaped", "rule"),
    [
        ("o%00.json", "U+0000"),
        ("o%0A.json", "U+000A"),
        ("o%E2%80%8B.json", "U+200B"),
        ("caf%E9.json", "percent-escapes are not UTF-8"),
    ],
    ids=["NUL", "newline", "zero-width space", "Latin-1"],
)
def test_a_file_url_cannot_smuggle_in_by_escape_what_the_location_may_not_hold(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    escaped: str,
    rule: str,
) -> None:
    # Given a file URL whose percent-escapes decode to a control character or to bytes that
    # are not UTF-8 (%00 failed every poll with a traceback; %E9 became U+FFFD, a file that
    # never exists)
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", f"file://{tmp_path}/{escaped}")
    # When the pre-deploy check and a kill run, Then both refuse it as configuration, by name
    code, out, err = run(capsys, "flags", "explain", "--client-id", "acme")
    assert (code, out) == (2, "")
    assert "LEADCTX_FLAG_OVERRIDES: the file URL" in err
    assert rule in err
    code, _, err = run(capsys, "flags", "kill", "--create")
    assert code == 2
    assert rule in err
    assert "the kill was NOT written" in err
    assert "Traceback" not in caplog.text
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "location",
    ["file://ops:s3cret@files.example.com/o.json", "ftp://ops:s3cret@files.example.com/o.json"],
    ids=["file URL with a host", "ftp"],
)
def test_a_refused_location_is_named_by_its_variable_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    location: str,
) -> None:
    # Given a location that may carry credentials, of a kind the provider cannot read
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", location)
    # When the pre-deploy check runs, Then it fails naming the variable, without the value
    code, _, err = run(capsys, "flags", "explain", "--client-id", "acme")
    assert code == 2
    assert "LEADCTX_FLAG_OVERRIDES: " in err
    assert "s3cret" not in err + caplog.text


def test_explain_exits_2_for_an_allowlist_that_is_not_utf8(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an allowlist entry in Latin-1: no pipeline's id could ever match it
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "caf\udce9")
    # When the pre-deploy check runs, Then it fails naming the variable (it answered "on")
    code, out, err = run(capsys, "flags", "explain", "--client-id", "acme")
    assert (code, out) == (2, "")
    assert "LEADCTX_SHARED_BUNDLE_CLIENTS: client id #1 holds bytes that are not UTF-8" in err


@pytest.mark.parametrize("index", range(6))
def test_a_quoted_url_is_refused(monkeypatch: pytest.MonkeyPatch, index: int) -> None:
    monkeypatch.setenv(
        "LEADCTX_FLAG_OVERRIDES", padded_or_quoted("https://flags.example.com/o.json")[index]
    )
    with pytest.raises(ConfigurationError, match="LEADCTX_FLAG_OVERRIDES: starts or ends with"):
        RolloutSettings()


def test_with_a_quoted_location_explain_fails_instead_of_answering_from_the_allowlist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the document holds a kill, acme is allowlisted, and the location kept its quotes
    path = killed_document(tmp_path)
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", f'"{path}"')
    # When the pre-deploy check runs
    code, out, err = run(capsys, "flags", "explain", "--client-id", "acme", "--json")
    # Then it fails, naming the variable, and never answers "on"
    assert code == 2
    assert out == ""
    assert "LEADCTX_FLAG_OVERRIDES: starts or ends with a quote character" in err
    # And a pipeline's provider is off for acme, from the configuration error
    provider = LeadCtxProvider()
    details = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, client_context("acme"))
    assert (details.value, details.flag_metadata["source"]) == (False, "config-error")


@pytest.mark.parametrize(
    "raw", ['"acme,globex"', "'acme'", "acme,'globex'", "acme, \u201cglobex\u201d", "`acme`"]
)
def test_a_quoted_allowlist_is_refused_rather_than_read_as_ids_with_quotes(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", raw)
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    message = str(caught.value)
    assert "LEADCTX_SHARED_BUNDLE_CLIENTS: client id #" in message
    assert "quote character" in message
    assert "acme" not in message


def test_a_quoted_token_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_TOKEN", "'s3cret'")
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    assert "LEADCTX_FLAG_OVERRIDES_TOKEN: starts or ends with a quote" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_quotes_inside_a_location_are_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Only the ends are judged: a file named o'brien.json is a file like any other
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(tmp_path / "o'brien.json"))
    assert RolloutSettings().flag_overrides == str(tmp_path / "o'brien.json")


def test_an_edit_refuses_a_padded_location_like_the_provider(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given LEADCTX_FLAG_OVERRIDES padded, which every provider refuses
    path = killed_document(tmp_path)
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", f"{path} ")
    # When an operator edits without --overrides, then the edit names the variable instead of
    # writing a file that no process reads
    code, _, err = run(capsys, "flags", "deny", "acme")
    assert code == 2
    assert "LEADCTX_FLAG_OVERRIDES: starts or ends with whitespace" in err
    assert read_document(path).revision == 7


# --- two spellings of one variable -----------------------------------------------------------


@pytest.mark.parametrize(
    ("upper", "other", "values"),
    [
        ("LEADCTX_SHARED_BUNDLE_KILL", "leadctx_shared_bundle_kill", ("true", "false")),
        ("LEADCTX_SHARED_BUNDLE_KILL", "leadctx_shared_bundle_kill", ("false", "true")),
        ("LEADCTX_SHARED_BUNDLE_CLIENTS", "Leadctx_Shared_Bundle_Clients", ("acme", "globex")),
        ("LEADCTX_FLAG_OVERRIDES", "leadctx_flag_overrides", ("/a.json", "/b.json")),
        ("LEADCTX_FLAG_OVERRIDES_POLL_SECONDS", "LEADCTX_flag_overrides_poll_seconds", ("5", "5")),
    ],
)
def test_one_variable_under_two_spellings_is_an_error_naming_both(
    monkeypatch: pytest.MonkeyPatch, upper: str, other: str, values: tuple[str, str]
) -> None:
    # Given one variable set twice, spelt in two cases (equal values included: still ambiguous)
    monkeypatch.setenv(upper, values[0])
    monkeypatch.setenv(other, values[1])
    # Then the settings are refused, naming both spellings and neither value
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    message = str(caught.value)
    assert upper in message
    assert other in message
    assert "more than one spelling" in message
    assert all(value not in message.replace(upper, "").replace(other, "") for value in values)


def test_with_two_spellings_of_the_kill_every_client_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the kill switch on under one spelling and off under the other, acme allowlisted
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    monkeypatch.setenv("leadctx_shared_bundle_kill", "false")
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_KILL", "true")
    # Then whatever the order of the environment, the provider fails closed
    provider = LeadCtxProvider()
    details = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, client_context("acme"))
    assert (details.value, details.reason) == (False, "ERROR")
    assert "LEADCTX_SHARED_BUNDLE_KILL and leadctx_shared_bundle_kill" in (
        details.error_message or ""
    )


def test_a_constructor_argument_settles_a_variable_set_under_two_spellings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_KILL", "true")
    monkeypatch.setenv("leadctx_shared_bundle_kill", "false")
    assert RolloutSettings(shared_bundle_kill=True).shared_bundle_kill is True


def test_a_single_spelling_in_another_case_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("leadctx_shared_bundle_kill", "true")
    assert RolloutSettings().shared_bundle_kill is True


# --- explain as the pre-deploy check ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unreadable_locations(tmp_path: Path) -> dict[str, str]:
    invalid = tmp_path / "invalid.json"
    invalid.write_text('{"schema": "leadctx.overrides/v1", "revision": "seven"}')
    return {
        "missing file": str(tmp_path / "nowhere.json"),
        "directory": str(tmp_path),
        "invalid document": str(invalid),
        "refused connection": f"http://127.0.0.1:{free_port()}/overrides.json",
    }


@pytest.mark.parametrize(
    "case", ["missing file", "directory", "invalid document", "refused connection"]
)
def test_explain_exits_3_when_the_configured_source_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    # Given acme allowlisted and an overrides source that cannot be read
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", unreadable_locations(tmp_path)[case])
    # When the pre-deploy check runs
    code, out, err = run(capsys, "flags", "explain", "--client-id", "acme", "--json")
    # Then it still prints its answer, but fails, saying why on stderr
    assert code == EXIT_OVERRIDES_UNREADABLE == 3
    assert json.loads(out)["source"] == "allowlist"
    assert "could not be read" in err
    assert "the environment's rules alone" in err


def test_explain_exits_3_when_only_the_cache_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a cache that holds a kill, and a source that is gone
    cache = killed_document(tmp_path)
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(tmp_path / "gone.json"))
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_CACHE", str(cache))
    code, out, err = run(capsys, "flags", "explain", "--client-id", "acme")
    # Then the answer comes from the cache, and the check still fails
    assert code == 3
    assert "source      kill" in out
    assert "the cached document (revision 7)" in err


def test_explain_exits_0_when_the_source_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(killed_document(tmp_path)))
    code, out, err = run(capsys, "flags", "explain", "--client-id", "acme", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["source"] == "kill"


def test_explain_without_overrides_configured_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "flags", "explain", "--client-id", "acme")
    assert (code, err) == (0, "")


# --- bounded background work -----------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1e-9", "0.001", "0.049", "5e-324"])
def test_a_poll_interval_below_the_floor_is_refused(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_POLL_SECONDS", raw)
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    assert "LEADCTX_FLAG_OVERRIDES_POLL_SECONDS: must be a finite number of seconds, at least" in (
        str(caught.value)
    )


def test_a_provider_with_a_spinning_interval_starts_no_poller(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the interval that made an idle process spin
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(killed_document(tmp_path)))
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_POLL_SECONDS", "1e-9")
    # Then the provider fails closed and has nothing to poll
    provider = LeadCtxProvider()
    provider.initialize(client_context("acme"))
    try:
        assert provider.configuration_error is not None
        assert provider.overrides_source_description is None
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    ("field", "floor"),
    [
        ("flag_overrides_poll_seconds", MIN_POLL_SECONDS),
        ("flag_overrides_fetch_timeout_seconds", MIN_FETCH_TIMEOUT_SECONDS),
    ],
)
def test_the_floor_itself_is_accepted_and_just_below_it_is_not(
    monkeypatch: pytest.MonkeyPatch, field: str, floor: float
) -> None:
    variable = env_name(field)
    monkeypatch.setenv(variable, repr(floor))
    assert getattr(RolloutSettings(), field) == floor
    monkeypatch.setenv(variable, repr(floor * 0.99))
    with pytest.raises(ConfigurationError, match=f"{variable}: must be .* at least {floor}"):
        RolloutSettings()


def test_explain_exits_3_when_overrides_are_required_but_not_configured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_REQUIRED", "true")
    code, out, err = run(capsys, "flags", "explain", "--client-id", "acme", "--json")
    assert code == 3
    assert json.loads(out)["source"] == "unavailable"
    assert "LEADCTX_FLAG_OVERRIDES is not set" in err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEADCTX_FLAG_OVERRIDES_CACHE", "cache.json"),  # a cache holding a kill, never read
        ("LEADCTX_FLAG_OVERRIDES_TOKEN", "secret-token"),
        ("LEADCTX_FLAG_OVERRIDES_EVENTS", "http://127.0.0.1:9/ofrep/v1/events"),
        ("LEADCTX_FLAG_OVERRIDES_POLL_SECONDS", "2"),
    ],
)
def test_explain_exits_3_when_a_document_setting_is_set_without_the_location(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    variable: str,
    value: str,
) -> None:
    # Given a manifest that lost LEADCTX_FLAG_OVERRIDES but kept a setting of its route
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    if variable == "LEADCTX_FLAG_OVERRIDES_CACHE":
        value = str(killed_document(tmp_path))
    monkeypatch.setenv(variable, value)
    # When the pre-deploy check runs
    with caplog.at_level(logging.WARNING, logger="leadctx_flags.provider"):
        code, out, err = run(capsys, "flags", "explain", "--client-id", "acme", "--json")
    # Then the answer comes from the allowlist alone, and the check fails naming the variable
    assert code == EXIT_OVERRIDES_UNREADABLE
    assert json.loads(out)["source"] == "allowlist"
    assert f"{variable} is set but LEADCTX_FLAG_OVERRIDES is not" in err
    assert "a kill in the document would not reach this deployment" in err
    # And the provider said so too, without the value
    assert f"{variable} set but LEADCTX_FLAG_OVERRIDES is not" in caplog.text or (
        variable == "LEADCTX_FLAG_OVERRIDES_EVENTS" and "EVENTS is set but" in caplog.text
    )
    assert "secret-token" not in err + caplog.text


def test_document_settings_beside_the_location_are_not_orphans(tmp_path: Path) -> None:
    settings = RolloutSettings(
        flag_overrides=str(tmp_path / "overrides.json"), flag_overrides_poll_seconds=2
    )
    assert settings.orphaned_overrides_settings() == ()
    # REQUIRED alone has its own rule (off for everyone), not this one
    assert RolloutSettings(flag_overrides_required=True).orphaned_overrides_settings() == ()
    assert RolloutSettings(flag_overrides_watch=False).orphaned_overrides_settings() == (
        "LEADCTX_FLAG_OVERRIDES_WATCH",
    )


def test_a_padded_overrides_option_is_refused_by_the_option_s_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = killed_document(tmp_path)
    code, out, err = run(
        capsys, "flags", "explain", "--client-id", "acme", "--overrides", f" {path}"
    )
    assert (code, out) == (2, "")
    assert "--overrides: starts or ends with whitespace" in err


def test_an_edit_finds_the_document_under_any_one_spelling_of_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the location under a lower-case spelling, which every provider reads
    path = killed_document(tmp_path)
    monkeypatch.setenv("leadctx_flag_overrides", str(path))
    # When an operator edits without --overrides, then the file pipelines read is edited
    code, _, _ = run(capsys, "flags", "unkill")
    assert code == 0
    assert read_document(path).revision == 8


def test_an_edit_refuses_a_location_set_under_two_spellings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = killed_document(tmp_path)
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(path))
    monkeypatch.setenv("Leadctx_Flag_Overrides", str(tmp_path / "other.json"))
    code, _, err = run(capsys, "flags", "unkill")
    assert code == 2
    assert "LEADCTX_FLAG_OVERRIDES and Leadctx_Flag_Overrides" in err
    assert str(tmp_path) not in err
    assert read_document(path).revision == 7


@pytest.mark.parametrize("character", ["\u200b", "\n", "\u202e", "\x1b"])
def test_an_invisible_or_control_character_in_a_location_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, character: str
) -> None:
    # A zero-width space pasted in front of the file name looks right in every terminal
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", f"{tmp_path}/{character}overrides.json")
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    assert (
        f"LEADCTX_FLAG_OVERRIDES: holds control or invisible character U+{ord(character):04X}"
        in (str(caught.value))
    )


# --- every namespace: one spelling, and the token's quoting rule ------------------------------


@pytest.mark.parametrize(
    ("variable", "first", "second", "what"),
    [
        ("LEADCTX_SERVE_TOKEN", "a" * 20, "b" * 20, "serve configuration"),
        ("LEADCTX_SERVE_MAX_STREAMS", "10", "20", "serve configuration"),
        ("LEADCTX_BUNDLE_ENCODING", "heuristic", "cl100k_base", "bundle settings"),
    ],
)
def test_a_serve_or_bundle_variable_under_two_spellings_is_an_error_naming_both(
    monkeypatch: pytest.MonkeyPatch, variable: str, first: str, second: str, what: str
) -> None:
    # Given one variable set under two spellings (which one the server checks, or which
    # tokenizer counts, would depend on the order of the environment)
    from leadctx.serve.settings import ServeSettings  # noqa: PLC0415 - the serve extra
    from leadctx_bundle.profiles import BundleSettings  # noqa: PLC0415

    monkeypatch.setenv(variable, first)
    monkeypatch.setenv(variable.lower(), second)
    settings = ServeSettings if variable.startswith("LEADCTX_SERVE_") else BundleSettings
    # When the settings are read, Then they are refused, naming both spellings and no value
    with pytest.raises(ConfigurationError) as caught:
        settings()
    message = str(caught.value)
    assert message.startswith(f"invalid {what}: {variable} and {variable.lower()} set under")
    assert first not in message
    assert second not in message


@pytest.mark.parametrize("quote", ['"', "'", "`"])
def test_a_quoted_serve_token_is_refused_as_the_clients_refuse_it(
    monkeypatch: pytest.MonkeyPatch, quote: str
) -> None:
    # Given the server's token with the manifest's quotes kept: the clients'
    # LEADCTX_FLAG_OVERRIDES_EVENTS_TOKEN (the same token) refuses them, so no client could
    # ever match it
    from leadctx.serve.settings import ServeSettings  # noqa: PLC0415 - the serve extra

    token = "s3cret-token-0123456789"
    monkeypatch.setenv("LEADCTX_SERVE_TOKEN", f"{quote}{token}{quote}")
    with pytest.raises(ConfigurationError) as caught:
        ServeSettings()
    assert "LEADCTX_SERVE_TOKEN: starts or ends with a quote character" in str(caught.value)
    assert token not in str(caught.value)
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_EVENTS_TOKEN", f"{quote}{token}{quote}")
    with pytest.raises(ConfigurationError, match="LEADCTX_FLAG_OVERRIDES_EVENTS_TOKEN"):
        RolloutSettings()


@pytest.mark.parametrize(
    "variable",
    [
        "LEADCTX_SERVE_HEARTBEAT_SECONDS",
        "LEADCTX_SERVE_HEAD_DEADLINE_SECONDS",
        "LEADCTX_SERVE_BODY_DEADLINE_SECONDS",
    ],
)
@pytest.mark.parametrize("raw", ["1e-9", "5e-324", "0.049"])
def test_a_serve_interval_below_the_floor_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str
) -> None:
    # Given a heartbeat that would write to every idle stream in a busy loop, or a deadline
    # that would answer every request 408
    from leadctx.serve.settings import MIN_SERVE_SECONDS, ServeSettings  # noqa: PLC0415

    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigurationError) as caught:
        ServeSettings()
    message = str(caught.value)
    assert f"{variable}: must be a finite number of seconds, at least 0.05 and at most 300" in (
        message
    )
    assert raw not in message
    # And the floor itself is accepted
    monkeypatch.setenv(variable, repr(MIN_SERVE_SECONDS))
    field = variable.removeprefix("LEADCTX_SERVE_").lower()
    assert getattr(ServeSettings(), field) == MIN_SERVE_SECONDS
