"""Client ids are canonical (NFC) wherever they enter: one client, one id, one decision.

``café`` arrives precomposed (NFC, ``caf\\u00e9``) from one system and decomposed (NFD,
``cafe\\u0301``, as macOS and some databases store it) from another. Both spellings must name
the same client in the env allowlist, the CLI, the overrides document, the evaluation context
and the guardrails, so that a rollback written with either one turns the client off.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openfeature.evaluation_context import EvaluationContext

from leadctx.cli import main
from leadctx_flags import (
    SHARED_BUNDLE_FLAG,
    EnvRules,
    LeadCtxProvider,
    RolloutSettings,
    RolloutState,
    client_context,
    decide,
)
from leadctx_flags.client_ids import canonical_client_id, validate_client_id
from leadctx_flags.document import DocumentError, parse_document
from leadctx_flags.editing import deny, edit_document
from leadctx_flags.guardrails.apply import apply_rollback
from leadctx_flags.operations import unknown_client_warning
from leadctx_flags.storage import read_document, write_document
from tests.flags.overrides_helpers import document, wire

NFC = "caf\u00e9"
NFD = "cafe\u0301"
# Other members of the class: a Hangul syllable and its jamo, an Å with a ring above.
PAIRS = [
    (NFC, NFD),
    ("\ud55c", "\u1112\u1161\u11ab"),
    ("\u00c5ngstr\u00f6m", "A\u030angstro\u0308m"),
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def value(provider: LeadCtxProvider, client_id: str) -> bool:
    details = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, client_context(client_id))
    return details.value


def test_the_pairs_are_different_strings_with_one_canonical_form() -> None:
    for composed, decomposed in PAIRS:
        assert composed != decomposed
        assert unicodedata.normalize("NFC", decomposed) == composed


# --- the rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("composed", "decomposed"), PAIRS)
def test_validation_returns_the_canonical_form(composed: str, decomposed: str) -> None:
    assert validate_client_id(decomposed) == composed
    assert validate_client_id(composed) == composed


def test_an_ascii_id_is_returned_as_it_is() -> None:
    client_id = "".join(["ac", "me"])  # not interned: identity shows no copy was made
    assert canonical_client_id(client_id) is client_id


@given(st.text(max_size=40))
def test_canonical_form_is_nfc_and_stable(text: str) -> None:
    canonical = canonical_client_id(text)
    assert canonical == unicodedata.normalize("NFC", text)
    assert canonical_client_id(canonical) == canonical


def test_the_length_limit_counts_the_canonical_form() -> None:
    # 100 decomposed é are 200 code points; once composed, 100: within the limit
    assert validate_client_id("e\u0301" * 100) == "\u00e9" * 100


# --- every entry point -------------------------------------------------------------------------


@pytest.mark.parametrize(("composed", "decomposed"), PAIRS)
@pytest.mark.parametrize("listed_as", ["composed", "decomposed"])
def test_the_env_allowlist_matches_either_spelling(
    monkeypatch: pytest.MonkeyPatch, composed: str, decomposed: str, listed_as: str
) -> None:
    listed = composed if listed_as == "composed" else decomposed
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", f"acme,{listed}")
    provider = LeadCtxProvider()
    assert RolloutSettings().shared_bundle_clients == ("acme", composed)
    assert [value(provider, composed), value(provider, decomposed)] == [True, True]


def test_two_spellings_in_the_allowlist_are_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", f"{NFD},{NFC}")
    assert RolloutSettings().shared_bundle_clients == (NFC,)


@pytest.mark.parametrize(("composed", "decomposed"), PAIRS)
@pytest.mark.parametrize("denied_as", ["composed", "decomposed"])
def test_a_deny_of_either_spelling_rolls_the_client_back(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    composed: str,
    decomposed: str,
    denied_as: str,
) -> None:
    # Given the client allowlisted in one spelling and the document as the overrides source
    path = tmp_path / "overrides.json"
    write_document(path, document(3))
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", composed)
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(path))
    # When an operator denies it, typing the other spelling (or the same)
    denied = decomposed if denied_as == "decomposed" else composed
    code, _, err = run(capsys, "flags", "deny", denied)
    assert (code, err) == (0, "")
    # Then the document holds the canonical id, and the client is off in either spelling
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].clients == {composed: False}
    provider = LeadCtxProvider()
    provider.initialize(EvaluationContext())
    try:
        assert [value(provider, composed), value(provider, decomposed)] == [False, False]
    finally:
        provider.shutdown()


def test_clear_of_the_other_spelling_removes_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    write_document(path, document(3, clients={NFC: False}))
    code = main(["flags", "clear", NFD, "--overrides", str(path)])
    assert code == 0
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].clients == {}


def test_explain_reports_and_evaluates_the_canonical_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", NFC)
    code, out, _ = run(capsys, "flags", "explain", "--client-id", NFD, "--json")
    result = json.loads(out)
    assert code == 0
    assert (result["client_id"], result["value"], result["source"]) == (NFC, True, "allowlist")


def test_a_document_key_in_either_spelling_is_read_canonically() -> None:
    parsed = parse_document(wire(4, clients={NFD: False}), origin="test")
    assert parsed.flags[SHARED_BUNDLE_FLAG].clients == {NFC: False}
    state = RolloutState(env=EnvRules(allowlist=frozenset({NFC})), document=parsed)
    assert decide(state, NFC).value is False


@pytest.mark.parametrize("values", [(True, False), (False, True), (False, False)])
def test_a_document_naming_one_client_in_two_spellings_is_refused(
    values: tuple[bool, bool],
) -> None:
    # Two entries for one client: which one survived would depend on their order
    raw = json.dumps(
        {
            "schema": "leadctx.overrides/v1",
            "revision": 4,
            "flags": {SHARED_BUNDLE_FLAG: {"clients": {NFC: values[0], NFD: values[1]}}},
        }
    ).encode()
    with pytest.raises(DocumentError, match=r"clients: two entries name client"):
        parse_document(raw, origin="test")


@pytest.mark.parametrize("where", ["targeting_key", "attribute"])
def test_the_evaluation_context_matches_either_spelling(where: str) -> None:
    provider = LeadCtxProvider(RolloutSettings(shared_bundle_clients=[NFC]))
    context = (
        EvaluationContext(targeting_key=NFD)
        if where == "targeting_key"
        else EvaluationContext(attributes={"clientId": NFD})
    )
    details = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, context)
    assert (details.value, details.flag_metadata["source"]) == (True, "allowlist")


def test_env_rules_built_in_code_are_canonical_too() -> None:
    state = RolloutState(env=EnvRules(allowlist=frozenset({NFD})))
    assert decide(state, NFC).value is True


def test_an_edit_keyed_by_either_spelling_replaces_the_entry(tmp_path: Path) -> None:
    # Given the client on in the document under its canonical id
    path = tmp_path / "overrides.json"
    write_document(path, document(3, clients={NFC: True}))
    # When a change spelt the other way is applied (as the guardrails build theirs)
    edited = edit_document(path, deny(NFD), updated_by="tests")
    # Then the entry is replaced, not doubled or refused
    assert edited.flags[SHARED_BUNDLE_FLAG].clients == {NFC: False}


def test_a_guardrails_rollback_of_an_id_read_from_records_turns_the_client_off(
    tmp_path: Path,
) -> None:
    # Given the client switched on in the document (NFC) and records that spell it NFD
    path = tmp_path / "overrides.json"
    write_document(path, document(3, clients={NFC: True, "acme": True}))
    # When the guardrails roll back the affected client
    result = apply_rollback(path, [NFD], [NFD, "acme"], note="test")
    # Then the document's entry for the client is off
    assert result.changed
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].clients == {NFC: False, "acme": True}


# --- quotes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("quoted", ["'acme'", '"acme"', "acme'", "\u201cacme\u201d"])
def test_an_id_with_quotes_at_either_end_is_refused_by_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], quoted: str
) -> None:
    path = tmp_path / "overrides.json"
    write_document(path, document(3))
    code, _, err = run(capsys, "flags", "deny", quoted, "--overrides", str(path))
    assert code == 2
    assert "client id must not start or end with a quote character" in err
    assert read_document(path).revision == 3


def test_an_id_with_a_quote_inside_is_an_id() -> None:
    assert validate_client_id("o'reilly") == "o'reilly"


# --- an edit of an id no rule knows warns ------------------------------------------------------


def test_a_deny_of_an_id_no_rule_knows_warns_but_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "overrides.json"
    write_document(path, document(3, clients={"globex": True}))
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    code, out, err = run(capsys, "flags", "deny", "acmee", "--overrides", str(path))
    assert code == 0
    assert "warning: the client id given is neither in LEADCTX_SHARED_BUNDLE_CLIENTS" in err
    assert "acmee" not in err
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].clients == {
        "globex": True,
        "acmee": False,
    }
    assert "revision 4" in out


@pytest.mark.parametrize(
    ("command", "client_id"),
    [("deny", "acme"), ("deny", NFD), ("clear", "globex"), ("allow", "globex")],
)
def test_an_edit_of_a_known_id_does_not_warn(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    client_id: str,
) -> None:
    path = tmp_path / "overrides.json"
    write_document(path, document(3, clients={"globex": False}))
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", f"acme,{NFC}")
    code, _, err = run(capsys, "flags", command, client_id, "--overrides", str(path))
    assert (code, err) == (0, "")


def test_the_warning_uses_the_flag_as_it_was_before_the_edit() -> None:
    before = document(3).flags.get(SHARED_BUNDLE_FLAG)
    assert before is not None
    assert unknown_client_warning("initech", before, environ={}) is not None
    after = document(4, clients={"initech": False}).flags[SHARED_BUNDLE_FLAG]
    assert unknown_client_warning("initech", after, environ={}) is None


def test_an_unreadable_allowlist_knows_no_one() -> None:
    before = document(3).flags[SHARED_BUNDLE_FLAG]
    environ = {"LEADCTX_SHARED_BUNDLE_CLIENTS": "acme,bad\nid"}
    assert unknown_client_warning("acme", before, environ=environ) is not None


@pytest.mark.parametrize(
    "argv",
    [
        ("flags", "explain", "--client-id", "caf\udce9"),
        ("flags", "allow", "caf\udce9"),
        ("flags", "deny", "caf\udce9"),
        ("flags", "clear", "caf\udce9"),
    ],
    ids=["explain", "allow", "deny", "clear"],
)
def test_an_id_that_is_not_utf8_is_refused_by_the_id_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    # Given an id typed in a Latin-1 terminal (argv b"caf\xe9": a lone surrogate to Python)
    path = tmp_path / "o.json"
    write_document(path, document(3))
    # When a command takes it, Then the id rule refuses it, naming the option or the id
    code, out, err = run(capsys, *argv, "--overrides", str(path))
    assert (code, out) == (2, "")
    assert "holds bytes that are not UTF-8" in err
    assert read_document(path).revision == 3
    with pytest.raises(ValueError, match="not UTF-8"):
        validate_client_id("caf\udce9")


def test_every_control_format_or_surrogate_code_point_is_refused_anywhere_in_an_id() -> None:
    # Every code point of the refused categories, over the whole of Unicode (the rule's quick
    # path skips the per-character check for ids str.isprintable() accepts, so it must hold
    # for each of them, not only for the ones a test names)
    refused = [
        chr(point)
        for point in range(0x110000)
        if unicodedata.category(chr(point)) in {"Cc", "Cf", "Cs"}
    ]
    assert len(refused) > 2000  # the surrogates alone are 2,048
    for char in refused:
        with pytest.raises(ValueError, match=rf"U\+{ord(char):04X} at position 4"):
            validate_client_id(f"acme{char}-eu")
