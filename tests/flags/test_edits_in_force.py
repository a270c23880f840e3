"""Exit 0 means "in force": an edit that succeeds is applied by every provider.

Operator paths that used to lose a rollback: a kill with a long note on a large document, a
full or read-only disk, an edit without ``--note`` that kept the previous note, and a
document re-created (``--create``) or restored below the revision the services hold (a host
whose clock ran fast, a typed ``--revision``, an old copy put back).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature.evaluation_context import EvaluationContext

from leadctx.cli import main
from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.document import (
    MAX_DOCUMENT_BYTES,
    MAX_REVISION,
    DocumentTooLargeError,
    OverridesDocument,
)
from leadctx_flags.editing import (
    MINIMAL_KILL_NOTE,
    clock_revision,
    edit_document,
    kill,
    unkill,
)
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.guardrails.apply import apply_rollback
from leadctx_flags.overrides_sources import FileSource
from leadctx_flags.storage import read_document, write_document
from tests.flags.large_documents import compact, near_cap
from tests.flags.overrides_helpers import document, wait_for

LEADCTX = shutil.which("leadctx", path=str(Path(sys.executable).parent))
SH = shutil.which("sh", path="/usr/bin:/bin")
ENV_ROUTE = "set LEADCTX_SHARED_BUNDLE_KILL=true in the services' environment"
HOUR_MS = 3_600_000
INTERVAL = 0.1


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def value(provider: LeadCtxProvider, client_id: str) -> bool:
    context = client_context(client_id)
    return provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, context).value


def clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("LEADCTX_")}
    env.update(variables)
    return env


@pytest.fixture(autouse=True)
def _no_cache_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADCTX_FLAG_OVERRIDES_CACHE", raising=False)


@pytest.fixture
def providers() -> Iterator[list[LeadCtxProvider]]:
    """Providers a test starts; each is shut down at the end, even on failure."""
    started: list[LeadCtxProvider] = []
    try:
        yield started
    finally:
        for provider in started:
            provider.shutdown()


def start(
    providers: list[LeadCtxProvider],
    path: Path,
    cache: Path | None = None,
    allowlist: tuple[str, ...] = (),
) -> LeadCtxProvider:
    settings = RolloutSettings(
        flag_overrides_poll_seconds=INTERVAL,
        flag_overrides_cache=cache,
        shared_bundle_clients=allowlist,
    )
    provider = LeadCtxProvider(settings, source=FileSource(path))
    providers.append(provider)
    provider.initialize(EvaluationContext())
    return provider


def first_client(doc: OverridesDocument) -> str:
    return next(iter(doc.flags[SHARED_BUNDLE_FLAG].clients))


# --- item: a kill is always writable, and what is written is in force -----------------------


@pytest.mark.parametrize(
    ("variables", "options"),
    [
        ({}, ()),
        ({"LEADCTX_FLAG_OVERRIDES": "https://flags.example.com/o.json"}, ()),
        ({"LEADCTX_FLAG_OVERRIDES": " {path}"}, ()),
        ({"LEADCTX_FLAG_OVERRIDES": "{path}", "leadctx_flag_overrides": "{path}"}, ()),
        ({"LEADCTX_FLAG_OVERRIDES": "{path}"}, ("--revision", "0")),
    ],
    ids=["no location", "https", "padded", "two spellings", "revision 0"],
)
def test_a_kill_stopped_before_the_document_is_touched_says_it_was_not_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    options: tuple[str, ...],
) -> None:
    # Given an environment or options that stop a kill before it reaches the document
    path = tmp_path / "o.json"
    write_document(path, document(3))
    monkeypatch.delenv("LEADCTX_FLAG_OVERRIDES", raising=False)
    for name, text in variables.items():
        monkeypatch.setenv(name, text.format(path=path))
    # When an operator kills, Then the command fails saying the kill was NOT written, with
    # the route that needs no file (it used to name only the variable or the option)
    code, out, err = run(capsys, "flags", "kill", *options)
    assert (code, out) == (2, "")
    assert "the kill was NOT written" in err
    assert ENV_ROUTE in err
    assert read_document(path).revision == 3


@pytest.mark.parametrize(
    ("options", "kept", "notice"),
    [
        (
            ("--note", "incident " * 1000),
            {"note": "incident " * 111 + "\N{HORIZONTAL ELLIPSIS}"},
            "its --note cut to the first 999 of its 9000 characters (at most 1000 are kept)",
        ),
        (
            ("--by", "b" * 300),
            {"updated_by": "b" * 199 + "\N{HORIZONTAL ELLIPSIS}"},
            "its --by cut to the first 199 of its 300 characters (at most 200 are kept)",
        ),
        (
            ("--note", "pasted \udcff from a latin-1 terminal"),
            {"note": "pasted \ufffd from a latin-1 terminal"},
            "the bytes of its --note that are not UTF-8 as U+FFFD",
        ),
    ],
    ids=["pasted note", "long --by", "note not UTF-8"],
)
def test_an_audit_text_the_document_cannot_hold_never_stops_a_kill(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    providers: list[LeadCtxProvider],
    options: tuple[str, ...],
    kept: dict[str, str],
    notice: str,
) -> None:
    # Given a running provider with acme on, and an operator who pastes the incident's whole
    # description as the note (or a name too long, or bytes from a terminal that is not UTF-8)
    path = tmp_path / "o.json"
    write_document(path, document(3, clients={"acme": True}))
    running = start(providers, path)
    assert value(running, "acme") is True
    # When they kill
    code, out, err = run(capsys, "flags", "kill", "--overrides", str(path), *options)
    # Then the kill is written (it used to be refused, exit 2, "the kill was NOT written"),
    # with the text repaired to what the document holds, and stderr says what was changed
    assert (code, out) == (0, f"{path}: kill, now revision 4\n")
    assert err == f"leadctx: the kill was written with {notice}\n"
    written = FileSource(path).fetch()
    assert written is not None
    flag = written.flags[SHARED_BUNDLE_FLAG]
    assert flag.kill is True
    assert {"note": flag.note, "updated_by": written.updated_by}.items() >= kept.items()
    # And it is in force
    wait_for(lambda: value(running, "acme") is False, timeout=INTERVAL + 5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--note", "x" * 1001), "--note is 1001 characters long; at most 1000 are allowed"),
        (("--by", "b" * 201), "--by is 201 characters long; at most 200 are allowed"),
        (("--note", "a\udcffb"), "--note holds bytes that are not UTF-8"),
    ],
    ids=["long note", "long --by", "note not UTF-8"],
)
def test_another_edit_with_such_a_text_is_refused_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: tuple[str, ...], message: str
) -> None:
    # Given a document
    path = tmp_path / "o.json"
    write_document(path, document(3))
    # When an operator allows a client with a text the document cannot hold
    code, out, err = run(capsys, "flags", "allow", "acme", "--overrides", str(path), *options)
    # Then nothing is cut for them: the edit is refused, naming the option, and not written
    assert (code, out, err) == (2, "", f"leadctx: {message}\n")
    assert read_document(path).revision == 3


def test_a_kill_that_fails_after_its_note_was_cut_does_not_say_it_was_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no document at the location (lost, and no --create)
    path = tmp_path / "o.json"
    # When an operator kills with a note that would be cut
    code, _, err = run(capsys, "flags", "kill", "--overrides", str(path), "--note", "n" * 1200)
    # Then the one line says the kill was NOT written, and nothing claims it was
    assert code == 2
    assert "the kill was NOT written" in err
    assert "was written with" not in err
    assert not path.exists()


def test_a_kill_with_a_long_note_on_a_document_near_the_cap_is_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], providers: list[LeadCtxProvider]
) -> None:
    # Given a document 500 bytes under the cap that turns thousands of clients on, in force
    path = tmp_path / "o.json"
    large = near_cap(3, 500)
    write_document(path, large)
    running = start(providers, path)
    client = first_client(large)
    assert value(running, client) is True
    # When an operator kills with a 980-character note (which does not fit)
    code, _, err = run(capsys, "flags", "kill", "--overrides", str(path), "--note", "n" * 980)
    # Then the kill is written, without its note, and says so
    assert code == 0
    assert err == "leadctx: the kill was written without its note to fit the document size cap\n"
    written = FileSource(path).fetch()
    assert written is not None
    flag = written.flags[SHARED_BUNDLE_FLAG]
    assert (flag.kill, flag.note, flag.clients) == (
        True,
        None,
        large.flags[SHARED_BUNDLE_FLAG].clients,
    )
    # And the running provider applies it: off for every client
    wait_for(lambda: value(running, client) is False, timeout=INTERVAL + 5)
    assert running.state.revision == 4
    # And the next edit reads its own file
    assert run(capsys, "flags", "unkill", "--overrides", str(path))[0] == 0
    assert read_document(path).revision == 5


def test_a_kill_that_fits_only_in_minimal_form_keeps_every_rollback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    providers: list[LeadCtxProvider],
) -> None:
    # Given a document at the cap: thousands of clients on, three rolled back (off)
    path = tmp_path / "o.json"
    base = near_cap(3, 10)
    clients = dict(base.flags[SHARED_BUNDLE_FLAG].clients)
    denied = list(clients)[:3]
    clients.update(dict.fromkeys(denied, False))
    flag = base.flags[SHARED_BUNDLE_FLAG].model_copy(update={"clients": clients})
    at_cap = base.model_copy(update={"flags": {SHARED_BUNDLE_FLAG: flag}})
    write_document(path, at_cap)
    running = start(providers, path, allowlist=tuple(denied))
    on_client = next(c for c, on in clients.items() if on)
    assert (value(running, on_client), value(running, denied[0])) == (True, False)
    # When an operator kills, naming themselves at length (the kill no longer fits whole)
    by = "ops-" + "o" * 190
    code, _, err = run(capsys, "flags", "kill", "--overrides", str(path), "--by", by)
    # Then the kill is written in minimal form: the kill, the rollbacks, a note saying so
    assert code == 0
    assert "the kill was written in minimal form" in err
    written = FileSource(path).fetch()
    assert written is not None
    flag = written.flags[SHARED_BUNDLE_FLAG]
    assert (flag.kill, flag.clients, flag.note) == (
        True,
        dict.fromkeys(denied, False),
        MINIMAL_KILL_NOTE,
    )
    assert written.updated_by == by
    # And it is in force, and after an unkill the rolled-back clients are still off even
    # though the environment allowlists them
    wait_for(lambda: value(running, on_client) is False, timeout=INTERVAL + 5)
    assert run(capsys, "flags", "unkill", "--overrides", str(path))[0] == 0
    wait_for(lambda: running.state.revision == 5, timeout=INTERVAL + 5)
    assert value(running, denied[0]) is False


def test_an_edit_that_would_not_fit_is_refused_with_exit_1_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a document at the cap
    path = tmp_path / "o.json"
    write_document(path, near_cap(3, 0))
    before = path.read_bytes()
    # When an operator allows one more client, Then the edit is refused, naming the real size
    code, out, err = run(capsys, "flags", "allow", "initech", "--overrides", str(path))
    assert (code, out) == (1, "")
    size = int(err.split("would be ", 1)[1].split(" bytes", 1)[0])
    assert size > MAX_DOCUMENT_BYTES
    assert err.startswith(f"leadctx: {path}: the new overrides document would be {size} bytes")
    assert err.endswith("every provider reads; it was not written\n")
    assert err.count("\n") == 1
    # And the document is as it was
    assert path.read_bytes() == before


def test_a_kill_on_a_full_disk_names_the_file_exits_1_and_points_at_the_env_route(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a document, and a disk that is full when the kill is flushed
    path = tmp_path / "o.json"
    write_document(path, document(3, clients={"acme": True}))
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    # When an operator kills
    code, out, err = run(capsys, "flags", "kill", "--overrides", str(path))
    # Then one line names the file and the error, says the kill was not written, and how else
    assert (code, out) == (1, "")
    assert err.startswith(f"leadctx: {path}: No space left on device; the kill was NOT written")
    assert ENV_ROUTE in err
    assert err.count("\n") == 1
    assert path.read_bytes() == before


@pytest.mark.skipif(LEADCTX is None or SH is None, reason="needs the CLI and sh")
def test_a_kill_the_file_system_refuses_fails_loudly_in_a_real_process(tmp_path: Path) -> None:
    # Given a document larger than the file size the process may write (ulimit -f: 8 KiB)
    assert LEADCTX is not None
    assert SH is not None
    path = tmp_path / "o.json"
    write_document(path, document(3, clients={f"client-{n:04d}": True for n in range(400)}))
    assert path.stat().st_size > 8 * 1024
    before = path.read_bytes()
    # When the real CLI kills under that limit (SIGXFSZ ignored: the write fails with EFBIG)
    script = 'ulimit -f 16; trap "" XFSZ; exec "$@"'
    result = subprocess.run(  # noqa: S603 - a fixed command line of our own script
        [SH, "-c", script, "sh", LEADCTX, "flags", "kill", "--overrides", str(path)],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
        timeout=60,
    )
    # Then it exits 1 naming the file, says the kill was not written and names the env route
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    assert result.stderr.startswith(f"leadctx: {path}: File too large; the kill was NOT written")
    assert ENV_ROUTE in result.stderr
    assert path.read_bytes() == before


MOUNT = shutil.which("mount", path="/usr/bin:/bin")
UMOUNT = shutil.which("umount", path="/usr/bin:/bin")


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs of its own (root with CAP_SYS_ADMIN only), unmounted at the end."""
    folder = tmp_path / "fs"
    folder.mkdir()
    if MOUNT is None or UMOUNT is None or os.geteuid() != 0:
        pytest.skip("mounting a file system of its own needs root and mount(8)")
    mounted = subprocess.run(  # noqa: S603 - a fixed command line
        [MOUNT, "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip("this host does not let the tests mount a tmpfs")
    try:
        yield folder
    finally:
        subprocess.run([UMOUNT, str(folder)], check=True, timeout=30)  # noqa: S603


def remount(folder: Path, mode: str) -> None:
    assert MOUNT is not None
    subprocess.run(  # noqa: S603 - a fixed command line
        [MOUNT, "-o", f"remount,{mode}", str(folder)], check=True, timeout=30
    )


@pytest.mark.skipif(LEADCTX is None, reason="needs the console script")
def test_a_kill_on_a_really_full_or_read_only_disk_exits_1_naming_the_document(
    small_filesystem: Path,
) -> None:
    # Given a document on a small file system of its own
    assert LEADCTX is not None
    path = small_filesystem / "o.json"
    write_document(path, document(3, clients={"acme": True}))
    before = path.read_bytes()

    def kill_with_the_cli() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - a fixed command line of our own script
            [LEADCTX, "flags", "kill", "--overrides", str(path)],
            capture_output=True,
            text=True,
            env=clean_env(),
            check=False,
            timeout=60,
        )

    # When the disk is full, Then the kill exits 1 naming the document and the env route
    filler = small_filesystem / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as handle:  # close() fails too
        while True:
            handle.write(b"\0" * 4096)
            handle.flush()
    full = kill_with_the_cli()
    assert (full.returncode, full.stdout) == (1, ""), full.stderr
    assert full.stderr.startswith(
        f"leadctx: {path}: No space left on device; the kill was NOT written"
    )
    assert ENV_ROUTE in full.stderr
    assert path.read_bytes() == before
    # When the file system is read-only, Then the same, naming the document
    filler.unlink()
    remount(small_filesystem, "ro")
    read_only = kill_with_the_cli()
    assert (read_only.returncode, read_only.stdout) == (1, ""), read_only.stderr
    assert read_only.stderr.startswith(f"leadctx: {path}: Read-only file system")
    assert "the kill was NOT written" in read_only.stderr
    assert ENV_ROUTE in read_only.stderr
    assert read_only.stderr.count("\n") == 1
    remount(small_filesystem, "rw")
    assert path.read_bytes() == before


def test_an_edit_without_a_note_clears_the_previous_note(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    write_document(path, document(3))
    edit_document(path, kill(), updated_by="ops", note="incident 41: wrong bookings")
    edit_document(path, unkill(), updated_by="ops")
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].note is None


def test_guardrails_apply_writes_a_kill_that_fits_and_refuses_a_deny_that_does_not(
    tmp_path: Path,
) -> None:
    # Given a document at the cap
    path = tmp_path / "o.json"
    large = near_cap(3, 0)
    clients = list(large.flags[SHARED_BUNDLE_FLAG].clients)
    write_document(path, large)
    before = path.read_bytes()
    # When the guardrails roll back two of the clients, Then nothing is written (too large)
    with pytest.raises(DocumentTooLargeError, match="not written"):
        apply_rollback(path, ["zzz-1", "zzz-2"], clients, note="guardrails rollback: bookings")
    assert path.read_bytes() == before
    # When they roll back every canary client, Then the kill is written where every reader
    # accepts it
    result = apply_rollback(path, clients, clients, note="guardrails rollback: bookings")
    assert (result.action, result.changed, result.revision) == ("kill", True, 4)
    written = FileSource(path).fetch()
    assert written is not None
    assert written.flags[SHARED_BUNDLE_FLAG].kill is True
    assert len(compact(written)) <= MAX_DOCUMENT_BYTES


# --- item: a created (or restored) document wins, clock skew included ------------------------


def lost_document_ahead_of_the_clock(
    tmp_path: Path, providers: list[LeadCtxProvider]
) -> tuple[Path, LeadCtxProvider, Path, Path, int]:
    """A document one hour ahead of the clock, applied by a running provider, then lost.

    Returns the document's path, the running provider, its cache, the cache of a stopped
    provider that also applied it, and the lost revision.
    """
    path = tmp_path / "o.json"
    ahead = clock_revision() + HOUR_MS  # a host whose clock ran an hour fast, or a typed N
    write_document(path, document(ahead, clients={"acme": True}))
    cache = tmp_path / "running-cache.json"
    stopped_cache = tmp_path / "stopped-cache.json"
    running = start(providers, path, cache)
    stopped = start(providers, path, stopped_cache)
    stopped.shutdown()
    assert value(running, "acme") is True
    assert read_document(cache).revision == read_document(stopped_cache).revision == ahead
    path.unlink()
    return path, running, cache, stopped_cache, ahead


@pytest.mark.parametrize("cli", ["in-process", "console-script"])
def test_a_created_document_wins_over_a_lost_one_ahead_of_the_clock(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    providers: list[LeadCtxProvider],
    cli: str,
) -> None:
    # Given a lost document an hour ahead of the clock that turned acme on
    path, running, cache, stopped_cache, lost = lost_document_ahead_of_the_clock(
        tmp_path, providers
    )
    argv = ["flags", "deny", "acme", "--overrides", str(path), "--create"]
    # When an operator, with the services' environment, denies acme with --create
    if cli == "in-process":
        monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_CACHE", str(cache))
        code, out, err = run(capsys, *argv)
    else:
        if LEADCTX is None:
            pytest.skip("needs the console script")
        result = subprocess.run(  # noqa: S603 - a fixed command line of our own script
            [LEADCTX, *argv],
            capture_output=True,
            text=True,
            env=clean_env(LEADCTX_FLAG_OVERRIDES_CACHE=str(cache)),
            check=False,
            timeout=60,
        )
        code, out, err = result.returncode, result.stdout, result.stderr
    # Then the new document is above the lost one...
    assert (code, err) == (0, ""), err
    assert out == f"{path}: deny acme, now revision {lost + 1}\n"
    # ...the running provider applies it...
    wait_for(lambda: value(running, "acme") is False, timeout=INTERVAL + 5)
    assert running.state.revision == lost + 1
    # ...and so does a provider restarted from a cache that holds the lost revision
    restarted = start(providers, path, stopped_cache)
    assert restarted.state.revision == lost + 1
    assert value(restarted, "acme") is False


def test_a_created_document_keeps_the_other_rollbacks_in_force(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    providers: list[LeadCtxProvider],
) -> None:
    # Given allowlisted acme and globex, a document that rolled globex back, in force, lost
    path = tmp_path / "o.json"
    cache = tmp_path / "cache.json"
    write_document(path, document(7, clients={"globex": False}, note="bookings regressed"))
    allowlist = ("acme", "globex")
    running = start(providers, path, cache, allowlist=allowlist)
    assert (value(running, "acme"), value(running, "globex")) == (True, False)
    path.unlink()
    # When an operator rolls acme back too, re-creating the document (from the services'
    # environment: acme is allowlisted there, so the edit names a known id)
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_CACHE", str(cache))
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", ",".join(allowlist))
    code, _, err = run(capsys, "flags", "deny", "acme", "--overrides", str(path), "--create")
    assert (code, err) == (0, "")
    # Then the new document holds both rollbacks (and this edit's note only: none)
    flag = read_document(path).flags[SHARED_BUNDLE_FLAG]
    assert (flag.clients, flag.note) == ({"globex": False, "acme": False}, None)
    # And both clients are off, in the running provider and in a restarted one
    wait_for(lambda: value(running, "acme") is False, timeout=INTERVAL + 5)
    assert value(running, "globex") is False
    restarted = start(providers, path, tmp_path / "fresh-cache.json", allowlist=allowlist)
    assert (value(restarted, "acme"), value(restarted, "globex")) == (False, False)


def test_an_edit_of_a_restored_old_copy_goes_above_the_cache(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    providers: list[LeadCtxProvider],
) -> None:
    # Given a provider that applied revision 12 (acme on), and an old copy (revision 5) put back
    path = tmp_path / "o.json"
    cache = tmp_path / "cache.json"
    write_document(path, document(12, clients={"acme": True}))
    running = start(providers, path, cache)
    assert value(running, "acme") is True
    write_document(path, document(5, clients={"acme": True}))
    # When an operator denies acme with the services' environment
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_CACHE", str(cache))
    code, out, _ = run(capsys, "flags", "deny", "acme", "--overrides", str(path))
    # Then the edit is written above the cache's revision and the running provider applies it
    assert (code, out) == (0, f"{path}: deny acme, now revision 13\n")
    wait_for(lambda: value(running, "acme") is False, timeout=INTERVAL + 5)


def test_a_revision_not_above_the_cache_is_refused_unless_it_is_a_kill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cache at revision 100 and the document lost
    path = tmp_path / "o.json"
    cache = tmp_path / "cache.json"
    write_document(cache, document(100, clients={"acme": True}))
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_CACHE", str(cache))
    # When an operator creates a deny at a typed revision below it, Then it is refused
    argv = ("--overrides", str(path), "--create", "--revision", "50")
    code, _, err = run(capsys, "flags", "deny", "acme", *argv)
    assert code == 2
    assert f"revision 50 is not above revision 100 that the overrides cache {cache} holds" in err
    assert "the edit was not written" in err
    assert not path.exists()
    # But a kill is written at any revision (every provider applies a kill)
    code, _, err = run(capsys, "flags", "kill", *argv)
    assert (code, err) == (0, "")
    assert read_document(path).revision == 50


def test_a_cache_variable_spelt_in_lower_case_is_the_cache_an_edit_goes_above(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    providers: list[LeadCtxProvider],
) -> None:
    # Given a lost document ahead of the clock, and the services' cache variable spelt in
    # lower case (names are matched without regard to case: the providers read it)
    path, running, cache, _, lost = lost_document_ahead_of_the_clock(tmp_path, providers)
    monkeypatch.setenv("leadctx_flag_overrides_cache", str(cache))
    assert RolloutSettings().flag_overrides_cache == cache
    # When an operator denies acme with --create in that environment
    argv = ["flags", "deny", "acme", "--overrides", str(path), "--create"]
    code, out, err = run(capsys, *argv)
    # Then the edit goes above the revision the cache holds, and the running provider applies it
    assert (code, err) == (0, "")
    assert out == f"{path}: deny acme, now revision {lost + 1}\n"
    wait_for(lambda: value(running, "acme") is False, timeout=INTERVAL + 5)


@pytest.mark.parametrize(
    "variables",
    [
        {"LEADCTX_FLAG_OVERRIDES_CACHE": " {cache}"},
        {"LEADCTX_FLAG_OVERRIDES_CACHE": "'{cache}'"},
        {"LEADCTX_FLAG_OVERRIDES_CACHE": "{cache}", "leadctx_flag_overrides_cache": "{cache}"},
    ],
    ids=["padded", "quoted", "two spellings"],
)
def test_a_cache_variable_the_providers_refuse_refuses_a_deny_but_never_a_kill(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
) -> None:
    # Given a cache variable the providers refuse as a configuration error, cache ahead
    path = tmp_path / "o.json"
    write_document(path, document(3))
    cache = tmp_path / "cache.json"
    write_document(cache, document(100))
    for name, text in variables.items():
        monkeypatch.setenv(name, text.format(cache=cache))
    with pytest.raises(ConfigurationError):
        RolloutSettings()
    # When an operator denies acme, Then the deny is refused, naming the variable
    code, _, err = run(capsys, "flags", "deny", "acme", "--overrides", str(path))
    assert code == 2
    assert "LEADCTX_FLAG_OVERRIDES_CACHE" in err
    assert "the edit was not written" in err
    assert str(cache) not in err  # the value is never echoed
    assert read_document(path).revision == 3
    # And a kill is written all the same
    code, _, err = run(capsys, "flags", "kill", "--overrides", str(path))
    assert code == 0, err
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].kill is True


