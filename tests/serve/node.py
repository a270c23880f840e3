"""Running the Node OFREP clients of ``tests/node`` (installed with ``npm ci`` when missing)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.serve.serve_process import ROOT, clean_environment

NODE_PACKAGE = ROOT / "tests" / "node"
CLIENTS = NODE_PACKAGE / "clients.mjs"


def require_node(package: Path = NODE_PACKAGE) -> str:
    """The ``node`` executable, with ``package``'s dependencies installed (``npm ci``).

    Without ``node`` the test is skipped on a developer's machine and fails in CI (``CI`` or
    ``REQUIRE_NODE_TESTS`` set, as ``.ci/run`` does), as a missing PostgreSQL does.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI") or os.environ.get("REQUIRE_NODE_TESTS"):
            pytest.fail("node and npm are required in CI for the OFREP client tests")
        pytest.skip("node or npm is not installed")
    if not (package / "node_modules" / "@openfeature" / "ofrep-provider").is_dir():
        subprocess.run(  # noqa: S603 - npm from PATH, the committed lock file
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=package, check=True, capture_output=True, timeout=600,
        )  # fmt: skip
    return node


def run_cases(node: str, mode: str, url: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each case's answer through the Node client ``mode`` (``server`` or ``web``)."""
    done = subprocess.run(  # noqa: S603 - our own script
        [node, str(CLIENTS), mode, json.dumps(cases)],
        cwd=NODE_PACKAGE, env=clean_environment({"OFREP_URL": url}),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


class NodeWatcher:
    """A Node client watching one context (``watch`` or ``server-watch``), line by line."""

    def __init__(self, node: str, mode: str, url: str, context: dict[str, Any]) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - our own script
            [node, str(CLIENTS), mode, json.dumps(context)],
            cwd=NODE_PACKAGE, env=clean_environment({"OFREP_URL": url}),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self._lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put((time.time(), line))

    def next_event(self, timeout: float) -> dict[str, Any]:
        """The next JSON line it prints, within ``timeout`` seconds.

        ``received_at`` is added: when the line arrived (wall clock, as ``time.time()``).
        """
        try:
            received_at, line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer from the Node client within {timeout} s") from None
        event: dict[str, Any] = json.loads(line)
        event["received_at"] = received_at
        return event

    def stop(self) -> None:
        """Stop the client by its pid."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(5)
        if self._process.stdout is not None:
            self._process.stdout.close()
