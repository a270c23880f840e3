"""``OverridesWatcher``: wakes the poller as soon as the overrides file's directory changes.

The watcher parses nothing. It only tells the poller to poll now instead of at the end of its
interval, so the content hash, the strict parse, the replay rule and the cache are the poll's,
whichever path noticed the change. The poll stays the safety net at its interval, for mounts
that deliver no file events (NFS, some container volumes).

It watches the file's *directory*, not the file: an atomic replace (the ``flags`` commands'
own writes, editors, ``mv``) gives the path a new inode that a watch on the old one would
never see, and a Kubernetes ConfigMap update swaps the ``..data`` symlink to a new timestamped
directory without touching ``overrides.json`` itself. When the path is a symlink to a file in
another directory, that directory is watched too, and so is the directory of every link of a
chain of symlinks.

``watchfiles`` (inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on Windows) is
imported only when a watcher starts. Where it cannot start (the package or the platform's
mechanism is missing, the inotify limits are reached, the directory does not exist) the
watcher logs why once and the process keeps polling.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Final, Protocol

__all__ = ["DEBOUNCE_MS", "RECHECK_MS", "SHUTDOWN_TIMEOUT", "STEP_MS", "OverridesWatcher"]

STEP_MS: Final = 50
"""Quiet time that ends a burst of changes, and how often the thread checks for a stop."""

DEBOUNCE_MS: Final = 400
"""Longest a burst of changes is grouped before the poller is woken anyway."""

RECHECK_MS: Final = 1000
"""How often a quiet watcher checks that its directories are still the ones it watches: a
directory deleted and created again (a restored backup, ``rm -rf`` and a redeploy) is a new
one that the old watch never reports, so it is watched again within this time."""

SHUTDOWN_TIMEOUT: Final = 0.2
"""Seconds ``shutdown()`` waits for the thread (it checks for a stop every ``STEP_MS``)."""

logger = logging.getLogger(__name__)


class _Notify(Protocol):
    """What the watcher uses of ``watchfiles``' ``RustNotify``."""

    def watch(
        self, debounce_ms: int, step_ms: int, timeout_ms: int, stop_event: threading.Event
    ) -> set[tuple[int, str]] | str: ...

    def close(self) -> None: ...