def test_a_guardrails_rollback_reads_the_cache_variable_as_the_providers_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a document at revision 3 and a cache at 100 named by the lower-case spelling
    path = tmp_path / "o.json"
    write_document(path, document(3))
    cache = tmp_path / "cache.json"
    write_document(cache, document(100))
    monkeypatch.setenv("leadctx_flag_overrides_cache", str(cache))
    # When the guardrails deny one of two canary clients, Then it goes above the cache
    result = apply_rollback(path, ["acme"], ["acme", "globex"], note="guardrails rollback")
    assert (result.action, result.revision) == ("deny", 101)
    # And with a padded value (a configuration error to the providers) a deny is refused...
    monkeypatch.setenv("leadctx_flag_overrides_cache", f" {cache}")
    with pytest.raises(ConfigurationError, match="LEADCTX_FLAG_OVERRIDES_CACHE"):
        apply_rollback(path, ["globex"], ["acme", "globex", "initech"], note="guardrails")
    # ...but a kill is written
    result = apply_rollback(path, ["acme", "globex"], ["acme", "globex"], note="guardrails")
    assert result.action == "kill"
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].kill is True


def test_a_guardrails_deny_already_in_an_old_copy_is_written_above_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, providers: list[LeadCtxProvider]
) -> None:
    # Given a provider that applied revision 12 (acme on), and an old copy put back that
    # already denies acme (revision 5: the provider refuses it as a replay, acme stays on)
    path = tmp_path / "o.json"
    cache = tmp_path / "cache.json"
    write_document(path, document(12, clients={"acme": True}))
    running = start(providers, path, cache)
    write_document(path, document(5, clients={"acme": False}))
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_CACHE", str(cache))
    wait_for(lambda: running.overrides_source_failing, timeout=INTERVAL + 5)
    assert value(running, "acme") is True
    # When the guardrails roll acme back
    result = apply_rollback(path, ["acme"], ["acme", "globex"], note="guardrails rollback")
    # Then the deny is written above the cache (it used to be "already in the document",
    # unchanged at revision 5, exit 0, while every provider kept acme on), and is in force
    assert (result.changed, result.revision) == (True, 13)
    wait_for(lambda: value(running, "acme") is False, timeout=INTERVAL + 5)
    # And a kill already in a document below the cache is in force as it is (a kill is
    # applied at any revision): nothing is written
    write_document(path, document(7, kill=True))
    wait_for(lambda: running.state.flag is not None and running.state.flag.kill, timeout=5)
    result = apply_rollback(path, ["acme", "globex"], ["acme", "globex"], note="guardrails")
    assert (result.action, result.changed, result.revision) == ("kill", False, 7)


