"""Where overrides documents come from: a local file or an https endpoint.

A source answers one question per poll: is there a new document? ``fetch()`` returns the new
``OverridesDocument``, ``None`` when nothing changed since the last successful fetch, or
raises ``SourceError``. Sources do no scheduling and keep no decision state; the poller and
the provider do that.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import os
import threading
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol
from urllib.parse import unquote, urlsplit

from leadctx_flags.errors import ConfigurationError
from leadctx_flags.forking import after_fork_in_child
from leadctx_flags.storage import open_regular
from leadctx_flags.wire import MAX_DOCUMENT_BYTES, DocumentError
from leadctx_flags.wire import parse_document as _parse

if TYPE_CHECKING:
    # asyncio and httpx (with its own command line, which loads rich and click when installed)
    # are loaded by an HttpSource only: a file source, the common case, never pays for them.
    import asyncio

    import httpx

    from leadctx_flags.document import OverridesDocument

__all__ = [
    "DEFAULT_FETCH_DEADLINE",
    "FileSource",
    "HttpSource",
    "OverridesSource",
    "SourceError",
    "open_source",
]

DEFAULT_CONNECT_TIMEOUT: Final = 2.0
DEFAULT_READ_TIMEOUT: Final = 5.0
DEFAULT_FETCH_DEADLINE: Final = 10.0
"""Seconds for one whole fetch (connect, headers and body) unless configured otherwise."""
_LOCATION_VARIABLE: Final = "LEADCTX_FLAG_OVERRIDES"
_HTTP_OK: Final = 200
_HTTP_NOT_MODIFIED: Final = 304  # numbers, not http.HTTPStatus: no file source pays for http

logger = logging.getLogger(__name__)


class SourceError(Exception):
    """A poll that produced no usable document (unreachable, HTTP error, invalid document).

    Args:
        message: What went wrong, naming the source; never a token or document content.
        kind: A short class of failure for logs and events (``"HTTP 500"``, ``"ReadTimeout"``,
            ``"DocumentError"``).
    """

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class OverridesSource(Protocol):
    """Anything the poller can ask for the newest overrides document."""

    @property
    def description(self) -> str:
        """Where the documents come from, safe to log (no credentials)."""
        ...

    def fetch(self) -> OverridesDocument | None:
        """The document if it changed since the last successful fetch, else ``None``.

        Raises:
            SourceError: No usable document could be had this time.
        """
        ...

    def close(self) -> None:
        """Release connections; idempotent."""
        ...


class FileSource:
    """Overrides read from a local file; a new document is one whose bytes changed.

    The file is read and hashed on every poll: inode, size and mtime miss a same-size rewrite
    in place whose mtime was kept (``cp -p``, ``rsync -t``, coarse-timestamp filesystems),
    and reading at most 1 MiB each poll interval costs next to nothing.

    Args:
        path: The document file.
    """

    backoff: Final = False
    """Poll every interval even while failing: a missing file re-created after a loss must be
    seen within one interval, and reading a local file loads no server."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._digest: bytes | None = None

    @property
    def path(self) -> Path:
        """The document file."""
        return self._path

    @property
    def description(self) -> str:
        """The file's path."""
        return str(self._path)

    def fetch(self) -> OverridesDocument | None:
        """Read the file and return its document if the bytes changed; see ``OverridesSource``."""
        try:
            with open_regular(self._path) as handle:  # a named pipe would block the poller
                raw = handle.read(MAX_DOCUMENT_BYTES + 1)
                size = os.fstat(handle.fileno()).st_size  # named when too large
        except OSError as err:
            raise SourceError(f"{self._path}: {err.strerror}", kind=type(err).__name__) from err
        digest = hashlib.sha256(raw).digest()
        if digest == self._digest:
            return None
        document = _parse_or_raise(raw, self.description, size)
        self._digest = digest
        return document

    def close(self) -> None:
        """Nothing to release."""


