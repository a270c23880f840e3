"""``OverridesPoller``: one background thread that keeps asking a source for new documents.

The thread is a named daemon sleeping on ``Event.wait(delay)``, so ``shutdown()`` wakes it at
once, cancels a fetch in flight by closing the source, and joins it. ``wake()`` ends the
current wait early: a file watcher or a change event asks for the poll now, and the poll does
the rest (the source's conditional read, the parse, the provider's replay rule). After a failure the
delay doubles, capped at five poll intervals, so a failing source is not hammered and a
recovered one is read again within that cap; a local file (``backoff = False``) is simply read
again every interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from leadctx_flags.overrides_sources import OverridesSource, SourceError

if TYPE_CHECKING:
    from leadctx_flags.document import OverridesDocument

__all__ = ["MAX_BACKOFF_FACTOR", "SHUTDOWN_TIMEOUT", "STALE_AFTER_FAILURES", "OverridesPoller"]

MAX_BACKOFF_FACTOR: Final = 5
"""Backoff after failures is capped at this many poll intervals."""

STALE_AFTER_FAILURES: Final = 3
"""Consecutive failed polls after which the source is reported stale."""

SHUTDOWN_TIMEOUT: Final = 1.5
"""Seconds ``shutdown()`` waits for the thread, leaving room within OpenFeature's 2 s."""

logger = logging.getLogger(__name__)


