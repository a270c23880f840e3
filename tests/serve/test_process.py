"""``leadctx serve`` as an operator runs it: exit codes, the bind check, change events, SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from leadctx.serve.server import MAX_HEAD_BYTES
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from tests.serve.matrix import document
from tests.serve.serve_process import ROOT, ServeProcess, clean_environment, free_port
from tests.serve.sse import StreamReader

pytestmark = pytest.mark.integration

BULK = "/ofrep/v1/evaluate/flags"
ACME = {"context": {"targetingKey": "acme", "kind": "client"}}
POLL = 0.3
DEADLINE = 2.0
"""The head and body deadlines the slow-client tests configure (10 s unless set): the same
408s and bounds, proved in a fifth of the wait."""


def read_response(replies: BinaryIO) -> tuple[int, bytes]:
    """One HTTP/1.1 response from ``replies``: its status and body (by Content-Length)."""
    status, _, body = read_full_response(replies)
    return status, body


def read_full_response(replies: BinaryIO) -> tuple[int, dict[bytes, bytes], bytes]:
    """One HTTP/1.1 response from ``replies``: status, headers (lower-case names) and body."""
    status = int(replies.readline().split()[1])
    headers = {}
    while (line := replies.readline().strip()) != b"":
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, replies.read(int(headers.get(b"content-length", b"0")))


def run_leadctx(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``leadctx ARGS`` run to completion with ``env`` (and no other ``LEADCTX_*``)."""
    return subprocess.run(  # noqa: S603 - this interpreter running our own command
        [sys.executable, "-m", "leadctx", *args],
        cwd=ROOT, env=clean_environment(env), capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip


def run_serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_leadctx(env, "serve", "--port", str(free_port()), *args)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEADCTX_SHARED_BUNDLE_KILL", "ture"),
        ("LEADCTX_FLAG_OVERRIDES_POLL_SECONDS", "-1"),
        ("LEADCTX_SERVE_MAX_STREAMS", "-7"),
        ("LEADCTX_SERVE_HEARTBEAT_SECONDS", "nan"),
        ("LEADCTX_SERVE_HEARTBEAT_SECONDS", "1e-9"),
        ("LEADCTX_SERVE_HEAD_DEADLINE_SECONDS", "-0.25"),
        ("LEADCTX_SERVE_BODY_DEADLINE_SECONDS", "inf"),
        ("LEADCTX_SERVE_TOKEN", "short-Zq9"),
    ],
)
def test_a_bad_setting_is_exit_2_naming_the_variable_not_the_value(
    variable: str, value: str
) -> None:
    done = run_serve({variable: value})
    assert done.returncode == 2
    assert variable in done.stderr
    assert value not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("port", ["0", "65536"])
def test_a_port_out_of_range_is_exit_2_naming_the_option(port: str) -> None:
    done = run_leadctx({}, "serve", "--port", port)
    assert done.returncode == 2
    assert "--port must be from 1 to 65535" in done.stderr


def test_an_open_bind_without_a_token_is_refused() -> None:
    done = run_serve({}, "--host", "0.0.0.0")  # noqa: S104 - refused before any bind
    assert done.returncode == 2
    assert "LEADCTX_SERVE_TOKEN" in done.stderr
    assert "--allow-unauthenticated" in done.stderr


def test_serve_variables_are_known_to_the_unknown_variable_warning() -> None:
    # `leadctx serve` judges its own namespace; other commands no longer import the server and
    # leave LEADCTX_SERVE_* alone. --port 0 is refused after the settings load, before a bind.
    env = {"LEADCTX_SERVE_TOKEN": "a-token-of-16-chars-or-more", "LEADCTX_SERVE_MAXSTREAMS": "5"}
    done = run_leadctx(env, "serve", "--port", "0")
    assert done.returncode == 2
    assert (
        "LEADCTX_SERVE_MAXSTREAMS is ignored; did you mean LEADCTX_SERVE_MAX_STREAMS" in done.stderr
    )
    assert "LEADCTX_SERVE_TOKEN is ignored" not in done.stderr


