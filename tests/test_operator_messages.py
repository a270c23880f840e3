"""Messages an operator can act on, never with values in them; a CLI that stops quietly."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from openfeature.evaluation_context import EvaluationContext

from leadctx.cli import BROKEN_PIPE_EXIT, main
from leadctx_flags import ConfigurationError, LeadCtxProvider, RolloutSettings
from leadctx_flags.cli import EXIT_OVERRIDES_UNREADABLE
from leadctx_flags.overrides_sources import FileSource
from leadctx_flags.settings import unknown_variables, warn_about_unknown_variables
from leadctx_flags.storage import write_document
from tests.flags.overrides_helpers import document, wait_for

LEADCTX = shutil.which("leadctx", path=str(Path(sys.executable).parent))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("LEADCTX_")}
    env.update(variables)
    return env


def test_a_document_refused_by_a_running_provider_is_logged_with_field_and_rule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a provider polling a good document
    path = tmp_path / "o.json"
    write_document(path, document(3, clients={"acme": True}))
    settings = RolloutSettings(flag_overrides_poll_seconds=0.05)
    provider = LeadCtxProvider(settings, source=FileSource(path))
    provider.initialize(EvaluationContext())
    try:
        # When the document is replaced by one whose revision is a string
        with caplog.at_level(logging.WARNING, logger="leadctx_flags"):
            path.write_text(
                '{"schema": "leadctx.overrides/v1", "revision": "4", '
                '"flags": {"shared_bundle.enabled": {"clients": {"globex": true}}}}'
            )

            def refused() -> list[str]:
                return [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]

            wait_for(lambda: bool(refused()), timeout=5)
        # Then the log line names the field and the rule, and no value from the document
        line = refused()[0]
        assert line.startswith(
            f"overrides source {path} failed (DocumentError): invalid overrides document: "
            "revision: Input should be a valid integer"
        )
        assert "globex" not in line
        assert '"4"' not in line
        assert provider.state.revision == 3
    finally:
        provider.shutdown()


@pytest.mark.skipif(LEADCTX is None, reason="the console script is installed with the package")
def test_a_misspelt_variable_is_warned_about_once_naming_the_closest_known_one() -> None:
    assert LEADCTX is not None
    result = subprocess.run(  # noqa: S603 - a fixed command line of our own script
        [LEADCTX, "flags", "explain", "--client-id", "acme", "--json"],
        capture_output=True,
        text=True,
        env=clean_env(LEADCTX_SHARED_BUNDLE_KIL="true-secret-value"),
        check=False,
        timeout=60,
    )
    # The answer is printed, and the pre-deploy check fails: the kill meant is not in force
    assert result.returncode == EXIT_OVERRIDES_UNREADABLE, result.stderr
    assert json.loads(result.stdout)["value"] is False
    warnings = [line for line in result.stderr.splitlines() if "unknown environment" in line]
    expected = (
        "WARNING leadctx_flags.settings unknown environment variable LEADCTX_SHARED_BUNDLE_KIL "
        "is ignored; did you mean LEADCTX_SHARED_BUNDLE_KILL?"
    )
    assert warnings == [expected]
    assert result.stderr.splitlines()[-1] == (
        "leadctx: the pre-deploy check fails: nothing reads LEADCTX_SHARED_BUNDLE_KIL "
        "(misspelt?), so the answer ignores it"
    )
    assert "true-secret-value" not in result.stderr


def test_unknown_variables_names_each_with_the_one_meant_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = {"LEADCTX_SHARED_BUNDLE_KIL": "1", "leadctx_flag_overides": "x", "HOME": "/"}
    with caplog.at_level(logging.WARNING):
        found = unknown_variables(environ)
    assert found == [
        ("LEADCTX_FLAG_OVERIDES", "LEADCTX_FLAG_OVERRIDES"),
        ("LEADCTX_SHARED_BUNDLE_KIL", "LEADCTX_SHARED_BUNDLE_KILL"),
    ]
    assert caplog.records == []
    # Asked again, it answers again: unlike the warning, it is not once per process
    assert unknown_variables(environ) == found


def test_variables_of_a_registered_package_are_known() -> None:
    import leadctx_bundle.profiles  # noqa: F401, PLC0415 - registers LEADCTX_BUNDLE_*

    assert warn_about_unknown_variables({"LEADCTX_BUNDLE_ENCODING": "o200k_base"}) == []


def test_the_gate_s_deadline_and_worker_variables_are_known() -> None:
    import leadctx_bundle.deadline  # noqa: F401, PLC0415 - registers what the gate reads

    read_by_the_gate = {
        "LEADCTX_BUNDLE_DEADLINE_SECONDS": "1",
        "LEADCTX_BUNDLE_DEADLINE_SECONDS_AUTO_SEND": "1",
        "LEADCTX_BUNDLE_DEADLINE_SECONDS_PROPOSED_TIMES": "1",
        "LEADCTX_BUNDLE_WORKERS": "4",
    }
    assert warn_about_unknown_variables(read_by_the_gate) == []
    assert warn_about_unknown_variables({"LEADCTX_BUNDLE_WORKER": "4"}) == ["LEADCTX_BUNDLE_WORKER"]


def test_the_gate_s_variables_in_another_case_are_named_as_ignored() -> None:
    # The gate reads its deadline and pool size in upper case only (one lookup per call):
    # the spelling pydantic-settings would accept elsewhere is ignored here, so it is named
    import leadctx_bundle.deadline  # noqa: F401, PLC0415 - registers what the gate reads

    environ = {"leadctx_bundle_workers": "8", "LEADCTX_BUNDLE_DEADLINE_SECONDS_draft": "1"}
    assert unknown_variables(environ) == [
        ("LEADCTX_BUNDLE_DEADLINE_SECONDS_draft", "LEADCTX_BUNDLE_DEADLINE_SECONDS_DRAFT"),
        ("leadctx_bundle_workers", "LEADCTX_BUNDLE_WORKERS"),
    ]
    assert unknown_variables({"LEADCTX_BUNDLE_WORKERS": "8"}) == []


@pytest.mark.parametrize("token", ["tøken", "to ken", "tok\nen", "\u200btoken"])
def test_an_unusable_token_fails_at_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, token: str
) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", "https://flags.example.com/o.json")
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_TOKEN", token)
    with caplog.at_level(logging.DEBUG):
        provider = LeadCtxProvider()
    assert provider.configuration_error is not None
    assert "LEADCTX_FLAG_OVERRIDES_TOKEN: must be printable ASCII" in provider.configuration_error
    assert all(token not in record.getMessage() for record in caplog.records)
    assert all(record.exc_info is None for record in caplog.records)


@pytest.mark.parametrize("seconds", ["nan", "inf", "-inf", "0", "-1", "1e-9", "0.049", "3601"])
def test_the_poll_interval_must_be_a_finite_number_of_seconds(
    monkeypatch: pytest.MonkeyPatch, seconds: str
) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_POLL_SECONDS", seconds)
    with pytest.raises(ConfigurationError) as caught:
        RolloutSettings()
    assert (
        "LEADCTX_FLAG_OVERRIDES_POLL_SECONDS: must be a finite number of seconds, at least 0.05 "
        "and at most 3600"
    ) in str(caught.value)


@pytest.mark.parametrize(("option", "limit"), [("--note", 1000), ("--by", 200)])
def test_an_over_long_option_is_one_line_naming_it_without_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, limit: int
) -> None:
    path = tmp_path / "o.json"
    write_document(path, document(3))
    given = "Z" * (limit + 1)
    # (a kill is written with the text cut: tests/flags/test_edits_in_force.py)
    code, out, err = run(capsys, "flags", "deny", "acme", "--overrides", str(path), option, given)
    assert (code, out) == (2, "")
    # One line: the option and the rule
    assert err == f"leadctx: {option} is {limit + 1} characters long; at most {limit} are allowed\n"
    assert err.count("\n") == 1
    assert "ZZZZ" not in err
    assert "pydantic" not in err


def test_no_log_line_carries_the_client_list(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        # A document naming clients, applied by a working provider
        working = LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme,globex"))
        working.update_overrides(document(2, clients={"acme": True, "globex": False}))
        # And an allowlist with one unusable entry
        monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme,globex,bad\x01id")
        failing = LeadCtxProvider()
    assert failing.configuration_error is not None
    messages = [record.getMessage() for record in caplog.records]
    assert any("LEADCTX_SHARED_BUNDLE_CLIENTS: client id #3 holds" in m for m in messages)
    assert any("applied overrides revision 2" in m for m in messages)
    assert [m for m in messages if "acme" in m or "globex" in m or "bad" in m] == []


@pytest.mark.skipif(
    LEADCTX is None or shutil.which("head") is None, reason="needs the console script and head"
)
@pytest.mark.parametrize("clients", [1, 20_000], ids=["small-output", "large-output"])
def test_output_piped_into_head_stops_quietly(tmp_path: Path, clients: int) -> None:
    # Given a document (small: the error comes at the final flush; large: during a write)
    assert LEADCTX is not None
    path = tmp_path / "o.json"
    write_document(path, document(3, clients={f"client-{n:05d}": True for n in range(clients)}))
    # And a pipe into `head -1` that has already read its line and exited. (A kernel may
    # buffer any amount of output ahead of a slow reader, so the reader goes first: the
    # outcome is then the same on every machine.)
    read_end, write_end = os.pipe()
    head = subprocess.Popen(  # noqa: S603 - a fixed command line
        [shutil.which("head") or "head", "-1"], stdin=read_end, stdout=subprocess.PIPE
    )
    os.close(read_end)
    os.write(write_end, b"first line\n")
    head_out, _ = head.communicate(timeout=60)
    assert head_out == b"first line\n"
    # When `leadctx flags show` writes into that pipe
    try:
        leadctx = subprocess.run(  # noqa: S603 - a fixed command line of our own script
            [LEADCTX, "flags", "show", "--overrides", str(path)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=clean_env(),
            check=False,
            timeout=60,
        )
    finally:
        os.close(write_end)
    # Then it exits with 128 + SIGPIPE, as a shell reports it, and prints no traceback
    assert (leadctx.returncode, leadctx.stderr) == (BROKEN_PIPE_EXIT, b"")
    assert BROKEN_PIPE_EXIT == 141


def run_script(
    *argv: str,
    stdout: int | IO[bytes] | None,
    env: dict[str, str],
    preexec_fn: Callable[[], object] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    assert LEADCTX is not None
    return subprocess.run(  # noqa: S603 - a fixed command line of our own script
        [LEADCTX, *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=preexec_fn,
        check=False,
        timeout=60,
    )


@pytest.mark.skipif(
    LEADCTX is None or not Path("/dev/full").exists(), reason="needs the script and /dev/full"
)
@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_a_kill_whose_output_cannot_be_written_is_in_force_and_says_so(
    tmp_path: Path, stdout: str
) -> None:
    # Given a document, and stdout on a full device or closed (`>&-`)
    path = tmp_path / "o.json"
    write_document(path, document(3))
    with Path("/dev/full").open("wb") as full:
        # When the kill is written (a closed stdout: the child starts with descriptor 1 closed)
        result = run_script(
            *("flags", "kill", "--overrides", str(path)),
            stdout=full if stdout == "full" else None,
            env=clean_env(),
            preexec_fn=None if stdout == "full" else lambda: os.close(1),
        )
    # Then it is in force, and one line (no traceback) says the output alone was lost
    assert read_kill(path) is True
    assert b"Traceback" not in result.stderr
    why = "No space left on device" if stdout == "full" else "stdout is closed"
    expected = (
        f"leadctx: cannot write the output to stdout ({why}); "
        "the output was lost, the command itself ended with status 0"
    )
    assert result.stderr.decode().splitlines() == [expected]
    assert result.returncode == 1


def read_kill(path: Path) -> object:
    import json  # noqa: PLC0415

    return json.loads(path.read_text())["flags"]["shared_bundle.enabled"]["kill"]


@pytest.mark.skipif(LEADCTX is None, reason="the console script is installed with the package")
def test_a_non_ascii_client_id_on_an_ascii_stdout_is_escaped_not_a_traceback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.json"
    write_document(path, document(3, clients={"café": True, "a\U0001f600": True}))
    env = clean_env(PYTHONIOENCODING="ascii", LC_ALL="C")
    explained = run_script(
        "flags", "explain", "--client-id", "café", "--overrides", str(path),
        stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert (explained.returncode, explained.stderr) == (0, b"")
    assert b"client_id   caf\\u00e9\n" in explained.stdout
    shown = run_script("flags", "show", "--overrides", str(path), stdout=subprocess.PIPE, env=env)
    assert (shown.returncode, shown.stderr) == (0, b"")
    import json  # noqa: PLC0415

    clients = json.loads(shown.stdout)["flags"]["shared_bundle.enabled"]["clients"]
    assert clients == {"café": True, "a\U0001f600": True}


@pytest.mark.skipif(
    LEADCTX is None or not Path("/proc/self/wchan").exists(), reason="needs the script and /proc"
)
def test_ctrl_c_exits_130_with_one_line_and_no_traceback() -> None:
    # Given a command blocked reading stdin that never writes (as a long report would run)
    assert LEADCTX is not None
    process = subprocess.Popen(  # noqa: S603 - a fixed command line of our own script
        [LEADCTX, "bundle", "build", "--input", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        # When the operator presses Ctrl-C while it waits in the read
        wait_for(lambda: "pipe" in Path(f"/proc/{process.pid}/wchan").read_text(), timeout=30)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    # Then it exits 130, as a shell reports SIGINT, with one line and no traceback
    assert (process.returncode, out, err) == (130, b"", b"leadctx: interrupted\n")


@pytest.mark.skipif(LEADCTX is None, reason="the console script is installed with the package")
@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (("flags", "kill"), 1, "the kill was NOT written"),
        (("flags", "show"), 2, ""),
        (("flags", "explain", "--client-id", "acme"), 3, "could not be read"),
    ],
    ids=["kill", "show", "explain"],
)
def test_a_fifo_named_as_the_document_is_refused_at_once_not_a_hang(
    tmp_path: Path, argv: tuple[str, ...], code: int, message: str
) -> None:
    # Given a FIFO no one writes to, named as the overrides document
    fifo = tmp_path / "o.json"
    os.mkfifo(fifo)
    # When a command reads it (it used to block in the open until a writer came)
    result = run_script(*argv, "--overrides", str(fifo), stdout=subprocess.DEVNULL, env=clean_env())
    # Then it fails at once, naming the file and why
    assert result.returncode == code
    stderr = result.stderr.decode()
    assert str(fifo) in stderr
    assert "not a regular file" in stderr
    assert message in stderr