class HttpSource:
    """Overrides fetched over https with conditional GETs (``If-None-Match``/``ETag``).

    Redirects are not followed (a redirect could lead to plain http or another host), bodies
    over 1 MiB are refused while streaming, and plain ``http://`` is allowed only to loopback.

    Every fetch has one total deadline covering connect, headers and body: a server that
    answers one byte a second cannot hold a fetch longer than ``deadline``. ``close()`` from
    another thread cancels a fetch in flight at once. The fetch runs on a private event loop
    (httpx's async client) because cancelling a coroutine is the one way to stop a request
    at any point, a DNS lookup included, without waiting for a socket timeout.

    After ``os.fork()`` the child drops the parent's loop and connections (their file
    descriptors are shared with the parent) and opens its own on its first fetch.

    Args:
        url: ``https://...`` (or ``http://`` to 127.0.0.0/8, ``::1`` or ``localhost``).
        token: Bearer token sent in ``Authorization``; never logged.
        connect_timeout: Seconds to establish a connection (at most ``deadline``).
        read_timeout: Seconds to wait for each read (at most ``deadline``).
        deadline: Seconds for a whole fetch: connect, headers and body.

    Raises:
        ConfigurationError: The URL is not https, or http to a non-loopback host.
        ValueError: A timeout or the deadline is not a positive finite number.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        deadline: float = DEFAULT_FETCH_DEADLINE,
    ) -> None:
        for name, seconds in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("deadline", deadline),
        ):
            if not (math.isfinite(seconds) and seconds > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {seconds}")
        self._url = url
        self._description = check_url(url)
        headers = {"Accept": "application/json", "User-Agent": "leadctx-flags"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._deadline = deadline
        import httpx  # noqa: PLC0415 - only an https source loads httpx (see the imports)

        self._timeout = httpx.Timeout(
            min(read_timeout, deadline), connect=min(connect_timeout, deadline)
        )
        self._etag: str | None = None
        # `_guard` protects the fields below; the fetch itself runs outside it.
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._busy = False  # a fetch is using the loop
        self._task: asyncio.Task[OverridesDocument | None] | None = None
        self._close_requested = False
        after_fork_in_child(self._after_fork_in_child)

    @property
    def description(self) -> str:
        """The URL without credentials or query string."""
        return self._description

    @property
    def deadline(self) -> float:
        """Seconds allowed for one whole fetch."""
        return self._deadline

    def fetch(self) -> OverridesDocument | None:
        """GET the document unless the server says it is unchanged (HTTP 304).

        Raises:
            SourceError: Unreachable, an HTTP error, an invalid document, the deadline passed
                (kind ``FetchDeadline``), or ``close()`` cancelled the fetch (kind ``Closed``).
        """
        import asyncio  # noqa: PLC0415 - an https source only; see the imports

        with self._guard:
            if self._busy:
                raise SourceError(f"{self._description}: a fetch is in flight", kind="Busy")
            if self._loop is None or self._client is None:  # lazily: a closed source reopens
                import httpx  # noqa: PLC0415 - loaded by __init__ already; see the imports

                self._loop = asyncio.new_event_loop()
                self._client = httpx.AsyncClient(
                    headers=self._headers,
                    timeout=self._timeout,
                    follow_redirects=False,
                    trust_env=False,  # no proxy or netrc from the environment for a rollback
                )
            loop, client = self._loop, self._client
            self._busy, self._close_requested = True, False
        try:
            raw, etag = loop.run_until_complete(self._fetch_within_deadline(client))
        except asyncio.CancelledError:
            raise SourceError(f"{self._description}: fetch cancelled", kind="Closed") from None
        finally:
            with self._guard:
                self._busy, self._task = False, None
                release = self._close_requested
            if release:
                self._release()
        if raw is None:
            return None
        document = _parse_or_raise(raw, self._description)
        self._etag = etag
        return document

    async def _fetch_within_deadline(
        self, client: httpx.AsyncClient
    ) -> tuple[bytes | None, str | None]:
        import asyncio  # noqa: PLC0415 - loaded by fetch() already; see the imports

        import httpx  # noqa: PLC0415 - loaded by __init__ already; see the imports

        task = asyncio.current_task()
        with self._guard:
            if self._close_requested:  # close() came between fetch() and this task starting
                raise asyncio.CancelledError
            self._task = task
        headers = {"If-None-Match": self._etag} if self._etag else {}
        try:
            async with asyncio.timeout(self._deadline):
                async with client.stream("GET", self._url, headers=headers) as response:
                    if response.status_code == _HTTP_NOT_MODIFIED:
                        return None, None
                    if response.status_code != _HTTP_OK:
                        kind = f"HTTP {response.status_code}"
                        raise SourceError(f"{self._description}: {kind}", kind=kind)
                    raw = await _read_capped(response, self._description)
                    return raw, response.headers.get("ETag")
        except TimeoutError:
            raise SourceError(
                f"{self._description}: no complete answer within {self._deadline:g} s",
                kind="FetchDeadline",
            ) from None
        except httpx.HTTPError as err:
            kind = type(err).__name__
            raise SourceError(f"{self._description}: {kind}", kind=kind) from err

    def close(self) -> None:
        """Cancel a fetch in flight and close the connection pool; idempotent, thread-safe.

        Returns at once: a fetch in flight on another thread ends with ``SourceError`` (kind
        ``Closed``) and releases the pool itself. A later ``fetch()`` opens a new pool.
        """
        with self._guard:
            if self._busy:
                self._close_requested = True
                task, loop = self._task, self._loop
                if task is not None and loop is not None:
                    loop.call_soon_threadsafe(task.cancel)
                return
        self._release()

    def _release(self) -> None:
        with self._guard:
            loop, client = self._loop, self._client
            self._loop = self._client = None
        if loop is None:
            return
        try:
            if client is not None:
                loop.run_until_complete(client.aclose())
        except Exception as err:  # noqa: BLE001 - closing must not raise into shutdown
            logger.debug("closing %s: %s", self._description, type(err).__name__)
        finally:
            # Not loop.shutdown_default_executor(): a DNS lookup stuck in the executor would
            # block it; its thread ends on its own.
            loop.close()

    def _after_fork_in_child(self) -> None:
        # The loop's selector and the pool's sockets are the parent's file descriptors: using
        # or closing them here would disturb the parent's connections. Forget them instead.
        self._guard = threading.Lock()  # the parent may have held it while forking
        self._loop = self._client = self._task = None
        self._busy = self._close_requested = False


def open_source(
    location: str,
    *,
    token: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    deadline: float = DEFAULT_FETCH_DEADLINE,
) -> OverridesSource:
    """The source for a ``LEADCTX_FLAG_OVERRIDES`` value: a path, ``file://`` or ``https://``.

    Args:
        location: The value: a path, ``file://`` URL or ``https://`` URL.
        token: Bearer token for https.
        connect_timeout: Seconds to connect (https).
        read_timeout: Seconds per read (https).
        deadline: Seconds for one whole fetch (https;
            ``LEADCTX_FLAG_OVERRIDES_FETCH_TIMEOUT_SECONDS``).

    Raises:
        ConfigurationError: An unsupported scheme, or http to a non-loopback host.
    """
    scheme = urlsplit(location).scheme.lower()  # messages name the scheme, never the location
    if scheme in {"https", "http"}:
        return HttpSource(
            location,
            token=token,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            deadline=deadline,
        )
    if scheme == "file":
        return FileSource(_file_url_path(location))
    if scheme and len(scheme) > 1:  # one letter would be a Windows drive, i.e. a path
        shown = scheme if scheme.isascii() and scheme.isalnum() else "?"
        raise ConfigurationError(
            f"{_LOCATION_VARIABLE}: unsupported scheme {shown!r}; "
            "use a file path, file:// or https://"
        )
    return FileSource(Path(location))


def _file_url_path(location: str) -> Path:
    """The local path a ``file://`` URL names, held to the rule the location itself is.

    A percent-escape must not smuggle in what the variable may not hold verbatim: ``%00`` (a
    path no file system opens, which used to fail every poll with a traceback), ``%0A`` or
    another control or invisible character, or bytes that are not UTF-8 (``%E9``, which
    decoding used to turn into U+FFFD: a file that never exists). The messages never echo
    the URL: it may carry credentials.

    Raises:
        ConfigurationError: Naming the variable and the rule.
    """
    parts = urlsplit(location)
    if parts.netloc not in {"", "localhost"}:
        raise ConfigurationError(
            f"{_LOCATION_VARIABLE}: a file URL must name a local path (file:///path), not a host"
        )
    try:
        path = unquote(parts.path, errors="strict")
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"{_LOCATION_VARIABLE}: the file URL's percent-escapes are not UTF-8"
        ) from None
    if not path:
        raise ConfigurationError(f"{_LOCATION_VARIABLE}: the file URL names no path")
    for index, char in enumerate(path):
        if unicodedata.category(char) in {"Cc", "Cf", "Cs"}:
            raise ConfigurationError(
                f"{_LOCATION_VARIABLE}: the file URL's path holds control or invisible "
                f"character U+{ord(char):04X} at position {index} (percent-escaped)"
            )
    return Path(path)


def check_url(url: str, *, variable: str = _LOCATION_VARIABLE) -> str:
    """``url`` without credentials or query string, if it may be fetched: https, or http to
    loopback.

    Raises:
        ConfigurationError: Naming ``variable``, when the URL may not be used.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    description = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
    if parts.scheme == "https" and host:
        return description
    if parts.scheme == "http" and _is_loopback(host):
        return description
    raise ConfigurationError(
        f"{variable}={description!r}: overrides must be fetched over https "
        "(plain http is allowed only to a loopback address)"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _read_capped(response: httpx.Response, description: str) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise SourceError(
            f"{description}: body of {declared} bytes exceeds {MAX_DOCUMENT_BYTES}",
            kind="BodyTooLarge",
        )
    received = bytearray()
    async for chunk in response.aiter_bytes():
        received += chunk
        if len(received) > MAX_DOCUMENT_BYTES:
            raise SourceError(
                f"{description}: body exceeds {MAX_DOCUMENT_BYTES} bytes", kind="BodyTooLarge"
            )
    return bytes(received)


def _parse_or_raise(raw: bytes, origin: str, size: int | None = None) -> OverridesDocument:
    try:
        return _parse(raw, origin=origin, size=size)
    except DocumentError as err:
        raise SourceError(str(err), kind="DocumentError") from err
