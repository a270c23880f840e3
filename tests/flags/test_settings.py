"""Env parsing: every edge of LEADCTX_* is either parsed exactly or rejected by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadctx_flags import ConfigurationError, RolloutSettings
from leadctx_flags.settings import parse_bool, parse_client_list


def test_defaults_are_off_with_no_allowlist_and_no_overrides() -> None:
    settings = RolloutSettings()
    assert settings.shared_bundle_enabled is False
    assert settings.shared_bundle_clients == ()
    assert settings.shared_bundle_kill is False
    assert settings.flag_overrides is None
    assert settings.flag_overrides_poll_seconds == 10.0
    assert settings.flag_overrides_required is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("1", True),
        ("yes", True),
        ("On", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
)
def test_booleans_parse_strictly(
    monkeypatch: pytest.MonkeyPatch, raw: str, *, expected: bool
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_ENABLED", raw)
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_KILL", raw)
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_REQUIRED", raw)
    settings = RolloutSettings()
    assert settings.shared_bundle_enabled is expected
    assert settings.shared_bundle_kill is expected
    assert settings.flag_overrides_required is expected


@pytest.mark.parametrize("raw", ["maybe", "t", "y", "2", "", "enabled", "truee", "1.0"])
@pytest.mark.parametrize(
    "variable",
    [
        "LEADCTX_SHARED_BUNDLE_ENABLED",
        "LEADCTX_SHARED_BUNDLE_KILL",
        "LEADCTX_FLAG_OVERRIDES_REQUIRED",
    ],
)
def test_an_unparseable_boolean_names_the_variable_never_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    message = str(caught.value)
    assert f"{variable}: expected one of true/false" in message
    assert repr(raw) not in message


def test_every_bad_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_ENABLED", "maybe")
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_KILL", "perhaps")
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    assert "LEADCTX_SHARED_BUNDLE_ENABLED: expected" in str(caught.value)
    assert "LEADCTX_SHARED_BUNDLE_KILL: expected" in str(caught.value)
    assert "maybe" not in str(caught.value)
    assert "perhaps" not in str(caught.value)


def test_allowlist_is_trimmed_without_blanks_or_repeats_in_first_seen_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", " globex, acme,,acme ,  ,globex,initech ")
    assert RolloutSettings().shared_bundle_clients == ("globex", "acme", "initech")


@pytest.mark.parametrize("raw", ["", " ", ",", " , ,"])
def test_an_empty_allowlist_is_empty(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", raw)
    assert RolloutSettings().shared_bundle_clients == ()


def test_allowlist_is_not_parsed_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    # pydantic-settings decodes list-typed env vars as JSON by default; ours are plain commas.
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", '["acme"]')
    assert RolloutSettings().shared_bundle_clients == ('["acme"]',)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("acme,glo\x07bex", "U+0007"),
        ("acme,bad\nid", "U+000A"),
        ("zero\u200bwidth", "U+200B"),
        ("x" * 129, "129 characters"),
    ],
)
def test_an_invalid_client_id_is_rejected_by_name(
    monkeypatch: pytest.MonkeyPatch, raw: str, fragment: str
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", raw)
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    message = str(caught.value)
    assert "LEADCTX_SHARED_BUNDLE_CLIENTS" in message
    assert fragment in message
    assert len(message) < 400, "the error echoes a bounded part of the value"


def test_a_client_id_of_exactly_128_characters_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "x" * 128)
    assert RolloutSettings().shared_bundle_clients == ("x" * 128,)


def test_constructor_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_ENABLED", "true")
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    settings = RolloutSettings(shared_bundle_enabled=False, shared_bundle_clients=["globex"])
    assert settings.shared_bundle_enabled is False
    assert settings.shared_bundle_clients == ("globex",)


def test_a_dotenv_file_is_never_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LEADCTX_SHARED_BUNDLE_ENABLED=true\n")
    monkeypatch.chdir(tmp_path)
    assert RolloutSettings().shared_bundle_enabled is False


def test_blank_overrides_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", "  ")
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_CACHE", "")
    settings = RolloutSettings()
    assert settings.flag_overrides is None
    assert settings.flag_overrides_cache is None


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "nan"])
def test_a_bad_poll_interval_is_rejected_by_name(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_POLL_SECONDS", raw)
    with pytest.raises(ConfigurationError, match="LEADCTX_FLAG_OVERRIDES_POLL_SECONDS"):
        RolloutSettings()


def test_the_token_is_never_echoed_in_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_TOKEN", "s3cret-token")
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_KILL", "nope")
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    assert "s3cret-token" not in str(caught.value)
    settings = RolloutSettings(shared_bundle_kill=False)
    assert "s3cret-token" not in repr(settings)


def test_unknown_constructor_arguments_are_rejected() -> None:
    with pytest.raises(
        ConfigurationError, match="LEADCTX_SHARED_BUNDLE_ENABLE: Extra inputs are not permitted"
    ):
        RolloutSettings(shared_bundle_enable=True)


def test_settings_are_immutable() -> None:
    settings = RolloutSettings()
    with pytest.raises(ValueError, match="frozen"):
        settings.shared_bundle_enabled = True  # type: ignore[misc]


def test_parse_bool_accepts_real_booleans_and_rejects_other_types() -> None:
    assert parse_bool(True) is True
    with pytest.raises(ValueError, match="true/false"):
        parse_bool(1)


def test_parse_client_list_accepts_iterables_but_not_other_types() -> None:
    assert parse_client_list(["acme", " acme "]) == ("acme",)
    with pytest.raises(ValueError, match="comma-separated"):
        parse_client_list(42)
    with pytest.raises(ValueError, match="must be a string"):
        parse_client_list([42])
