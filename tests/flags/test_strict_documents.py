"""Strict overrides documents, one rule for client ids, read-only commands that write nothing."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadctx.cli import main
from leadctx_flags import ConfigurationError, RolloutSettings
from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.document import MAX_REVISION, DocumentError, parse_document
from leadctx_flags.editing import deny
from leadctx_flags.overrides_sources import FileSource, SourceError
from leadctx_flags.settings import parse_client_list
from leadctx_flags.storage import read_document, write_document
from tests.flags.overrides_helpers import document, wire


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rejected(raw: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        parse_document(raw, origin="doc.json")
    return str(caught.value)


# --- strict JSON -----------------------------------------------------------------------------


def test_a_repeated_key_is_an_error_not_the_last_value() -> None:
    raw = (
        b'{"schema": "leadctx.overrides/v1", "revision": 4, "flags": {"shared_bundle.enabled":'
        b' {"kill": true, "default": null, "kill": false}}}'
    )
    message = rejected(raw)
    assert message.startswith("doc.json: ")
    assert "key 'kill' appears twice in one object" in message


def test_a_repeated_top_level_key_is_an_error() -> None:
    assert "key 'revision' appears twice" in rejected(b'{"revision": 9, "revision": 1}')


@pytest.mark.parametrize(
    "revision",
    ['"4"', "true", "4.0", "-1", str(MAX_REVISION + 1), "1e3", "null"],
    ids=["string", "bool", "float", "negative", "above-2^53", "exponent", "null"],
)
def test_revision_is_a_json_integer_within_range(revision: str) -> None:
    message = rejected(
        b'{"schema": "leadctx.overrides/v1", "revision": ' + revision.encode() + b"}"
    )
    assert "doc.json: invalid overrides document: revision: " in message


def test_the_highest_revision_is_accepted() -> None:
    assert parse_document(wire(MAX_REVISION), origin="doc.json").revision == MAX_REVISION


def test_deeply_nested_json_is_a_document_error() -> None:
    depth = 100_000
    raw = b'{"flags": ' + b"[" * depth + b"]" * depth + b"}"
    assert "nested too deeply" in rejected(raw)


def test_a_file_source_refuses_a_document_with_a_repeated_key(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_bytes(b'{"revision": 2, "revision": 1}')
    with pytest.raises(SourceError) as caught:
        FileSource(path).fetch()
    assert caught.value.kind == "DocumentError"
    assert "appears twice" in str(caught.value)


# --- one rule for client ids -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "rule"),
    [
        ("acme,globex", "holds a comma at position 4"),
        (" acme", "must not start or end with whitespace"),
        ("acme\t", "must not start or end with whitespace"),
        ("ac\u200bme", "holds control character U+200B at position 2"),
    ],
)
def test_the_cli_and_the_document_refuse_the_same_ids_naming_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], client_id: str, rule: str
) -> None:
    # Given an existing document
    path = tmp_path / "o.json"
    write_document(path, document(3))
    before = path.read_bytes()
    # When an operator denies the id, Then the CLI refuses it and the document is unchanged
    code, _, err = run(capsys, "flags", "deny", client_id, "--overrides", str(path))
    assert code == 2
    assert f"client id {rule}" in err
    assert path.read_bytes() == before
    # And a document naming it is refused by the same rule
    raw = json.dumps(
        {"revision": 1, "flags": {"shared_bundle.enabled": {"clients": {client_id: False}}}}
    ).encode()
    assert rule in rejected(raw)
    assert "flags.shared_bundle.enabled.clients[" in rejected(raw)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=140))
def test_an_id_is_usable_in_the_document_and_the_cli_exactly_when_the_rule_accepts_it(
    client_id: str,
) -> None:
    try:
        validate_client_id(client_id)
    except ValueError:
        accepted = False
    else:
        accepted = True
    raw = json.dumps(
        {
            "schema": "leadctx.overrides/v1",
            "revision": 1,
            "flags": {"shared_bundle.enabled": {"clients": {client_id: False}}},
        }
    ).encode()
    try:
        parse_document(raw, origin="doc.json")
    except DocumentError:
        in_document = False
    else:
        in_document = True
    try:
        deny(client_id)
    except ValueError:
        in_cli = False
    else:
        in_cli = True
    assert in_document == in_cli == accepted
    if accepted:  # and the env list reads it as that one id, in its canonical form (NFC)
        assert parse_client_list(client_id) == (unicodedata.normalize("NFC", client_id),)


def test_the_env_list_trims_and_splits_then_applies_the_same_rule() -> None:
    settings = RolloutSettings(shared_bundle_clients=" acme , globex,,acme ")
    assert settings.shared_bundle_clients == ("acme", "globex")
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings(shared_bundle_clients="acme,ac\u200bme,globex")
    message = str(caught.value)
    assert "LEADCTX_SHARED_BUNDLE_CLIENTS: client id #2 holds control character U+200B" in message
    assert "acme" not in message.replace("LEADCTX_SHARED_BUNDLE_CLIENTS", "")
    assert "globex" not in message


def test_explain_refuses_an_id_the_document_could_never_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "flags", "explain", "--client-id", " acme")
    assert (code, out) == (2, "")
    assert "--client-id must not start or end with whitespace" in err


# --- read-only commands -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("flags", "explain", "--client-id", "acme"),
        ("flags", "export", "--format", "flagd"),
        ("flags", "show"),
    ],
    ids=["explain", "export", "show"],
)
def test_read_only_commands_never_write_the_cache_or_any_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    # Given a shell that has the service's cache (revision 7) and a scratch document
    service = tmp_path / "service"
    service.mkdir()
    cache = service / "cache.json"
    write_document(cache, document(7, clients={"acme": True}))
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_CACHE", str(cache))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    write_document(scratch / "try.json", document(900, kill=True))

    def snapshot() -> dict[str, tuple[bytes, int]]:
        return {
            str(p.relative_to(tmp_path)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in tmp_path.rglob("*")
            if p.is_file()
        }

    before = snapshot()
    # When the operator runs a read-only command on the scratch document
    code, out, err = run(capsys, *command, "--overrides", str(scratch / "try.json"))
    # Then it answers from that document and no file was created or changed
    assert (code, err) == (0, "")
    assert out
    assert snapshot() == before
    assert read_document(cache).revision == 7
