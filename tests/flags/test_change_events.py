"""Change events from a server: each one makes the provider fetch its document at once.

The subscriber's own tests use a stream the test writes frame by frame; the provider's use a
real overrides server for the document. Every provider polls once an hour unless a test says
otherwise, so a change arriving within the bounds here came by the event path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from openfeature.event import ProviderEvent, ProviderEventDetails
from openfeature.provider import FeatureProvider

from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.events import MAX_EVENT_BYTES, ChangeEventSubscriber
from tests.flags.event_server import CLOSE, EventStreamServer, refetch
from tests.flags.overrides_helpers import wait_for, wire
from tests.flags.overrides_server import OverridesServer
from tests.serve.serve_process import free_port

HOUR = 3600.0
BOUND = 5.0
EVENTS_THREAD = "leadctx-overrides-events"


class Wakes:
    """The subscriber's wake-ups, each recorded with the last event id it had then."""

    def __init__(self) -> None:
        self.subscriber: ChangeEventSubscriber | None = None
        self.seen: list[str | None] = []
        self._changed = threading.Condition()

    def __call__(self) -> None:
        assert self.subscriber is not None
        with self._changed:
            self.seen.append(self.subscriber.last_event_id)
            self._changed.notify_all()

    def wait_for(self, expected: list[str | None], timeout: float = BOUND) -> None:
        """Wait until ``len(expected)`` wakes happened; they must be ``expected``."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.seen) >= len(expected), timeout)
            assert self.seen == expected


@pytest.fixture
def stream() -> Iterator[EventStreamServer]:
    with EventStreamServer() as server:
        yield server


@pytest.fixture
def wakes(stream: EventStreamServer) -> Iterator[Wakes]:
    recorder = Wakes()
    recorder.subscriber = ChangeEventSubscriber(stream.url, recorder, token="events-secret")
    recorder.subscriber.start()
    yield recorder
    recorder.subscriber.shutdown()


def test_each_event_wakes_once_and_a_replayed_id_not_again(
    stream: EventStreamServer, wakes: Wakes
) -> None:
    # Given an open stream: the connection itself wakes the poller once, to catch up
    wakes.wait_for([None])
    # When an event arrives, then the same event again (a replay), then a new one
    stream.send(refetch("2-aaaaaaaaaaaaaaaa", 2))
    stream.send(refetch("2-aaaaaaaaaaaaaaaa", 2))
    stream.send(refetch("3-bbbbbbbbbbbbbbbb", 3))
    # Then the replay woke nothing: the wake after it is the new event's
    wakes.wait_for([None, "2-aaaaaaaaaaaaaaaa", "3-bbbbbbbbbbbbbbbb"])
    assert stream.log.authorizations == ["Bearer events-secret"]


def test_events_of_another_type_and_heartbeats_wake_nothing(
    stream: EventStreamServer, wakes: Wakes
) -> None:
    wakes.wait_for([None])
    stream.send(b": heartbeat\n\n", b'id: x\ndata: {"type":"somethingElse"}\n\n', b"data: [\n\n")
    stream.send(refetch("4-cccccccccccccccc", 4))
    wakes.wait_for([None, "4-cccccccccccccccc"])


def test_a_stream_dropped_mid_event_resumes_from_the_last_complete_event(
    stream: EventStreamServer, wakes: Wakes
) -> None:
    # Given one complete event, then half of the next when the connection drops
    wakes.wait_for([None])
    stream.send(refetch("2-aaaaaaaaaaaaaaaa", 2))
    half = refetch("3-bbbbbbbbbbbbbbbb", 3)[:30]
    stream.send(half, CLOSE)
    # Then the half event woke nothing, and the stream was reopened from the complete one
    stream.log.wait_streams(2)
    assert stream.log.last_event_ids == [None, "2-aaaaaaaaaaaaaaaa"]
    # And the reopened stream woke the poller to catch up, then delivered the rest
    stream.send(refetch("3-bbbbbbbbbbbbbbbb", 3))
    wakes.wait_for([None, "2-aaaaaaaaaaaaaaaa", "2-aaaaaaaaaaaaaaaa", "3-bbbbbbbbbbbbbbbb"])


@pytest.mark.parametrize(
    "frame",
    [
        b"data: " + b"x" * (10 * 1024 * 1024),  # a 10 MB line that never ends
        b"data: xxxxxxxx\n" * (1024 * 1024),  # a 10 MB event of short lines, never dispatched
    ],
    ids=["one-line", "many-lines"],
)
def test_an_oversized_event_ends_the_stream_instead_of_growing_without_bound(
    stream: EventStreamServer, wakes: Wakes, frame: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an open stream
    wakes.wait_for([None])
    # When the server sends an event far larger than any change event (10 MB, no blank line)
    stream.send(frame)
    # Then the subscriber gives that stream up at the cap (it would otherwise buffer the event
    # whole, and wait for its end for ever) and opens a new one, which still delivers
    stream.log.wait_streams(2)
    stream.send(refetch("5-dddddddddddddddd", 5))
    wakes.wait_for([None, None, "5-dddddddddddddddd"])
    assert f"event over {MAX_EVENT_BYTES} bytes" in caplog.text
    assert "xxxx" not in caplog.text


def test_a_stream_that_ends_at_once_is_reopened_with_backoff_not_in_a_loop(
    stream: EventStreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a server (or a proxy in front of it) that answers 200, names a 50 ms retry and
    # closes every stream at once; each stream opened wakes the poller, i.e. one fetch
    stream.send(*[CLOSE] * 50)
    subscriber = ChangeEventSubscriber(stream.url, lambda: None)
    started = time.monotonic()
    subscriber.start()
    try:
        # When it has been reopened five times
        stream.log.wait_streams(6, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        subscriber.shutdown()
    # Then the delays doubled as after refusals (at least 0.05 + 0.1 + 0.2 + 0.4 + 0.8 s with
    # the jitter at its lowest), instead of a reconnection (and a document fetch) every 50 ms
    assert elapsed >= 1.5, elapsed
    assert caplog.text.count("unavailable (stream ended within 5 s)") == 1


def test_a_refused_stream_is_retried_with_backoff_and_a_warning_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with EventStreamServer(status=503) as server:
        subscriber = ChangeEventSubscriber(server.url, lambda: None)
        subscriber.start()
        try:
            server.log.wait_streams(3)  # retried: 50 ms, then doubled with jitter
            assert not subscriber.connected
        finally:
            subscriber.shutdown()
    assert caplog.text.count("unavailable (HTTP 503)") == 1


def test_shutdown_closes_an_open_stream_at_once(stream: EventStreamServer, wakes: Wakes) -> None:
    wakes.wait_for([None])
    assert wakes.subscriber is not None
    assert wakes.subscriber.connected
    wakes.subscriber.shutdown()
    assert EVENTS_THREAD not in [thread.name for thread in threading.enumerate()]


class ProviderEvents:
    """``PROVIDER_CONFIGURATION_CHANGED`` events a provider emitted."""

    def __init__(self, provider: LeadCtxProvider) -> None:
        self.changes = 0
        provider.attach(self._on_emit)

    def _on_emit(
        self, _: FeatureProvider, event: ProviderEvent, details: ProviderEventDetails
    ) -> None:
        if event is ProviderEvent.PROVIDER_CONFIGURATION_CHANGED:
            self.changes += 1


def on(provider: LeadCtxProvider) -> bool:
    return provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, client_context("acme")).value


@pytest.fixture
def remote(
    overrides_server: OverridesServer, stream: EventStreamServer
) -> Iterator[LeadCtxProvider]:
    """A provider on the overrides server's document with the stream's events; poll hourly."""
    overrides_server.behaviour.serve(wire(1, default=True))
    provider = LeadCtxProvider(
        RolloutSettings(
            flag_overrides=overrides_server.url,
            flag_overrides_poll_seconds=HOUR,
            flag_overrides_token="document-secret",
            flag_overrides_events=stream.url,
            flag_overrides_events_token="events-secret",
        )
    )
    provider.initialize(client_context("tests"))
    yield provider
    provider.shutdown()


def test_an_event_makes_a_remote_provider_fetch_the_kill_at_once(
    overrides_server: OverridesServer, stream: EventStreamServer, remote: LeadCtxProvider
) -> None:
    # Given a remote provider on, subscribed to the server's events
    stream.log.wait_streams(1)
    assert on(remote)
    # When the document is killed and the server announces it
    overrides_server.behaviour.serve(wire(2, kill=True))
    stream.send(refetch("2-aaaaaaaaaaaaaaaa", 2))
    # Then the provider fetched it at once (its poll is an hour away)
    wait_for(lambda: not on(remote), BOUND)
    # And each token went only where it belongs
    assert set(overrides_server.behaviour.authorizations) == {"Bearer document-secret"}
    assert stream.log.authorizations == ["Bearer events-secret"]


def test_an_event_for_a_revision_already_applied_costs_one_unchanged_fetch(
    overrides_server: OverridesServer, stream: EventStreamServer, remote: LeadCtxProvider
) -> None:
    # Given a provider that already applied revision 2 (its poll came first)
    stream.log.wait_streams(1)
    overrides_server.behaviour.serve(wire(2, kill=True))
    stream.send(refetch("2-aaaaaaaaaaaaaaaa", 2))
    wait_for(lambda: remote.state.revision == 2, BOUND)
    events = ProviderEvents(remote)
    fetched = overrides_server.behaviour.requests
    # When the event for revision 2 arrives (again: another replica announced it)
    stream.send(refetch("2-bbbbbbbbbbbbbbbb", 2))
    # Then the provider asked once more (a 304) and changed nothing, failed nothing. (At
    # least once: the wake of the stream's connection may still have had a poll to make.)
    wait_for(lambda: overrides_server.behaviour.requests >= fetched + 1, BOUND)
    assert remote.state.revision == 2
    assert events.changes == 0
    assert not remote.overrides_source_failing


def test_with_the_stream_down_the_poll_still_delivers_within_its_interval(
    overrides_server: OverridesServer,
) -> None:
    # Given events configured at a port nobody listens on, and a 0.3 s poll
    overrides_server.behaviour.serve(wire(1, default=True))
    interval = 0.3
    provider = LeadCtxProvider(
        RolloutSettings(
            flag_overrides=overrides_server.url,
            flag_overrides_poll_seconds=interval,
            flag_overrides_events=f"http://127.0.0.1:{free_port()}/ofrep/v1/events",
        )
    )
    provider.initialize(client_context("tests"))
    try:
        assert on(provider)
        # When the document is killed
        overrides_server.behaviour.serve(wire(2, kill=True))
        # Then the poll delivers it within its interval (and some slack)
        wait_for(lambda: not on(provider), interval + 0.5)
    finally:
        provider.shutdown()


def test_an_events_url_to_a_remote_plain_http_host_fails_closed() -> None:
    provider = LeadCtxProvider(
        RolloutSettings(
            shared_bundle_enabled=True,
            flag_overrides="https://flags.example/overrides.json",
            flag_overrides_events="http://flags.example/ofrep/v1/events",
        )
    )
    assert provider.configuration_error is not None
    assert "LEADCTX_FLAG_OVERRIDES_EVENTS" in provider.configuration_error
    assert not on(provider)


def test_events_without_a_document_are_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = LeadCtxProvider(
        RolloutSettings(flag_overrides_events="https://flags.example/ofrep/v1/events")
    )
    assert provider.configuration_error is None
    assert "LEADCTX_FLAG_OVERRIDES is not" in caplog.text


def test_an_unauthorized_stream_names_the_token_variable(caplog: pytest.LogCaptureFixture) -> None:
    with EventStreamServer(status=401) as server:
        subscriber = ChangeEventSubscriber(server.url, lambda: None, token="wrong")
        subscriber.start()
        try:
            server.log.wait_streams(1)
            wait_for(lambda: "unavailable" in caplog.text, BOUND)
        finally:
            subscriber.shutdown()
    assert "HTTP 401 (check LEADCTX_FLAG_OVERRIDES_EVENTS_TOKEN)" in caplog.text
    assert "wrong" not in caplog.text  # never the token itself