class OverridesWatcher:
    """Calls ``on_change`` soon after the overrides file at ``path`` may have changed.

    Args:
        path: The overrides file as configured (it may be a symlink, or not exist yet).
        on_change: Called on the watcher's thread after each burst of changes that may concern
            the file; it must be quick and must not raise (the poller's ``wake``).
        name: The thread's name, as it shows in thread dumps.

    ``start()`` registers the watch on the calling thread, so a change made after it returns
    is seen; the thread then only waits for changes.
    """

    def __init__(
        self,
        path: Path,
        on_change: Callable[[], object],
        *,
        name: str = "leadctx-overrides-watcher",
    ) -> None:
        self._path = path.absolute()  # not resolve(): the symlink itself is watched
        self._on_change = on_change
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._notify: _Notify | None = None
        self._directories: frozenset[str] = frozenset()
        self._identities: dict[str, tuple[int, int] | None] = {}
        self._lost = False  # a watched directory itself was reported deleted or moved
        self._names: frozenset[str] = frozenset()
        self._inherited: object = None  # the parent's watch, after a fork: see successor()
        self._lifecycle = threading.Lock()
        self._started = False

    @property
    def watching(self) -> bool:
        """Whether the watch is registered and its thread is running."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stop.is_set()

    @property
    def directories(self) -> Collection[str]:
        """The directories watched now."""
        return self._directories

    def start(self) -> bool:
        """Register the watch and start the thread (once). Never raises.

        Returns:
            Whether the watch is running. When it cannot start, the reason is logged (once:
            a watcher is started at most once) and the poll alone follows the file.
        """
        with self._lifecycle:
            if self._started:
                return self.watching
            self._started = True
            try:
                self._notify = self._register()
            except Exception as err:  # noqa: BLE001 - any failure leaves the poll in charge
                logger.warning(
                    "cannot watch overrides file %s (%s: %s); following it by polling only",
                    self._path,
                    type(err).__name__,
                    err,
                )
                return False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
            logger.debug("watching %s for changes to %s", sorted(self._directories), self._path)
            return True

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Stop watching and join the thread within about ``timeout`` seconds. Idempotent.

        Args:
            timeout: Seconds to wait for the thread.
        """
        with self._lifecycle:
            self._started = True  # a watcher shut down before it started never starts
            self._stop.set()
            thread, notify = self._thread, self._notify
        if thread is None:
            if notify is not None:
                notify.close()
            return
        if thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning(
                    "overrides watcher for %s still busy after %.1f s", self._path, timeout
                )

    def successor(self) -> OverridesWatcher:
        """A new, unstarted watcher of the same file, for the child after ``os.fork()``.

        The child has this object but neither its thread nor the watch's own thread. The
        parent's watch is kept referenced and never closed in the child: closing it would
        signal a descriptor the parent still uses.
        """
        child = OverridesWatcher(self._path, self._on_change, name=self._name)
        child._inherited = (self._notify, self._inherited)
        return child

    def _register(self) -> _Notify:
        from watchfiles._rust_notify import RustNotify  # noqa: PLC0415 - only when watching

        directories, names = _watch_targets(self._path)
        missing = sorted(directory for directory in directories if not Path(directory).is_dir())
        if missing:  # RustNotify would watch nothing without a word
            raise FileNotFoundError(f"no directory {missing[0]}")
        notify: _Notify = RustNotify(
            sorted(directories),
            False,  # debug
            False,  # force_polling: a polling watcher would add nothing to the poll
            STEP_MS,  # poll_delay_ms, unused without force_polling
            False,  # recursive: the directory's own entries are all that matter
            True,  # ignore_permission_denied
        )
        self._directories, self._names = directories, names
        self._identities = {directory: _identity(directory) for directory in directories}
        self._lost = False
        return notify

    def _rewatch(self, notify: _Notify) -> _Notify:
        """Watch the directories anew, then poll now: the file may have changed while
        nothing watched it. A directory gone again in between keeps the old watch until the
        next check."""
        try:
            fresh = self._register()
        except FileNotFoundError:
            return notify
        notify.close()
        self._notify = fresh
        logger.debug("watching %s again for %s", sorted(self._directories), self._path)
        self._call_on_change()
        return fresh

    def _replaced(self) -> bool:
        """Whether a watched directory is now another one (deleted and created again), with
        every directory there to be watched; a directory still missing waits for the next
        check (the poll covers the file meanwhile)."""
        now = {directory: _identity(directory) for directory in self._directories}
        # The reported deletion first: a directory created again often gets its inode back.
        return None not in now.values() and (self._lost or now != self._identities)

    def _run(self) -> None:
        notify = self._notify
        assert notify is not None  # noqa: S101 - set by start() before the thread starts
        try:
            while not self._stop.is_set():
                changes = notify.watch(DEBOUNCE_MS, STEP_MS, RECHECK_MS, self._stop)
                if isinstance(changes, str):  # "timeout" (quiet), "stop"; "signal" cannot occur
                    if changes == "timeout" and self._replaced():
                        notify = self._rewatch(notify)
                    continue
                if any(path in self._directories for _, path in changes):
                    self._lost = True  # its watch ends with it: see _replaced()
                if not any(self._concerns(path) for _, path in changes):
                    continue
                self._call_on_change()
                if _watch_targets(self._path)[0] != self._directories:
                    # The symlink now points into another directory: watch that one instead.
                    notify.close()
                    self._notify = notify = self._register()
        except Exception as err:  # noqa: BLE001 - a failing watch must leave the poll running
            logger.warning(
                "stopped watching overrides file %s (%s); following it by polling only",
                self._path,
                type(err).__name__,
            )
        finally:
            notify.close()

    def _concerns(self, changed: str) -> bool:
        directory, name = os.path.split(changed)
        # `..data`, `..2026_12_03_...`: the entries a ConfigMap update swaps.
        return directory in self._directories and (name in self._names or name.startswith(".."))

    def _call_on_change(self) -> None:
        try:
            self._on_change()
        except Exception:  # a bug in the callback must not end the watch
            logger.exception("overrides watcher callback failed")


def _identity(directory: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of ``directory``, or ``None`` when it is not there."""
    try:
        status = Path(directory).stat()
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def _watch_targets(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    """The directories to watch for ``path`` and the entry names in them that concern it."""
    directories = {str(path.parent)}
    names = {path.name}
    # Each link of a chain (overrides.json -> current/overrides.json -> releases/7/...), not
    # only the last target: pointing a link in the middle elsewhere changes the document too.
    entries = [*_links_of(path), Path(os.path.realpath(path))]
    for entry in entries:
        if entry != path and not entry.is_relative_to(path.parent):
            directories.add(str(entry.parent))
            names.add(entry.name)
    return frozenset(directories), frozenset(names)


_MAX_LINKS: Final = 40
"""Links followed in a chain, as the kernel does (``MAXSYMLINKS``)."""


def _links_of(path: Path) -> list[Path]:
    """The entries a chain of symlinks starting at ``path`` passes through, after ``path``."""
    entries: list[Path] = []
    current = path
    for _ in range(_MAX_LINKS):
        try:
            target = current.readlink()
        except OSError:  # not a link (the end of the chain), or gone
            break
        current = current.parent / target  # an absolute target replaces the parent
        entries.append(current)
    return entries
