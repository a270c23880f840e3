"""A provider initialised before ``os.fork()`` keeps following the document in the child.

Pre-forking servers (gunicorn ``--preload``) and multiprocessing's fork start method copy a
process with only the forking thread. The scenario runs in a fresh interpreter, so the test
runner itself never forks: it initialises a provider, forks, writes a kill in the parent, and
the child reports how long it took to answer off.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from leadctx_flags.storage import write_document
from tests.flags.overrides_helpers import document

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="no os.fork on Windows"),
]

INTERVAL = 0.2

SCENARIO = """
import json, os, sys, threading, time, warnings
from pathlib import Path

# Python 3.12+ warns when a process with threads forks; forking one is what is tested here.
warnings.simplefilter("ignore", DeprecationWarning)

from openfeature import api
from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.editing import edit_document, kill

path, location, interval = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
provider = LeadCtxProvider(
    RolloutSettings(flag_overrides=location, flag_overrides_poll_seconds=interval)
)
api.set_provider_and_wait(provider)
client = api.get_client()


def on():
    return client.get_boolean_value(SHARED_BUNDLE_FLAG, False, client_context("acme"))


ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(ready_r)
    os.close(go_w)
    before = on()
    pollers = sum(t.name == "leadctx-overrides-poller" for t in threading.enumerate())
    os.write(ready_w, b"r")
    written_at = float(os.read(go_r, 64).decode())
    give_up = time.monotonic() + 5
    while on() and time.monotonic() < give_up:
        time.sleep(0.005)
    report = {
        "before": before,
        "pollers": pollers,
        "after": on(),
        "seconds": time.monotonic() - written_at,
    }
    print(json.dumps(report), flush=True)
    os._exit(0)
os.close(ready_w)
os.close(go_r)
os.read(ready_r, 1)
edit_document(path, kill(), updated_by="fork-test")
os.write(go_w, repr(time.monotonic()).encode())
_, status = os.waitpid(pid, 0)
api.shutdown()
sys.exit(os.waitstatus_to_exitcode(status))
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[str]:
    """A stdlib HTTP server on 127.0.0.1 serving ``tmp_path``; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("kind", ["file", "http"])
def test_a_forked_child_answers_off_within_the_poll_interval_after_a_kill(
    tmp_path: Path, file_server: str, kind: str
) -> None:
    # Given a document turning acme on, read by a provider initialised before the fork
    path = tmp_path / "overrides.json"
    write_document(path, document(1, default=True))
    location = str(path) if kind == "file" else f"{file_server}/{path.name}"
    # When the parent writes a kill after forking
    completed = subprocess.run(  # noqa: S603 - our own interpreter running our own scenario
        [sys.executable, "-c", SCENARIO, str(path), location, str(INTERVAL)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    # Then the child had its own poller, was on before the kill and off within poll + 0.5 s
    assert (report["before"], report["pollers"], report["after"]) == (True, 1, False)
    assert report["seconds"] <= INTERVAL + 0.5, report
