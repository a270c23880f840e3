"""What does an idle process spend on following its overrides, per poll interval and route?

Run: ``.venv/bin/python benchmarks/bench_idle_poll.py`` (``--seconds``/``--rounds`` to change
the sample; ``--route-seconds`` for the second part). A plain script, not a test: it prints
figures, it asserts nothing.

Second part, the routes at default settings (poll 10 s): a whole ``LeadCtxProvider`` on an
unchanged file polled only, the same file watched, and a remote provider on a document over
http (127.0.0.1) subscribed to a ``leadctx serve`` event stream. For each: the share of a core
this process used, and the requests per minute the document host and the server received.

One ``OverridesPoller`` on an unchanged local file at a time, intervals taking turns in a fresh
random order every round in one process; for each, the process CPU time over a wall-clock
window in which the main thread only waits, as a share of one core (median over rounds). The
poller is built directly, because ``LEADCTX_FLAG_OVERRIDES_POLL_SECONDS`` now refuses the
first interval, the one that made an idle process spin; ``MIN_POLL_SECONDS`` is the floor.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from leadctx_flags import LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.document import OverridesDocument
from leadctx_flags.overrides_sources import FileSource
from leadctx_flags.poller import OverridesPoller
from leadctx_flags.settings import MIN_POLL_SECONDS

INTERVALS = (1e-9, MIN_POLL_SECONDS, 0.2, 10.0)


def idle_share(path: Path, interval: float, seconds: float) -> float:
    """Share of one core the process used while a poller at ``interval`` ran on ``path``."""
    poller = OverridesPoller(FileSource(path), interval=interval, on_document=lambda _: None)
    poller.poll_once()
    poller.start()
    try:
        cpu, wall = time.process_time(), time.monotonic()
        threading.Event().wait(seconds)
        return (time.process_time() - cpu) / (time.monotonic() - wall)
    finally:
        poller.shutdown()


class CountingHandler(SimpleHTTPRequestHandler):
    """A static document host that counts the requests it serves."""

    served = 0

    def do_GET(self) -> None:
        type(self).served += 1
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return


@contextlib.contextmanager
def document_host(folder: Path) -> Iterator[str]:
    handler = functools.partial(CountingHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def leadctx_serve(path: Path) -> Iterator[str]:
    """``leadctx serve`` following ``path`` on a free port of 127.0.0.1; stopped by its pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADCTX_")}
    env["LEADCTX_FLAG_OVERRIDES"] = str(path)
    process = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "leadctx", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        give_up = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=0.5).status_code == 200:
                    break
            if time.monotonic() > give_up:
                raise RuntimeError("leadctx serve did not become ready")
            time.sleep(0.05)  # a bounded poll for readiness
        yield url
    finally:
        process.terminate()
        process.wait(10)


def route_share(settings: RolloutSettings, seconds: float) -> tuple[float, int]:
    """Share of a core, and document requests, of an idle provider over ``seconds``."""
    provider = LeadCtxProvider(settings)
    provider.initialize(client_context("bench"))
    try:
        subscriber = provider._subscriber
        if subscriber is not None and subscriber.wait_connected(10):
            # The stream's first connection fetches once to catch up: not the idle cost.
            threading.Event().wait(0.5)
        before = CountingHandler.served
        cpu, wall = time.process_time(), time.monotonic()
        threading.Event().wait(seconds)
        share = (time.process_time() - cpu) / (time.monotonic() - wall)
        return share, CountingHandler.served - before
    finally:
        provider.shutdown()


def routes(path: Path, seconds: float) -> None:
    """The second part: each route at default settings, idle for ``seconds``."""
    with document_host(path.parent) as host, leadctx_serve(path) as serve:
        configurations = {
            "file, poll 10 s, watch off": RolloutSettings(
                flag_overrides=str(path), flag_overrides_watch=False
            ),
            "file, poll 10 s, watched (default)": RolloutSettings(flag_overrides=str(path)),
            "remote http document + events": RolloutSettings(
                flag_overrides=f"{host}/{path.name}",
                flag_overrides_events=f"{serve}/ofrep/v1/events",
            ),
            "remote http document, no events": RolloutSettings(
                flag_overrides=f"{host}/{path.name}"
            ),
        }
        print(f"routes at default settings, {seconds:g} s idle each")
        for name, settings in configurations.items():
            share, requests = route_share(settings, seconds)
            per_minute = requests * 60 / seconds
            print(
                f"{name:<36} {100 * share:6.3f}% of a core, {per_minute:5.1f} document requests/min"
            )


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved measurement and print each interval's median share of a core."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=1.0, help="window per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="measurements per interval")
    parser.add_argument("--seed", type=int, default=0, help="seed of the order")
    parser.add_argument("--route-seconds", type=float, default=60.0, help="window per route")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    shares: dict[float, list[float]] = {interval: [] for interval in INTERVALS}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "overrides.json"
        path.write_text(OverridesDocument(revision=1).to_json(), encoding="utf-8")
        for _ in range(args.rounds):
            order = list(INTERVALS)
            rng.shuffle(order)
            for interval in order:
                shares[interval].append(idle_share(path, interval, args.seconds))
    print(f"{args.rounds} rounds x {args.seconds:g} s per interval, interleaved")
    for interval, values in shares.items():
        print(f"poll interval {interval:>7g} s: {100 * statistics.median(values):5.1f}% of a core")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "overrides.json"
        path.write_text(OverridesDocument(revision=1).to_json(), encoding="utf-8")
        routes(path, args.route_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
