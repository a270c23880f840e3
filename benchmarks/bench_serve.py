"""``leadctx serve`` against the framework floor, side by side in one run.

Three servers, each one uvicorn process on 127.0.0.1 (uvloop + httptools where installed):

- **floor**: a Starlette route answering a constant JSON body (the framework's cost alone);
- **floor, plain uvicorn**: the same route on asyncio + h11 (what ``uvicorn`` without the
  ``[standard]`` extra serves);
- **leadctx serve**: ``POST /ofrep/v1/evaluate/flags/shared_bundle.enabled``, and the bulk
  route with ``If-None-Match`` (every answer a 304).

A small asyncio client keeps ``--connections`` keep-alive connections busy for ``--seconds``
per workload and round; each round runs the workloads in a new order, so that a loaded
machine affects each alike, and the figures are medians over ``--rounds`` (a ratio: the
median of each round's ratio to the floor's run of that round). Besides requests per second,
the server process's CPU time per request is read from ``/proc``: on a machine shared with
other work it is the steadier measure of what a saturated server would do. Then 1,000
change-event streams are opened on ``leadctx serve`` and its resident memory read before and
after.

Run: ``.venv/bin/python benchmarks/bench_serve.py [--seconds 1] [--rounds 15] [--connections 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FLAG_PATH = "/ofrep/v1/evaluate/flags/shared_bundle.enabled"
BULK_PATH = "/ofrep/v1/evaluate/flags"
BODY = json.dumps({"context": {"targetingKey": "acme", "kind": "client"}}).encode()


def floor_app() -> object:
    """The framework floor: one Starlette route answering a constant JSON body."""
    from starlette.applications import Starlette  # noqa: PLC0415 - only in the floor process
    from starlette.requests import Request  # noqa: PLC0415
    from starlette.responses import Response  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    constant = json.dumps(
        {"key": "shared_bundle.enabled", "value": True, "reason": "STATIC", "variant": "on"}
    ).encode()

    async def answer(request: Request) -> Response:
        await request.body()
        return Response(constant, media_type="application/json")

    return Starlette(routes=[Route(FLAG_PATH, answer, methods=["POST"])])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def cpu_seconds(self) -> float:
        """CPU time the server process has used (all its threads, user + system)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


