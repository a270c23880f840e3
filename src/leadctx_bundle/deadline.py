"""The shared path's deadline and the bounded worker pool it runs on.

A source may hang (a stuck database read). The gate runs the shared path (sources and build)
on a worker thread and waits at most its deadline; past it, the pipeline gets its legacy
context and the hung call is left to finish on its own. Python cannot kill a thread, so hung
calls are bounded instead: the pool has a fixed number of permits, one per running shared
path, and when all are taken the gate falls back at once (``WorkerPoolSaturated``, reason
``timeout``) rather than queue behind calls that may never return.

The hand-off is the fallback path's main cost when a source fails at once, so it is kept
small: daemon workers started on demand and fed by a ``queue.SimpleQueue``, and the caller
waits on a bare lock the worker releases (no ``concurrent.futures.Future`` on the synchronous
path).

Deadlines, in seconds, most specific first:

1. the ``deadline_s`` argument of ``resolve_context``;
2. ``LEADCTX_BUNDLE_DEADLINE_SECONDS_<PIPELINE>`` (``..._DRAFT``, ``..._OVERSEER``,
   ``..._AUTO_SEND``, ``..._PROPOSED_TIMES``);
3. ``LEADCTX_BUNDLE_DEADLINE_SECONDS`` (every pipeline);
4. ``DEFAULT_DEADLINES`` below.

The pool size is ``LEADCTX_BUNDLE_WORKERS`` (default ``DEFAULT_WORKERS``), read when the pool
is first used. The pool is rebuilt in a forked child, whose worker threads did not survive
the fork.

Exit. Workers are daemon threads, so a hung source never keeps a process from ending. But a
daemon thread still running when the interpreter finalises is stopped wherever it is, and a
build abandoned at its deadline may be inside pydantic-core or tiktoken (native code) at that
moment: that ends the process with a segmentation fault. So at exit (``atexit``) the pool
refuses new work (``WorkerPoolClosed``), asks running work to stop at its next
``checkpoint()`` (every few rows read, and between the build's steps), and waits for builds
in progress (finite CPU work, never a source read that may hang) for at most
``EXIT_WAIT_SECONDS``; no build starts after that. A source still blocked in its own call is
not waited for: it holds no native frame of ours.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import contextvars
import functools
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from types import MappingProxyType
from typing import Final, TypeVar

from leadctx_flags.errors import ConfigurationError
from leadctx_flags.settings import register_environment_variables
from leadctx_flags.vocabulary import PIPELINES, Pipeline

__all__ = [
    "DEADLINE_ENV",
    "DEFAULT_DEADLINES",
    "DEFAULT_WORKERS",
    "EXIT_WAIT_SECONDS",
    "WORKERS_ENV",
    "DeadlineExceeded",
    "ProcessExiting",
    "SharedPathPool",
    "WorkerPoolClosed",
    "WorkerPoolSaturated",
    "building",
    "checkpoint",
    "deadline_env_name",
    "deadline_for",
    "shared_path_pool",
    "stop_at_exit",
]

T = TypeVar("T")

DEADLINE_ENV: Final = "LEADCTX_BUNDLE_DEADLINE_SECONDS"
WORKERS_ENV: Final = "LEADCTX_BUNDLE_WORKERS"

DEFAULT_DEADLINES: Final = MappingProxyType(
    {
        # A draft is written for a human to review: it can wait a little for better context.
        Pipeline.DRAFT: 1.5,
        # These decide in the request path (approve, send, book): keep them snappy.
        Pipeline.OVERSEER: 1.0,
        Pipeline.AUTO_SEND: 1.0,
        Pipeline.PROPOSED_TIMES: 0.5,
    }
)
"""Seconds the shared path may take per pipeline before the legacy context is used."""

DEFAULT_WORKERS: Final = 16
"""Shared paths that may run at once per process (hung ones included)."""

EXIT_WAIT_SECONDS: Final = 10.0
"""At exit, how long builds in progress are waited for (a build's cost is bounded by its input:
200,000 memory entries validate in under a second on a development machine)."""


class DeadlineExceeded(TimeoutError):  # noqa: N818 - named for what happened, like TimeoutError
    """The shared path did not finish within its deadline (fallback reason ``timeout``)."""


class WorkerPoolSaturated(DeadlineExceeded):
    """Every worker is busy (possibly with hung sources): fall back now, do not queue."""


class WorkerPoolClosed(DeadlineExceeded):
    """The pool is shut down (the process is exiting): no shared path starts."""


class ProcessExiting(DeadlineExceeded):
    """The process is exiting: work stopped at a ``checkpoint()`` (its caller gave up long ago)."""


class _ExitState:
    """Whether the process is exiting, and how many builds are in progress (one lock)."""

    def __init__(self) -> None:
        self.changed = threading.Condition(threading.Lock())
        self.exiting = False
        self.builds = 0


_exit_state = _ExitState()


def checkpoint() -> None:
    """Raise ``ProcessExiting`` if the process is exiting; cheap enough to call every few rows.

    Raises:
        ProcessExiting: ``stop_at_exit`` has run.
    """
    if _exit_state.exiting:
        raise ProcessExiting("the process is exiting")


@contextlib.contextmanager
def building() -> Iterator[None]:
    """A build in progress: exit waits for it (bounded), and none starts once exit began.

    Raises:
        ProcessExiting: The process is exiting; the build must not start.
    """
    state = _exit_state
    with state.changed:
        if state.exiting:
            raise ProcessExiting("the process is exiting")
        state.builds += 1
    try:
        yield
    finally:
        with state.changed:
            state.builds -= 1
            state.changed.notify_all()


def stop_at_exit(timeout: float = EXIT_WAIT_SECONDS) -> bool:
    """Refuse new shared paths, stop running ones at their next checkpoint, and wait for builds
    in progress, at most ``timeout`` seconds. Registered with ``atexit``; idempotent.

    Args:
        timeout: Seconds to wait for builds in progress.

    Returns:
        Whether no build was left running.
    """
    state = _exit_state
    with state.changed:
        state.exiting = True
    pool = _pool
    if pool is not None:
        pool.shutdown()
    with state.changed:
        return state.changed.wait_for(lambda: state.builds == 0, timeout)


def deadline_env_name(pipeline: Pipeline) -> str:
    """``LEADCTX_BUNDLE_DEADLINE_SECONDS_<PIPELINE>``, e.g. ``..._AUTO_SEND``.

    Args:
        pipeline: The pipeline.
    """
    return f"{DEADLINE_ENV}_{pipeline.value.upper()}"


# Read here, not through BundleSettings: declared so the start-up check for misspelt
# LEADCTX_* variables does not report them as unknown.
register_environment_variables(
    "LEADCTX_BUNDLE_",
    [DEADLINE_ENV, WORKERS_ENV, *(deadline_env_name(pipeline) for pipeline in PIPELINES)],
    exact_case=True,  # read on every call with one lookup each, not a scan of the environment
)


@functools.lru_cache(maxsize=64)
def _parse_seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}: must be a finite number of seconds above 0") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name}: must be a finite number of seconds above 0")
    return value


def deadline_for(pipeline: Pipeline, override: float | None = None) -> float:
    """The shared path's deadline for ``pipeline``, in seconds.

    Args:
        pipeline: The pipeline asking.
        override: The caller's deadline; wins over the environment and the defaults.

    Raises:
        ConfigurationError: ``override`` or an environment variable is not a finite number
            greater than 0; the message names the argument or variable.
    """
    if override is not None:
        if not isinstance(override, int | float) or not math.isfinite(override) or override <= 0:
            raise ConfigurationError("deadline_s: expected a number of seconds greater than 0")
        return float(override)
    for name in (deadline_env_name(pipeline), DEADLINE_ENV):
        raw = os.environ.get(name)
        if raw is not None and raw.strip():
            return _parse_seconds(name, raw.strip())
    return DEFAULT_DEADLINES[pipeline]


class _Call:
    """One unit of work handed to a worker, and its outcome.

    The caller waits on ``done``, a bare lock taken before the hand-off and released by the
    worker: the cheapest wait CPython has (one futex), where a ``Future`` adds a condition
    variable, its own lock and a waiter list per call.
    """

    __slots__ = ("context", "done", "error", "fn", "permit", "result")

    def __init__(
        self, fn: Callable[[], object], context: contextvars.Context, *, permit: bool = True
    ) -> None:
        self.fn = fn
        self.context = context
        self.permit = permit  # whether the worker gives a permit back when ``fn`` returns
        self.result: object = None
        self.error: BaseException | None = None
        self.done = _thread.allocate_lock()
        self.done.acquire()


class SharedPathPool:
    """Worker threads that refuse work instead of queueing it.

    Workers are daemon threads started on demand (never more than ``workers``) and fed by one
    ``queue.SimpleQueue``; each call holds a permit from hand-off until its work returns, so
    a hung call keeps its permit and its thread, and when every permit is taken the next call
    is refused at once (``WorkerPoolSaturated``).

    Args:
        workers: Permits and threads; at most this many shared paths run at once.
        name: Thread name prefix (shows in thread dumps and debuggers).
    """

    def __init__(self, workers: int, *, name: str = "leadctx-shared-path") -> None:
        if workers < 1:
            raise ValueError("workers: expected at least 1")
        self.workers = workers
        self._name = name
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        # One plain lock guards the counters: cheaper than a Semaphore (a Condition in Python).
        self._lock = threading.Lock()
        self._free = workers
        self._threads = 0
        self._closed = False

    def try_acquire(self) -> bool:
        """Take a permit without waiting; ``False`` when the pool is saturated."""
        with self._lock:
            if self._free == 0:
                return False
            self._free -= 1
            return True

    def release(self) -> None:
        """Give back a permit taken with ``try_acquire``."""
        with self._lock:
            if self._free >= self.workers:
                raise ValueError("SharedPathPool.release: no permit is taken")
            self._free += 1

    def _hand_off(self, call: _Call) -> None:
        """Queue ``call`` (its permit already taken), starting a worker if all are busy."""
        with self._lock:
            if self._closed:
                raise WorkerPoolClosed("SharedPathPool: shut down")
            # Calls holding a permit = workers - free; each needs a thread of its own.
            number = 0
            if self._threads < self.workers - self._free:
                self._threads += 1
                number = self._threads
        if number:
            try:
                worker = threading.Thread(
                    target=self._work, name=f"{self._name}-{number}", daemon=True
                )
                worker.start()
            except BaseException:
                with self._lock:
                    self._threads -= 1
                raise
        self._queue.put(call)

    def _work(self) -> None:
        get = self._queue.get
        while (call := get()) is not None:
            try:
                call.result = call.context.run(call.fn)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who re-raises
                call.error = exc
            finally:
                if call.permit:
                    self.release()
                call.done.release()
            del call

    def run(self, fn: Callable[[], T], timeout: float) -> T:
        """Run ``fn`` on a worker, in a copy of the caller's context; wait at most ``timeout``.

        Args:
            fn: The work.
            timeout: Seconds to wait. Past it the work is abandoned to finish on its own (it
                keeps its permit until then).

        Raises:
            WorkerPoolSaturated: No permit is free; nothing was started.
            DeadlineExceeded: ``fn`` did not return within ``timeout``.
            BaseException: What ``fn`` raised.
        """
        if not self.try_acquire():
            raise WorkerPoolSaturated(f"all {self.workers} shared-path workers are busy")
        call = _Call(fn, contextvars.copy_context())
        try:
            self._hand_off(call)
        except BaseException:
            self.release()
            raise
        # A deadline beyond what the platform's lock can wait means "no deadline", not an error.
        if not call.done.acquire(True, min(timeout, threading.TIMEOUT_MAX)):
            raise DeadlineExceeded("shared path exceeded its deadline")
        if call.error is not None:
            error, call.error = call.error, None  # no cycle through the traceback's frames
            raise error
        return call.result  # type: ignore[return-value]

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on a worker, in a copy of the caller's context (current span included).

        Args:
            fn: The work.

        Raises:
            WorkerPoolSaturated: No permit is free; nothing was started.
        """
        if not self.try_acquire():
            raise WorkerPoolSaturated(f"all {self.workers} shared-path workers are busy")
        try:
            return self._submit(fn, contextvars.copy_context())
        except BaseException:
            self.release()
            raise

    def submit_held(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on a worker under a permit the caller already holds (not released here).

        Args:
            fn: The work.
        """
        return self._submit(fn, contextvars.copy_context(), permit=False)

    def hand_over(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on a worker under a permit the caller holds and hands over: the worker
        gives it back when ``fn`` returns, so work abandoned at its deadline keeps its permit.

        Args:
            fn: The work.
        """
        return self._submit(fn, contextvars.copy_context(), permit=True)

    def _submit(
        self, fn: Callable[[], T], context: contextvars.Context, *, permit: bool = True
    ) -> Future[T]:
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()

        def settle() -> None:
            try:
                result = context.run(fn)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
                future.set_exception(exc)
            else:
                future.set_result(result)

        self._hand_off(_Call(settle, contextvars.Context(), permit=permit))
        return future

    def shutdown(self) -> None:
        """Stop accepting work; running calls finish on their own (never waited for)."""
        with self._lock:
            self._closed = True
            threads = self._threads
        for _ in range(threads):
            self._queue.put(None)


_pool: SharedPathPool | None = None
_pool_lock = threading.Lock()


def _workers_from_env() -> int:
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return DEFAULT_WORKERS
    try:
        workers = int(raw)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ConfigurationError(f"{WORKERS_ENV}: must be a whole number of at least 1")
    return workers


def shared_path_pool() -> SharedPathPool:
    """The process's pool, created on first use with ``LEADCTX_BUNDLE_WORKERS`` permits.

    Raises:
        ConfigurationError: ``LEADCTX_BUNDLE_WORKERS`` is not an integer of at least 1.
    """
    global _pool  # noqa: PLW0603 - one pool per process, rebuilt after a fork
    pool = _pool
    if pool is not None:
        return pool
    with _pool_lock:
        if _pool is None:
            _pool = SharedPathPool(_workers_from_env())
        return _pool


def _forget_pool_in_child() -> None:
    # The parent's worker threads do not exist in the child, and its locks may be held; its
    # builds in progress are not the child's to wait for.
    global _pool, _pool_lock, _exit_state  # noqa: PLW0603 - reset of the per-process singletons
    _pool = None
    _pool_lock = threading.Lock()
    _exit_state = _ExitState()


# Runs before the interpreter finalises, while daemon threads still run normally.
atexit.register(stop_at_exit)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)
