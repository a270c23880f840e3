"""The shared path's worker pool: the hand-off, its permits under saturation, and shutdown.

Waits are on events and bounded polls, never on wall-clock bounds.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from leadctx_bundle.deadline import (
    DeadlineExceeded,
    SharedPathPool,
    WorkerPoolClosed,
    WorkerPoolSaturated,
)

GENEROUS = 10.0  # seconds; only a broken pool comes near it
PREFIX = "leadctx-pool-test"

caller_value: contextvars.ContextVar[str] = contextvars.ContextVar("caller_value", default="")


_names = itertools.count()


@pytest.fixture
def pool() -> Iterator[SharedPathPool]:
    # A name of its own: the threads of an earlier test's pool may still be exiting.
    pool = SharedPathPool(2, name=f"{PREFIX}-{next(_names)}-")
    yield pool
    pool.shutdown()


def _threads(pool: SharedPathPool) -> list[threading.Thread]:
    prefix = pool._name  # the test reads which threads are the pool's
    return [thread for thread in threading.enumerate() if thread.name.startswith(prefix)]


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GENEROUS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def _blocker() -> tuple[threading.Event, threading.Event, Callable[[], str]]:
    entered, release = threading.Event(), threading.Event()

    def work() -> str:
        entered.set()
        release.wait(GENEROUS)
        return "late"

    return entered, release, work


def test_run_returns_the_result_computed_on_a_worker_in_the_callers_context(
    pool: SharedPathPool,
) -> None:
    token = caller_value.set("from the caller")
    try:
        seen = pool.run(lambda: (threading.current_thread().name, caller_value.get()), GENEROUS)
    finally:
        caller_value.reset(token)
    assert seen[0] in {thread.name for thread in _threads(pool)}
    assert seen[1] == "from the caller"


def test_run_raises_what_the_work_raised(pool: SharedPathPool) -> None:
    error = LookupError("raised on the worker")

    def work() -> None:
        raise error

    with pytest.raises(LookupError) as caught:
        pool.run(work, GENEROUS)
    assert caught.value is error
    # the permit came back: both can be taken again
    assert pool.try_acquire()
    assert pool.try_acquire()
    pool.release()
    pool.release()


def test_sequential_calls_reuse_one_worker(pool: SharedPathPool) -> None:
    names = {pool.run(lambda: threading.current_thread().name, GENEROUS) for _ in range(50)}
    assert len(names) == 1
    assert len(_threads(pool)) == 1


def test_a_hung_call_times_out_keeps_its_permit_and_a_saturated_pool_refuses(
    pool: SharedPathPool,
) -> None:
    hung = [_blocker(), _blocker()]
    try:
        for entered, _, work in hung:
            with pytest.raises(DeadlineExceeded):
                pool.run(work, 0.05)
            assert entered.wait(GENEROUS)
        # Both permits are held by hung calls: the next call is refused without running
        started = threading.Event()
        with pytest.raises(WorkerPoolSaturated):
            pool.run(started.set, GENEROUS)
        assert not started.is_set()
        assert not pool.try_acquire()
        # one thread per hung call, never more than the pool's size
        assert len(_threads(pool)) == 2
    finally:
        for _, release, _ in hung:
            release.set()
    # once the hung calls return, their permits and threads serve again
    _until(pool.try_acquire, "the hung calls' permits never came back")
    _until(pool.try_acquire, "the hung calls' permits never came back")
    pool.release()
    pool.release()
    assert pool.run(lambda: "again", GENEROUS) == "again"
    assert len(_threads(pool)) == 2


def test_many_callers_on_a_saturated_pool_each_get_an_answer(pool: SharedPathPool) -> None:
    gate = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def caller() -> None:
        gate.wait(GENEROUS)
        for _ in range(25):
            try:
                outcome = pool.run(lambda: "ran", GENEROUS)
            except WorkerPoolSaturated:
                outcome = "refused"
            with lock:
                outcomes.append(outcome)

    callers = [threading.Thread(target=caller) for _ in range(8)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(GENEROUS)
        assert not thread.is_alive(), "a caller never got an answer"
    assert len(outcomes) == 8 * 25
    assert set(outcomes) <= {"ran", "refused"}
    assert "ran" in outcomes
    assert len(_threads(pool)) <= pool.workers
    # every permit came back
    assert pool.try_acquire()
    assert pool.try_acquire()
    assert not pool.try_acquire()
    pool.release()
    pool.release()


def test_submit_and_submit_held_give_futures(pool: SharedPathPool) -> None:
    assert pool.submit(lambda: 41 + 1).result(GENEROUS) == 42

    def fail() -> None:
        raise KeyError("on a worker")

    with pytest.raises(KeyError):
        pool.submit(fail).result(GENEROUS)
    # submit_held runs under the caller's permit and leaves it held
    assert pool.try_acquire()
    assert pool.submit_held(lambda: "held").result(GENEROUS) == "held"
    assert pool.try_acquire()  # the second permit
    assert not pool.try_acquire()  # ours is still taken
    pool.release()
    pool.release()


def test_submit_on_a_saturated_pool_refuses(pool: SharedPathPool) -> None:
    assert pool.try_acquire()
    assert pool.try_acquire()
    try:
        with pytest.raises(WorkerPoolSaturated):
            pool.submit(lambda: None)
    finally:
        pool.release()
        pool.release()


def test_release_without_a_permit_is_an_error(pool: SharedPathPool) -> None:
    with pytest.raises(ValueError, match="no permit"):
        pool.release()


def test_shutdown_stops_the_workers_and_refuses_new_work() -> None:
    pool = SharedPathPool(2, name=f"{PREFIX}-shutdown-")
    assert pool.run(lambda: "ok", GENEROUS) == "ok"
    threads = _threads(pool)
    assert len(threads) == 1
    pool.shutdown()
    for thread in threads:
        thread.join(GENEROUS)
        assert not thread.is_alive()
    with pytest.raises(WorkerPoolClosed, match="shut down"):
        pool.run(lambda: "never", GENEROUS)
    # the refused call gave its permit back
    assert pool.try_acquire()
    assert pool.try_acquire()


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="workers"):
        SharedPathPool(0)


def test_a_deadline_beyond_the_platforms_longest_wait_is_no_error(pool: SharedPathPool) -> None:
    assert pool.run(lambda: "ok", 1e300) == "ok"
