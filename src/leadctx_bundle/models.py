"""The bundle's inputs and output, as immutable pydantic models.

Input text is repaired, never rejected, for one thing only: a lone UTF-16 surrogate (possible
in a Python ``str`` or a JSON ``"\\ud800"`` escape, impossible in UTF-8) becomes U+FFFD, the
same repair tiktoken applies before encoding. The bundle's ``text`` therefore always encodes
as UTF-8, and its accounting matches what the model will see. Everything else that is wrong
(missing or null content, a bad timestamp, a negative budget) is a validation error naming
the field.

Naive timestamps are taken as UTC, the convention of the databases these rows come from.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
)

from leadctx_bundle.stats import BundleStats
from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.vocabulary import PIPELINES, Pipeline

__all__ = [
    "PIPELINES",
    "BudgetOverrides",
    "BundleInput",
    "BundleRequest",
    "KnowledgeAsset",
    "LeadContextBundle",
    "LeadMemoryEntry",
    "Pipeline",
    "ThreadMessage",
    "scrub_text",
]


def scrub_text(text: str) -> str:
    """Replace lone surrogates with U+FFFD (as tiktoken does); other text is returned as is.

    Args:
        text: Any ``str``. ASCII and well-formed text cost one scan, no copy.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id(field: str) -> AfterValidator:
    return AfterValidator(lambda value: validate_client_id(value, field=field))


Text = Annotated[str, AfterValidator(scrub_text)]
Timestamp = Annotated[datetime, AfterValidator(_utc)]
ItemId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _one_line_role(value: str) -> str:
    # The role sits in the message's head line, ``[<time>] <role>: <content>``: a line break
    # there would start a line the content did not write (render.py), and ": " would make
    # the head's end ambiguous. The message names the rule, never the value.
    for index, char in enumerate(value):
        if char in _ROLE_BREAKS or unicodedata.category(char) == "Cc":
            raise ValueError(
                f"role must be one line: it holds U+{ord(char):04X} at position {index} "
                "(a control character or line separator)"
            )
    if ": " in value:
        raise ValueError("role must not contain ': ' (it ends the role in the rendered thread)")
    return value


# Every break str.splitlines knows that is not a control character (those are Cc already).
_ROLE_BREAKS: Final = frozenset("\u2028\u2029")

Role = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_one_line_role)
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BundleRequest(_Frozen):
    """Who the bundle is for.

    Args:
        client_id: The client (workspace); the flag's targeting key.
        lead_id: The lead whose memory and thread are read.
        pipeline: Which pipeline asks; selects the ``BundleProfile``.
    """

    client_id: Annotated[str, _id("client_id")]
    lead_id: Annotated[str, _id("lead_id")]
    pipeline: Pipeline


class KnowledgeAsset(_Frozen):
    """A piece of the client's verified context (offer, FAQ, policy).

    Args:
        id: Unique per client; later duplicates are dropped (see ``build_bundle``).
        title: Rendered as the item's heading; line breaks become spaces.
        content: The text. Required, may be empty.
        rank: Lower comes first; assets without a rank follow the ranked ones. Ties keep
            input order.
    """

    id: ItemId
    title: Text
    content: Text
    rank: StrictInt | None = None


class LeadMemoryEntry(_Frozen):
    """Something remembered about the lead.

    Args:
        id: Unique per lead; later duplicates are dropped.
        content: The text. Required, may be empty.
        created_at: When it was recorded; newest entries are kept first.
    """

    id: ItemId
    content: Text
    created_at: Timestamp


class ThreadMessage(_Frozen):
    """One message of the conversation with the lead.

    Args:
        role: Who wrote it (``lead``, ``agent``, ...): at most 64 characters, one line (no
            control character, no line separator of ``str.splitlines``: U+0085, U+2028 and
            U+2029 included) and without ``": "``; anything else is a validation error.
        content: The text. Required, may be empty.
        sent_at: When it was sent; the most recent messages are kept.
    """

    role: Role
    content: Text
    sent_at: Timestamp


class BudgetOverrides(_Frozen):
    """Per-call budget overrides; each key left out keeps the profile's value.

    Args:
        budget_total: Total token budget; must be > 0 (the input key ``total`` is accepted
            too).
        knowledge_assets: Budget of that section; 0 leaves the section out.
        lead_memory: Budget of that section; 0 leaves the section out.
        thread: Budget of that section; 0 leaves the section out.

    Integers only: ``8000.0``, ``"8000"``, ``true`` and ``NaN`` are errors, not guesses.
    """

    budget_total: Annotated[StrictInt, Field(gt=0)] | None = Field(
        default=None, validation_alias=AliasChoices("budget_total", "total")
    )
    knowledge_assets: Annotated[StrictInt, Field(ge=0)] | None = None
    lead_memory: Annotated[StrictInt, Field(ge=0)] | None = None
    thread: Annotated[StrictInt, Field(ge=0)] | None = None


class BundleInput(BundleRequest):
    """Everything one build needs: the request, its rows, and optional budget overrides.

    The same shape as ``leadctx bundle build --input`` files::

        {"client_id": "acme", "lead_id": "lead-1", "pipeline": "draft",
         "knowledge_assets": [{"id": "a1", "title": "...", "content": "...", "rank": 1}],
         "lead_memory": [{"id": "m1", "content": "...", "created_at": "2026-11-20T10:00:00Z"}],
         "thread": [{"role": "lead", "content": "...", "sent_at": "2026-11-24T09:00:00Z"}],
         "budgets": {"total": 8000, "thread": 3000}}
    """

    knowledge_assets: tuple[KnowledgeAsset, ...] = ()
    lead_memory: tuple[LeadMemoryEntry, ...] = ()
    thread: tuple[ThreadMessage, ...] = ()
    budgets: BudgetOverrides | None = None

    @property
    def request(self) -> BundleRequest:
        """The ``BundleRequest`` part."""
        return BundleRequest(client_id=self.client_id, lead_id=self.lead_id, pipeline=self.pipeline)


class LeadContextBundle(_Frozen):
    """A built bundle.

    Args:
        text: The context to put in the prompt. Always valid UTF-8, at most
            ``stats.budget_total`` tokens.
        stats: What it cost, per section: counts only, never content, titles or ids.
    """

    text: str
    stats: BundleStats
