"""Timing a switch: when the running provider first answers from a new overrides document."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from openfeature.client import OpenFeatureClient
from openfeature.event import EventDetails, ProviderEvent

from leadctx_flags.context import client_context
from leadctx_flags.flags import SHARED_BUNDLE_FLAG

__all__ = ["FlagWatch"]


class FlagWatch:
    """Notes when the running provider first answers from a new overrides document.

    Args:
        client: The OpenFeature client bound to the provider.
        client_id: The client whose answer is watched.

    The provider emits ``PROVIDER_CONFIGURATION_CHANGED`` after swapping in a new document;
    the handler evaluates the flag there and then, so the time is that of the switch even
    when the document was written by another step (the guardrails' ``--apply``).
    """

    def __init__(self, client: OpenFeatureClient, client_id: str) -> None:
        self.client = client
        self._client_id = client_id
        self._want: bool | None = None
        self._version: object = None
        self._armed = False
        self._reached = threading.Event()
        self.at: float | None = None
        client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, self._changed)

    def close(self) -> None:
        """Stop listening to the provider's events."""
        self.client.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, self._changed)

    def expect(self, value: bool | None) -> None:
        """Wait for the next document; with ``value``, for one that gives this answer."""
        self._reached.clear()
        self.at = None
        self._want = value
        self._version = self.details()["version"]
        self._armed = True

    def _changed(self, _: EventDetails) -> None:
        if not self._armed or self._reached.is_set():
            return
        details = self.details()
        if details["version"] != self._version and self._want in (None, details["value"]):
            self.at = time.time()
            self._reached.set()

    def value(self) -> bool:
        """The flag's value for the watched client now."""
        return self.details()["value"] is True

    def details(self) -> dict[str, Any]:
        """The flag's evaluation for the watched client now: value, reason, rule, revision."""
        details = self.client.get_boolean_details(
            SHARED_BUNDLE_FLAG, False, client_context(self._client_id)
        )
        metadata = details.flag_metadata or {}
        return {
            "client_id": self._client_id,
            "value": details.value,
            "reason": None if details.reason is None else str(details.reason),
            "source": metadata.get("source"),
            "version": metadata.get("version"),
        }

    def wait(self, written_at: datetime, timeout_s: float, poll_s: float) -> dict[str, Any] | None:
        """Wait (bounded) for the expected answer; the time from ``written_at`` to it.

        Args:
            written_at: When the document was written (its ``updated_at``).
            timeout_s: The longest wait.
            poll_s: The provider's poll interval, reported with the time.

        Returns:
            ``seconds`` from the write to the answer, ``poll_interval_s`` and the ``flag``;
            ``None`` when the answer did not come within ``timeout_s``.
        """
        if not self._reached.wait(timeout_s) or self.at is None:
            return None
        return {
            "seconds": round(max(self.at - written_at.timestamp(), 0.0), 3),
            "poll_interval_s": poll_s,
            "flag": self.details(),
        }
