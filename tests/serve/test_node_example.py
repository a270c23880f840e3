"""``examples/node/pipeline_flag.mjs`` runs as its header says, against a real ``leadctx serve``."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import time

import pytest

from tests.serve.node import require_node
from tests.serve.serve_process import ROOT, ServeProcess, clean_environment

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "node"
SCRIPT = EXAMPLE / "pipeline_flag.mjs"


def documented_command() -> list[str]:
    """The arguments of the ``node`` command on the example's ``// Run:`` line."""
    match = re.search(r"^// Run: (?P<command>.+)$", SCRIPT.read_text(encoding="utf-8"), re.M)
    assert match is not None
    words = shlex.split(match["command"])
    assert words[:2] == ["npm", "ci"]
    node_at = words.index("node")
    return words[node_at + 1 :]


def run(node: str, url: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own example
        [node, *args],
        cwd=EXAMPLE, env=clean_environment({"LEADCTX_OFREP_URL": url}),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_example_prints_each_clients_answer_as_documented() -> None:
    node = require_node(EXAMPLE)
    with ServeProcess({"LEADCTX_SHARED_BUNDLE_CLIENTS": "acme"}) as server:
        done = run(node, server.url, documented_command())
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "acme flag=true reason=TARGETING_MATCH variant=on rule=allowlist path=shared error=-",
        "initech flag=false reason=STATIC variant=off rule=env path=legacy error=-",
    ]


def test_a_hung_server_costs_the_example_its_timeout_and_answers_off() -> None:
    node = require_node(EXAMPLE)
    # A socket that accepts connections (the kernel does) and never answers.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        started = time.monotonic()
        done = run(node, url, ["pipeline_flag.mjs", "acme"])
        elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "acme flag=false reason=ERROR variant=- rule=- path=legacy error=GENERAL"
    ]
    assert elapsed < 10
