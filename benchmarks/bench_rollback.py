"""Rollback time of each route, measured side by side in one run.

Route 1, env + restart: a new process starts with ``LEADCTX_SHARED_BUNDLE_KILL=true`` and
evaluates once. Measured: process start to the first "off" answer (interpreter, imports,
provider). A real deploy adds whatever the orchestrator takes to roll the pods.

Route 2, overrides: a running provider polls a document; the kill is written to it (file, or
served over http on 127.0.0.1). Measured: the write to the moment every sample client
evaluates off, over several trials per poll interval.

Run: ``.venv/bin/python benchmarks/bench_rollback.py [--trials N]``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from leadctx_flags import (
    SHARED_BUNDLE_FLAG,
    LeadCtxProvider,
    OverridesDocument,
    RolloutSettings,
    client_context,
)
from leadctx_flags.editing import allow, apply_change, kill, unkill
from leadctx_flags.storage import write_document

CLIENTS = ("acme", "globex", "initech")
RESTART_SNIPPET = (
    "from leadctx_flags import LeadCtxProvider, SHARED_BUNDLE_FLAG, client_context\n"
    "p = LeadCtxProvider()\n"
    "r = p.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, client_context('acme'))\n"
    "assert r.value is False and r.reason == 'DISABLED', r\n"
)


def restart_route(trials: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADCTX_")}
    env |= {"LEADCTX_SHARED_BUNDLE_CLIENTS": "acme", "LEADCTX_SHARED_BUNDLE_KILL": "true"}
    times = []
    for _ in range(trials):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", RESTART_SNIPPET], env=env, check=True)  # noqa: S603 - our own interpreter and snippet
        times.append(time.perf_counter() - began)
    return times


def all_off(provider: LeadCtxProvider) -> bool:
    return not any(
        provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, client_context(c)).value
        for c in CLIENTS
    )


def wait(condition: Callable[[], bool], timeout: float = 30.0) -> float:
    began = time.perf_counter()
    while not condition():
        if time.perf_counter() - began > timeout:
            raise TimeoutError("rollback did not propagate")
        time.sleep(0.001)
    return time.perf_counter() - began


def overrides_route(
    interval: float, trials: int, publish: Callable[[OverridesDocument], None], location: str
) -> list[float]:
    document = OverridesDocument()
    for client_id in CLIENTS:
        document = apply_change(document, allow(client_id), updated_by="bench")
    publish(document)
    settings = RolloutSettings(flag_overrides=location, flag_overrides_poll_seconds=interval)
    provider = LeadCtxProvider(settings)
    provider.initialize(client_context("bench"))
    times = []
    phases = random.Random(112)
    try:
        for _ in range(trials):
            document = apply_change(document, unkill(), updated_by="bench")
            publish(document)
            wait(lambda: not all_off(provider))
            time.sleep(phases.uniform(0, interval))  # write at a random phase of the poll cycle
            document = apply_change(document, kill(), updated_by="bench")
            began = time.perf_counter()
            publish(document)
            wait(lambda: all_off(provider))
            times.append(time.perf_counter() - began)
    finally:
        provider.shutdown()
    return times


class _Served:
    body = b"{}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = _Served.body
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return


def summary(name: str, times: list[float]) -> str:
    return (
        f"{name:<34} n={len(times):<3} median {statistics.median(times):7.3f} s"
        f"   max {max(times):7.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    print(f"rollback time per route (python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    print(summary("env + restart (process only)", restart_route(args.trials)))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "overrides.json"
        for interval in (0.2, 1.0):
            times = overrides_route(
                interval, args.trials, lambda d: write_document(path, d), str(path)
            )
            print(summary(f"overrides file, poll {interval:.1f} s", times))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        url = f"http://{host!s}:{port}/overrides.json"

        def serve(document: OverridesDocument) -> None:
            _Served.body = document.to_json().encode()

        for interval in (0.2, 1.0):
            print(
                summary(
                    f"overrides http, poll {interval:.1f} s",
                    overrides_route(interval, args.trials, serve, url),
                )
            )
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
