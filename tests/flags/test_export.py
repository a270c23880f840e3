"""Unit tests of ``to_flagd``: the document's shape, one test per precedence row, refusals.

Whether flagd really evaluates these documents as ``decide`` does is
``test_flagd_parity.py``'s job; here the exported JSON itself is checked.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from leadctx_flags import (
    SHARED_BUNDLE_FLAG,
    ConfigurationError,
    EnvRules,
    OverridesDocument,
    RolloutState,
    to_flagd,
)
from leadctx_flags.export import FLAGD_FLAG_SET_ID, FLAGD_SCHEMA
from tests.flags.overrides_helpers import document

CLIENT_ID_RULE = {"or": [{"var": "targetingKey"}, {"var": "clientId"}]}


def flag_of(state: RolloutState) -> dict[str, Any]:
    exported = to_flagd(state)
    flag: dict[str, Any] = exported["flags"][SHARED_BUNDLE_FLAG]
    return flag


def test_document_has_flagd_shape_and_boolean_variants() -> None:
    # Given the default configuration
    state = RolloutState()

    # When it is exported
    exported = to_flagd(state)

    # Then it is a flagd flag set with one boolean flag, off for everyone, and plain JSON
    assert exported["$schema"] == FLAGD_SCHEMA
    assert exported["metadata"] == {"flagSetId": FLAGD_FLAG_SET_ID}
    assert list(exported["flags"]) == [SHARED_BUNDLE_FLAG]
    assert exported["flags"][SHARED_BUNDLE_FLAG] == {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
    }
    assert json.loads(json.dumps(exported)) == exported


def test_document_revision_becomes_flag_set_version() -> None:
    exported = to_flagd(RolloutState(document=document(revision=12)))

    assert exported["metadata"] == {"flagSetId": FLAGD_FLAG_SET_ID, "version": "12"}


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(
            RolloutState(env=EnvRules(enabled=True, allowlist=frozenset({"acme"}), kill=True)),
            id="env-kill",
        ),
        pytest.param(
            RolloutState(
                env=EnvRules(enabled=True, allowlist=frozenset({"acme"})),
                document=document(kill=True, default=True, clients={"acme": True}),
            ),
            id="document-kill",
        ),
        pytest.param(
            RolloutState(
                env=EnvRules(enabled=True, allowlist=frozenset({"acme"})),
                overrides_required=True,
            ),
            id="required-without-document",
        ),
    ],
)
def test_rows_1_and_2_export_a_static_off_flag(state: RolloutState) -> None:
    # When a configuration that is off for everyone is exported
    flag = flag_of(state)

    # Then the flag has no targeting and serves "off", and it stays ENABLED: a DISABLED flagd
    # flag is treated as missing and would answer the caller's default instead of false
    assert flag["state"] == "ENABLED"
    assert flag["defaultVariant"] == "off"
    assert "targeting" not in flag


def test_row_3_document_false_beats_the_allowlist() -> None:
    # Given acme allowlisted in env but rolled back by the document, globex on by the document
    state = RolloutState(
        env=EnvRules(allowlist=frozenset({"acme", "initech"})),
        document=document(clients={"acme": False, "globex": True}),
    )

    # When exported
    targeting = flag_of(state)["targeting"]

    # Then the off branch names acme and the on branch names globex and initech, not acme
    assert targeting == {
        "if": [
            {"in": [CLIENT_ID_RULE, ["acme"]]},
            "off",
            {"in": [CLIENT_ID_RULE, ["globex", "initech"]]},
            "on",
            None,
        ]
    }


def test_row_4_allowlist_alone_is_one_on_branch_sorted() -> None:
    state = RolloutState(env=EnvRules(allowlist=frozenset({"umbrella", "acme", "globex"})))

    targeting = flag_of(state)["targeting"]

    assert targeting == {
        "if": [{"in": [CLIENT_ID_RULE, ["acme", "globex", "umbrella"]]}, "on", None]
    }


@pytest.mark.parametrize(
    ("env_enabled", "document_default", "expected"),
    [
        (False, True, "on"),
        (True, False, "off"),
        (True, None, "on"),
        (False, None, "off"),
    ],
)
def test_rows_5_and_6_become_the_default_variant(
    env_enabled: bool, document_default: bool | None, expected: str
) -> None:
    state = RolloutState(
        env=EnvRules(enabled=env_enabled), document=document(default=document_default)
    )

    flag = flag_of(state)

    assert flag["defaultVariant"] == expected
    assert "targeting" not in flag


def test_document_without_our_flag_leaves_env_rules_in_force() -> None:
    state = RolloutState(
        env=EnvRules(enabled=True, allowlist=frozenset({"acme"})),
        document=OverridesDocument(revision=4),
    )

    flag = flag_of(state)

    assert flag["defaultVariant"] == "on"
    assert flag["targeting"] == {"if": [{"in": [CLIENT_ID_RULE, ["acme"]]}, "on", None]}


def test_empty_allowlist_and_no_entries_export_no_targeting() -> None:
    state = RolloutState(env=EnvRules(allowlist=frozenset()), document=document(clients={}))

    assert "targeting" not in flag_of(state)


@pytest.mark.parametrize(
    "client_id",
    ['{"var": "targetingKey"}', "$ref", "targetingKey", "if", "on", "a.b", 'quote"\\slash'],
)
def test_client_ids_are_embedded_as_string_literals_only(client_id: str) -> None:
    # Given a client id that looks like JSON Logic or a flagd reference
    state = RolloutState(document=document(clients={client_id: True}))

    # When exported and serialised
    text = json.dumps(to_flagd(state))

    # Then the id survives a JSON round trip as one string inside the membership array
    targeting = json.loads(text)["flags"][SHARED_BUNDLE_FLAG]["targeting"]
    assert targeting["if"][0]["in"][1] == [client_id]


def test_export_is_deterministic_and_returns_fresh_objects() -> None:
    state = RolloutState(
        env=EnvRules(allowlist=frozenset({"b", "a", "c"})),
        document=document(clients={"z": False, "y": False}),
    )

    first = to_flagd(state)
    pristine = copy.deepcopy(first)
    # flagd's own parser mutates the flag objects it is given; a later export must not notice
    first["flags"][SHARED_BUNDLE_FLAG]["targeting"]["if"][0]["in"][0]["or"].clear()

    assert to_flagd(state) == pristine
    assert json.dumps(to_flagd(state)) == json.dumps(pristine)


def test_configuration_error_is_refused_with_the_cause() -> None:
    # Given a configuration that failed to load (the provider answers off for everyone)
    state = RolloutState(
        configuration_error="LEADCTX_SHARED_BUNDLE_ENABLED='maybe': expected true/false"
    )

    # When exported, then the export refuses and says why
    with pytest.raises(ConfigurationError, match="LEADCTX_SHARED_BUNDLE_ENABLED='maybe'"):
        to_flagd(state)
