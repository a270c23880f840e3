"""A watched overrides file: a kill is read within a fraction of a second, the poll stays.

Every test polls once an hour, so only the watcher can deliver a change within the bounds
used here; the same tests with ``LEADCTX_FLAG_OVERRIDES_WATCH=false`` would time out.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadctx_flags import (
    SHARED_BUNDLE_FLAG,
    LeadCtxProvider,
    OverridesDocument,
    RolloutSettings,
    client_context,
)
from leadctx_flags.editing import edit_document, kill
from leadctx_flags.storage import write_document
from leadctx_flags.watch import OverridesWatcher
from tests.flags.overrides_helpers import document, wait_for, wire

HOUR = 3600.0
BOUND = 5.0  # far above the ~0.1 s a watched change takes, far below the hour-long poll
WATCHER = "leadctx-overrides-watcher"


def on(provider: LeadCtxProvider, client: str = "acme") -> bool:
    return provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, client_context(client)).value


def watchers() -> int:
    return sum(thread.name == WATCHER for thread in threading.enumerate())


@pytest.fixture
def started() -> Iterator[list[LeadCtxProvider]]:
    """Providers the test initialised; shut down at its end."""
    providers: list[LeadCtxProvider] = []
    yield providers
    for provider in providers:
        provider.shutdown()


def start(
    providers: list[LeadCtxProvider], location: Path, *, poll: float = HOUR, watch: bool = True
) -> LeadCtxProvider:
    provider = LeadCtxProvider(
        RolloutSettings(
            flag_overrides=str(location),
            flag_overrides_poll_seconds=poll,
            flag_overrides_watch=watch,
        )
    )
    provider.initialize(client_context("tests"))
    providers.append(provider)
    return provider


def test_a_flags_kill_reaches_a_provider_long_before_its_poll(
    tmp_path: Path, started: list[LeadCtxProvider]
) -> None:
    # Given a provider on a document turning acme on, polling once an hour
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    provider = start(started, path)
    assert on(provider)
    # When the CLI's own edit (an atomic replace) kills the flag
    edit_document(path, kill(), updated_by="tests")
    # Then the provider answers off at once
    wait_for(lambda: not on(provider), BOUND)
    assert provider.state.revision == 2


def test_a_configmap_symlink_swap_is_seen(tmp_path: Path, started: list[LeadCtxProvider]) -> None:
    # Given a Kubernetes-style ConfigMap volume: overrides.json -> ..data/overrides.json,
    # ..data -> ..2026_12_03_1
    mount = tmp_path / "mount"
    first = mount / "..2026_12_03_1"
    first.mkdir(parents=True)
    (first / "overrides.json").write_bytes(wire(1, default=True))
    (mount / "..data").symlink_to(first.name)
    (mount / "overrides.json").symlink_to("..data/overrides.json")
    provider = start(started, mount / "overrides.json")
    assert on(provider)
    # When the kubelet writes a new timestamped directory and swaps ..data to it atomically
    second = mount / "..2026_12_03_2"
    second.mkdir()
    (second / "overrides.json").write_bytes(wire(2, kill=True))
    (mount / "..data_tmp").symlink_to(second.name)
    (mount / "..data_tmp").replace(mount / "..data")
    # Then the provider reads the new document without waiting for its poll
    wait_for(lambda: not on(provider), BOUND)
    assert provider.state.revision == 2


def test_a_symlink_into_another_directory_is_followed_there(
    tmp_path: Path, started: list[LeadCtxProvider]
) -> None:
    # Given /etc-style overrides.json -> /srv/flags/overrides.json, edited where it lives
    target = tmp_path / "srv" / "overrides.json"
    target.parent.mkdir()
    write_document(target, document(1, default=True))
    link = tmp_path / "etc" / "overrides.json"
    link.parent.mkdir()
    link.symlink_to(target)
    provider = start(started, link)
    # When the target is replaced atomically in its own directory
    edit_document(target, kill(), updated_by="tests")
    # Then the change is seen through the link
    wait_for(lambda: not on(provider), BOUND)


def test_a_symlink_pointed_elsewhere_is_followed_to_its_new_directory(
    tmp_path: Path, started: list[LeadCtxProvider]
) -> None:
    # Given a link into one directory, then pointed at a file in another
    first, second = tmp_path / "a" / "overrides.json", tmp_path / "b" / "overrides.json"
    for target in (first, second):
        target.parent.mkdir()
        write_document(target, document(1, default=True))
    link = tmp_path / "etc" / "overrides.json"
    link.parent.mkdir()
    link.symlink_to(first)
    provider = start(started, link)
    staged = link.with_name("staged")
    staged.symlink_to(second)
    staged.replace(link)
    write_document(second, document(2, default=True))  # seen through the new link
    wait_for(lambda: provider.state.revision == 2, BOUND)
    # When the new target is replaced in its own directory
    edit_document(second, kill(), updated_by="tests")
    # Then the watcher follows it there
    wait_for(lambda: not on(provider), BOUND)


def test_a_link_in_the_middle_of_a_symlink_chain_pointed_elsewhere_is_seen(
    tmp_path: Path, started: list[LeadCtxProvider]
) -> None:
    # Given etc/overrides.json -> current/overrides.json -> releases/1/overrides.json: a
    # deployment tool that switches releases by pointing the middle link at another one
    first, second = (tmp_path / "releases" / n / "overrides.json" for n in ("1", "2"))
    for target, revision in ((first, 1), (second, 2)):
        target.parent.mkdir(parents=True)
        write_document(target, document(revision, default=True))
    write_document(second, document(2, kill=True))
    middle = tmp_path / "current" / "overrides.json"
    middle.parent.mkdir()
    middle.symlink_to(first)
    link = tmp_path / "etc" / "overrides.json"
    link.parent.mkdir()
    link.symlink_to(middle)
    provider = start(started, link)
    assert on(provider)
    # When the middle link is pointed at the release that kills the flag (an atomic swap in a
    # directory that is neither the configured path's nor the final target's)
    staged = middle.with_name("staged")
    staged.symlink_to(second)
    staged.replace(middle)
    # Then the watcher sees it, long before the hour-long poll
    wait_for(lambda: not on(provider), BOUND)


def test_a_half_written_file_keeps_the_last_good_document_until_it_is_complete(
    tmp_path: Path, started: list[LeadCtxProvider]
) -> None:
    # Given a watched provider on a good document
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    provider = start(started, path)
    killed = wire(2, kill=True)
    # When a writer that is not atomic has written only half of the new document
    path.write_bytes(killed[: len(killed) // 2])
    wait_for(lambda: provider.overrides_source_failing, BOUND)
    # Then the last good document stays in force
    assert on(provider)
    assert provider.state.revision == 1
    # And the rest of the write is read as soon as it lands
    path.write_bytes(killed)
    wait_for(lambda: not on(provider), BOUND)
    assert not provider.overrides_source_failing


def test_a_deleted_then_restored_file_is_read_when_it_comes_back(
    tmp_path: Path, started: list[LeadCtxProvider]
) -> None:
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    provider = start(started, path)
    path.unlink()
    wait_for(lambda: provider.overrides_source_failing, BOUND)
    assert on(provider)  # the last good document stays
    write_document(path, document(2, kill=True))
    wait_for(lambda: not on(provider), BOUND)


def watched_in_folder(
    tmp_path: Path, started: list[LeadCtxProvider]
) -> tuple[Path, Path, LeadCtxProvider]:
    """A provider watching ``<folder>/overrides.json`` (acme on), polling once an hour."""
    folder = tmp_path / "leadctx"
    folder.mkdir()
    path = folder / "overrides.json"
    write_document(path, document(1, default=True))
    return folder, path, start(started, path)


def delete_and_restore(
    folder: Path, provider: LeadCtxProvider, restored: OverridesDocument
) -> None:
    """Delete ``folder``, wait for ``provider`` to find its file gone, then create the folder
    again (another inode, or the same number reused) with ``restored`` in it."""
    shutil.rmtree(folder)
    wait_for(lambda: provider.overrides_source_failing, BOUND)
    folder.mkdir()
    write_document(folder / "overrides.json", restored)


def test_a_directory_deleted_and_created_again_is_watched_again(
    tmp_path: Path, started: list[LeadCtxProvider]
) -> None:
    # Given a provider watching /etc/leadctx/overrides.json, polling once an hour
    folder, path, provider = watched_in_folder(tmp_path, started)
    # When the directory is deleted (the provider notices the file gone) and restored from a
    # backup, the document still turning acme on
    delete_and_restore(folder, provider, document(1, default=True))
    # Then the watcher finds the new directory (another inode, which the old watch never
    # reports) and the poller reads the file again
    wait_for(lambda: not provider.overrides_source_failing, BOUND)
    # And a kill written there is read without waiting for the poll
    edit_document(path, kill(), updated_by="tests")
    wait_for(lambda: not on(provider), BOUND)
    assert provider.state.revision == 2


def test_a_directory_restored_with_a_kill_in_it_is_read_at_the_next_check(
    tmp_path: Path, started: list[LeadCtxProvider]
) -> None:
    # Given a watched provider polling once an hour
    folder, _, provider = watched_in_folder(tmp_path, started)
    # When the directory is deleted (the provider notices the file gone), then restored with
    # a document that already holds a kill: no watch is on the new directory when it lands
    delete_and_restore(folder, provider, document(2, kill=True))
    # Then the watcher's check of its directories finds it and the poller reads it
    wait_for(lambda: not on(provider), BOUND)


def test_watching_can_be_turned_off(tmp_path: Path, started: list[LeadCtxProvider]) -> None:
    # Given LEADCTX_FLAG_OVERRIDES_WATCH=false
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    before = watchers()
    start(started, path, watch=False)
    # Then no watcher thread runs (the poll alone follows the file)
    assert watchers() == before


def test_refresh_reads_the_document_now_without_a_watch(
    tmp_path: Path, started: list[LeadCtxProvider]
) -> None:
    # Given a provider that neither watches nor polls within the test
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    provider = start(started, path, watch=False)
    LeadCtxProvider().refresh()  # no source, not initialised: nothing happens, nothing raises
    # When a kill is written and the application asks for a refresh (a deploy hook, SIGHUP)
    edit_document(path, kill(), updated_by="tests")
    assert on(provider)  # nothing has read it yet
    provider.refresh()
    # Then the provider reads it at once
    wait_for(lambda: not on(provider), BOUND)
    provider.shutdown()
    provider.refresh()  # after shutdown: a no-op


def test_the_setting_is_a_strict_boolean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_WATCH", "off")
    assert RolloutSettings().flag_overrides_watch is False
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_WATCH", "sometimes")
    provider = LeadCtxProvider()
    assert provider.configuration_error is not None
    assert "LEADCTX_FLAG_OVERRIDES_WATCH" in provider.configuration_error
    assert not on(provider)  # a bad setting fails closed


def test_shutdown_joins_the_watcher_thread(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    write_document(path, document(1))
    before = watchers()
    provider = start([], path)
    assert watchers() == before + 1
    provider.shutdown()
    assert watchers() == before  # joined, not left to die


@pytest.mark.parametrize("cause", ["no watchfiles", "no directory"])
def test_where_the_watcher_cannot_start_it_says_so_once_and_the_poll_delivers(
    tmp_path: Path,
    started: list[LeadCtxProvider],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    cause: str,
) -> None:
    # Given a watcher that cannot start: the package is missing, or the directory is
    path = tmp_path / "overrides.json"
    if cause == "no watchfiles":
        monkeypatch.setitem(sys.modules, "watchfiles._rust_notify", None)  # import fails
        write_document(path, document(1, default=True))
    else:
        path = tmp_path / "not-yet" / "overrides.json"
    caplog.set_level(logging.WARNING, logger="leadctx_flags.watch")
    before = watchers()
    provider = start(started, path, poll=0.1)
    # Then one warning says the file is followed by polling only, and no thread runs
    warnings = [r for r in caplog.records if "polling only" in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert watchers() == before
    # And the poll still delivers a kill
    path.parent.mkdir(exist_ok=True)
    write_document(path, document(3, kill=True))
    wait_for(lambda: provider.state.revision == 3, BOUND)
    assert not on(provider)
    assert len([r for r in caplog.records if "polling only" in r.getMessage()]) == 1


def test_a_watcher_only_reacts_to_entries_that_concern_the_file(tmp_path: Path) -> None:
    # Given a watcher on overrides.json that counts its wake-ups
    path = tmp_path / "overrides.json"
    path.write_bytes(wire(1))
    woken = threading.Event()
    watcher = OverridesWatcher(path, woken.set)
    assert watcher.start()
    try:
        # When an unrelated file in the same directory changes, then the file itself
        (tmp_path / "unrelated.txt").write_text("x", encoding="utf-8")
        concerned = [
            watcher._concerns(str(tmp_path / name))
            for name in ("unrelated.txt", "overrides.json", "..data", "..2026_12_03_1")
        ]
        # Then only the file and the ConfigMap's entries concern it
        assert concerned == [False, True, True, True]
        path.write_bytes(wire(2))
        assert woken.wait(BOUND)
    finally:
        watcher.shutdown()
    assert not watcher.watching


FORK_SCENARIO = """
import json, os, sys, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # forking a process with threads is the test
from pathlib import Path
from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.editing import edit_document, kill

