"""What an operator's edit does to the document on disk, as the services polling it see it.

Permissions (another user must still read it), symlinked configuration, one lock per real
file, and a lost document re-created with ``--create``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openfeature.evaluation_context import EvaluationContext

from leadctx.cli import main
from leadctx_flags import (
    SHARED_BUNDLE_FLAG,
    LeadCtxProvider,
    OverridesDocument,
    RolloutSettings,
    client_context,
    storage,
)
from leadctx_flags.editing import allow, clock_revision, deny, edit_document, kill
from leadctx_flags.overrides_sources import FileSource
from leadctx_flags.poller import OverridesPoller
from leadctx_flags.storage import lock_path, read_document, write_document
from tests.flags.overrides_helpers import document, wait_for

NOBODY = 65534  # the conventional uid and gid of nobody/nogroup
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or SYSTEM_PYTHON is None,
    reason="runs a reader as another user: needs root and a system python3",
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def value(provider: LeadCtxProvider, client_id: str) -> bool:
    context = client_context(client_id)
    return provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, context).value


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may traverse (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="leadctx-shared-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def read_as_nobody(path: Path) -> subprocess.CompletedProcess[str]:
    """Read and parse ``path`` as user nobody, as a service running as another user would."""
    assert SYSTEM_PYTHON is not None
    reader = "import json, sys; print(json.load(open(sys.argv[1]))['revision'])"
    return subprocess.run(  # noqa: S603 - a fixed command line
        [SYSTEM_PYTHON, "-c", reader, str(path)],
        capture_output=True,
        text=True,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin"},
        check=False,
        timeout=30,
    )


# --- permissions ---------------------------------------------------------------------------


@needs_root
def test_an_edit_keeps_the_document_readable_by_a_service_running_as_another_user(
    shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a document the service (user nobody) can read
    path = shared_dir / "overrides.json"
    write_document(path, document(3, default=True))
    path.chmod(0o644)
    assert read_as_nobody(path).stdout.strip() == "3"
    # When root kills the flag with the CLI
    code, _, err = run(capsys, "flags", "kill", "--overrides", str(path))
    assert (code, err) == (0, "")
    # Then the service can still read the new revision
    reader = read_as_nobody(path)
    assert (reader.returncode, reader.stdout.strip()) == (0, "4"), reader.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@needs_root
def test_an_edit_keeps_the_mode_owner_and_group(shared_dir: Path) -> None:
    # Given a document owned by nobody:nogroup, readable by its group only
    path = shared_dir / "overrides.json"
    write_document(path, document(3))
    os.chown(path, NOBODY, NOBODY)
    path.chmod(0o640)
    # When root edits it
    edit_document(path, deny("acme"), updated_by="ops")
    # Then mode, owner and group are those of the file before the edit
    info = path.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, NOBODY, NOBODY)
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].clients == {"acme": False}
    reader = read_as_nobody(path)
    assert (reader.returncode, reader.stdout.strip()) == (0, "4"), reader.stderr


@needs_root
def test_a_document_created_under_umask_077_is_still_readable_by_the_service(
    shared_dir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given an operator's hardened shell (umask 077) re-creating a lost document with a kill
    path = shared_dir / "overrides.json"
    previous = os.umask(0o077)
    try:
        code, _, err = run(capsys, "flags", "kill", "--overrides", str(path), "--create")
    finally:
        os.umask(previous)
    # Then the service, running as another user, can read the kill (0644, not 0600)
    assert code == 0, err
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    reader = read_as_nobody(path)
    assert reader.returncode == 0, reader.stderr
    # And the operator is told the umask was widened for the document
    assert "readable by every account (0o644, not 0o600 as the umask gave)" in caplog.text


def test_a_created_document_that_cannot_be_widened_is_still_reported_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a file system that refuses chmod (some network mounts), under umask 077
    path = tmp_path / "overrides.json"

    def refuse(self: Path, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted", str(self))

    monkeypatch.setattr(Path, "chmod", refuse)
    previous = os.umask(0o077)
    try:
        code, _, err = run(capsys, "flags", "kill", "--overrides", str(path), "--create")
    finally:
        os.umask(previous)
    # Then the kill is written and said to be, with what is left to do
    assert code == 0, err
    assert "NOT written" not in err
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].kill is True
    assert "could not make it readable by other accounts (Operation not permitted)" in (caplog.text)


@needs_root
def test_another_operators_account_can_take_the_lock_and_kill(shared_dir: Path) -> None:
    # Given a document and its lock created by root, in a folder every operator may write
    shared_dir.chmod(0o777)
    path = shared_dir / "overrides.json"
    edit_document(path, allow("acme"), updated_by="root", create=True)
    assert stat.S_IMODE(lock_path(path).stat().st_mode) == 0o666
    # When another account (nobody) kills the flag
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        status = 1
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            edit_document(path, kill(), updated_by="nobody")
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    # Then the kill is written (with the lock file root left 0644, it was refused)
    assert os.waitstatus_to_exitcode(status) == 0
    assert read_document(path).flags[SHARED_BUNDLE_FLAG].kill is True


def test_a_kill_waits_a_bounded_time_for_a_stuck_edit_and_says_it_was_not_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an edit that holds the document's lock and never lets go (a stopped terminal)
    path = tmp_path / "overrides.json"
    write_document(path, document(3, default=True))
    monkeypatch.setattr(storage, "LOCK_TIMEOUT_SECONDS", 0.3)
    holder = os.open(lock_path(path), os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        # When a kill is attempted
        code, _, err = run(capsys, "flags", "kill", "--overrides", str(path))
    finally:
        os.close(holder)
    # Then it fails (exit 1) instead of waiting for ever, and says the kill was not written
    assert code == 1
    assert "another edit has held its lock file overrides.json.lock for 0.3 s" in err
    assert "the kill was NOT written" in err
    assert "LEADCTX_SHARED_BUNDLE_KILL=true" in err
    assert read_document(path).revision == 3


def test_a_new_document_is_0644_less_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        edit_document(tmp_path / "new.json", deny("acme"), updated_by="ops", create=True)
        edit_document(tmp_path / "new.json", allow("globex"), updated_by="ops")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "new.json"
    ]


# --- symlinks and locks --------------------------------------------------------------------


def test_an_edit_through_a_symlink_edits_the_target_and_keeps_the_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given link.json -> real.json, as a config-management tool lays out a release
    real = tmp_path / "releases" / "real.json"
    real.parent.mkdir()
    write_document(real, document(3, clients={"acme": True}))
    link = tmp_path / "link.json"
    link.symlink_to(real)
    # When an operator edits through the link
    code, _, err = run(capsys, "flags", "deny", "acme", "--overrides", str(link))
    assert (code, err) == (0, "")
    # Then the link is still a link to the same file, and the real file changed
    assert link.is_symlink()
    assert link.resolve() == real.resolve()
    edited = read_document(real)
    assert (edited.revision, edited.flags[SHARED_BUNDLE_FLAG].clients) == (4, {"acme": False})
    # And both paths name one lock, beside the real file
    assert lock_path(link) == lock_path(real) == real.with_name("real.json.lock").resolve()


def test_edits_through_a_link_and_its_target_at_once_lose_nothing(tmp_path: Path) -> None:
    # Given two editors, one using the link and one the real path
    real = tmp_path / "real.json"
    write_document(real, document(1))
    link = tmp_path / "link.json"
    link.symlink_to(real)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def edit(path: Path, prefix: str) -> None:
        try:
            barrier.wait()
            for index in range(10):
                edit_document(path, allow(f"{prefix}-{index}"), updated_by=prefix)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [
        threading.Thread(target=edit, args=(link, "via-link")),
        threading.Thread(target=edit, args=(real, "via-real")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then every one of the 20 edits is in the document, one revision each
    assert errors == []
    final = read_document(real)
    assert final.revision == 21
    assert len(final.flags[SHARED_BUNDLE_FLAG].clients) == 20
    assert link.is_symlink()


def test_importing_the_editing_path_does_not_need_fcntl() -> None:
    # Windows has no fcntl: importing leadctx_flags and its editing modules must still work.
    code = (
        "import sys, warnings; sys.modules['fcntl'] = None; warnings.simplefilter('ignore');"
        "import leadctx_flags, leadctx_flags.storage, leadctx_flags.editing, leadctx_flags.cli;"
        "print('imported')"
    )
    result = subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert (result.returncode, result.stdout.strip()) == (0, "imported"), result.stderr


# --- a lost document -----------------------------------------------------------------------


def test_a_missing_document_is_an_error_naming_the_path_unless_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lost.json"
    code, out, err = run(capsys, "flags", "kill", "--overrides", str(path))
    assert (code, out) == (2, "")
    assert str(path) in err
    assert "--create" in err
    assert err.count("\n") == 1
    assert not path.exists()


def test_a_created_document_takes_its_revision_from_the_clock_or_from_revision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = clock_revision()
    code, out, _ = run(
        capsys, "flags", "kill", "--overrides", str(tmp_path / "a.json"), "--create", "--json"
    )
    after = clock_revision()
    assert code == 0
    assert before <= OverridesDocument.model_validate_json(out).revision <= after
    code, _, _ = run(
        capsys, "flags", "kill", "--overrides", str(tmp_path / "b.json"), "--create",
        "--revision", "42",
    )  # fmt: skip
    assert (code, read_document(tmp_path / "b.json").revision) == (0, 42)
    # A revision that is not above the current one is refused, naming the current revision
    code, _, err = run(
        capsys, "flags", "unkill", "--overrides", str(tmp_path / "b.json"), "--revision", "42"
    )
    assert code == 2
    assert "revision must be above the document's revision 42" in err
    assert read_document(tmp_path / "b.json").revision == 42


def test_clock_revisions_are_unix_milliseconds() -> None:
    moment = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert clock_revision(moment) == 1_795_694_400_000


def test_kill_create_after_a_loss_turns_off_running_and_restarted_providers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a document at revision 3 that turns acme on, a running provider polling it and a
    # stopped one whose cache holds revision 3
    path = tmp_path / "overrides.json"
    write_document(path, document(3, clients={"acme": True}))
    interval = 0.1

    def provider(cache: Path) -> LeadCtxProvider:
        settings = RolloutSettings(flag_overrides_poll_seconds=interval, flag_overrides_cache=cache)
        started = LeadCtxProvider(settings, source=FileSource(path))
        started.initialize(EvaluationContext())
        return started

    running = provider(tmp_path / "running-cache.json")
    stopped = provider(tmp_path / "stopped-cache.json")
    stopped.shutdown()
    try:
        assert value(running, "acme") is True
        assert read_document(tmp_path / "stopped-cache.json").revision == 3
        # When the document is lost and an operator kills with --create
        path.unlink()
        code, _, err = run(capsys, "flags", "kill", "--overrides", str(path), "--create")
        assert (code, err) == (0, "")
        # Then the running provider turns the flag off at its next poll...
        wait_for(lambda: value(running, "acme") is False, timeout=interval + 2)
        assert running.state.revision == read_document(path).revision
        # ...and a restart, whose cache holds revision 3, is off from its first poll
        restarted = provider(tmp_path / "stopped-cache.json")
        try:
            assert value(restarted, "acme") is False
            assert restarted.state.revision == read_document(path).revision
        finally:
            restarted.shutdown()
    finally:
        running.shutdown()


def test_a_missing_file_is_polled_every_interval_without_backoff(tmp_path: Path) -> None:
    # Given a poller whose file went missing three polls ago
    poller = OverridesPoller(
        FileSource(tmp_path / "lost.json"), interval=10, on_document=lambda _: None
    )
    assert [poller.poll_once() for _ in range(3)] == [False, False, False]
    # Then the next poll is still one interval away: a re-created document is seen within it
    assert (poller.consecutive_failures, poller.next_delay()) == (3, 10)


def test_a_kill_is_never_refused_as_a_replay(tmp_path: Path) -> None:
    # Given a provider that has applied revision 10, acme on
    provider = LeadCtxProvider(RolloutSettings())
    assert provider.update_overrides(document(10, clients={"acme": True}))
    # When a kill arrives with a lower revision (a restored or re-created document)
    applied = provider.update_overrides(document(2, kill=True))
    # Then it is applied: the flag is off
    assert applied is True
    assert value(provider, "acme") is False
    # And the replay line stays at 10: a lower document that is not a kill is still refused
    assert provider.update_overrides(document(5, clients={"acme": True})) is False
    assert value(provider, "acme") is False
    assert provider.update_overrides(document(11, clients={"acme": True})) is True
    assert value(provider, "acme") is True


def test_an_edit_never_creates_the_document_s_folder(tmp_path: Path) -> None:
    # A typo in --overrides must not create folders and a document no process reads.
    path = tmp_path / "no-such-folder" / "overrides.json"
    with pytest.raises(FileNotFoundError, match="folder does not exist"):
        edit_document(path, deny("acme"), updated_by="test", create=True)
    assert not path.parent.exists()
