"""The OFREP routes in process (Starlette's test client): shapes, errors, caps, ETag, auth.

The real server and the official clients are in ``test_python_client``, ``test_node_clients``
and ``test_process``; here every edge of the wire format is checked quickly.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from leadctx.serve.app import OfrepService, build_app
from leadctx.serve.ofrep import MAX_BODY_BYTES
from leadctx.serve.settings import ServeSettings
from leadctx_flags.document import OverridesDocument
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.overrides_sources import SourceError
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import RolloutSettings

with warnings.catch_warnings():
    # Starlette 1.x asks for its httpx fork, `httpx2`, and warns when the test client runs on
    # httpx itself; the floor (0.40) knows only httpx. The client works on both.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SINGLE = f"/ofrep/v1/evaluate/flags/{SHARED_BUNDLE_FLAG}"
BULK = "/ofrep/v1/evaluate/flags"
TOKEN = "s3cret-token-0123456789"
SECRET = "SENTINEL-lead-memory-text"


def acme(**extra: Any) -> dict[str, Any]:
    return {"context": {"targetingKey": "acme", "kind": "client", **extra}}


def a_document(revision: int = 4, *, kill: bool = False) -> OverridesDocument:
    return OverridesDocument.model_validate(
        {
            "schema": "leadctx.overrides/v1",
            "revision": revision,
            "flags": {SHARED_BUNDLE_FLAG: {"kill": kill, "clients": {"globex": False}}},
        }
    )


def make_service(
    rollout: RolloutSettings | None = None, serve: ServeSettings | None = None
) -> OfrepService:
    provider = LeadCtxProvider(rollout or RolloutSettings(shared_bundle_clients=("acme",)))
    return OfrepService(provider, serve or ServeSettings(), refetch_wait_seconds=0.3)


@pytest.fixture
def service() -> OfrepService:
    return make_service()


@pytest.fixture
def client(service: OfrepService) -> Iterator[TestClient]:
    with TestClient(build_app(service), raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_success_is_the_providers_resolution_with_value_and_variant(
    service: OfrepService, client: TestClient
) -> None:
    # Given a document in force
    service.provider.update_overrides(a_document())
    # When acme's flag is asked
    response = client.post(SINGLE, json=acme())
    # Then the body is the provider's own decision, with the spec's keys
    expected = service.provider.resolve_boolean_details(
        SHARED_BUNDLE_FLAG, False, EvaluationContext(targeting_key="acme")
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "key": SHARED_BUNDLE_FLAG,
        "value": expected.value,
        "reason": "TARGETING_MATCH",
        "variant": "on",
        "metadata": {"flagSetId": "leadctx", "version": "4", "source": "allowlist"},
    }


def test_a_document_denial_and_a_kill_are_the_providers(
    service: OfrepService, client: TestClient
) -> None:
    service.provider.update_overrides(a_document())
    denied = client.post(SINGLE, json={"context": {"targetingKey": "globex"}}).json()
    assert (denied["value"], denied["reason"], denied["metadata"]["source"]) == (
        False,
        "TARGETING_MATCH",
        "override",
    )
    service.provider.update_overrides(a_document(5, kill=True))
    killed = client.post(SINGLE, json=acme()).json()
    assert (killed["value"], killed["variant"], killed["reason"]) == (False, "off", "DISABLED")


@pytest.mark.parametrize(
    "body",
    [{}, {"context": None}, {"context": {}}, {"context": {"targetingKey": ""}}],
    ids=["no context", "null context", "empty context", "empty targeting key"],
)
def test_no_targeting_key_is_answered_as_in_process(client: TestClient, body: object) -> None:
    response = client.post(SINGLE, json=body)
    assert response.status_code == 200
    assert (response.json()["value"], response.json()["reason"]) == (False, "DEFAULT")
    assert response.json()["variant"] == "off"


def test_an_unknown_key_is_404_and_the_details_do_not_repeat_it(client: TestClient) -> None:
    key = "x" * 5000
    response = client.post(f"/ofrep/v1/evaluate/flags/{key}", json=acme())
    body = response.json()
    assert response.status_code == 404
    assert body["errorCode"] == "FLAG_NOT_FOUND"
    assert body["key"] == key[:256]
    assert "x" not in body["errorDetails"]


def test_other_methods_on_the_ofrep_routes_are_starlettes_405(client: TestClient) -> None:
    # The evaluation routes skip Starlette's router for POST; anything else still reaches it.
    for path in (SINGLE, BULK):
        assert client.get(path).status_code == 405
    assert client.post("/ofrep/v1/nowhere", json=acme()).status_code == 404


def test_behind_a_root_path_the_same_endpoints_answer(service: OfrepService) -> None:
    # A proxy that mounts the server under a prefix: the request goes through Starlette's
    # router, which strips the prefix, to the very same endpoint.
    with TestClient(build_app(service), root_path="/flags") as prefixed:
        response = prefixed.post(f"/flags{SINGLE}", json=acme())
    assert (response.status_code, response.json()["value"]) == (200, True)


def test_a_key_with_a_slash_is_still_an_ofrep_404(client: TestClient) -> None:
    response = client.post("/ofrep/v1/evaluate/flags/team/flag", json=acme())
    assert (response.status_code, response.json()["key"]) == (404, "team/flag")


@pytest.mark.parametrize(
    "context",
    [{"targetingKey": 42}, {"targetingKey": ["acme"]}, {"targetingKey": {"id": SECRET}}],
    ids=["number", "list", "object"],
)
def test_a_context_the_provider_refuses_is_400_invalid_context(
    client: TestClient, context: dict[str, object]
) -> None:
    response = client.post(SINGLE, json={"context": context})
    body = response.json()
    assert response.status_code == 400
    assert set(body) >= {"key", "errorCode", "errorDetails"}
    assert body["errorCode"] == "INVALID_CONTEXT"
    assert SECRET not in response.text


def test_a_context_that_is_not_an_object_is_400_invalid_context(client: TestClient) -> None:
    response = client.post(SINGLE, json={"context": [SECRET]})
    assert (response.status_code, response.json()["errorCode"]) == (400, "INVALID_CONTEXT")
    assert SECRET not in response.text


@pytest.mark.parametrize(
    "raw",
    [
        b'{"context": ',
        b"[1, 2]",
        b'{"context": {"targetingKey": NaN}}',
        b"\xff\xfe{}",
        b"[" * 30_000 + b"]" * 30_000,
    ],
    ids=["truncated", "not an object", "NaN", "not UTF-8", "30,000 nested brackets"],
)
def test_a_body_that_is_not_json_is_400_parse_error(client: TestClient, raw: bytes) -> None:
    response = client.post(SINGLE, content=raw, headers={"content-type": "application/json"})
    body = response.json()
    assert response.status_code == 400
    assert (body["key"], body["errorCode"]) == (SHARED_BUNDLE_FLAG, "PARSE_ERROR")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_another_content_type_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.post(SINGLE, content=json.dumps(acme()), headers=headers)
    assert response.status_code == 415
    assert set(response.json()) == {"key", "errorCode", "errorDetails"}


def test_json_with_a_charset_is_accepted(client: TestClient) -> None:
    response = client.post(
        SINGLE,
        content=json.dumps(acme()),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_a_pasted_10_mb_blob_is_413_and_not_echoed(client: TestClient) -> None:
    blob = SECRET * (10 * 1024 * 1024 // len(SECRET))
    response = client.post(SINGLE, json=acme(notes=blob))
    assert response.status_code == 413
    assert response.json()["errorCode"] == "PARSE_ERROR"
    assert SECRET not in response.text


def test_a_streamed_body_over_the_cap_is_413(client: TestClient) -> None:
    # No Content-Length: the body arrives in chunks and is cut off once over 64 KiB.
    def chunks() -> Iterator[bytes]:
        yield b'{"context": {"targetingKey": "acme", "notes": "'
        for _ in range(100):
            yield b"a" * 1024
        yield b'"}}'

    response = client.post(SINGLE, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_a_body_just_under_the_cap_is_answered(client: TestClient) -> None:
    filler = "a" * (MAX_BODY_BYTES - len(json.dumps(acme(notes=""))) - 1)
    response = client.post(SINGLE, json=acme(notes=filler))
    assert response.status_code == 200


def test_the_bulk_answer_has_every_flag_an_etag_and_an_event_stream(client: TestClient) -> None:
    response = client.post(BULK, json=acme())
    body = response.json()
    assert response.status_code == 200
    assert [flag["key"] for flag in body["flags"]] == [SHARED_BUNDLE_FLAG]
    assert body["flags"][0] == client.post(SINGLE, json=acme()).json()
    assert body["metadata"] == {"flagSetId": "leadctx"}
    (stream,) = body["eventStreams"]
    assert stream["type"] == "sse"
    assert stream["endpoint"]["requestUri"].startswith("/ofrep/v1/events?since=-1-")
    assert response.headers["etag"].startswith('"')


def test_if_none_match_gives_304_with_no_body(client: TestClient) -> None:
    etag = client.post(BULK, json=acme()).headers["etag"]
    again = client.post(BULK, json=acme(), headers={"if-none-match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert client.post(BULK, json=acme(), headers={"if-none-match": '"other"'}).status_code == 200


def test_the_etag_covers_the_context(client: TestClient) -> None:
    # The web provider keeps its ETag across a context change: the new context's answers
    # must come back, not a 304 for the old one's.
    etag = client.post(BULK, json=acme()).headers["etag"]
    other = client.post(
        BULK, json={"context": {"targetingKey": "umbrella"}}, headers={"if-none-match": etag}
    )
    assert other.status_code == 200
    assert other.json()["flags"][0]["value"] is False


def test_the_etag_covers_the_state(service: OfrepService, client: TestClient) -> None:
    etag = client.post(BULK, json=acme()).headers["etag"]
    service.provider.update_overrides(a_document(9, kill=True))
    after = client.post(BULK, json=acme(), headers={"if-none-match": etag})
    assert after.status_code == 200
    assert after.json()["flags"][0]["reason"] == "DISABLED"
    assert after.json()["metadata"] == {"flagSetId": "leadctx", "version": "9"}


def test_a_refetch_for_a_revision_not_yet_loaded_waits_then_is_503(
    service: OfrepService, client: TestClient
) -> None:
    service.provider.update_overrides(a_document(4))
    current = client.post(BULK, json=acme())
    assert current.status_code == 200
    response = client.post(f"{BULK}?flagConfigEtag=7-0123456789abcdef", json=acme())
    assert (response.status_code, response.json()["errorCode"]) == (503, "GENERAL")
    # A revision already in force (or an unknown tag) is answered at once.
    assert client.post(f"{BULK}?flagConfigEtag=4-0123456789abcdef", json=acme()).status_code == 200
    assert client.post(f"{BULK}?flagConfigEtag=whatever", json=acme()).status_code == 200


def test_a_bulk_context_the_provider_refuses_is_a_per_flag_failure(client: TestClient) -> None:
    response = client.post(BULK, json={"context": {"targetingKey": 7}})
    (flag,) = response.json()["flags"]
    assert response.status_code == 200
    assert (flag["key"], flag["errorCode"]) == (SHARED_BUNDLE_FLAG, "INVALID_CONTEXT")


def test_a_bulk_body_that_is_not_json_is_400_parse_error(client: TestClient) -> None:
    response = client.post(BULK, content=b"{", headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["errorCode"]) == (400, "PARSE_ERROR")


@pytest.fixture
def guarded() -> Iterator[TestClient]:
    service = make_service(serve=ServeSettings(token=TOKEN))
    with TestClient(build_app(service), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-token-0123456789"},
        {"x-api-key": "nope"},
        {"authorization": TOKEN},
    ],
    ids=["none", "wrong bearer", "wrong key", "no scheme"],
)
def test_with_a_token_ofrep_routes_refuse_without_it(
    guarded: TestClient, headers: dict[str, str]
) -> None:
    for path in (SINGLE, BULK):
        response = guarded.post(path, json=acme(), headers=headers)
        assert response.status_code == 401
        assert set(response.json()) == {"key", "errorCode", "errorDetails"}
        assert response.headers["www-authenticate"] == "Bearer"
    assert guarded.get("/ofrep/v1/events", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [{"authorization": f"Bearer {TOKEN}"}, {"x-api-key": TOKEN}],
    ids=["bearer", "api key"],
)
def test_with_a_token_ofrep_routes_answer_with_it(
    guarded: TestClient, headers: dict[str, str]
) -> None:
    assert guarded.post(SINGLE, json=acme(), headers=headers).json()["value"] is True
    assert guarded.post(BULK, json=acme(), headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        [("authorization", "Bearer wrong-token-0123456789"), ("authorization", f"Bearer {TOKEN}")],
        [("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer wrong-token-0123456789")],
        [("x-api-key", "wrong-token-0123456789"), ("x-api-key", TOKEN)],
        [("authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {TOKEN}")],
    ],
    ids=["token last", "token first", "api key last", "token twice"],
)
def test_a_credential_header_sent_twice_is_refused_whatever_the_order(
    guarded: TestClient, headers: list[tuple[str, str]]
) -> None:
    # Given a request whose credential header is repeated (which one a proxy checked is unknown)
    for path in (SINGLE, BULK):
        # Then it is refused, whichever copy holds the token
        assert guarded.post(path, json=acme(), headers=headers).status_code == 401
    assert guarded.get("/ofrep/v1/events", headers=headers).status_code == 401


def test_probes_need_no_token(guarded: TestClient) -> None:
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/readyz").status_code == 200


def test_the_stream_url_opens_the_stream_and_nothing_else(guarded: TestClient) -> None:
    bulk = guarded.post(BULK, json=acme(), headers={"x-api-key": TOKEN}).json()
    uri = bulk["eventStreams"][0]["endpoint"]["requestUri"]
    access = uri.split("access=")[1]
    assert TOKEN not in uri
    # the stream's key does not evaluate flags
    assert guarded.post(f"{SINGLE}?access={access}", json=acme()).status_code == 401
    assert guarded.post(SINGLE, json=acme(), headers={"x-api-key": access}).status_code == 401


def test_readyz_is_503_while_a_required_document_is_missing() -> None:
    service = make_service(RolloutSettings(flag_overrides_required=True))
    with TestClient(build_app(service)) as test_client:
        response = test_client.get("/readyz")
        assert response.status_code == 503
        assert "required" in response.json()["reason"]
        # and the answer is the provider failing closed, in the spec's shape
        single = test_client.post(SINGLE, json=acme())
        assert (single.status_code, single.json()["errorCode"]) == (500, "GENERAL")
        service.provider.update_overrides(a_document())
        assert test_client.get("/readyz").status_code == 200


class FlakySource:
    """An overrides source serving one document, then failing while ``failing`` is set."""

    description = "test source"

    def __init__(self) -> None:
        self.failing = threading.Event()
        self._served = False

    def fetch(self) -> OverridesDocument | None:
        if self.failing.is_set():
            raise SourceError("test source unreachable", kind="ConnectError")
        if self._served:
            return None
        self._served = True
        return a_document()

    def close(self) -> None:
        """Nothing to release."""


def wait_for_status(client: TestClient, path: str, status: int, within: float = 10.0) -> int:
    """Poll ``path`` (bounded) until it answers ``status``; the last status seen."""
    deadline = time.monotonic() + within
    seen: int = client.get(path).status_code
    while seen != status and time.monotonic() < deadline:
        time.sleep(0.02)  # a bounded poll of the server's answer, not a fixed wait
        seen = client.get(path).status_code
    return seen


def test_readyz_is_503_while_the_source_is_stale_and_200_once_it_recovers() -> None:
    # Given a server whose document came in, then whose source starts failing
    source = FlakySource()
    rollout = RolloutSettings(shared_bundle_clients=("acme",), flag_overrides_poll_seconds=0.05)
    provider = LeadCtxProvider(rollout, source=source)
    service = OfrepService(provider, ServeSettings(), refetch_wait_seconds=0.3)
    with TestClient(build_app(service)) as test_client:
        assert test_client.get("/readyz").status_code == 200
        source.failing.set()
        # Then it leaves the load balancer once the provider reports the source stale
        assert wait_for_status(test_client, "/readyz", 503) == 503
        assert "stale" in test_client.get("/readyz").json()["reason"]
        # (still answering from the last good document meanwhile)
        assert test_client.post(SINGLE, json=acme()).json()["value"] is True
        # and comes back when the source does
        source.failing.clear()
        assert wait_for_status(test_client, "/readyz", 200) == 200


def test_readyz_is_503_during_shutdown(service: OfrepService, client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200
    service.begin_shutdown()
    assert client.get("/readyz").json() == {"status": "not ready", "reason": "shutting down"}


def test_an_unexpected_exception_is_a_500_without_traceback_or_content(
    service: OfrepService,
    client: TestClient,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(service.provider, "resolve_boolean_details", explode)
    with caplog.at_level(logging.DEBUG):
        response = client.post(SINGLE, json=acme(notes=SECRET))
    assert response.status_code == 500
    assert response.json() == {
        "key": SHARED_BUNDLE_FLAG,
        "errorCode": "GENERAL",
        "errorDetails": "internal error",
    }
    assert SECRET not in caplog.text
    assert "Traceback" not in caplog.text
    assert "RuntimeError" in caplog.text


def test_no_request_content_reaches_the_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        client.post(SINGLE, json=acme(notes=SECRET))
        client.post(SINGLE, json={"context": {"targetingKey": [SECRET]}})
        client.post(BULK, json={"context": {"targetingKey": SECRET}})
        client.post(SINGLE, content=SECRET.encode(), headers={"content-type": "application/json"})
        client.post(f"/ofrep/v1/evaluate/flags/{SECRET}", json=acme())
    # The test client's own request log (httpx, the caller's side) is not the server's.
    server_side = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert not [message for message in server_side if SECRET in message]


def test_each_request_records_its_duration_by_route_template() -> None:
    reader = InMemoryMetricReader()
    service = make_service()
    app = build_app(service, meter_provider=MeterProvider(metric_readers=[reader]))
    with TestClient(app) as test_client:
        test_client.post(SINGLE, json=acme())
        test_client.post(f"/ofrep/v1/evaluate/flags/{SECRET}", json=acme())
        test_client.get("/healthz")
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "http.server.request.duration"
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
    ]
    seen = {
        (p.attributes["http.route"], p.attributes["http.response.status_code"], p.count)
        for p in points
        if p.attributes is not None
    }
    assert seen == {
        ("/ofrep/v1/evaluate/flags/{key}", 200, 1),
        ("/ofrep/v1/evaluate/flags/{key}", 404, 1),
        ("/healthz", 200, 1),
    }
    assert SECRET not in repr([p.attributes for p in points])
