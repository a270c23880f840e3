"""Bundle input errors name the field and the rule, never an id or content, and always exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadctx.cli import main
from tests.bundle.bundle_helpers import request_data

SECRET = "SECRET-7f3a"


def build(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["bundle", "build", "--input", str(path), "--json"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("client_id", "lead_id", "expected"),
    [
        (
            f"acme\x01{SECRET}",
            f" {SECRET}",
            [
                "client_id: client_id holds control character U+0001 at position 4",
                "lead_id: lead_id must not start or end with whitespace",
            ],
        ),
        (
            SECRET * 20,
            f"{SECRET},{SECRET}",
            [
                "client_id: client_id is 220 characters long; at most 128 are allowed",
                "lead_id: lead_id holds a comma at position 11",
            ],
        ),
    ],
)
def test_invalid_ids_are_named_never_echoed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    client_id: str,
    lead_id: str,
    expected: list[str],
) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request_data(client_id=client_id, lead_id=lead_id)))
    code, out, err = build(path, capsys)
    assert (code, out) == (2, "")
    for problem in expected:
        assert problem in err
    assert SECRET not in err
    assert err.count("\n") == 1
    # The file is named once, before the problems
    assert err.startswith(f"leadctx: invalid bundle input: --input {path}: ")
    assert err.count(str(path)) == 1


@pytest.mark.parametrize(
    "nesting",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"client_id": "acme", "knowledge_assets": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"a": ' * 100_000 + "1" + "}" * 100_000,
    ],
    ids=["arrays", "inside-a-field", "objects"],
)
def test_deeply_nested_json_is_a_clear_error_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nesting: str
) -> None:
    path = tmp_path / "nested.json"
    path.write_text(nesting)
    code, out, err = build(path, capsys)
    assert (code, out) == (2, "")
    assert err == f"leadctx: invalid bundle input: --input {path}: JSON nested too deeply\n"
