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

The models are here; the wire rules (schema name, size and revision limits, errors) and the
strict parser are ``leadctx_flags.wire``, re-exported below, so that a provider can be imported
without pydantic: the models load on the first parse.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from leadctx_flags.client_ids import canonical_client_id, validate_client_id
from leadctx_flags.flags import KNOWN_FLAGS
from leadctx_flags.wire import (
    MAX_DOCUMENT_BYTES,
    MAX_REVISION,
    OVERRIDES_SCHEMA,
    DocumentError,
    DocumentTooLargeError,
    parse_document,
    shown_key,
)

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
                            f"two entries name client {shown_key(canonical)} "
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
