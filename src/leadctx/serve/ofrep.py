"""OFREP's wire format: a request body to an evaluation context, a resolution to a response.

Pure functions, no I/O. The decision itself is never made here: it is whatever
``LeadCtxProvider.resolve_boolean_details`` answered, serialised in the shapes of the OFREP
specification (open-feature/protocol ``service/openapi.yaml``) and of what the official
clients read:

- a success always carries ``key``, ``value``, ``reason``, ``variant`` and ``metadata``
  (the Python client reads ``variant`` unconditionally);
- a failure always carries ``key``, ``errorCode`` and ``errorDetails``;
- ``errorDetails`` is the provider's own message, which names the rule and the type of a bad
  value, never the value; for an unknown key it does not even repeat the key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails

from leadctx_flags.flags import KNOWN_FLAGS

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ECHOED_KEY_LENGTH",
    "EncodedAnswers",
    "EncodedBulkAnswers",
    "OfrepAnswer",
    "RequestError",
    "answer_for",
    "bulk_body",
    "encode",
    "evaluation_context",
    "failure",
    "parse_body",
    "resolution_identity",
]

MAX_BODY_BYTES: Final = 64 * 1024
"""The largest request body accepted; a larger one is answered 413."""

MAX_ECHOED_KEY_LENGTH: Final = 256
"""A flag key longer than this is not echoed in the ``key`` of a failure (it is shortened)."""

TARGETING_KEY: Final = "targetingKey"

# HTTP status of each error code a single evaluation can answer. GENERAL is the provider failing
# closed (overrides required but unavailable, a configuration error): the spec's 500, with the
# spec's JSON body and no traceback.
_STATUS: Final[Mapping[ErrorCode, int]] = {
    ErrorCode.FLAG_NOT_FOUND: 404,
    ErrorCode.PARSE_ERROR: 400,
    ErrorCode.INVALID_CONTEXT: 400,
    ErrorCode.TARGETING_KEY_MISSING: 400,
    ErrorCode.TYPE_MISMATCH: 400,
    ErrorCode.GENERAL: 500,
}


class RequestError(ValueError):
    """A request that cannot be evaluated at all (its body is not OFREP's shape).

    Args:
        code: The OFREP ``errorCode``.
        details: ``errorDetails``: names the rule that failed, never the input.
    """

    def __init__(self, code: ErrorCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass(frozen=True, slots=True)
class OfrepAnswer:
    """One flag's answer: the HTTP status it gets alone, and its JSON object."""

    status: int
    body: dict[str, Any]


def _refuse_constant(name: str) -> object:
    raise ValueError(name)


_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def parse_body(raw: bytes) -> Mapping[str, Any]:
    """The JSON object of a request body.

    Raises:
        RequestError: PARSE_ERROR when the body is not UTF-8 JSON, holds ``NaN`` or
            ``Infinity``, nests too deeply to parse, or is not an object.
    """
    try:
        body = _DECODER.decode(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(ErrorCode.PARSE_ERROR, "request body is not UTF-8") from None
    except (ValueError, RecursionError):
        # RecursionError: a body of 30,000 nested brackets fits the size cap; refused, not fatal.
        raise RequestError(ErrorCode.PARSE_ERROR, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RequestError(ErrorCode.PARSE_ERROR, "request body must be a JSON object")
    return body


def evaluation_context(body: Mapping[str, Any]) -> EvaluationContext:
    """The OpenFeature evaluation context of a request body ``{"context": {...}}``.

    ``targetingKey`` becomes ``targeting_key`` as given (a number stays a number, so that the
    provider refuses it exactly as in process); every other member becomes an attribute. A
    missing or ``null`` context is an empty one: the official Python client sends ``{}`` when
    the caller passed no context, and an empty context is answered as in process.

    Raises:
        RequestError: INVALID_CONTEXT when ``context`` is present but not an object.
    """
    context = body.get("context")
    if context is None:
        return EvaluationContext()
    if not isinstance(context, dict):
        raise RequestError(ErrorCode.INVALID_CONTEXT, "context must be a JSON object")
    attributes = {name: value for name, value in context.items() if name != TARGETING_KEY}
    return EvaluationContext(targeting_key=context.get(TARGETING_KEY), attributes=attributes)


def answer_for(key: str, details: FlagResolutionDetails[bool]) -> OfrepAnswer:
    """The OFREP answer for the provider's resolution of ``key``.

    Args:
        key: The flag key asked for.
        details: What ``LeadCtxProvider.resolve_boolean_details`` returned.
    """
    metadata = dict(details.flag_metadata)
    code = details.error_code
    if code is None:
        return OfrepAnswer(
            200,
            {
                "key": key,
                "value": details.value,
                "reason": str(details.reason),
                "variant": details.variant,
                "metadata": metadata,
            },
        )
    if code is ErrorCode.FLAG_NOT_FOUND:
        # The provider's message repeats the key; the key is already in `key`, shortened.
        message = "flag is not served by this server"
    else:
        message = details.error_message or str(code)
    return OfrepAnswer(_STATUS.get(code, 400), failure(key, code, message, metadata=metadata))


class EncodedAnswers:
    """The encoded answer of each distinct resolution, kept so a hot route encodes once.

    A resolution is one of a small set (the provider's decisions are constants, its metadata
    one mapping per decision and snapshot), so the bytes of ``answer_for`` are looked up by
    what they are made of. At most ``limit`` entries; the cache starts over when full (a new
    snapshot, say, or keys nobody serves).
    """

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._cache: dict[tuple[object, ...], tuple[int, bytes]] = {}

    def encoded(self, key: str, details: FlagResolutionDetails[bool]) -> tuple[int, bytes]:
        """``(status, body)`` of ``answer_for(key, details)``."""
        if key not in KNOWN_FLAGS:  # a key from a URL may be long: not worth keeping
            answer = answer_for(key, details)
            return answer.status, encode(answer.body)
        identity = resolution_identity(key, details)
        found = self._cache.get(identity)
        if found is None:
            answer = answer_for(key, details)
            found = (answer.status, encode(answer.body))
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[identity] = found
        return found


def resolution_identity(key: str, details: FlagResolutionDetails[bool]) -> tuple[object, ...]:
    """Everything of a resolution that its OFREP answer is made of, as a hashable value."""
    return (
        key,
        details.value,
        details.reason,
        details.variant,
        details.error_code,
        details.error_message,
        tuple(details.flag_metadata.items()),
    )


_SET_METADATA: Final = frozenset({"flagSetId", "version"})


def bulk_body(
    resolutions: Sequence[tuple[str, FlagResolutionDetails[bool]]], events_uri: str
) -> dict[str, Any]:
    """The bulk answer: every flag's answer, the flag set's metadata, the change-event stream.

    Args:
        resolutions: ``(key, resolution)`` of every flag, in the order to answer them.
        events_uri: The ``requestUri`` of the change-event stream (ADR 0008).
    """
    set_metadata: dict[str, Any] = {}
    for _, details in resolutions:
        set_metadata = {k: v for k, v in details.flag_metadata.items() if k in _SET_METADATA}
    return {
        "flags": [answer_for(key, details).body for key, details in resolutions],
        "metadata": set_metadata,
        "eventStreams": [{"type": "sse", "endpoint": {"requestUri": events_uri}}],
    }


class EncodedBulkAnswers:
    """The encoded bulk answer and its ETag for each distinct set of resolutions and stream.

    The ETag is a hash of the answer, as flagd computes it: it covers the context and the
    flag state alike, so a client keeping its ETag across a context change still gets the new
    context's flags. Like ``EncodedAnswers``, at most ``limit`` entries, started over when full.
    """

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._cache: dict[tuple[object, ...], tuple[bytes, bytes]] = {}

    def encoded(
        self, resolutions: Sequence[tuple[str, FlagResolutionDetails[bool]]], events_uri: str
    ) -> tuple[bytes, bytes]:
        """``(etag, body)`` of ``bulk_body(resolutions, events_uri)``; the ETag is quoted."""
        identity = (events_uri, *(resolution_identity(k, d) for k, d in resolutions))
        found = self._cache.get(identity)
        if found is None:
            body = encode(bulk_body(resolutions, events_uri))
            found = (b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"', body)
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[identity] = found
        return found


def failure(
    key: str, code: ErrorCode, details: str, *, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An OFREP failure object: ``key``, ``errorCode``, ``errorDetails`` (and ``metadata``)."""
    body: dict[str, Any] = {
        "key": echoed_key(key),
        "errorCode": str(code),
        "errorDetails": details,
    }
    if metadata:
        body["metadata"] = dict(metadata)
    return body


def echoed_key(key: str) -> str:
    """``key`` as it may be repeated in a response: at most 256 characters."""
    return key if len(key) <= MAX_ECHOED_KEY_LENGTH else key[:MAX_ECHOED_KEY_LENGTH]


def encode(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, keys in a fixed order, so equal answers are equal bytes (ETags)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
