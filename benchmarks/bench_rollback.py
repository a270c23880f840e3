"""Rollback time of each route at default settings, measured side by side in one run.

Every route starts from a document turning the sample clients on and measures from the moment
the kill is written (``edit_document(path, kill())``, the code ``leadctx flags kill`` runs, or
a ConfigMap's symlink swap) to the first "off" answer where it is read:

* file watch: an in-process provider on the same file (poll 10 s, watch on: the defaults);
* ConfigMap swap: the same through ``..data`` -> a new timestamped directory;
* remote events: an in-process provider on the document over http (127.0.0.1) subscribed to
  the change events of a ``leadctx serve`` that watches the file;
* Node server / Node web: ``@openfeature/ofrep-provider`` (evaluating every 20 ms) and
  ``@openfeature/ofrep-web-provider`` (SSE, then a bulk re-fetch) through that server;
* each with its event path broken (the watcher off, the stream down, the server's watcher
  off): the 10 s poll still delivers. Those run concurrently, a kill at a random phase of the
  poll cycle; the target is the poll interval + 0.5 s.

And the env route: a new process with ``LEADCTX_SHARED_BUNDLE_KILL=true`` (process start to
the first "off", without the deploy around it).

Run: ``.venv/bin/python benchmarks/bench_rollback.py [--trials 50] [--broken-trials 10]``
(``--no-node`` without Node; the Node clients come from ``tests/node``, ``npm ci`` there).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import queue
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.document import OverridesDocument
from leadctx_flags.editing import allow, apply_change, edit_document, kill, unkill
from leadctx_flags.storage import write_document

ROOT = Path(__file__).resolve().parents[1]
NODE_PACKAGE = ROOT / "tests" / "node"
CLIENTS = ("acme", "globex", "initech")
POLL = 10.0  # LEADCTX_FLAG_OVERRIDES_POLL_SECONDS' default
RESTART_SNIPPET = (
    "from leadctx_flags import LeadCtxProvider, SHARED_BUNDLE_FLAG, client_context\n"
    "p = LeadCtxProvider()\n"
    "r = p.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, client_context('acme'))\n"
    "assert r.value is False and r.reason == 'DISABLED', r\n"
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADCTX_", "OTEL_"))}
    return env | extra


def restart_route(trials: int) -> list[float]:
    env = clean_env(LEADCTX_SHARED_BUNDLE_CLIENTS="acme", LEADCTX_SHARED_BUNDLE_KILL="true")
    times = []
    for _ in range(trials):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", RESTART_SNIPPET], env=env, check=True)  # noqa: S603 - our own interpreter and snippet
        times.append(time.perf_counter() - began)
    return times


def wait(condition: Callable[[], bool], timeout: float = POLL * 3, step: float = 0.001) -> None:
    """A bounded poll of ``condition`` (1 ms steps): the measurement's own clock."""
    give_up = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > give_up:
            raise TimeoutError("the change did not propagate")
        time.sleep(step)


def all_off(provider: LeadCtxProvider) -> bool:
    return not any(
        provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, client_context(c)).value
        for c in CLIENTS
    )


def start_document() -> OverridesDocument:
    document = OverridesDocument()
    for client_id in CLIENTS:
        document = apply_change(document, allow(client_id), updated_by="bench")
    return document


class ConfigMap:
    """A Kubernetes-style ConfigMap volume: overrides.json -> ..data/ -> ..<n>/."""

    def __init__(self, mount: Path, document: OverridesDocument) -> None:
        self.mount = mount
        self.generation = 0
        self.document = document
        mount.mkdir()
        self.publish(document)
        (mount / "overrides.json").symlink_to("..data/overrides.json")

    @property
    def path(self) -> Path:
        return self.mount / "overrides.json"

    def publish(self, document: OverridesDocument) -> None:
        self.generation += 1
        target = self.mount / f"..2026_12_03_{self.generation:04d}"
        target.mkdir()
        (target / "overrides.json").write_text(document.to_json(), encoding="utf-8")
        link = self.mount / "..data_tmp"
        link.symlink_to(target.name)
        link.replace(self.mount / "..data")  # the kubelet's atomic swap
        self.document = document
        old = self.mount / f"..2026_12_03_{self.generation - 1:04d}"
        if old.exists():
            shutil.rmtree(old)

    def edit(self, change: Callable[[OverridesDocument], OverridesDocument]) -> None:
        self.publish(change(self.document))


def kill_file(path: Path) -> None:
    edit_document(path, kill(), updated_by="bench")


def unkill_file(path: Path) -> None:
    edit_document(path, unkill(), updated_by="bench")


