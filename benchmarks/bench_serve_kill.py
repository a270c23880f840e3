"""How long a kill takes to reach each OFREP client of ``leadctx serve``, over several kills.

One ``leadctx serve`` on 127.0.0.1 follows an overrides file (``--poll`` seconds, the server's
change detection). Each round lifts the kill (``leadctx flags unkill``), waits until every
client answers on, then kills the flag with ``leadctx flags kill`` and records, per client,
the time from the document's write (its mtime) to the first answer off:

- **python, server provider**: ``openfeature-provider-ofrep`` through the OpenFeature client,
  one call every 10 ms (a pipeline's next call);
- **node, server provider**: ``@openfeature/ofrep-provider``, one call every 20 ms;
- **node, web provider**: ``@openfeature/ofrep-web-provider`` with polling off, so the kill
  can only arrive through the server's change event (SSE) and the re-fetch it triggers.

The target (issue 17): each within the server's change detection + 1 s.

Run: ``.venv/bin/python benchmarks/bench_serve_kill.py [--rounds 5] [--poll 1.0]``
(needs node and ``npm ci`` in ``tests/node``).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "tests" / "node" / "clients.mjs"
FLAG = "shared_bundle.enabled"
CONTEXT = {"targetingKey": "acme", "kind": "client"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADCTX_", "OTEL_"))}
    return env | extra


def leadctx(*args: str) -> None:
    subprocess.run(  # noqa: S603 - this interpreter, our own command
        [sys.executable, "-m", "leadctx", *args], cwd=ROOT, check=True, capture_output=True
    )


class NodeClient:
    """``clients.mjs MODE``: its JSON lines, each stamped with its arrival (``time.time()``)."""

    def __init__(self, node: str, mode: str, url: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - node from PATH, our own script
            [node, str(CLIENTS), mode, json.dumps(CONTEXT)],
            cwd=CLIENTS.parent, env=environment({"OFREP_URL": url}),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout or ():
            self.lines.put((time.time(), json.loads(line)))

    def next(self, timeout: float) -> tuple[float, dict[str, Any]]:
        return self.lines.get(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


def python_kill_time(client: OpenFeatureClient, context: EvaluationContext, until: float) -> float:
    """When (``time.time()``) the Python client first answers off, calling every 10 ms."""
    while time.monotonic() < until:
        if client.get_boolean_value(FLAG, True, context) is False:
            return time.time()
        time.sleep(0.01)  # a pipeline's pace, not a synchronisation
    raise RuntimeError("the Python client never saw the kill")


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # a bounded poll for readiness
    raise RuntimeError("leadctx serve not ready")


def one_kill(
    node: str, url: str, path: Path, poll: float, client: OpenFeatureClient
) -> dict[str, float]:
    """Lift the kill, then kill again; seconds from the kill's write to each client's off."""
    context = EvaluationContext(targeting_key="acme", attributes={"kind": "client"})
    leadctx("flags", "unkill", "--overrides", str(path))
    until = time.monotonic() + poll + 10
    while client.get_boolean_value(FLAG, False, context) is not True:
        if time.monotonic() > until:
            raise RuntimeError("the unkill never arrived")
        time.sleep(0.01)  # a bounded poll until the server has applied the unkill
    watchers = {
        "node, server": NodeClient(node, "server-watch", url),
        "node, web": NodeClient(node, "watch", url),
    }
    try:
        for watcher in watchers.values():
            _, ready = watcher.next(timeout=30)
            if (ready["event"], ready["value"]) != ("ready", True):
                raise RuntimeError(f"unexpected first answer: {ready}")
        operator = subprocess.Popen(  # noqa: S603 - this interpreter, our own command
            [sys.executable, "-m", "leadctx", "flags", "kill", "--overrides", str(path)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        seen = {"python, server": python_kill_time(client, context, until + 30)}
        if operator.wait(30) != 0:
            raise RuntimeError("leadctx flags kill failed")
        for name, watcher in watchers.items():
            seen[name], changed = watcher.next(timeout=poll + 10)
            if (changed["value"], changed["reason"]) != (False, "DISABLED"):
                raise RuntimeError(f"unexpected change: {changed}")
    finally:
        for watcher in watchers.values():
            watcher.stop()
    written = path.stat().st_mtime_ns / 1e9
    return {name: at - written for name, at in seen.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--poll", type=float, default=1.0, help="the server's poll interval")
    args = parser.parse_args()
    node = shutil.which("node")
    if node is None or not (CLIENTS.parent / "node_modules").is_dir():
        raise SystemExit("needs node and `npm ci` in tests/node")
    folder = Path(tempfile.mkdtemp(prefix="bench-serve-kill-"))
    path = folder / "overrides.json"
    path.write_text(
        json.dumps({"schema": "leadctx.overrides/v1", "revision": 1, "flags": {}}),
        encoding="utf-8",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(  # noqa: S603 - this interpreter, our own command
        [sys.executable, "-m", "leadctx", "serve", "--port", str(port)],
        cwd=ROOT,
        env=environment(
            {
                "LEADCTX_SHARED_BUNDLE_CLIENTS": "acme",
                "LEADCTX_FLAG_OVERRIDES": str(path),
                "LEADCTX_FLAG_OVERRIDES_POLL_SECONDS": str(args.poll),
            }
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    times: dict[str, list[float]] = {"python, server": [], "node, server": [], "node, web": []}
    try:
        wait_ready(url)
        api.set_provider(OFREPProvider(url, timeout=5), domain="bench")
        client = api.get_client("bench")
        for _ in range(args.rounds):
            for name, seconds in one_kill(node, url, path, args.poll, client).items():
                times[name].append(seconds)
    finally:
        api.shutdown()
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    bound = args.poll + 1.0
    print(f"{args.rounds} kills, server poll {args.poll:g} s; seconds from the document's write")
    print(f"{'client':16} {'min':>7} {'median':>7} {'max':>7}  within {bound:g} s")
    for name, values in times.items():
        within = "yes" if max(values) <= bound else "NO"
        print(
            f"{name:16} {min(values):7.3f} {statistics.median(values):7.3f} "
            f"{max(values):7.3f}  {within}"
        )


if __name__ == "__main__":
    main()
