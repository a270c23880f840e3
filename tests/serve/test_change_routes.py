"""``leadctx serve`` follows its file by watching it; a remote provider follows the server.

The server runs at default settings (a 10 s poll): an event within the bounds here came from
the watch. The remote provider polls once an hour: a change it answers within the bounds came
by the server's change events, across a restart of the server too.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.editing import edit_document, kill, unkill
from leadctx_flags.storage import write_document
from tests.flags.overrides_helpers import document, wait_for
from tests.serve.serve_process import ServeProcess
from tests.serve.sse import StreamReader

pytestmark = pytest.mark.integration

EVENTS = "/ofrep/v1/events"
BOUND = 3.0  # well below the server's 10 s poll


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return


@pytest.fixture
def overrides(tmp_path: Path) -> Path:
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    return path


@pytest.fixture
def document_url(overrides: Path) -> Iterator[str]:
    """The overrides file served over http from 127.0.0.1 (a static document host)."""
    handler = functools.partial(QuietHandler, directory=str(overrides.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}/{overrides.name}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_serve_watches_its_file_and_sends_one_event_per_revision(overrides: Path) -> None:
    env = {"LEADCTX_FLAG_OVERRIDES": str(overrides), "LEADCTX_SERVE_HEARTBEAT_SECONDS": "0.2"}
    with ServeProcess(env) as server:
        stream = StreamReader(server.url + EVENTS)
        try:
            assert stream.wait_open() == 200
            # When the flag is killed with the CLI's own write
            edit_document(overrides, kill(), updated_by="tests")
            # Then one event names revision 2, long before the server's 10 s poll
            event = stream.next_event(BOUND)
            assert event is not None
            assert event.fields["id"].startswith("2-")
            # And only heartbeats follow until the next revision, which has its own event
            for _ in range(3):
                block = stream.next(BOUND)
                assert block is not None
                assert block.comment == "heartbeat", block
            edit_document(overrides, unkill(), updated_by="tests")
            event = stream.next_event(BOUND)
            assert event is not None
            assert event.fields["id"].startswith("3-")
        finally:
            stream.close()


def on(provider: LeadCtxProvider) -> bool:
    return provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, client_context("acme")).value


def test_a_remote_provider_follows_the_server_across_a_restart(
    overrides: Path, document_url: str
) -> None:
    # Given a server watching the file, and a remote provider on the same document over http,
    # subscribed to the server's events and polling once an hour
    env = {"LEADCTX_FLAG_OVERRIDES": str(overrides)}
    first = ServeProcess(env)
    second = ServeProcess(env, port=first.port)
    provider = LeadCtxProvider(
        RolloutSettings(
            flag_overrides=document_url,
            flag_overrides_poll_seconds=3600,
            flag_overrides_events=first.url + EVENTS,
        )
    )
    try:
        # (inside the try: a server that started is stopped by its pid whatever fails next)
        first.start()
        provider.initialize(client_context("tests"))
        assert on(provider)
        # When a kill is written, the event brings it at once
        edit_document(overrides, kill(), updated_by="tests")
        wait_for(lambda: not on(provider), BOUND)
        # And when the server restarts, with an unkill written while it was down
        first.stop()
        edit_document(overrides, unkill(), updated_by="tests")
        second.start()
        # Then the reopened stream makes the provider catch up (reconnect with backoff)
        wait_for(lambda: on(provider), 20)
        # And events flow again from the new server
        edit_document(overrides, kill(), updated_by="tests")
        wait_for(lambda: not on(provider), BOUND)
    finally:
        provider.shutdown()
        first.stop()
        second.stop()


FORK_SCENARIO = """
import json, os, sys, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # forking a process with threads is the test
from pathlib import Path
from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.editing import edit_document, kill

path, document_url, events_url = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
settings = RolloutSettings(
    flag_overrides=document_url, flag_overrides_poll_seconds=3600,
    flag_overrides_events=events_url,
)
provider = LeadCtxProvider(settings)
provider.initialize(client_context("fork"))

def on():
    return provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, client_context("acme")).value

pid = os.fork()
if pid == 0:
    names = [t.name for t in threading.enumerate()]
    before = on()
    edit_document(path, kill(), updated_by="child")
    give_up = time.monotonic() + 10
    while on() and time.monotonic() < give_up:
        time.sleep(0.005)
    report = {"before": before, "after": on(), "streams": names.count("leadctx-overrides-events")}
    print(json.dumps(report), flush=True)
    provider.shutdown()
    os._exit(0)
_, status = os.waitpid(pid, 0)
provider.shutdown()
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_opens_its_own_event_stream(overrides: Path, document_url: str) -> None:
    # Given a remote provider subscribed to a server's events, initialised before a fork
    with ServeProcess({"LEADCTX_FLAG_OVERRIDES": str(overrides)}) as server:
        # When the child kills the flag right after the fork
        completed = subprocess.run(  # noqa: S603 - our own interpreter running our own scenario
            [sys.executable, "-c", FORK_SCENARIO, str(overrides), document_url,
             server.url + EVENTS],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    # Then the child had a stream of its own, and answered off long before its hourly poll
    report = completed.stdout.strip().splitlines()[-1]
    assert report == '{"before": true, "after": false, "streams": 1}', completed.stderr