def in_process_route(
    location: str,
    trials: int,
    do_kill: Callable[[], None],
    do_unkill: Callable[[], None],
    *,
    phase: float,
    **settings: object,
) -> list[float]:
    """Kills reaching one in-process provider on ``location``; a random pause before each."""
    provider = LeadCtxProvider(RolloutSettings(flag_overrides=location, **settings))
    provider.initialize(client_context("bench"))
    phases = random.Random(18)
    times = []
    try:
        for _ in range(trials):
            do_unkill()
            wait(lambda: not all_off(provider))
            time.sleep(phases.uniform(0, phase))  # a random phase of the poll (or watch) cycle
            began = time.perf_counter()
            do_kill()
            wait(lambda: all_off(provider))
            times.append(time.perf_counter() - began)
    finally:
        provider.shutdown()
    return times


class QuietHandler(SimpleHTTPRequestHandler):
    """A static document host (Last-Modified, no ETag: every poll is a full 200)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return


@contextlib.contextmanager
def static_server(folder: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder))
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def leadctx_serve(path: Path, **env: str) -> Iterator[str]:
    """``leadctx serve`` on 127.0.0.1 (a free port) following ``path``; stopped by its pid."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "leadctx", "serve", "--port", str(port)],
        cwd=ROOT, env=clean_env(LEADCTX_FLAG_OVERRIDES=str(path), **env),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        give_up = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=0.5).status_code == 200:
                    break
            if time.monotonic() > give_up or process.poll() is not None:
                raise RuntimeError("leadctx serve did not become ready")
            time.sleep(0.05)  # a bounded poll for readiness
        yield url
    finally:
        process.terminate()
        process.wait(10)


_ASKING = threading.local()


def served_on(url: str) -> bool:
    """Whether the server answers acme on now (one kept-alive connection per thread)."""
    client = getattr(_ASKING, "client", None)
    if client is None:
        client = _ASKING.client = httpx.Client(timeout=5)
    body = {"context": {"targetingKey": "acme", "kind": "client"}}
    answer = client.post(f"{url}/ofrep/v1/evaluate/flags/{SHARED_BUNDLE_FLAG}", json=body)
    return bool(answer.json().get("value"))