@pytest.fixture
def overrides(tmp_path: Path) -> Path:
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps(document(revision=3)), encoding="utf-8")
    return path


def served_env(path: Path, **extra: str) -> dict[str, str]:
    return {
        "LEADCTX_SHARED_BUNDLE_CLIENTS": "acme",
        "LEADCTX_FLAG_OVERRIDES": str(path),
        "LEADCTX_FLAG_OVERRIDES_POLL_SECONDS": str(POLL),
        **extra,
    }


def kill(path: Path) -> None:
    subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "leadctx", "flags", "kill", "--overrides", str(path)],
        cwd=ROOT, check=True, capture_output=True, timeout=30,
    )  # fmt: skip


def test_a_kill_is_one_refetch_event_whose_etag_the_refetch_honours(overrides: Path) -> None:
    with ServeProcess(served_env(overrides)) as server:
        # Given a client that fetched the flags and opened the stream the answer names
        bulk = httpx.post(server.url + BULK, json=ACME, timeout=5).json()
        uri = bulk["eventStreams"][0]["endpoint"]["requestUri"]
        stream = StreamReader(server.url + uri)
        try:
            assert stream.wait_open() == 200
            # When the flag is killed
            kill(overrides)
            event = stream.next_event(timeout=POLL + 1.0)
        finally:
            stream.close()
        # Then one refetchEvaluation event names the new state, in the spec's envelope
        assert event is not None
        data = json.loads(event.fields["data"])
        assert event.fields["event"] == "message"
        assert data["type"] == "refetchEvaluation"
        assert event.fields["id"] == data["etag"]
        assert data["revision"] == 4
        # and the re-fetch it asks for answers the kill
        refetch = httpx.post(
            server.url + BULK, params={"flagConfigEtag": data["etag"]}, json=ACME, timeout=5
        ).json()
        assert refetch["flags"][0]["reason"] == "DISABLED"
        assert refetch["eventStreams"][0]["endpoint"]["requestUri"].endswith(data["etag"])


def test_a_subscriber_behind_the_state_is_told_at_once(overrides: Path) -> None:
    with ServeProcess(served_env(overrides, LEADCTX_SERVE_HEARTBEAT_SECONDS="0.2")) as server:
        uri = httpx.post(server.url + BULK, json=ACME, timeout=5).json()["eventStreams"][0][
            "endpoint"
        ]["requestUri"]
        current = uri.split("since=")[1]
        kill(overrides)
        # (bounded wait until the server has applied the kill)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reason = httpx.post(server.url + BULK, json=ACME, timeout=5).json()["flags"][0]
            if reason["reason"] == "DISABLED":
                break
        # A client reconnecting with the old id gets the new state as its first event
        behind = StreamReader(server.url + "/ofrep/v1/events", {"Last-Event-ID": current})
        # and one that names the current state gets heartbeats only
        bulk = httpx.post(server.url + BULK, json=ACME, timeout=5).json()
        latest = bulk["eventStreams"][0]["endpoint"]["requestUri"].split("since=")[1]
        level = StreamReader(server.url + "/ofrep/v1/events", {"Last-Event-ID": latest})
        try:
            event = behind.next_event(timeout=5)
            assert event is not None
            assert event.fields["id"] == latest != current
            blocks = [level.next(timeout=5) for _ in range(3)]
        finally:
            behind.close()
            level.close()
    assert blocks[0] is not None
    assert blocks[0].fields == {"retry": "1000"}
    assert [block.comment for block in blocks[1:] if block is not None] == ["heartbeat"] * 2


