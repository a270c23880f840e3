"""The remote overrides document, ``schema: leadctx.overrides/v1``.

One JSON document turns the shared bundle off (or on) for one client or for all without a
redeploy. It is parsed strictly: unknown fields, unknown flag keys and non-boolean switches are
rejected, because a typo in a rollback document must never be read as "no change".

Example::

    {
      "schema": "leadctx.overrides/v1",
      "revision": 12,
      "updated_at": "2026-11-25T16:00:00Z",
      "updated_by": "guardrails",
      "flags": {
        "shared_bundle.enabled": {
          "kill": false,
          "default": null,
          "clients": {"acme": true, "globex": false},
          "note": "stage 2: acme only"
        }
      }
    }
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
)

from leadctx_flags.client_ids import canonical_client_id, validate_client_id
from leadctx_flags.errors import describe_validation_error
from leadctx_flags.flags import KNOWN_FLAGS

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_REVISION",
    "OVERRIDES_SCHEMA",
    "DocumentError",
    "DocumentTooLargeError",
    "FlagOverride",
    "OverridesDocument",
    "parse_document",
]

OVERRIDES_SCHEMA: Final = "leadctx.overrides/v1"

MAX_DOCUMENT_BYTES: Final = 1024 * 1024
"""Largest document accepted from any source (1 MiB): a rollout document is a few KiB."""

MAX_REVISION: Final = 2**53
"""Highest revision accepted: exact in every JSON implementation (a double's integer range),
and far above the clock-derived revisions (unix milliseconds) the CLI writes, so that one
absurd revision cannot block every later document."""


class DocumentError(ValueError):
    """An overrides document that cannot be used: not JSON, wrong schema, bad field.

    The message names where the document came from and the offending field. It never echoes
    client lists or notes.
    """


class DocumentTooLargeError(DocumentError):
    """A document above ``MAX_DOCUMENT_BYTES``: every provider refuses it whole.

    Args:
        message: The complete message, naming the document and its real size.
        size: The document's real size in bytes (not the capped number of bytes read).
    """

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


def _known_flag(key: str) -> str:
    if key not in KNOWN_FLAGS:
        known = ", ".join(sorted(KNOWN_FLAGS))
        raise ValueError(f"unknown flag key {key!r}; known flags: {known}")
    return key


ClientId = Annotated[str, AfterValidator(validate_client_id)]
FlagKey = Annotated[str, AfterValidator(_known_flag)]


class FlagOverride(BaseModel):
    """Overrides for one flag.

    Args:
        kill: Off for every client; beats every other rule, the environment's included.
        default: The value for clients with no entry in ``clients`` and not on the env
            allowlist; ``None`` leaves the environment default in force.
        clients: Per-client values. A ``false`` here beats the env allowlist: that is how one
            client is rolled back without a redeploy.
        note: Free text for people (why this revision exists). Never logged.
    """

    # defer_build: the validator is built on first use, not at import (docs/performance.md).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kill: StrictBool = False
    default: StrictBool | None = None
    clients: dict[ClientId, StrictBool] = Field(default_factory=dict)
    note: str | None = Field(default=None, max_length=1000)

    @field_validator("clients", mode="before")
    @classmethod
    def _one_entry_per_client(cls, value: object) -> object:
        # Keys are stored in canonical form (NFC): two spellings of one client would collapse
        # into one entry, and which value survived would depend on their order.
        if isinstance(value, dict):
            seen: set[str] = set()
            for key in value:
                if isinstance(key, str):
                    canonical = canonical_client_id(key)
                    if canonical in seen:
                        raise ValueError(
                            f"two entries name client {_shown(canonical)} "
                            "(spelt differently, the same once normalised to NFC)"
                        )
                    seen.add(canonical)
        return value


class OverridesDocument(BaseModel):
    """A whole overrides document; see the module docstring for the JSON shape.

    Args:
        schema_: Always ``"leadctx.overrides/v1"`` (JSON key ``schema``).
        revision: Monotonic version, a JSON integer from 0 to 2^53. A document with a lower
            revision than the one in force is refused as a replay, unless it kills the flag
            (see the rollout playbook).
        updated_at: When it was written (timezone-aware).
        updated_by: Who wrote it (a person, ``guardrails``, ``leadctx-cli``).
        flags: Overrides per flag key; only known flag keys are accepted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    schema_: Literal["leadctx.overrides/v1"] = Field(default=OVERRIDES_SCHEMA, alias="schema")
    revision: StrictInt = Field(default=0, ge=0, le=MAX_REVISION)
    updated_at: AwareDatetime | None = None
    updated_by: str | None = Field(default=None, max_length=200)
    flags: dict[FlagKey, FlagOverride] = Field(default_factory=dict)

    def flag(self, key: str) -> FlagOverride | None:
        """The overrides for ``key``, or ``None`` if the document says nothing about it."""
        return self.flags.get(key)

    def to_json(self) -> str:
        """Serialise with the wire names (``schema``), two-space indented, keys in order."""
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def parse_document(raw: bytes, *, origin: str, size: int | None = None) -> OverridesDocument:
    """Parse and validate an overrides document, strictly.

    Beyond the model's rules, the JSON itself must be unambiguous: a key repeated in one
    object is an error (``"kill": true, ..., "kill": false`` must not quietly mean "not
    killed"), and so is nesting too deep to parse. The ``schema`` field is required on the
    wire: ``{}`` or a document without it is not a v1 document (a placeholder must not
    satisfy ``LEADCTX_FLAG_OVERRIDES_REQUIRED``); only code building a model may omit it.

    Args:
        raw: The document's bytes (UTF-8 JSON).
        origin: Where it came from (a path or URL), for error messages.
        size: The document's real size when ``raw`` is a capped read of it (a reader stops
            at ``MAX_DOCUMENT_BYTES + 1``); the size error then names the real size.

    Raises:
        DocumentTooLargeError: Above ``MAX_DOCUMENT_BYTES``.
        DocumentError: Not UTF-8 JSON, ambiguous, or not a valid ``leadctx.overrides/v1``
            document. The message names ``origin``, each offending field and the rule it
            breaks, never a value.
    """
    if len(raw) > MAX_DOCUMENT_BYTES:
        real = max(len(raw), size or 0)
        raise DocumentTooLargeError(
            f"{origin}: overrides document is {real} bytes; at most {MAX_DOCUMENT_BYTES}",
            size=real,
        )
    loaded = _check_json(raw, origin)
    missing_schema = isinstance(loaded, dict) and "schema" not in loaded
    schema_problem = f"schema: field required (must be {OVERRIDES_SCHEMA!r})"
    try:
        document = OverridesDocument.model_validate_json(raw)
    except ValidationError as err:
        problems = describe_validation_error(err, name=_document_path)
        if missing_schema:
            problems = [schema_problem, *problems]
        problems_text = "; ".join(problems)
        raise DocumentError(f"{origin}: invalid overrides document: {problems_text}") from None
    if missing_schema:
        raise DocumentError(f"{origin}: invalid overrides document: {schema_problem}")
    return document


def _check_json(raw: bytes, origin: str) -> object:
    """Refuse duplicate keys and unparseable nesting; pydantic then reads the same bytes.

    Returns the parsed JSON, or ``None`` when it is not JSON (pydantic's error then names
    the line and column).
    """
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as err:
        raise DocumentError(
            f"{origin}: invalid overrides document: key {err.key} appears twice in one object"
        ) from None
    except RecursionError:
        raise DocumentError(f"{origin}: invalid overrides document: nested too deeply") from None
    except (ValueError, TypeError):
        return None


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = _shown(key)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _shown(key: str) -> str:
    # Keys are field names, flag keys or client ids (which may be logged): escaped, bounded.
    return repr(key if len(key) <= 40 else key[:40] + "...")


def _document_path(loc: tuple[int | str, ...]) -> str:
    # A client id that fails validation is reported as clients[<key>]; pydantic appends
    # "[key]" to say that the key, not the value, is at fault.
    parts: list[str] = []
    for part in loc:
        if part == "[key]":
            continue
        text = str(part)
        if parts and parts[-1] == "clients":
            parts[-1] = f"clients[{_shown(text)}]"
        else:
            parts.append(text)
    return ".".join(parts) or "(document)"
