"""A minimal Server-Sent Events reader for the tests: events and comments, with a deadline."""

from __future__ import annotations

import queue
import socket
import threading
from dataclasses import dataclass, field

import httpx


@dataclass
class Received:
    """One block of a stream: an event (``id``, ``data``) or a comment (``comment``)."""

    fields: dict[str, str] = field(default_factory=dict)
    comment: str | None = None


class StreamReader:
    """Reads ``url`` as an event stream on a daemon thread; blocks are handed over by a queue.

    Args:
        url: The stream's URL.
        headers: Request headers (``Last-Event-ID``...).
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self._blocks: queue.Queue[Received | None] = queue.Queue()
        self.status: int | None = None
        self._opened = threading.Event()
        self._response: httpx.Response | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(30, connect=5))
        self._thread = threading.Thread(target=self._read, args=(url, headers or {}), daemon=True)
        self._thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                self._response = response
                self.status = response.status_code
                self._opened.set()
                block = Received()
                for line in response.iter_lines():
                    if not line:
                        if block.fields or block.comment is not None:
                            self._blocks.put(block)
                        block = Received()
                    elif line.startswith(":"):
                        block.comment = line[1:].strip()
                    else:
                        name, _, value = line.partition(":")
                        block.fields[name] = value.removeprefix(" ")
        except Exception:  # noqa: BLE001, S110 - close() from the test ends the read any way it can
            pass
        finally:
            self._opened.set()
            self._blocks.put(None)  # the stream ended

    def wait_open(self, timeout: float = 10) -> int | None:
        """The response status once the headers are in (``None``: no response)."""
        self._opened.wait(timeout)
        return self.status

    def next(self, timeout: float) -> Received | None:
        """The next block within ``timeout`` seconds; ``None`` when the stream ended."""
        try:
            return self._blocks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing on the stream within {timeout} s") from None

    def next_event(self, timeout: float) -> Received | None:
        """The next block that is an event (skipping heartbeats and the ``retry`` block)."""
        while True:
            block = self.next(timeout)
            if block is None or "data" in block.fields:
                return block

    def ended_within(self, timeout: float) -> bool:
        """Whether the stream ends within ``timeout`` seconds (blocks before the end skipped)."""
        try:
            while self._blocks.get(timeout=timeout) is not None:
                pass
        except queue.Empty:
            return False
        return True

    def close(self) -> None:
        """Close the connection and join the reader."""
        response = self._response
        if response is not None:
            # Shut the socket down under the reader's blocking read, so it returns at once.
            stream = response.extensions.get("network_stream")
            if stream is not None:
                stream.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        self._client.close()
        self._thread.join(5)