def test_streams_over_the_bound_are_503_and_a_freed_place_is_reused(overrides: Path) -> None:
    env = served_env(
        overrides, LEADCTX_SERVE_MAX_STREAMS="1", LEADCTX_SERVE_HEARTBEAT_SECONDS="0.2"
    )
    with ServeProcess(env) as server:
        first = StreamReader(server.url + "/ofrep/v1/events")
        try:
            assert first.wait_open() == 200
            second = httpx.get(server.url + "/ofrep/v1/events", timeout=5)
            assert (second.status_code, second.headers["retry-after"]) == (503, "5")
            assert second.json()["errorCode"] == "GENERAL"
        finally:
            first.close()
        # The closed stream's place comes back once the server notices (its next write).
        status = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status != 200:
            third = StreamReader(server.url + "/ofrep/v1/events")
            status = third.wait_open()
            third.close()
        assert status == 200


def test_with_a_token_the_stream_opens_with_the_key_the_bulk_answer_gives(overrides: Path) -> None:
    token = "tok-0123456789abcdef"
    with ServeProcess(served_env(overrides, LEADCTX_SERVE_TOKEN=token)) as server:
        assert httpx.get(server.url + "/ofrep/v1/events", timeout=5).status_code == 401
        bulk = httpx.post(
            server.url + BULK, json=ACME, headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()
        stream = StreamReader(server.url + bulk["eventStreams"][0]["endpoint"]["requestUri"])
        try:
            assert stream.wait_open() == 200
        finally:
            stream.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_streams_finishes_requests_in_flight_and_exits_0_within_5_s(
    overrides: Path, signum: signal.Signals
) -> None:
    with ServeProcess(served_env(overrides)) as server:
        # Given an open change-event stream
        stream = StreamReader(server.url + "/ofrep/v1/events")
        try:
            assert stream.wait_open() == 200
            # and a request in flight on a connection the server has taken: one whole request
            # answered first, then the headers and half the body of the next
            body = json.dumps(ACME).encode()
            request = (
                f"POST /ofrep/v1/evaluate/flags/{SHARED_BUNDLE_FLAG} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            with connection, connection.makefile("rb") as replies:
                connection.sendall(request + body)
                assert read_response(replies)[0] == 200
                connection.sendall(request + body[:10])
                # When the server is told to stop
                signalled = time.monotonic()
                server.signal(signum)
                # Then the stream ends at once
                assert stream.ended_within(3)
                # and the request in flight is answered once its body is in
                connection.sendall(body[10:])
                status, answer = read_response(replies)
            # and the process exits within 5 s, with status 0: the drain it was asked for is done
            code = server.wait(timeout=5)
            elapsed = time.monotonic() - signalled
        finally:
            stream.close()
    assert status == 200
    assert json.loads(answer)["value"] is True
    assert code == 0, server.stderr[-2000:]
    assert elapsed < 5


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_reads_the_document_now_and_keeps_serving(overrides: Path) -> None:
    # Given a server that neither watches its file nor polls it within the test
    env = served_env(overrides, LEADCTX_FLAG_OVERRIDES_WATCH="false")
    env["LEADCTX_FLAG_OVERRIDES_POLL_SECONDS"] = "3600"
    with ServeProcess(env) as server:
        evaluate = f"{server.url}/ofrep/v1/evaluate/flags/{SHARED_BUNDLE_FLAG}"
        assert httpx.post(evaluate, json=ACME, timeout=10).json()["value"] is True
        # When a kill is written and the operator sends SIGHUP (systemctl reload)
        kill(overrides)
        server.signal(signal.SIGHUP)
        # Then the server answers off within a second or two, and is still running
        give_up = time.monotonic() + 10
        while httpx.post(evaluate, json=ACME, timeout=10).json()["value"] is not False:
            assert time.monotonic() < give_up, server.written()[-2000:]
            time.sleep(0.05)
        assert server.process.poll() is None
        assert "SIGHUP: reading the overrides document now" in server.written()


def post_head(path: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}\r\n"
    ).encode()


def rest_of(replies: BinaryIO) -> bytes:
    """What the server sends after its answer, until it closes the connection.

    A server that closes while the client's unread bytes are still in its receive buffer
    makes the kernel reset the connection (RFC 1122, 4.2.2.13) instead of a clean end of
    stream: either way the connection is closed and nothing more was sent.
    """
    try:
        return replies.read()
    except ConnectionResetError:
        return b""


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_pasted_10_mb_body_is_413_and_the_connection_closed_unread(
    overrides: Path, framing: str
) -> None:
    single = f"/ofrep/v1/evaluate/flags/{SHARED_BUNDLE_FLAG}"
    ten_mb = 10 * 1024 * 1024
    start = b'{"context": {"targetingKey": "acme", "notes": "' + b"a" * (96 * 1024)
    if framing == "content-length":
        request = post_head(single, f"Content-Length: {ten_mb}\r\n") + start
    else:
        request = post_head(single, "Transfer-Encoding: chunked\r\n")
        request += f"{len(start):x}\r\n".encode() + start + b"\r\n"
    with (
        ServeProcess(served_env(overrides)) as server,
        # (a read timeout under uvicorn's 5 s keep-alive: the close must be the answer's own)
        socket.create_connection(("127.0.0.1", server.port), timeout=2) as connection,
        connection.makefile("rb") as replies,
    ):
        # Given a client that starts sending a 10 MB body and then waits
        connection.sendall(request)
        # Then it is answered 413 without the server waiting for (or reading) the rest
        status, headers, body = read_full_response(replies)
        assert (status, json.loads(body)["errorCode"]) == (413, "PARSE_ERROR")
        # and the connection is closed at once: the rest of the body is never read
        assert headers[b"connection"] == b"close"
        assert rest_of(replies) == b""


def test_a_stalled_body_is_408_within_its_deadline_and_holds_up_no_one(overrides: Path) -> None:
    single = f"/ofrep/v1/evaluate/flags/{SHARED_BUNDLE_FLAG}"
    body = json.dumps(ACME).encode()
    env = served_env(overrides, LEADCTX_SERVE_BODY_DEADLINE_SECONDS=str(DEADLINE))
    with (
        ServeProcess(env) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE + 5) as stalled,
        stalled.makefile("rb") as replies,
    ):
        # Given a client that sends the headers and half its body, then nothing
        stalled.sendall(post_head(single, f"Content-Length: {len(body)}\r\n") + body[:10])
        started = time.monotonic()
        # Then other clients are answered meanwhile
        other = httpx.post(server.url + single, json=ACME, timeout=5)
        assert (other.status_code, other.json()["value"]) == (200, True)
        # and the stalled one gets a 408 once its deadline (plus the watchdog's tick) is past
        status, headers, answer = read_full_response(replies)
        waited = time.monotonic() - started
    assert (status, json.loads(answer)["errorCode"]) == (408, "PARSE_ERROR")
    assert f"within {DEADLINE:g} s" in json.loads(answer)["errorDetails"]
    assert headers[b"connection"] == b"close"
    assert DEADLINE - 0.5 <= waited <= DEADLINE + 2


