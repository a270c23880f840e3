"""A real ``leadctx serve`` process for one test: 127.0.0.1, a free port, stopped by its pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

ROOT = Path(__file__).resolve().parents[2]
READY_WITHIN = 20.0
"""Seconds a server may take to answer /healthz (a loaded CI machine, a first fetch)."""


def free_port() -> int:
    """A port nothing listens on now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without LEADCTX_* / OTEL_*, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LEADCTX_", "OTEL_"))}
    base.update(env)
    return base


class ServeProcess:
    """``leadctx serve`` as a subprocess, ready (``/healthz`` answers) after ``start``.

    Args:
        env: ``LEADCTX_*`` variables for the server.
        args: Extra command-line arguments.
        port: The port to listen on (a free one by default; a restart passes the old one).
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
        port: int | None = None,
    ) -> None:
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self._argv = [
            sys.executable, "-m", "leadctx", "--log-level", "INFO", "serve",
            "--port", str(self.port), *args,
        ]  # fmt: skip
        self._env = clean_environment(env or {})
        self._process: subprocess.Popen[str] | None = None
        # A file, not a pipe: a server logging more than a pipe holds would block on it.
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed in wait()
        self.stderr = ""

    @property
    def process(self) -> subprocess.Popen[str]:
        """The running process."""
        assert self._process is not None, "not started"
        return self._process

    def start(self) -> None:
        """Start the server and wait (bounded) until it has bound its port and answers ``/healthz``.

        Both: a ``/healthz`` answer alone may come from another process that holds the port
        (this one then fails to bind); the server's own "listening" line says it is this one.
        """
        self._process = subprocess.Popen(  # noqa: S603 - our own command, this interpreter
            self._argv,
            cwd=ROOT,
            env=self._env,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            text=True,
        )
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.wait(1)
                raise AssertionError(f"leadctx serve exited early: {self.stderr[-2000:]}")
            try:
                if self._has_bound() and (
                    httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200
                ):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # a bounded poll for readiness, not a fixed wait
        self.stop()
        raise AssertionError(f"leadctx serve not ready within {READY_WITHIN} s")

    def _has_bound(self) -> bool:
        return f"listening on http://127.0.0.1:{self.port}" in self.written()

    def written(self) -> str:
        """What the running server has written on stderr so far (up to 1 MiB)."""
        # pread: the server shares the file's offset; reading must not move it.
        return os.pread(self._stderr.fileno(), 1 << 20, 0).decode("utf-8", "replace")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to the server, by its pid."""
        os.kill(self.process.pid, signum)

    def wait(self, timeout: float) -> int:
        """Wait for the server to exit; its return code. Reads what it wrote on stderr."""
        code = self.process.wait(timeout)
        if not self._stderr.closed:
            self._stderr.seek(0)
            self.stderr = self._stderr.read()
        return code

    def stop(self) -> None:
        """Stop the server by its pid (SIGTERM, then SIGKILL after 5 s); idempotent."""
        process = self._process
        try:
            if process is None or process.poll() is not None:
                return
            process.terminate()
            try:
                self.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        finally:
            if process is not None and not self._stderr.closed and process.poll() is not None:
                self.wait(0)
                self._stderr.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
