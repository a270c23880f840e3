"""One deadline per fetch, against a real loopback server that drips its answer.

The server sends its status line and then one byte per second, either of the headers or of
the body, as a slow or hostile endpoint can. Each read then succeeds well within the read
timeout, so only a deadline on the whole fetch stops it. Bounds are generous (a loaded CI
machine must not flake them) yet far below what the dripping would cost without the deadline.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api

from leadctx_flags import (
    SHARED_BUNDLE_FLAG,
    ConfigurationError,
    LeadCtxProvider,
    RolloutSettings,
    client_context,
)
from leadctx_flags.overrides_sources import HttpSource, SourceError, open_source
from leadctx_flags.storage import write_document
from tests.flags.overrides_helpers import document, wait_for, wire
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.integration

DRIP_CAP = 20
"""Bytes a drip sends before the server gives up: without a deadline a fetch takes this many
seconds (then fails), so a test of the old behaviour fails instead of hanging."""

POLLER = "leadctx-overrides-poller"


class DripServer(LoopbackServer):
    """A loopback HTTP/1.1 server whose answer is ``mode``: serve, drip-headers or drip-body."""

    def __init__(self) -> None:
        self.mode = "serve"
        self.document = b""
        self.requests = 0
        self.dripping = threading.Event()  # set when a drip has begun
        self.stopped = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                connection: socket.socket = self.request
                received = b""
                while b"\r\n\r\n" not in received:
                    chunk = connection.recv(4096)
                    if not chunk:
                        return
                    received += chunk
                server.requests += 1
                try:
                    server.answer(connection)
                except OSError:  # the client gave up, which is what a deadline does
                    return

        super().__init__(socketserver.ThreadingTCPServer, Handler, "/overrides.json")

    def answer(self, connection: socket.socket) -> None:
        mode, body = self.mode, self.document
        if mode == "serve":
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            connection.sendall(head + body)
            return
        if mode == "drip-headers":
            connection.sendall(b"HTTP/1.1 200 OK\r\n")
            drip = b"X-Slow: " + b"x" * DRIP_CAP
        else:
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            drip = b" " * DRIP_CAP
        self.dripping.set()
        for byte in drip:
            connection.sendall(bytes([byte]))
            if self.stopped.wait(1.0):
                return
        connection.close()

    def release(self) -> None:
        """End a drip in progress."""
        self.stopped.set()


@pytest.fixture
def drip_server() -> Iterator[DripServer]:
    with DripServer() as server:
        yield server


@pytest.mark.parametrize("mode", ["drip-headers", "drip-body"])
def test_a_dripping_answer_is_cut_off_at_the_fetch_deadline(
    drip_server: DripServer, mode: str
) -> None:
    # Given a server dripping one byte a second, and a source whose reads may each take 5 s
    drip_server.mode = mode
    source = HttpSource(drip_server.url, token="t0ken", read_timeout=5.0, deadline=0.5)
    try:
        # When fetching, Then the whole fetch ends at the 0.5 s deadline, not after 20 s
        began = time.monotonic()
        with pytest.raises(SourceError) as caught:
            source.fetch()
        elapsed = time.monotonic() - began
    finally:
        source.close()
    assert caught.value.kind == "FetchDeadline"
    assert str(caught.value) == f"{source.description}: no complete answer within 0.5 s"
    assert 0.45 <= elapsed < 5.0, f"{elapsed:.2f} s"


def test_close_from_another_thread_cancels_a_fetch_in_flight(drip_server: DripServer) -> None:
    # Given a fetch with a long deadline stuck in a dripping body on another thread
    drip_server.mode = "drip-body"
    source = HttpSource(drip_server.url, deadline=60.0)
    errors: list[SourceError] = []

    def fetch() -> None:
        try:
            source.fetch()
        except SourceError as err:
            errors.append(err)

    fetcher = threading.Thread(target=fetch)
    fetcher.start()
    assert drip_server.dripping.wait(5)
    # When the source is closed, Then the fetch ends at once as "Closed"
    began = time.monotonic()
    source.close()
    fetcher.join(5)
    assert not fetcher.is_alive()
    assert time.monotonic() - began < 2.0
    assert [err.kind for err in errors] == ["Closed"]
    # And the source can fetch again afterwards (a provider may be initialised again)
    drip_server.mode, drip_server.document = "serve", wire(2, default=True)
    fetched = source.fetch()
    source.close()
    assert fetched is not None
    assert fetched.revision == 2


def test_set_provider_and_wait_returns_within_the_deadline_then_polling_goes_on(
    drip_server: DripServer, tmp_path: Path
) -> None:
    # Given a cached revision 3 (globex off) and a source that drips its body
    cache = tmp_path / "cache.json"
    write_document(cache, document(3, default=True, clients={"globex": False}))
    drip_server.mode = "drip-body"
    settings = RolloutSettings(
        flag_overrides=drip_server.url,
        flag_overrides_cache=cache,
        flag_overrides_poll_seconds=0.1,
        flag_overrides_fetch_timeout_seconds=0.5,
    )
    provider = LeadCtxProvider(settings)
    # When the provider is set, Then set_provider_and_wait returns within the deadline
    began = time.monotonic()
    api.set_provider_and_wait(provider)
    elapsed = time.monotonic() - began
    assert elapsed < 5.0, f"{elapsed:.2f} s"
    # serving the cached document
    client = api.get_client()
    assert provider.state.revision == 3
    assert [
        client.get_boolean_value(SHARED_BUNDLE_FLAG, False, client_context(c))
        for c in ("acme", "globex")
    ] == [True, False]
    # And polling goes on: once the server answers, its kill is applied
    drip_server.mode, drip_server.document = "serve", wire(4, kill=True)
    wait_for(lambda: provider.state.revision == 4, timeout=10)
    assert client.get_boolean_value(SHARED_BUNDLE_FLAG, True, client_context("acme")) is False


def test_shutdown_returns_within_two_seconds_in_the_middle_of_a_fetch(
    drip_server: DripServer,
) -> None:
    # Given a provider that applied revision 1 and whose next poll is stuck in a drip; the
    # default deadline (10 s) is far beyond the bound, so only cancellation can end that fetch
    drip_server.document = wire(1, default=True)
    settings = RolloutSettings(flag_overrides=drip_server.url, flag_overrides_poll_seconds=0.05)
    provider = LeadCtxProvider(settings)
    api.set_provider_and_wait(provider)
    assert provider.state.revision == 1
    drip_server.mode = "drip-body"
    assert drip_server.dripping.wait(5)
    # When OpenFeature shuts down, Then it returns within 2 s and the poller thread is gone
    began = time.monotonic()
    api.shutdown()
    elapsed = time.monotonic() - began
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    assert not any(t.name == POLLER for t in threading.enumerate())


def test_the_fetch_deadline_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_FETCH_TIMEOUT_SECONDS", "2.5")
    assert RolloutSettings().flag_overrides_fetch_timeout_seconds == 2.5
    source = open_source("https://flags.example.com/o.json", deadline=2.5)
    assert isinstance(source, HttpSource)
    assert source.deadline == 2.5
    source.close()


@pytest.mark.parametrize("given", ["nan", "0", "-1", "inf", "301", "soon"])
def test_an_unusable_fetch_deadline_is_a_configuration_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES_FETCH_TIMEOUT_SECONDS", given)
    with pytest.raises(ConfigurationError, match="LEADCTX_FLAG_OVERRIDES_FETCH_TIMEOUT_SECONDS"):
        RolloutSettings()


def test_the_default_deadline_is_ten_seconds() -> None:
    assert RolloutSettings().flag_overrides_fetch_timeout_seconds == 10.0
    source = HttpSource("https://flags.example.com/o.json")
    assert source.deadline == 10.0
    source.close()


def test_a_shutdown_during_the_first_poll_ends_initialize_quietly_with_nothing_left_running(
    drip_server: DripServer,
) -> None:
    # Given a provider whose first poll (in initialize(), as OpenFeature runs it on its own
    # thread for set_provider) is stuck in a dripping answer
    drip_server.mode = "drip-body"
    settings = RolloutSettings(flag_overrides=drip_server.url, flag_overrides_poll_seconds=0.05)
    provider = LeadCtxProvider(settings)
    raised: list[BaseException] = []

    def initialize() -> None:
        try:
            provider.initialize(client_context("tests"))
        except BaseException as err:  # noqa: BLE001 - recorded for the assertion
            raised.append(err)

    starting = threading.Thread(target=initialize)
    starting.start()
    assert drip_server.dripping.wait(5)
    # When the provider is shut down meanwhile (api.shutdown(), a provider swapped)
    provider.shutdown()
    starting.join(5)
    # Then initialize() returns without raising, and no poller is left polling
    assert not starting.is_alive()
    assert raised == []
    assert not any(t.name == POLLER for t in threading.enumerate())