def test_a_head_that_never_ends_is_431_and_closed_after_its_bound(overrides: Path) -> None:
    single = f"/ofrep/v1/evaluate/flags/{SHARED_BUNDLE_FLAG}"
    head = f"POST {single} HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: ".encode()
    with (
        ServeProcess(served_env(overrides)) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection,
        connection.makefile("rb") as replies,
    ):
        # Given a client sending a header value that does not end (httptools would keep it all)
        connection.sendall(head)
        sent = 0
        with contextlib.suppress(OSError):  # the server closing mid-send is the point
            while sent < 8 * MAX_HEAD_BYTES:
                connection.sendall(b"W/" + b"a" * 4094)
                sent += 4096
        # Then it is answered 431 in OFREP's failure shape, and closed
        status, headers, body = read_full_response(replies)
        assert (status, json.loads(body)["errorCode"]) == (431, "PARSE_ERROR")
        assert headers[b"connection"] == b"close"
        assert rest_of(replies) == b""
        # and a head under the bound is still answered
        under = httpx.post(
            server.url + single,
            json=ACME,
            headers={"If-None-Match": "a" * (MAX_HEAD_BYTES // 2)},
            timeout=5,
        )
        assert (under.status_code, under.json()["value"]) == (200, True)


def until(condition: Callable[[], bool], within: float) -> bool:
    """Whether ``condition()`` holds within ``within`` seconds (polled every 0.1 s)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_fifo_in_place_of_the_document_is_not_ready_and_a_kill_after_it_arrives(
    overrides: Path,
) -> None:
    single = f"/ofrep/v1/evaluate/flags/{SHARED_BUNDLE_FLAG}"

    def ready() -> bool:
        return httpx.get(server.url + "/readyz", timeout=5).status_code == 200

    def answer() -> str:
        return str(httpx.post(server.url + single, json=ACME, timeout=5).json()["reason"])

    with ServeProcess(served_env(overrides)) as server:
        assert until(ready, 5)
        # Given the document replaced by a FIFO nobody writes to (an open() of it blocks)
        overrides.unlink()
        os.mkfifo(overrides)
        # Then the server stops being ready (the source fails; it does not hang)
        assert until(lambda: not ready(), 10)
        # and once a kill replaces the FIFO, it is applied and the server is ready again
        overrides.unlink()
        overrides.write_text(json.dumps(document(kill=True, revision=4)), encoding="utf-8")
        assert until(lambda: answer() == "DISABLED", 10)
        assert until(ready, 5)


def test_a_second_server_on_a_port_in_use_exits_nonzero_saying_so(overrides: Path) -> None:
    with ServeProcess(served_env(overrides)) as first:
        # When a second server is started on the first one's port
        second = run_leadctx(served_env(overrides), "serve", "--port", str(first.port))
        # Then it exits with a failure status and says why, and the first keeps answering
        assert second.returncode not in {0, None}
        assert "address already in use" in second.stderr
        assert httpx.get(first.url + "/healthz", timeout=5).status_code == 200


def test_an_idle_or_dripping_head_is_408_within_its_deadline_and_closed(overrides: Path) -> None:
    single = f"/ofrep/v1/evaluate/flags/{SHARED_BUNDLE_FLAG}"
    timeout = DEADLINE + 5
    env = served_env(overrides, LEADCTX_SERVE_HEAD_DEADLINE_SECONDS=str(DEADLINE))
    with (
        ServeProcess(env) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as idle,
        socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as drip,
        idle.makefile("rb") as idle_replies,
        drip.makefile("rb") as drip_replies,
    ):
        # Given a connection that sends nothing and one that sends its header a byte at a time
        started = time.monotonic()
        drip.sendall(f"POST {single} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode())
        with contextlib.suppress(OSError):  # the server closing it is the point
            while time.monotonic() - started < DEADLINE + 3:
                drip.sendall(b"a")
                if select.select([drip], [], [], 0.5)[0]:  # the answer has come
                    break
        # Then other clients are answered meanwhile, and each is answered 408 and closed
        other = httpx.post(server.url + single, json=ACME, timeout=5)
        assert (other.status_code, other.json()["value"]) == (200, True)
        for replies in (drip_replies, idle_replies):
            status, headers, body = read_full_response(replies)
            assert (status, json.loads(body)["errorCode"]) == (408, "PARSE_ERROR")
            assert f"within {DEADLINE:g} s" in json.loads(body)["errorDetails"]
            assert headers[b"connection"] == b"close"
            assert rest_of(replies) == b""
        assert DEADLINE - 0.5 <= time.monotonic() - started <= DEADLINE + 3