def test_an_unreadable_cache_refuses_a_deny_but_never_a_kill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cache that is not a document
    path = tmp_path / "o.json"
    write_document(path, document(3))
    cache = tmp_path / "cache.json"
    cache.write_bytes(b"{not json")
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_CACHE", str(cache))
    # When an operator denies acme, Then the deny is refused, naming the cache
    code, _, err = run(capsys, "flags", "deny", "acme", "--overrides", str(path))
    assert code == 2
    assert f"{cache}: the overrides cache (LEADCTX_FLAG_OVERRIDES_CACHE) cannot be read" in err
    assert read_document(path).revision == 3
    # And a kill is written all the same
    assert run(capsys, "flags", "kill", "--overrides", str(path))[0] == 0
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].kill is True


def test_a_document_at_the_highest_revision_can_still_be_killed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], providers: list[LeadCtxProvider]
) -> None:
    # Given a document pushed to the ceiling (`--revision 9007199254740992` is accepted), and
    # a provider that applied it
    path = tmp_path / "o.json"
    write_document(path, document(MAX_REVISION, clients={"acme": True}))
    provider = start(providers, path)
    assert provider.state.revision == MAX_REVISION
    assert value(provider, "acme") is True
    # When the operator kills the flag
    code, out, err = run(capsys, "flags", "kill", "--overrides", str(path), "--note", "inc")
    # Then the kill is written at that same revision and the provider applies it
    assert (code, err) == (0, "")
    assert out == f"{path}: kill, now revision {MAX_REVISION}\n"
    killed = read_document(path)
    assert killed.revision == MAX_REVISION
    flag = killed.flag(SHARED_BUNDLE_FLAG)
    assert flag is not None
    assert flag.kill
    wait_for(lambda: value(provider, "acme") is False, timeout=10)
    # And every other edit is still refused at the ceiling (the kill stays in force)
    code, _, err = run(capsys, "flags", "unkill", "--overrides", str(path))
    assert code == 2
    assert "the edit was not written" in err


