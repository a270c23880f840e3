"""``FlagStateFeed``: the provider's snapshot as a tag, and a wake-up for every change of it.

The provider swaps one immutable ``RolloutState`` whenever a new overrides document is applied
and says so with ``PROVIDER_CONFIGURATION_CHANGED`` on its poller's thread. The feed turns that
into something the event loop can await: a tag per snapshot (``"<revision>-<hash>"``, the
same on every replica that follows the same document, so event ids agree across a load
balancer) and one ``asyncio.Event`` per generation, set once and replaced, so any number of
streams wait on a change without a lock or a queue per stream.

The tag is a hash of what decides evaluations (the environment's rules and the document), so
two replicas answering the same thing carry the same tag, and a tag names a revision that a
lagging replica can compare with its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

from openfeature.event import ProviderEvent, ProviderEventDetails
from openfeature.provider import FeatureProvider

from leadctx_flags.decision import RolloutState
from leadctx_flags.provider import LeadCtxProvider

__all__ = ["FlagStateFeed", "StateTag", "revision_of_tag", "tag_of"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StateTag:
    """The tag of one snapshot: its document revision (``-1`` without one) and its hash."""

    revision: int
    digest: str

    def __str__(self) -> str:
        return f"{self.revision}-{self.digest}"


def tag_of(state: RolloutState) -> StateTag:
    """The tag of ``state``: the same for every process with the same rules and document."""
    env = state.env
    parts = [
        f"enabled={env.enabled}",
        f"kill={env.kill}",
        "allow=" + ",".join(sorted(env.allowlist)),
        f"required={state.overrides_required}",
        f"error={state.configuration_error is not None}",
        "document=" + ("" if state.document is None else state.document.model_dump_json()),
    ]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return StateTag(-1 if state.revision is None else state.revision, digest)


def revision_of_tag(tag: str) -> int | None:
    """The revision a tag names, or ``None`` when ``tag`` is not one of ours."""
    revision, _, digest = tag.strip().strip('"').rpartition("-")
    if len(digest) != 16 or len(revision) > 20:
        return None
    try:
        return int(revision)
    except ValueError:
        return None


class FlagStateFeed:
    """Follows one ``LeadCtxProvider`` for the event loop: its tag, staleness and changes.

    Args:
        provider: The process's provider. The feed attaches to its events (it is not
            registered with the OpenFeature API: the server owns it).

    ``start(loop)`` must run on the loop before the provider is initialised; events emitted
    before that (none, in ``leadctx serve``) are picked up by ``refresh()``.
    """

    def __init__(self, provider: LeadCtxProvider) -> None:
        self._provider = provider
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state = provider.state
        self._tag = tag_of(self._state)
        self._changed = asyncio.Event()
        self._stale = False
        provider.attach(self._on_emit)

    @property
    def tag(self) -> StateTag:
        """The tag of the snapshot in force."""
        self.refresh()
        return self._tag

    @property
    def stale(self) -> bool:
        """Whether the provider reported its overrides source failing (``PROVIDER_STALE``)."""
        return self._stale

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver the provider's events to ``loop`` from now on."""
        self._loop = loop
        self._changed = asyncio.Event()

    def stop(self) -> None:
        """Stop delivering events (the loop is about to close)."""
        self._loop = None
        self._provider.detach()

    def refresh(self) -> bool:
        """Compare the provider's snapshot with the last one seen; wake waiters on a change.

        Runs on the loop. Cheap when nothing changed (one identity check), so every request
        and heartbeat may call it: a change is never missed even if an event were.

        Returns:
            Whether the tag changed.
        """
        state = self._provider.state
        if state is self._state:
            return False
        self._state = state
        tag = tag_of(state)
        if tag == self._tag:
            return False
        self._tag = tag
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        logger.info("flag state now at revision %d", tag.revision)
        return True

    def wake_all(self) -> None:
        """Wake every waiter now, changed or not (the server is shutting down)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for_change(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the next change (or ``wake_all``).

        Returns:
            Whether the waiter was woken before the timeout, or the snapshot changed anyway.
        """
        changed = self._changed
        try:
            async with asyncio.timeout(timeout):
                await changed.wait()
        except TimeoutError:
            return self.refresh()
        return True

    def _on_emit(
        self, provider: FeatureProvider, event: ProviderEvent, details: ProviderEventDetails
    ) -> None:
        # Called on the provider's poller thread: hand over to the loop, never touch its state.
        if event is ProviderEvent.PROVIDER_STALE:
            self._stale = True
        elif event in {ProviderEvent.PROVIDER_READY, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED}:
            self._stale = False
        loop = self._loop
        if loop is None or event is not ProviderEvent.PROVIDER_CONFIGURATION_CHANGED:
            return
        try:
            loop.call_soon_threadsafe(self.refresh)
        except RuntimeError:  # the loop closed between the check and the call: shutting down
            logger.debug("flag change after the event loop closed")