class OverridesPoller:
    """Polls ``source`` every ``interval`` seconds and reports what it finds.

    Args:
        source: Where documents come from.
        interval: Seconds between polls while the source is healthy.
        on_document: Called with each new document (on the poller's thread). It may raise
            ``SourceError`` to refuse the document (a replayed revision, say): the poll then
            counts as failed, and so does every later poll until the source serves a
            document that is accepted.
        on_stale: Called once when ``stale_after`` polls in a row have failed.
        on_recovered: Called once on the first success after ``on_stale``.
        stale_after: See ``on_stale``.
        name: The thread's name, as it shows in thread dumps.

    Callbacks must not raise; if one does, the error is logged and polling goes on.
    """

    def __init__(
        self,
        source: OverridesSource,
        *,
        interval: float,
        on_document: Callable[[OverridesDocument], object],
        on_stale: Callable[[SourceError], object] = lambda _: None,
        on_recovered: Callable[[], object] = lambda: None,
        stale_after: int = STALE_AFTER_FAILURES,
        name: str = "leadctx-overrides-poller",
    ) -> None:
        if interval <= 0:
            raise ValueError(f"poll interval must be positive, got {interval}")
        self._source = source
        self._interval = interval
        self._on_document = on_document
        self._on_stale = on_stale
        self._on_recovered = on_recovered
        self._stale_after = stale_after
        self._stop = threading.Event()
        self._wakeup = threading.Event()  # set by wake() and by shutdown()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._failures = 0
        self._stale = False
        self._refused: SourceError | None = None
        self._last_failure_logged = ""
        self._lifecycle = threading.Lock()
        self._closed = False

    @property
    def consecutive_failures(self) -> int:
        """Failed polls since the last success."""
        return self._failures

    @property
    def stale(self) -> bool:
        """Whether the source has been reported stale and has not recovered yet."""
        return self._stale

    def next_delay(self) -> float:
        """Seconds until the next poll: the interval, or the capped backoff after failures.

        A source that declares ``backoff = False`` (a local file: reading it costs nothing and
        loads no server) is polled every interval even while failing, so that a document
        re-created after a loss is seen within one interval.
        """
        if self._failures == 0 or not getattr(self._source, "backoff", True):
            return self._interval
        factor: int = min(1 << min(self._failures, 16), MAX_BACKOFF_FACTOR)
        return self._interval * factor

    def poll_once(self) -> bool:
        """Poll now, on the calling thread. Returns whether the source answered usably."""
        try:
            document = self._source.fetch()
        except SourceError as err:
            self._record_failure(err)
            return False
        except Exception as err:  # a bug in a source must not kill the poller
            logger.exception("overrides source %s raised unexpectedly", self._source.description)
            self._record_failure(SourceError(str(err), kind=type(err).__name__))
            return False
        if document is None:
            if self._refused is not None:  # still serving the document we refused
                self._record_failure(self._refused)
                return False
            self._record_success()
            return True
        try:
            self._on_document(document)
        except SourceError as err:
            self._refused = err
            self._record_failure(err)
            return False
        except Exception:  # a bug in a callback must not kill the poller
            logger.exception("overrides poller callback failed")
        self._refused = None
        self._record_success()
        return True

    def wake(self) -> None:
        """Poll now instead of at the end of the current wait. Cheap; any thread; never blocks.

        Wakes that arrive during a poll cause one more poll right after it, so a change made
        before ``wake()`` is always read by a poll that starts after it.
        """
        self._wakeup.set()

    def start(self) -> None:
        """Start the background thread (once)."""
        with self._lifecycle:
            if not self._closed and not self._thread.is_alive():
                self._thread.start()

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Stop polling, cancel a fetch in flight, join the thread, close the source.

        Idempotent. Returns within about ``timeout`` seconds even in the middle of a fetch:
        closing the source cancels it (``HttpSource`` does; a source that cannot be
        interrupted is left to finish on its daemon thread, and a warning says so).

        Args:
            timeout: Seconds to wait for the thread to end.
        """
        with self._lifecycle:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            self._wakeup.set()
            started = self._thread.ident is not None
        self._source.close()  # cancels a fetch in flight, so the join below is short
        if started and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning(
                    "overrides poller for %s still busy after %.1f s; left to end on its own",
                    self._source.description,
                    timeout,
                )

    def successor(self) -> OverridesPoller:
        """A new, unstarted poller with this one's source, interval and callbacks.

        After ``os.fork()`` the child has this object but not its thread; the provider starts
        a successor there.
        """
        return OverridesPoller(
            self._source,
            interval=self._interval,
            on_document=self._on_document,
            on_stale=self._on_stale,
            on_recovered=self._on_recovered,
            stale_after=self._stale_after,
            name=self._thread.name,
        )

    def _run(self) -> None:
        while True:
            self._wakeup.wait(self.next_delay())
            # Cleared before the poll: a wake during the poll makes the next wait return at once.
            self._wakeup.clear()
            if self._stop.is_set():
                return
            self.poll_once()
            if self._stop.is_set():  # shutdown() closed the source while this poll used it
                self._source.close()
                return

    def _record_failure(self, err: SourceError) -> None:
        self._failures += 1
        # The message names the source and, for a refused document, each field and the rule it
        # breaks (never a value): logged whenever it changes, so an operator sees what to fix.
        message = str(err).removeprefix(f"{self._source.description}: ")
        if self._failures == 1 or message != self._last_failure_logged:
            self._last_failure_logged = message
            logger.warning(
                "overrides source %s failed (%s): %s; the last good document stays in force",
                self._source.description,
                err.kind,
                message,
            )
        else:
            logger.debug(
                "overrides source %s failed again (%s), %d in a row",
                self._source.description,
                err.kind,
                self._failures,
            )
        if self._failures >= self._stale_after and not self._stale:
            self._stale = True
            logger.warning(
                "overrides source %s is stale after %d failed polls (%s)",
                self._source.description,
                self._failures,
                err.kind,
            )
            self._call(self._on_stale, err)

    def _record_success(self) -> None:
        if self._failures:
            logger.info(
                "overrides source %s answered again after %d failed polls",
                self._source.description,
                self._failures,
            )
        self._failures = 0
        if self._stale:
            self._stale = False
            self._call(self._on_recovered)

    @staticmethod
    def _call(callback: Callable[..., object], *args: object) -> None:
        try:
            callback(*args)
        except Exception:  # a bug in a callback must not kill the poller
            logger.exception("overrides poller callback %r failed", callback)
