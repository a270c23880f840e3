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

from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
)

from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.flags import KNOWN_FLAGS

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "OVERRIDES_SCHEMA",
    "DocumentError",
    "FlagOverride",
    "OverridesDocument",
    "parse_document",
]

OVERRIDES_SCHEMA: Final = "leadctx.overrides/v1"

MAX_DOCUMENT_BYTES: Final = 1024 * 1024
"""Largest document accepted from any source (1 MiB): a rollout document is a few KiB."""


class DocumentError(ValueError):
    """An overrides document that cannot be used: not JSON, wrong schema, bad field.

    The message names where the document came from and the offending field. It never echoes
    client lists or notes.
    """


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

    model_config = ConfigDict(extra="forbid", frozen=True)

    kill: StrictBool = False
    default: StrictBool | None = None
    clients: dict[ClientId, StrictBool] = Field(default_factory=dict)
    note: str | None = Field(default=None, max_length=1000)


class OverridesDocument(BaseModel):
    """A whole overrides document; see the module docstring for the JSON shape.

    Args:
        schema_: Always ``"leadctx.overrides/v1"`` (JSON key ``schema``).
        revision: Monotonic version. A document with a lower revision than the one in force
            is refused as a replay.
        updated_at: When it was written (timezone-aware).
        updated_by: Who wrote it (a person, ``guardrails``, ``leadctx-cli``).
        flags: Overrides per flag key; only known flag keys are accepted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["leadctx.overrides/v1"] = Field(default=OVERRIDES_SCHEMA, alias="schema")
    revision: int = Field(default=0, ge=0)
    updated_at: AwareDatetime | None = None
    updated_by: str | None = Field(default=None, max_length=200)
    flags: dict[FlagKey, FlagOverride] = Field(default_factory=dict)

    def flag(self, key: str) -> FlagOverride | None:
        """The overrides for ``key``, or ``None`` if the document says nothing about it."""
        return self.flags.get(key)

    def to_json(self) -> str:
        """Serialise with the wire names (``schema``), two-space indented, keys in order."""
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def parse_document(raw: bytes, *, origin: str) -> OverridesDocument:
    """Parse and validate an overrides document.

    Args:
        raw: The document's bytes (UTF-8 JSON).
        origin: Where it came from (a path or URL), for error messages.

    Raises:
        DocumentError: Too large, not UTF-8 JSON, or not a valid ``leadctx.overrides/v1``
            document. The message names ``origin`` and each offending field.
    """
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            f"{origin}: overrides document is {len(raw)} bytes; at most {MAX_DOCUMENT_BYTES}"
        )
    try:
        return OverridesDocument.model_validate_json(raw)
    except ValidationError as err:
        raise DocumentError(f"{origin}: {_describe(err)}") from None


def _describe(err: ValidationError) -> str:
    problems = []
    for error in err.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"]) or "(document)"
        problems.append(f"{path}: {error['msg']}")
    return "invalid overrides document: " + "; ".join(problems)
