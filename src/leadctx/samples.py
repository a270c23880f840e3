"""The synthetic lead ``leadctx smoke`` checks the rollout with when no ``--input`` is given.

Everything here is made up: a client's knowledge assets (pricing among them), a lead's memory
and two threads, one about scheduling a call (the draft and overseer pipelines' case) and one
about pricing (the auto-send evaluator's case). Each function returns a mapping of the
``BundleInput`` shape, the same shape ``leadctx bundle build --input`` and
``leadctx smoke --input`` read.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["SAMPLE_LEAD_ID", "pricing_thread", "sample_lead", "scheduling_inbound"]

SAMPLE_LEAD_ID: Final = "smoke-lead-1"

_KNOWLEDGE_ASSETS: Final[tuple[dict[str, Any], ...]] = (
    {
        "id": "pricing",
        "title": "Pricing",
        "content": (
            "Plans start at 49 EUR per seat and month, billed yearly; monthly billing costs "
            "20% more. Volume discounts apply from 50 seats. A 30-day pilot is free for up to "
            "10 seats."
        ),
        "rank": 1,
    },
    {
        "id": "onboarding",
        "title": "Onboarding",
        "content": "Onboarding takes two weeks and starts with a 45-minute kickoff call.",
        "rank": 2,
    },
    {
        "id": "scheduling",
        "title": "Meeting policy",
        "content": (
            "Sales calls are offered Monday to Thursday, 09:00 to 17:00 CET, in 30-minute "
            "slots; proposed times must be at least one business day ahead."
        ),
        "rank": 3,
    },
)

_LEAD_MEMORY: Final[tuple[dict[str, Any], ...]] = (
    {
        "id": "memory-1",
        "content": "Runs a sales team of 35 people and wants a pilot for 8 of them first.",
        "created_at": "2026-11-18T10:00:00Z",
    },
    {
        "id": "memory-2",
        "content": "Prefers calls in the afternoon, after 14:00 CET, never on Fridays.",
        "created_at": "2026-11-20T15:30:00Z",
    },
    {
        "id": "memory-3",
        "content": "Compared us with two other vendors on price per seat last quarter.",
        "created_at": "2026-11-22T09:10:00Z",
    },
)

_SCHEDULING_THREAD: Final[tuple[dict[str, Any], ...]] = (
    {
        "role": "agent",
        "content": "Thanks for your interest! Would a short call help to go through the pilot?",
        "sent_at": "2026-11-24T09:00:00Z",
    },
    {
        "role": "lead",
        "content": "Yes please. Could we meet Wednesday or Thursday afternoon next week?",
        "sent_at": "2026-11-24T11:42:00Z",
    },
)

_PRICING_THREAD: Final[tuple[dict[str, Any], ...]] = (
    {
        "role": "lead",
        "content": "How much would 35 seats cost per year, and is there a discount?",
        "sent_at": "2026-11-25T08:05:00Z",
    },
    {
        "role": "agent",
        "content": "Let me check the current plans for a team of your size.",
        "sent_at": "2026-11-25T08:20:00Z",
    },
    {
        "role": "lead",
        "content": "Great. Monthly billing would be easier for us, if it is not much more.",
        "sent_at": "2026-11-25T08:31:00Z",
    },
)


def sample_lead(
    client_id: str, pipeline: str, thread: tuple[dict[str, Any], ...]
) -> dict[str, Any]:
    """A fresh ``BundleInput``-shaped mapping of the sample lead (the caller may change it).

    Args:
        client_id: The client the lead belongs to.
        pipeline: The pipeline that asks (``draft``, ``overseer``, ``auto_send``, ...).
        thread: The thread's messages.
    """
    return {
        "client_id": client_id,
        "lead_id": SAMPLE_LEAD_ID,
        "pipeline": pipeline,
        "knowledge_assets": [dict(asset) for asset in _KNOWLEDGE_ASSETS],
        "lead_memory": [dict(entry) for entry in _LEAD_MEMORY],
        "thread": [dict(message) for message in thread],
    }


def scheduling_inbound(client_id: str, pipeline: str = "draft") -> dict[str, Any]:
    """The sample lead asking for a meeting: what the draft and overseer pipelines see.

    Args:
        client_id: The client the lead belongs to.
        pipeline: ``draft`` (default) or ``overseer``.
    """
    return sample_lead(client_id, pipeline, _SCHEDULING_THREAD)


def pricing_thread(client_id: str) -> dict[str, Any]:
    """The sample lead asking about prices: what the auto-send evaluator sees.

    Args:
        client_id: The client the lead belongs to.
    """
    return sample_lead(client_id, "auto_send", _PRICING_THREAD)