path = Path(sys.argv[1])
settings = RolloutSettings(flag_overrides=str(path), flag_overrides_poll_seconds=3600)
provider = LeadCtxProvider(settings)
provider.initialize(client_context("fork"))

def on():
    return provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, client_context("acme")).value

pid = os.fork()
if pid == 0:
    # The child's watcher is registered before fork() returns here: the child's own write
    # right away is seen, with no wait for a thread to come up.
    names = [t.name for t in threading.enumerate()]
    before = on()
    edit_document(path, kill(), updated_by="child")
    give_up = time.monotonic() + 5
    while on() and time.monotonic() < give_up:
        time.sleep(0.005)
    print(json.dumps({"before": before, "after": on(), "watchers": names.count(%r)}), flush=True)
    provider.shutdown()
    os._exit(0)
_, status = os.waitpid(pid, 0)
provider.shutdown()
sys.exit(os.waitstatus_to_exitcode(status))
""" % (WATCHER,)  # noqa: UP031 - the scenario holds braces of its own


@pytest.mark.integration
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_forked_childs_watcher_sees_a_write_made_right_after_the_fork(tmp_path: Path) -> None:
    # Given a watched provider initialised before the fork, polling once an hour
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    # When the child kills the flag as soon as fork() returns
    completed = subprocess.run(  # noqa: S603 - our own interpreter running our own scenario
        [sys.executable, "-c", FORK_SCENARIO, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    # Then the child had one watcher of its own and answered off long before any poll
    report = completed.stdout.strip().splitlines()[-1]
    assert report == '{"before": true, "after": false, "watchers": 1}', completed.stderr


def test_importing_the_provider_loads_no_watchfiles() -> None:
    snippet = (
        "import sys; from leadctx_flags import LeadCtxProvider; print('watchfiles' in sys.modules)"
    )
    completed = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.strip() == "False"
