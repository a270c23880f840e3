"""OverridesPoller with a scripted source: backoff, staleness, recovery, refusal, shutdown."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

from leadctx_flags import OverridesDocument
from leadctx_flags.editing import allow, deny, edit_document
from leadctx_flags.overrides_sources import FileSource, SourceError
from leadctx_flags.poller import MAX_BACKOFF_FACTOR, OverridesPoller
from leadctx_flags.storage import read_document, write_document
from tests.flags.overrides_helpers import document, wait_for, wire

FAIL = object()


class ScriptedSource:
    """Answers from a script: a document, None (unchanged) or FAIL; then None forever."""

    description = "scripted"

    def __init__(self, script: Iterable[object]) -> None:
        self._script = iter(script)
        self.closed = 0
        self.fetches = 0
        self.open = False  # a fetch opens, close() closes (as HttpSource's pool)

    def fetch(self) -> OverridesDocument | None:
        self.fetches += 1
        self.open = True
        answer = next(self._script, None)
        if answer is FAIL:
            raise SourceError("scripted failure", kind="Scripted")
        assert answer is None or isinstance(answer, OverridesDocument)
        return answer

    def close(self) -> None:
        self.closed += 1
        self.open = False


class Recorder:
    def __init__(self) -> None:
        self.documents: list[int] = []
        self.events: list[str] = []

    def document(self, doc: OverridesDocument) -> None:
        self.documents.append(doc.revision)

    def stale(self, err: SourceError) -> None:
        self.events.append(f"stale:{err.kind}")

    def recovered(self) -> None:
        self.events.append("recovered")


def poller(source: ScriptedSource, recorder: Recorder, interval: float = 1.0) -> OverridesPoller:
    return OverridesPoller(
        source,
        interval=interval,
        on_document=recorder.document,
        on_stale=recorder.stale,
        on_recovered=recorder.recovered,
    )


def test_backoff_doubles_after_failures_and_is_capped_at_five_intervals() -> None:
    subject = poller(ScriptedSource([FAIL] * 6 + [None]), Recorder(), interval=2.0)
    delays = [subject.next_delay()]
    for _ in range(7):
        subject.poll_once()
        delays.append(subject.next_delay())
    assert delays == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0, 2.0]
    assert max(delays) == MAX_BACKOFF_FACTOR * 2.0


def test_stale_is_reported_once_after_three_failures_and_recovery_once() -> None:
    recorder = Recorder()
    subject = poller(ScriptedSource([FAIL] * 5 + [document(1), None]), recorder)
    results = [subject.poll_once() for _ in range(7)]
    assert results == [False] * 5 + [True, True]
    assert recorder.events == ["stale:Scripted", "recovered"]
    assert recorder.documents == [1]
    assert (subject.stale, subject.consecutive_failures) == (False, 0)


def test_a_refused_document_keeps_failing_until_a_new_one_is_accepted() -> None:
    # Given a consumer that refuses revision 1 (a replay) and accepts revision 2
    recorder = Recorder()

    def accept(doc: OverridesDocument) -> None:
        if doc.revision == 1:
            raise SourceError("replay", kind="ReplayedRevision")
        recorder.document(doc)

    subject = OverridesPoller(
        ScriptedSource([document(1), None, None, document(2), None]),
        interval=1.0,
        on_document=accept,
        on_stale=recorder.stale,
        on_recovered=recorder.recovered,
    )
    # Then the unchanged source still counts as failing while it serves the refused document
    assert [subject.poll_once() for _ in range(5)] == [False, False, False, True, True]
    assert recorder.events == ["stale:ReplayedRevision", "recovered"]
    assert recorder.documents == [2]


def test_a_raising_source_or_callback_does_not_kill_the_poller() -> None:
    class Broken(ScriptedSource):
        def fetch(self) -> OverridesDocument | None:
            raise RuntimeError("bug")

    recorder = Recorder()
    subject = poller(Broken([]), recorder)
    assert subject.poll_once() is False
    assert subject.consecutive_failures == 1

    def explode(_: OverridesDocument) -> None:
        raise RuntimeError("bug in consumer")

    survivor = OverridesPoller(ScriptedSource([document(1)]), interval=1.0, on_document=explode)
    assert survivor.poll_once() is True


def test_the_thread_polls_and_shutdown_joins_and_leaves_the_source_closed() -> None:
    source = ScriptedSource([document(1), document(2)])
    recorder = Recorder()
    subject = poller(source, recorder, interval=0.01)
    subject.start()
    subject.start()  # idempotent
    wait_for(lambda: recorder.documents == [1, 2])
    subject.shutdown()
    closes = source.closed
    subject.shutdown()  # idempotent: closes nothing more
    assert (source.open, source.closed) == (False, closes)
    assert closes in {1, 2}  # 2 when shutdown() landed during a poll, which closes after it
    assert not any(t.name == "leadctx-overrides-poller" for t in threading.enumerate())


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        OverridesPoller(ScriptedSource([]), interval=0, on_document=lambda _: None)


def test_concurrent_edits_are_serialised_by_the_lock(tmp_path: Path) -> None:
    # Given 8 editors changing different clients of the same document at once
    path = tmp_path / "overrides.json"
    write_document(path, OverridesDocument())
    clients = [f"client-{n}" for n in range(8)]
    barrier = threading.Barrier(len(clients))

    def edit(index: int) -> None:
        barrier.wait()
        change = allow(clients[index]) if index % 2 else deny(clients[index])
        edit_document(path, change, updated_by=f"editor-{index}")

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # Then no edit was lost and each bumped the revision
    final = read_document(path)
    assert final.revision == len(clients)
    assert final.flags["shared_bundle.enabled"].clients == {
        client: bool(i % 2) for i, client in enumerate(clients)
    }


def test_wake_polls_at_once_and_shutdown_stays_prompt(tmp_path: Path) -> None:
    # Given a poller an hour from its next poll
    path = tmp_path / "overrides.json"
    path.write_bytes(wire(1))
    seen: list[int] = []
    arrived = threading.Event()

    def record(document: OverridesDocument) -> None:
        seen.append(document.revision)
        arrived.set()

    poller = OverridesPoller(FileSource(path), interval=3600, on_document=record)
    poller.poll_once()
    poller.start()
    try:
        # When the file changes and the poller is woken
        path.write_bytes(wire(2))
        arrived.clear()
        poller.wake()
        # Then it polls now, not in an hour
        assert arrived.wait(5)
        assert seen == [1, 2]
    finally:
        poller.shutdown()