def start(name: str, argv: list[str], port: int, env: dict[str, str]) -> Server:
    process = subprocess.Popen(  # noqa: S603 - this interpreter, our own code
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Server(name, process, port)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{name} did not start")


def request_bytes(path: str, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n{extra}\r\n"
    ).encode() + BODY


async def one_connection(port: int, request: bytes, until: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while time.perf_counter() < until:
            sent = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in {b"\r\n", b""}:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            if not status.startswith((b"HTTP/1.1 200", b"HTTP/1.1 304")):
                raise RuntimeError(status.decode())
            done += 1
    finally:
        writer.close()
    return done


async def load(
    port: int, request: bytes, seconds: float, connections: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + seconds
    counts = await asyncio.gather(
        *(one_connection(port, request, until, latencies) for _ in range(connections))
    )
    return sum(counts) / (time.perf_counter() - started), latencies


@dataclass(frozen=True)
class Run:
    """One workload's slot of one round."""

    rps: float
    latencies: list[float]
    cpu_per_request: float  # the server process's CPU seconds per request


def report(results: dict[str, list[Run]], args: argparse.Namespace) -> None:
    """Print each workload's medians, and its ratios to the floor's runs of the same rounds.

    ``x floor`` compares requests per second; ``x floor, CPU`` compares the server's CPU time
    per request (floor / workload): the throughput ratio a saturated server would show, and
    far less sensitive than requests per second to other load on a shared machine.
    """
    floor_runs = results["floor (constant JSON)"]
    rounds = f"{args.rounds} rounds of {args.seconds:g} s"
    print(f"{args.connections} keep-alive connections, {rounds}; medians over rounds")
    print("(ratios: the median of each round's ratio to the floor's run in the same round)")
    header = f"{'workload':26} {'req/s':>7} {'x floor':>8} {'CPU us/req':>11} {'x floor, CPU':>13}"
    print(f"{header} {'p50 ms':>7} {'p99 ms':>7}")
    for name, runs in results.items():
        pairs = list(zip(runs, floor_runs, strict=True))
        rps = statistics.median(run.rps for run in runs)
        ratio = statistics.median(run.rps / floor.rps for run, floor in pairs)
        cpu = statistics.median(run.cpu_per_request for run in runs) * 1e6
        cpu_ratio = statistics.median(
            floor.cpu_per_request / run.cpu_per_request for run, floor in pairs
        )
        latencies = [value for run in runs for value in run.latencies]
        p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
        print(
            f"{name:26} {rps:7.0f} {ratio:8.2f} {cpu:11.1f} {cpu_ratio:13.2f} {p50:7.2f} {p99:7.2f}"
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def open_streams(port: int, count: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /ofrep/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status = await reader.readline()
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(status.decode())
        while await reader.readline() not in {b"\r\n", b""}:
            pass
        writers.append(writer)
    return writers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--serve-floor", choices=["standard", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        import uvicorn  # noqa: PLC0415

        plain = args.serve_floor == "plain"
        uvicorn.run(
            floor_app(),  # type: ignore[arg-type]
            host="127.0.0.1",
            port=args.port,
            access_log=False,
            log_level="warning",
            loop="asyncio" if plain else "auto",
            http="h11" if plain else "auto",
        )
        return

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADCTX_", "OTEL_"))}
    env |= {
        "LEADCTX_SHARED_BUNDLE_CLIENTS": "acme",
        "LEADCTX_SERVE_MAX_STREAMS": str(args.streams + 10),
    }
    me = [sys.executable, str(Path(__file__).resolve())]
    ports = [free_port() for _ in range(3)]
    servers = [
        start("floor", [*me, "--serve-floor", "standard", "--port", str(ports[0])], ports[0], env),
        start(
            "floor, plain uvicorn",
            [*me, "--serve-floor", "plain", "--port", str(ports[1])],
            ports[1],
            env,
        ),
        start(
            "leadctx serve",
            [sys.executable, "-m", "leadctx", "serve", "--port", str(ports[2])],
            ports[2],
            env,
        ),
    ]
    floor, plain, ours = servers
    try:
        bulk = httpx.post(f"http://127.0.0.1:{ours.port}{BULK_PATH}", content=BODY, headers={
            "content-type": "application/json"
        }).headers["etag"]  # fmt: skip
        workloads = {
            "floor (constant JSON)": (floor, request_bytes(FLAG_PATH)),
            "floor, plain uvicorn": (plain, request_bytes(FLAG_PATH)),
            "leadctx serve, one flag": (ours, request_bytes(FLAG_PATH)),
            "leadctx serve, bulk 304": (
                ours,
                request_bytes(BULK_PATH, f"If-None-Match: {bulk}\r\n"),
            ),
        }
        results: dict[str, list[Run]] = {name: [] for name in workloads}
        for server, request in workloads.values():  # warm-up
            asyncio.run(load(server.port, request, 0.5, args.connections))
        order = list(workloads)
        shuffler = random.Random(17)
        for _ in range(args.rounds):
            shuffler.shuffle(order)  # no workload always runs after the same one
            for name in order:
                server, request = workloads[name]
                cpu = server.cpu_seconds()
                rps, latencies = asyncio.run(
                    load(server.port, request, args.seconds, args.connections)
                )
                cpu_per_request = (server.cpu_seconds() - cpu) / len(latencies)
                results[name].append(Run(rps, latencies, cpu_per_request))
        report(results, args)

        async def memory() -> tuple[int, int]:
            before = ours.rss_kib()
            writers = await open_streams(ours.port, args.streams)
            after = ours.rss_kib()
            for writer in writers:
                writer.close()
            return before, after

        before, after = asyncio.run(memory())
        per_stream = (after - before) / args.streams
        print(
            f"leadctx serve memory: {before / 1024:.1f} MiB idle, {after / 1024:.1f} MiB with "
            f"{args.streams} open event streams ({per_stream:.1f} KiB per stream)"
        )
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
