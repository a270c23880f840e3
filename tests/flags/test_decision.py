"""The precedence table of DESIGN.md, one test per row, plus the fail-closed states."""

from __future__ import annotations

import pytest
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from leadctx_flags import (
    EnvRules,
    FlagOverride,
    OverridesDocument,
    RolloutState,
    Rule,
    decide,
)
from tests.flags.overrides_helpers import document

EVERYTHING_ON = RolloutState(
    env=EnvRules(enabled=True, allowlist=frozenset({"acme"}), kill=False),
    document=document(default=True, clients={"acme": True}),
)


def test_row1_env_kill_beats_every_other_rule() -> None:
    # Given every other rule says on, When the env kill switch is set
    state = RolloutState(env=EnvRules(enabled=True, allowlist=frozenset({"acme"}), kill=True))
    decision = decide(state, "acme")
    # Then the flag is off, DISABLED, decided by the kill rule
    assert (decision.value, decision.reason, decision.variant, decision.rule) == (
        False,
        Reason.DISABLED,
        "off",
        Rule.KILL,
    )
    assert decision.error_code is None


def test_row1_document_kill_beats_every_other_rule() -> None:
    state = RolloutState(
        env=EVERYTHING_ON.env, document=document(kill=True, default=True, clients={"acme": True})
    )
    decision = decide(state, "acme")
    assert (decision.value, decision.reason, decision.rule) == (False, Reason.DISABLED, "kill")


def test_row2_required_overrides_unavailable_fails_closed() -> None:
    state = RolloutState(env=EVERYTHING_ON.env, overrides_required=True)
    decision = decide(state, "acme")
    assert (decision.value, decision.reason, decision.variant, decision.rule) == (
        False,
        Reason.ERROR,
        "off",
        Rule.UNAVAILABLE,
    )
    assert decision.error_code == ErrorCode.GENERAL
    assert decision.error_message is not None
    assert "LEADCTX_FLAG_OVERRIDES_REQUIRED" in decision.error_message


def test_row2_does_not_apply_once_a_document_is_in_force() -> None:
    state = RolloutState(overrides_required=True, document=document(clients={"acme": True}))
    assert decide(state, "acme").value is True


@pytest.mark.parametrize("entry", [True, False])
def test_row3_document_client_entry_beats_the_allowlist(entry: bool) -> None:
    # A remote per-client false is how one client is rolled back without a redeploy.
    state = RolloutState(
        env=EnvRules(enabled=not entry, allowlist=frozenset({"acme"})),
        document=document(default=not entry, clients={"acme": entry}),
    )
    decision = decide(state, "acme")
    assert (decision.value, decision.reason, decision.variant, decision.rule) == (
        entry,
        Reason.TARGETING_MATCH,
        "on" if entry else "off",
        Rule.OVERRIDE,
    )


def test_row4_allowlist_turns_the_client_on() -> None:
    state = RolloutState(
        env=EnvRules(enabled=False, allowlist=frozenset({"acme"})),
        document=document(default=False, clients={"globex": False}),
    )
    decision = decide(state, "acme")
    assert (decision.value, decision.reason, decision.variant, decision.rule) == (
        True,
        Reason.TARGETING_MATCH,
        "on",
        Rule.ALLOWLIST,
    )


@pytest.mark.parametrize("default", [True, False])
def test_row5_document_default_beats_the_env_default(default: bool) -> None:
    state = RolloutState(
        env=EnvRules(enabled=not default, allowlist=frozenset({"acme"})),
        document=document(default=default),
    )
    decision = decide(state, "initech")
    assert (decision.value, decision.reason, decision.rule) == (
        default,
        Reason.STATIC,
        Rule.OVERRIDE_DEFAULT,
    )


@pytest.mark.parametrize("enabled", [True, False])
def test_row6_env_default_for_a_client_no_rule_names(enabled: bool) -> None:
    state = RolloutState(env=EnvRules(enabled=enabled, allowlist=frozenset({"acme"})))
    decision = decide(state, "initech")
    assert (decision.value, decision.reason, decision.variant, decision.rule) == (
        enabled,
        Reason.STATIC,
        "on" if enabled else "off",
        Rule.ENV,
    )


def test_row6_without_a_client_id_the_reason_is_default() -> None:
    decision = decide(RolloutState(env=EnvRules(enabled=True)), None)
    assert (decision.value, decision.reason, decision.rule) == (True, Reason.DEFAULT, Rule.ENV)


def test_without_a_client_id_no_targeting_row_can_match() -> None:
    # Allowlist and per-client entries need a client; a document default still applies.
    state = RolloutState(
        env=EnvRules(allowlist=frozenset({"acme"})), document=document(clients={"acme": True})
    )
    assert decide(state, None).value is False
    with_default = RolloutState(document=document(default=True))
    assert decide(with_default, None).rule == Rule.OVERRIDE_DEFAULT


def test_the_default_state_is_off() -> None:
    decision = decide(RolloutState(), "acme")
    assert (decision.value, decision.rule) == (False, Rule.ENV)


def test_a_configuration_error_is_off_for_everyone_before_any_row() -> None:
    state = RolloutState(
        env=EVERYTHING_ON.env, document=EVERYTHING_ON.document, configuration_error="bad value"
    )
    for client in ("acme", "globex", None):
        decision = decide(state, client)
        assert (decision.value, decision.reason, decision.error_code, decision.rule) == (
            False,
            Reason.ERROR,
            ErrorCode.GENERAL,
            Rule.CONFIG_ERROR,
        )
        assert decision.error_message == "bad value"


def test_a_document_about_no_flag_changes_nothing() -> None:
    state = RolloutState(
        env=EnvRules(allowlist=frozenset({"acme"})),
        document=OverridesDocument(revision=3),
    )
    assert decide(state, "acme").rule == Rule.ALLOWLIST
    assert state.revision == 3


def test_decisions_are_shared_constants_not_allocated_per_call() -> None:
    # The hot path allocates nothing: the same input yields the identical object.
    state = RolloutState(env=EnvRules(allowlist=frozenset({"acme"})))
    assert decide(state, "acme") is decide(state, "acme")
    assert dict(decide(state, "acme").metadata) == {"source": "allowlist"}


def test_flag_override_defaults_say_nothing() -> None:
    override = FlagOverride()
    assert (override.kill, override.default, override.clients) == (False, None, {})