def test_an_edit_of_another_file_than_the_environment_names_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the services' environment naming one document, and a copy of it elsewhere
    followed = tmp_path / "overrides.json"
    write_document(followed, document(3))
    other = tmp_path / "copy.json"
    write_document(other, document(3))
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", f"file://{followed}")
    # When an operator kills with --overrides naming the copy
    code, out, err = run(capsys, "flags", "kill", "--overrides", str(other))
    # Then the kill is written there, and stderr says no process here reads it
    assert (code, out) == (0, f"{other}: kill, now revision 4\n")
    assert err == (
        f"leadctx: warning: --overrides {other} is not the document LEADCTX_FLAG_OVERRIDES "
        f"names here ({followed}): processes with this environment do not read it "
        "(the edit was made)\n"
    )
    # And naming the followed file itself, or a link to it, says nothing
    link = tmp_path / "link.json"
    link.symlink_to(followed)
    for path in (followed, link):
        code, _, err = run(capsys, "flags", "kill", "--overrides", str(path))
        assert (code, err) == (0, "")


def test_an_edit_turning_the_flag_on_under_a_kill_says_the_kill_still_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a document whose kill is on, acme allowlisted here
    path = tmp_path / "o.json"
    write_document(path, document(3, kill=True))
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    masked = "the document's kill is on, so the flag stays off for every client"
    # When an operator allows acme, Then it is written, and stderr says the kill still wins
    code, _, err = run(capsys, "flags", "allow", "acme", "--overrides", str(path))
    assert code == 0
    assert masked in err
    # A deny changes nothing a kill masks: no warning
    assert run(capsys, "flags", "deny", "acme", "--overrides", str(path))[::2] == (0, "")
    # And an unkill while this environment's own kill switch is on says that one still wins
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_KILL", "true")
    code, _, err = run(capsys, "flags", "unkill", "--overrides", str(path))
    assert code == 0
    assert "LEADCTX_SHARED_BUNDLE_KILL is on (or unusable) in this environment" in err
    # Without either kill, an allow says nothing
    monkeypatch.delenv("LEADCTX_SHARED_BUNDLE_KILL")
    assert run(capsys, "flags", "allow", "acme", "--overrides", str(path))[::2] == (0, "")


def test_a_relative_document_location_is_named_where_it_was_read(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given LEADCTX_FLAG_OVERRIDES as a relative path: each process reads it against its own
    # working directory, so an operator's shell elsewhere edits another file than a service's
    monkeypatch.chdir(tmp_path)
    write_document(tmp_path / "o.json", document(3))
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", "o.json")
    # When an operator kills: the kill is written, and stderr names the file it went to
    code, out, err = run(capsys, "flags", "kill")
    assert (code, out) == (0, "o.json: kill, now revision 4\n")
    assert f"this edit wrote {tmp_path / 'o.json'}" in err
    assert "a process started in another directory reads another file" in err
    # And a provider started here says which directory it read it against
    with caplog.at_level("WARNING", logger="leadctx_flags.provider"):
        provider = LeadCtxProvider(write_cache=False)
    try:
        (warning,) = [r.getMessage() for r in caplog.records if "relative path" in r.getMessage()]
        assert f"working directory ({tmp_path})" in warning
        assert value(provider, "acme") is False
    finally:
        provider.shutdown()
    # An absolute location says nothing
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(tmp_path / "o.json"))
    code, _, err = run(capsys, "flags", "unkill")
    assert (code, err) == (0, "")
