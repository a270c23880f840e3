"""Remote overrides against real peers: an HTTP server and files on disk, polled for real.

Fault injection, kill-switch propagation, restart with the source down, required mode, and
concurrent evaluation while the document flips.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.event import EventDetails, ProviderEvent, ProviderEventDetails

from leadctx_flags import (
    SHARED_BUNDLE_FLAG,
    LeadCtxProvider,
    OverridesDocument,
    RolloutSettings,
    RolloutState,
    client_context,
    decide,
)
from leadctx_flags.editing import edit_document, kill, unkill
from leadctx_flags.overrides_sources import HttpSource
from leadctx_flags.storage import read_document, write_document
from tests.flags.overrides_helpers import document, wait_for, wire
from tests.flags.overrides_server import OverridesServer

pytestmark = pytest.mark.integration

CLIENTS = ("acme", "globex", "initech", "umbrella")


def value(provider: LeadCtxProvider, client_id: str) -> bool:
    return provider.resolve_boolean_details(
        SHARED_BUNDLE_FLAG, False, client_context(client_id)
    ).value


@pytest.fixture
def providers() -> Iterator[list[LeadCtxProvider]]:
    """Providers a test starts; each is shut down (and its poller joined) at the end."""
    started: list[LeadCtxProvider] = []
    yield started
    for provider in started:
        provider.shutdown()


def start(providers: list[LeadCtxProvider], provider: LeadCtxProvider) -> LeadCtxProvider:
    providers.append(provider)
    api.set_provider_and_wait(provider)
    return provider


class SpySource:
    """Delegates to a real source and records which thread fetched, and when."""

    def __init__(self, inner: HttpSource) -> None:
        self._inner = inner
        self.description = inner.description
        self.fetch_threads: list[int] = []
        self.in_flight = 0

    def fetch(self) -> OverridesDocument | None:
        self.fetch_threads.append(threading.get_ident())
        self.in_flight += 1
        try:
            return self._inner.fetch()
        finally:
            self.in_flight -= 1

    def close(self) -> None:
        self._inner.close()


FAULTS = [
    pytest.param("status", 500, b"", "HTTP 500", id="http-500"),
    pytest.param("status", 404, b"", "HTTP 404", id="http-404"),
    pytest.param("status", 401, b"", "HTTP 401", id="http-401"),
    pytest.param("hang", 200, b"", "ReadTimeout", id="accepts-never-answers"),
    pytest.param("body", 200, b"{garbage", "DocumentError", id="garbage-json"),
    pytest.param(
        "body",
        200,
        b'{"schema": "leadctx.overrides/v0", "revision": 9}',
        "DocumentError",
        id="wrong-schema",
    ),
    pytest.param(
        "body", 200, b"{" + b" " * (5 * 1024 * 1024) + b"}", "BodyTooLarge", id="5-MiB-body"
    ),
    # A lower revision that would change who is on; a lower-revision kill is applied instead.
    pytest.param("body", 200, wire(1, default=False), "ReplayedRevision", id="lower-revision"),
]


@pytest.mark.parametrize(("mode", "status", "body", "kind"), FAULTS)
def test_a_faulty_source_never_replaces_the_last_good_document(
    overrides_server: OverridesServer,
    providers: list[LeadCtxProvider],
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    mode: str,
    status: int,
    body: bytes,
    kind: str,
) -> None:
    # Given a provider polling every 50 ms (the floor) that has applied revision 5 (acme off,
    # others on)
    overrides_server.behaviour.serve(wire(5, default=True, clients={"acme": False}))
    source = SpySource(HttpSource(overrides_server.url, token="t0ken", read_timeout=0.2))
    provider = start(
        providers, LeadCtxProvider(RolloutSettings(flag_overrides_poll_seconds=0.05), source=source)
    )
    assert provider.state.revision == 5
    assert [value(provider, c) for c in ("acme", "globex")] == [False, True]
    stale: list[EventDetails] = []
    ready: list[EventDetails] = []
    api.add_handler(ProviderEvent.PROVIDER_STALE, stale.append)
    api.add_handler(ProviderEvent.PROVIDER_READY, ready.append)
    # add_handler replays READY for a ready provider (on the SDK's executor, so at any time
    # now): that replay carries no message, the recovery below does.
    latencies: list[float] = []
    during_a_fetch = 0  # evaluations that began and ended while a fetch was in flight
    # When the source turns faulty, evaluating all along until the provider reports it stale
    with caplog.at_level(logging.WARNING, logger="leadctx_flags"):
        with overrides_server.behaviour.lock:
            overrides_server.behaviour.mode = mode
            overrides_server.behaviour.status = status
            overrides_server.behaviour.body = body

        def evaluate_until_stale() -> bool:
            nonlocal during_a_fetch
            fetching = source.in_flight
            began = time.perf_counter()
            assert value(provider, "acme") is False
            assert value(provider, "globex") is True
            latencies.append(time.perf_counter() - began)
            during_a_fetch += bool(fetching and source.in_flight)
            return len(stale) > 0

        wait_for(evaluate_until_stale, timeout=10, step=0.001)
    # Then the last good document stays in force and the failure surfaced once as STALE
    assert provider.state.revision == 5
    assert [(e.provider_name, e.message) for e in stale] == [
        ("leadctx", f"overrides source failing: {kind}")
    ]
    # And no evaluation ever waited on the source: every fetch ran on the poller's thread
    # (the evaluating thread fetched none), and with a hanging server evaluations kept
    # answering while a fetch was in flight. The latency is a figure, not a bound.
    # (set_provider_and_wait made the first fetch, on this thread, before any evaluation)
    evaluator = threading.get_ident()
    first, *polls = source.fetch_threads
    assert first == evaluator
    assert len(polls) >= 3
    assert evaluator not in polls
    if mode == "hang":
        assert during_a_fetch > 0
    # (user_properties, as record_property does, minus its warning under junit xunit2; read
    # them with `-o junit_family=xunit1 --junitxml=...`)
    request.node.user_properties += [
        ("evaluations", len(latencies)),
        ("max_evaluation_seconds", max(latencies)),
    ]
    # And the first failure is one warning naming the failure's class, never the token
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    prefix = f"overrides source {source.description} failed ({kind}): "
    suffix = "; the last good document stays in force"
    failures = [m for m in warnings if m.startswith(prefix)]
    assert len(failures) >= 1
    assert all(m.endswith(suffix) for m in failures)
    assert not any("t0ken" in message for message in warnings)
    # When the source recovers with a newer revision, Then it is applied and READY returns
    overrides_server.behaviour.serve(wire(6, default=False))
    wait_for(lambda: provider.state.revision == 6, timeout=5)
    wait_for(lambda: any(e.message for e in ready), timeout=2)
    assert [(e.provider_name, e.message) for e in ready if e.message] == [
        ("leadctx", "overrides source recovered")
    ]
    assert value(provider, "globex") is False


def test_a_lower_revision_is_refused_as_a_replay_and_logged(
    overrides_server: OverridesServer,
    providers: list[LeadCtxProvider],
    caplog: pytest.LogCaptureFixture,
) -> None:
    overrides_server.behaviour.serve(wire(7, kill=True))
    source = HttpSource(overrides_server.url)
    provider = start(
        providers,
        LeadCtxProvider(
            RolloutSettings(shared_bundle_enabled=True, flag_overrides_poll_seconds=0.05),
            source=source,
        ),
    )
    assert value(provider, "acme") is False
    with caplog.at_level(logging.WARNING, logger="leadctx_flags"):
        overrides_server.behaviour.serve(wire(3, kill=False))
        wait_for(lambda: any("replay" in r.getMessage() for r in caplog.records))
    assert provider.state.revision == 7
    assert value(provider, "acme") is False


def test_the_bearer_token_is_sent_and_etags_avoid_refetching(
    overrides_server: OverridesServer, providers: list[LeadCtxProvider]
) -> None:
    overrides_server.behaviour.serve(wire(1, default=True))
    settings = RolloutSettings(
        flag_overrides=overrides_server.url,
        flag_overrides_token="t0ken",
        flag_overrides_poll_seconds=0.05,
    )
    changed: list[EventDetails] = []
    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, changed.append)
    provider = start(providers, LeadCtxProvider(settings))
    emitted: list[ProviderEventDetails] = []
    original = provider.emit_provider_configuration_changed

    def record(details: ProviderEventDetails) -> None:
        emitted.append(details)
        original(details)

    provider.emit_provider_configuration_changed = record  # type: ignore[method-assign]
    # When the server has answered several more polls (each a 304)
    answered = overrides_server.behaviour.requests
    wait_for(lambda: overrides_server.behaviour.requests >= answered + 4)
    wait_for(lambda: len(changed) > 0)  # the SDK runs handlers on its own executor
    # Then the token went with every request, and the 304s applied and emitted nothing
    assert set(overrides_server.behaviour.authorizations) == {"Bearer t0ken"}
    assert emitted == [], "304 answers apply nothing and emit nothing"
    assert [event.flags_changed for event in changed] == [[SHARED_BUNDLE_FLAG]]
    assert provider.state.revision == 1


def trial_propagation(
    provider: LeadCtxProvider, write_kill: Callable[[], object], write_unkill: Callable[[], object]
) -> float:
    """Seconds from writing ``kill`` until every sample client evaluates off."""
    write_unkill()
    wait_for(lambda: all(value(provider, c) for c in CLIENTS), timeout=5)
    began = time.monotonic()
    write_kill()
    wait_for(lambda: not any(value(provider, c) for c in CLIENTS), timeout=5, step=0.001)
    return time.monotonic() - began


def test_kill_switch_written_to_a_file_propagates_within_the_poll_interval(
    tmp_path: Path, providers: list[LeadCtxProvider]
) -> None:
    interval = 0.05
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    settings = RolloutSettings(flag_overrides=str(path), flag_overrides_poll_seconds=interval)
    provider = start(providers, LeadCtxProvider(settings))
    times = [
        trial_propagation(
            provider,
            lambda: edit_document(path, kill(), updated_by="trial"),
            lambda: edit_document(path, unkill(), updated_by="trial"),
        )
        for _ in range(10)
    ]
    assert max(times) <= interval + 0.5


def test_kill_switch_served_over_http_propagates_within_the_poll_interval(
    overrides_server: OverridesServer, providers: list[LeadCtxProvider]
) -> None:
    interval = 0.05
    revision = iter(range(1, 1000))
    overrides_server.behaviour.serve(wire(next(revision), default=True))
    settings = RolloutSettings(
        flag_overrides=overrides_server.url, flag_overrides_poll_seconds=interval
    )
    provider = start(providers, LeadCtxProvider(settings))
    behaviour = overrides_server.behaviour
    times = [
        trial_propagation(
            provider,
            lambda: behaviour.serve(wire(next(revision), default=True, kill=True)),
            lambda: behaviour.serve(wire(next(revision), default=True)),
        )
        for _ in range(10)
    ]
    assert max(times) <= interval + 0.5


def test_restart_with_the_source_down_uses_the_cached_document(
    tmp_path: Path, overrides_server: OverridesServer, providers: list[LeadCtxProvider]
) -> None:
    # Given a first process that applied revision 3 from the server and cached it
    cache = tmp_path / "cache" / "overrides.json"
    cache.parent.mkdir()
    overrides_server.behaviour.serve(wire(3, clients={"globex": False}, default=True))
    settings = RolloutSettings(
        flag_overrides=overrides_server.url,
        flag_overrides_cache=cache,
        flag_overrides_poll_seconds=0.05,
    )
    first = start(providers, LeadCtxProvider(settings))
    assert first.state.revision == 3
    assert read_document(cache).revision == 3
    first.shutdown()
    # When the source is down and a new process starts
    with overrides_server.behaviour.lock:
        overrides_server.behaviour.mode, overrides_server.behaviour.status = "status", 503
    second = start(providers, LeadCtxProvider(settings))
    # Then the cached document is in force
    assert second.state.revision == 3
    assert [value(second, c) for c in ("acme", "globex")] == [True, False]


@pytest.mark.parametrize("link", [False, True], ids=["same-path", "symlink"])
def test_a_cache_that_is_the_document_itself_is_never_written(
    tmp_path: Path, providers: list[LeadCtxProvider], link: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # Given LEADCTX_FLAG_OVERRIDES_CACHE naming the overrides file itself (or a link to it)
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    cache = tmp_path / "cache.json"
    if link:
        cache.symlink_to(path)
    settings = RolloutSettings(
        flag_overrides=str(path),
        flag_overrides_cache=cache if link else path,
        flag_overrides_poll_seconds=0.05,
        flag_overrides_watch=False,
    )
    provider = start(providers, LeadCtxProvider(settings))
    # When an operator writes a kill (here compact, as another tool might)
    staged = tmp_path / "staged.json"
    staged.write_bytes(document(2, kill=True).model_dump_json(by_alias=True).encode())
    staged.replace(path)
    written = path.read_bytes(), path.stat().st_ino
    wait_for(lambda: provider.state.revision == 2)
    provider.shutdown()  # joins the poller: whatever it writes after applying is written
    # Then the provider left the operator's file alone: writing its copy of what it read over
    # the file puts an old revision back over a kill written meanwhile, for every process
    assert (path.read_bytes(), path.stat().st_ino) == written
    assert "LEADCTX_FLAG_OVERRIDES_CACHE names the overrides document itself" in caplog.text


def test_a_corrupt_cache_is_ignored_and_the_source_wins(
    tmp_path: Path, overrides_server: OverridesServer, providers: list[LeadCtxProvider]
) -> None:
    cache = tmp_path / "overrides.json"
    cache.write_text("{corrupt")
    overrides_server.behaviour.serve(wire(2, default=True))
    settings = RolloutSettings(flag_overrides=overrides_server.url, flag_overrides_cache=cache)
    provider = start(providers, LeadCtxProvider(settings))
    assert provider.state.revision == 2
    assert read_document(cache).revision == 2, "the cache is rewritten with the good document"


def test_required_mode_with_no_document_is_off_for_all_until_one_arrives(
    tmp_path: Path, providers: list[LeadCtxProvider]
) -> None:
    # Given overrides are required, the env would turn everyone on, and no document exists
    path = tmp_path / "overrides.json"
    settings = RolloutSettings(
        shared_bundle_enabled=True,
        flag_overrides=str(path),
        flag_overrides_required=True,
        flag_overrides_cache=tmp_path / "cache.json",
        flag_overrides_poll_seconds=0.05,
    )
    provider = start(providers, LeadCtxProvider(settings))
    # Then every client is off, with an error reason and source
    details = api.get_client().get_boolean_details(
        SHARED_BUNDLE_FLAG, False, client_context("acme")
    )
    assert (details.value, details.reason, details.error_code) == (False, "ERROR", "GENERAL")
    resolution = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, client_context("acme"))
    assert (resolution.value, resolution.flag_metadata["source"]) == (False, "unavailable")
    assert [value(provider, c) for c in CLIENTS] == [False] * len(CLIENTS)
    # When a document appears, Then the rules apply again
    write_document(path, document(1, clients={"acme": False}))
    wait_for(lambda: provider.state.revision == 1)
    assert [value(provider, c) for c in ("acme", "globex")] == [False, True]


def test_concurrent_evaluations_always_match_some_applied_revision(
    providers: list[LeadCtxProvider],
) -> None:
    # Given 4 threads evaluating while the document flips 1,000 times
    provider = start(providers, LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme")))
    documents = [
        document(n, kill=(n % 7 == 0), default=(n % 2 == 0), clients={"globex": n % 3 == 0})
        for n in range(1, 1001)
    ]
    allowed: dict[str, set[tuple[bool, str]]] = {c: set() for c in CLIENTS}
    for state in [
        provider.state,
        *(RolloutState(env=provider.state.env, document=d) for d in documents),
    ]:
        for client_id in CLIENTS:
            decision = decide(state, client_id)
            allowed[client_id].add((decision.value, decision.rule))
    stop = threading.Event()
    observed: list[tuple[str, bool, str]] = []
    errors: list[BaseException] = []

    def evaluate() -> None:
        client = api.get_client()
        seen: list[tuple[str, bool, str]] = []
        try:
            while not stop.is_set():
                for client_id in CLIENTS:
                    details = client.get_boolean_details(
                        SHARED_BUNDLE_FLAG, False, client_context(client_id)
                    )
                    assert details.error_code is None
                    seen.append((client_id, details.value, str(details.flag_metadata["source"])))
        except BaseException as err:  # noqa: BLE001 - reported to the main thread below
            errors.append(err)
        observed.extend(seen)

    threads = [threading.Thread(target=evaluate, name=f"evaluator-{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    applied = sum(provider.update_overrides(d) for d in documents)
    stop.set()
    for thread in threads:
        thread.join(10)
    # Then nothing raised, every flip applied, and every result is some revision's decision
    assert errors == []
    assert applied == 1000
    assert len(observed) > 1000
    for client_id, result, source in observed:
        assert (result, source) in allowed[client_id]


def test_shutdown_joins_the_poller_thread(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    provider = LeadCtxProvider(
        RolloutSettings(flag_overrides=str(path), flag_overrides_poll_seconds=0.05)
    )
    provider.initialize(client_context("x"))
    assert any(t.name == "leadctx-overrides-poller" for t in threading.enumerate())
    provider.shutdown()
    provider.shutdown()
    assert not any(t.name == "leadctx-overrides-poller" for t in threading.enumerate())


def test_a_provider_can_be_initialised_again_after_shutdown(
    overrides_server: OverridesServer, providers: list[LeadCtxProvider]
) -> None:
    # The SDK may shut a provider down and initialise it again (re-registration).
    overrides_server.behaviour.serve(wire(1, default=True))
    settings = RolloutSettings(
        flag_overrides=overrides_server.url, flag_overrides_poll_seconds=0.05
    )
    provider = start(providers, LeadCtxProvider(settings))
    provider.shutdown()
    overrides_server.behaviour.serve(wire(2, default=False))
    provider.initialize(client_context("x"))
    assert provider.state.revision == 2
    assert value(provider, "acme") is False
