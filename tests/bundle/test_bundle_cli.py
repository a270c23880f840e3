"""``leadctx bundle build``: JSON and human output, validation errors on stderr with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from leadctx.cli import main
from leadctx_bundle.cli import MAX_INPUT_BYTES
from tests.bundle.bundle_helpers import request_data


def write(tmp_path: Path, data: Any, name: str = "request.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_build_json_prints_path_text_and_stats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, request_data(budgets={"total": 500}))
    assert main(["bundle", "build", "--input", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"path", "text", "stats"}
    assert out["path"] == "shared"
    assert out["text"].startswith("## Knowledge assets\n\n### Pricing\n  Plans start at 49 EUR.")
    assert out["stats"]["budget_total"] == 500
    assert out["stats"]["encoding"] == "o200k_base"
    assert set(out["stats"]["sections"]) == {"knowledge_assets", "lead_memory", "thread"}


def test_build_human_prints_the_text_and_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, request_data())
    assert main(["bundle", "build", "--input", str(path)]) == 0
    out = capsys.readouterr().out
    assert "## Recent thread\n\n[2026-11-24 09:12] lead: Thursday at 4?" in out
    assert "tokens (o200k_base)" in out
    assert "knowledge_assets" in out


def test_stdin_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    raw = json.dumps(request_data()).encode()

    class Stdin:
        buffer = type("Buffer", (), {"read": staticmethod(lambda size=-1: raw[:size])})()

    monkeypatch.setattr(sys, "stdin", Stdin)
    assert main(["bundle", "build", "--input", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == "shared"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (request_data(budgets={"total": 0}), "budgets.total: Input should be greater than 0"),
        (request_data(pipeline=None), "pipeline: Input should be"),
        (
            request_data(thread=[{"role": "lead", "content": None, "sent_at": "2026-11-24"}]),
            "thread[0].content: Input should be a valid string",
        ),
        ([1, 2], "(input): expected a mapping, got list"),
    ],
)
def test_validation_errors_name_the_field_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any, expected: str
) -> None:
    path = write(tmp_path, data)
    assert main(["bundle", "build", "--input", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in captured.err


def test_unreadable_input_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.json"
    assert main(["bundle", "build", "--input", str(missing)]) == 2
    assert f"--input {missing}: cannot read" in capsys.readouterr().err

    broken = tmp_path / "broken.json"
    broken.write_text('{"client_id": ')
    assert main(["bundle", "build", "--input", str(broken)]) == 2
    assert f"--input {broken}: not JSON" in capsys.readouterr().err

    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(b'{"client_id": "caf\xe9"}')
    assert main(["bundle", "build", "--input", str(latin1)]) == 2
    assert f"--input {latin1}: not UTF-8 (byte 18)" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_or_oversized_input_is_refused_without_reading_it_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An endless file: read up to the cap, then refused (it used to end in a MemoryError)
    assert main(["bundle", "build", "--input", "/dev/zero"]) == 2
    captured = capsys.readouterr()
    expected = (
        "leadctx: invalid bundle input: --input /dev/zero: larger than "
        f"{MAX_INPUT_BYTES} bytes; not read\n"
    )
    assert (captured.out, captured.err) == ("", expected)
    # A pasted blob on stdin: at most the cap and one byte are asked for
    asked: list[int] = []

    def read(size: int = -1) -> bytes:
        asked.append(size)
        return b"{" + b" " * size

    monkeypatch.setattr(
        sys, "stdin", type("Stdin", (), {"buffer": type("B", (), {"read": staticmethod(read)})()})
    )
    assert main(["bundle", "build", "--input", "-"]) == 2
    assert asked == [MAX_INPUT_BYTES + 1]
    assert "--input -: larger than" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_spans_file_on_a_full_disk_is_exit_2_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    path = write(tmp_path, request_data())
    # The file opens; its writes fail when the spans are flushed at the end
    code = main(["bundle", "build", "--input", str(path), "--spans", "/dev/full"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.endswith("leadctx: --spans /dev/full: cannot write (No space left on device)\n")


def test_profiles_option_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = write(tmp_path, request_data())
    profiles = write(tmp_path, {"draft": {"total_budget": 40}}, "profiles.json")
    assert (
        main(["bundle", "build", "--input", str(request), "--profiles", str(profiles), "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["stats"]["budget_total"] == 40

    bad = write(tmp_path, {"draft": {"total_budget": -1}}, "bad.json")
    assert main(["bundle", "build", "--input", str(request), "--profiles", str(bad)]) == 2
    assert "draft.total_budget: Input should be greater than 0" in capsys.readouterr().err


def test_the_console_script(tmp_path: Path) -> None:
    script = Path(sysconfig.get_path("scripts")) / "leadctx"
    path = write(tmp_path, request_data())
    # Given the installed console script, run as a user would
    done = subprocess.run(  # noqa: S603 - our own console script, with arguments we wrote
        [str(script), "bundle", "build", "--input", str(path), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["path"] == "shared"
    assert out["stats"]["tokens_total"] > 0

    bad = write(tmp_path, request_data(budgets={"total": float("nan")}), "bad.json")
    done = subprocess.run(  # noqa: S603 - as above
        [str(script), "bundle", "build", "--input", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "budgets.total: Input should be a valid integer" in done.stderr