class NodeClient:
    """One Node OFREP client (``server-watch`` or ``watch``) printing ready, then changed."""

    def __init__(self, mode: str, url: str) -> None:
        node = shutil.which("node") or "node"
        context = {"targetingKey": "acme", "kind": "client"}
        self.process = subprocess.Popen(  # noqa: S603 - our own script
            [node, str(NODE_PACKAGE / "clients.mjs"), mode, json.dumps(context)],
            cwd=NODE_PACKAGE, env=clean_env(OFREP_URL=url),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[tuple[float, dict[str, object]]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None  # noqa: S101 - piped above
        for line in self.process.stdout:
            if line.startswith("{"):
                self.lines.put((time.perf_counter(), json.loads(line)))

    def next(self, timeout: float) -> tuple[float, dict[str, object]]:
        return self.lines.get(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


def node_route(mode: str, url: str, path: Path, trials: int, *, phase: float) -> list[float]:
    """Kills reaching a fresh Node client of ``mode`` per trial, through the server at ``url``."""
    phases = random.Random(16)
    times = []
    for _ in range(trials):
        unkill_file(path)
        wait(lambda: served_on(url), step=0.01)
        client = NodeClient(mode, url)
        try:
            _, ready = client.next(30)
            if ready.get("value") is not True:
                raise RuntimeError(f"the Node client did not start on: {ready}")
            time.sleep(phases.uniform(0, phase))
            began = time.perf_counter()
            kill_file(path)
            arrived, changed = client.next(POLL * 3)
            if changed.get("value") is not False:
                raise RuntimeError(f"the Node client did not turn off: {changed}")
            times.append(arrived - began)
        finally:
            client.stop()
    return times


def summary(name: str, times: list[float], target: float | None) -> str:
    ordered = sorted(times)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    verdict = "" if target is None else ("   met" if p95 <= target else "   MISSED")
    goal = "" if target is None else f"  (p95 target {target:g} s)"
    return (
        f"{name:<42} n={len(times):<3} median {statistics.median(times):7.3f} s"
        f"   p95 {p95:7.3f} s   max {max(ordered):7.3f} s{goal}{verdict}"
    )


def main() -> None:  # noqa: PLR0915 - one scenario per route, in the order they are printed
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="kills per event route")
    parser.add_argument("--broken-trials", type=int, default=10, help="kills per broken route")
    parser.add_argument("--no-node", action="store_true", help="skip the Node clients")
    args = parser.parse_args()
    # The stream-down route warns once that its stream is unavailable: expected here.
    logging.getLogger("leadctx_flags").setLevel(logging.ERROR)
    node = not args.no_node and (NODE_PACKAGE / "node_modules").is_dir()
    print(f"rollback time per route (python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    print(summary("env + restart (process only)", restart_route(min(args.trials, 20)), None))
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)

        def file_lane(name: str, *, watch: bool) -> Callable[[int], list[float]]:
            path = base / name / "overrides.json"
            path.parent.mkdir()
            write_document(path, start_document())
            phase = 0.05 if watch else POLL
            return lambda n: in_process_route(
                str(path), n, lambda: kill_file(path), lambda: unkill_file(path),
                phase=phase, flag_overrides_watch=watch,
            )  # fmt: skip

        def configmap_lane(name: str, *, watch: bool) -> Callable[[int], list[float]]:
            volume = ConfigMap(base / name, start_document())
            phase = 0.05 if watch else POLL
            return lambda n: in_process_route(
                str(volume.path), n,
                lambda: volume.edit(lambda d: apply_change(d, kill(), updated_by="bench")),
                lambda: volume.edit(lambda d: apply_change(d, unkill(), updated_by="bench")),
                phase=phase, flag_overrides_watch=watch,
            )  # fmt: skip

        with contextlib.ExitStack() as stack:
            # The event routes, one after the other.
            results["file watch"] = file_lane("watched", watch=True)(args.trials)
            results["ConfigMap swap, watched"] = configmap_lane("cm", watch=True)(args.trials)
            shared = base / "served" / "overrides.json"
            shared.parent.mkdir()
            write_document(shared, start_document())
            documents = stack.enter_context(static_server(shared.parent))
            serve = stack.enter_context(leadctx_serve(shared))
            results["remote: http document + events"] = in_process_route(
                f"{documents}/overrides.json", args.trials,
                lambda: kill_file(shared), lambda: unkill_file(shared),
                phase=0.05, flag_overrides_events=f"{serve}/ofrep/v1/events",
            )  # fmt: skip
            if node:
                for mode, name in (("server-watch", "Node server"), ("watch", "Node web")):
                    results[f"{name} provider via leadctx serve"] = node_route(
                        mode, serve, shared, args.trials, phase=0.05
                    )
            # The broken routes, concurrently: each waits on a 10 s poll.
            broken: dict[str, Callable[[int], list[float]]] = {
                "file, watch off": file_lane("unwatched", watch=False),
                "ConfigMap swap, watch off": configmap_lane("cm-unwatched", watch=False),
            }
            dark = base / "dark" / "overrides.json"
            dark.parent.mkdir()
            write_document(dark, start_document())
            dark_documents = stack.enter_context(static_server(dark.parent))
            broken["remote, stream down"] = lambda n: in_process_route(
                f"{dark_documents}/overrides.json", n,
                lambda: kill_file(dark), lambda: unkill_file(dark), phase=POLL,
                flag_overrides_events=f"http://127.0.0.1:{free_port()}/ofrep/v1/events",
            )  # fmt: skip
            if node:
                polled = base / "polled" / "overrides.json"
                polled.parent.mkdir()
                write_document(polled, start_document())
                polling = stack.enter_context(
                    leadctx_serve(polled, LEADCTX_FLAG_OVERRIDES_WATCH="false")
                )
                for mode, name in (("server-watch", "Node server"), ("watch", "Node web")):
                    # One Node route per server: two would kill each other's documents.
                    if mode == "watch":
                        webbed = base / "polled-web" / "overrides.json"
                        webbed.parent.mkdir()
                        write_document(webbed, start_document())
                        web_server = stack.enter_context(
                            leadctx_serve(webbed, LEADCTX_FLAG_OVERRIDES_WATCH="false")
                        )
                        broken[f"{name}, server's watch off"] = functools.partial(
                            node_route, mode, web_server, webbed, phase=POLL
                        )
                    else:
                        broken[f"{name}, server's watch off"] = functools.partial(
                            node_route, mode, polling, polled, phase=POLL
                        )
            outcomes: dict[str, list[float]] = {}
            threads = [
                threading.Thread(
                    target=lambda k=name, f=run: outcomes.__setitem__(k, f(args.broken_trials))
                )
                for name, run in broken.items()
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    for name, times in results.items():
        print(summary(name, times, 0.25 if "watch" in name or "swap" in name else 1.0))
    for name in broken:
        print(summary(name, outcomes[name], POLL + 0.5))


if __name__ == "__main__":
    main()
