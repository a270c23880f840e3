"""Where overrides documents come from: a local file or an https endpoint.

A source answers one question per poll: is there a new document? ``fetch()`` returns the new
``OverridesDocument``, ``None`` when nothing changed since the last successful fetch, or
raises ``SourceError``. Sources do no scheduling and keep no decision state; the poller and
the provider do that.
"""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import unquote, urlsplit

import httpx

from leadctx_flags.document import MAX_DOCUMENT_BYTES, DocumentError, OverridesDocument
from leadctx_flags.document import parse_document as _parse
from leadctx_flags.errors import ConfigurationError

__all__ = [
    "FileSource",
    "HttpSource",
    "OverridesSource",
    "SourceError",
    "open_source",
]

DEFAULT_CONNECT_TIMEOUT: Final = 2.0
DEFAULT_READ_TIMEOUT: Final = 5.0
_LOCATION_VARIABLE: Final = "LEADCTX_FLAG_OVERRIDES"


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
            with self._path.open("rb") as handle:
                raw = handle.read(MAX_DOCUMENT_BYTES + 1)
        except OSError as err:
            raise SourceError(f"{self._path}: {err.strerror}", kind=type(err).__name__) from err
        digest = hashlib.sha256(raw).digest()
        if digest == self._digest:
            return None
        document = _parse_or_raise(raw, self.description)
        self._digest = digest
        return document

    def close(self) -> None:
        """Nothing to release."""


class HttpSource:
    """Overrides fetched over https with conditional GETs (``If-None-Match``/``ETag``).

    Redirects are not followed (a redirect could lead to plain http or another host), bodies
    over 1 MiB are refused while streaming, and plain ``http://`` is allowed only to loopback.

    Args:
        url: ``https://...`` (or ``http://`` to 127.0.0.0/8, ``::1`` or ``localhost``).
        token: Bearer token sent in ``Authorization``; never logged.
        connect_timeout: Seconds to establish a connection.
        read_timeout: Seconds to wait for each read; a server that accepts and never answers
            costs the poller this long, never an evaluation.

    Raises:
        ConfigurationError: The URL is not https, or http to a non-loopback host.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        self._url = url
        self._description = _check_url(url)
        headers = {"Accept": "application/json", "User-Agent": "leadctx-flags"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._client: httpx.Client | None = None
        self._etag: str | None = None

    @property
    def description(self) -> str:
        """The URL without credentials or query string."""
        return self._description

    def fetch(self) -> OverridesDocument | None:
        """GET the document unless the server says it is unchanged (HTTP 304)."""
        headers = {"If-None-Match": self._etag} if self._etag else {}
        if self._client is None:  # opened lazily, so a closed source can be polled again
            self._client = httpx.Client(
                headers=self._headers,
                timeout=self._timeout,
                follow_redirects=False,
                trust_env=False,  # no proxy or netrc from the environment for a rollback switch
            )
        try:
            with self._client.stream("GET", self._url, headers=headers) as response:
                if response.status_code == httpx.codes.NOT_MODIFIED:
                    return None
                if response.status_code != httpx.codes.OK:
                    kind = f"HTTP {response.status_code}"
                    raise SourceError(f"{self._description}: {kind}", kind=kind)
                raw = _read_capped(response, self._description)
                etag = response.headers.get("ETag")
        except httpx.HTTPError as err:
            kind = type(err).__name__
            raise SourceError(f"{self._description}: {kind}", kind=kind) from err
        document = _parse_or_raise(raw, self._description)
        self._etag = etag
        return document

    def close(self) -> None:
        """Close the connection pool; idempotent. A later ``fetch()`` opens a new one."""
        client, self._client = self._client, None
        if client is not None:
            client.close()


def open_source(
    location: str,
    *,
    token: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
) -> OverridesSource:
    """The source for a ``LEADCTX_FLAG_OVERRIDES`` value: a path, ``file://`` or ``https://``.

    Raises:
        ConfigurationError: An unsupported scheme, or http to a non-loopback host.
    """
    scheme = urlsplit(location).scheme.lower()
    if scheme in {"https", "http"}:
        return HttpSource(
            location, token=token, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
    if scheme == "file":
        parts = urlsplit(location)
        if parts.netloc not in {"", "localhost"}:
            raise ConfigurationError(
                f"{_LOCATION_VARIABLE}={location!r}: file URLs must name a local path"
            )
        return FileSource(Path(unquote(parts.path)))
    if scheme and len(scheme) > 1:  # one letter would be a Windows drive, i.e. a path
        raise ConfigurationError(
            f"{_LOCATION_VARIABLE}={location!r}: unsupported scheme {scheme!r}; "
            "use a file path, file:// or https://"
        )
    return FileSource(Path(location))


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    description = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
    if parts.scheme == "https" and host:
        return description
    if parts.scheme == "http" and _is_loopback(host):
        return description
    raise ConfigurationError(
        f"{_LOCATION_VARIABLE}={description!r}: overrides must be fetched over https "
        "(plain http is allowed only to a loopback address)"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_capped(response: httpx.Response, description: str) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise SourceError(
            f"{description}: body of {declared} bytes exceeds {MAX_DOCUMENT_BYTES}",
            kind="BodyTooLarge",
        )
    received = bytearray()
    for chunk in response.iter_bytes():
        received += chunk
        if len(received) > MAX_DOCUMENT_BYTES:
            raise SourceError(
                f"{description}: body exceeds {MAX_DOCUMENT_BYTES} bytes", kind="BodyTooLarge"
            )
    return bytes(received)


def _parse_or_raise(raw: bytes, origin: str) -> OverridesDocument:
    try:
        return _parse(raw, origin=origin)
    except DocumentError as err:
        raise SourceError(str(err), kind="DocumentError") from err
