"""Apply a rollback to the overrides document: the affected clients off, or the kill.

Only a rollback is ever applied (``expand`` is a recommendation for a person). Applying is
idempotent: when the document already says what the rollback would write, nothing is written
and the revision stays. A missing document is created first at a revision derived from the
clock, so that it is above any revision a provider may hold from an earlier document (a new
document at revision 1 would be refused as a replay). The write is ``editing.edit_document``'s,
as for ``leadctx flags kill|deny``: validated as every provider reads it, above the revision of
the provider cache ``LEADCTX_FLAG_OVERRIDES_CACHE`` when one is configured, and a kill that does
not fit the size cap is written without its note or in minimal form.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from leadctx_flags import editing
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.storage import read_document

__all__ = ["UPDATED_BY", "ApplyResult", "apply_rollback", "rollback_change"]

logger = logging.getLogger(__name__)

UPDATED_BY: Final = "guardrails"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What ``--apply`` did.

    Args:
        action: ``kill`` (every canary client affected), ``deny`` (the affected clients off),
            or ``none`` (no client affected).
        clients: The clients written off (empty for a kill or no action).
        changed: Whether the document was written; ``False`` when it already said so.
        revision: The document's revision after applying (``None``: no document touched).
    """

    action: str
    clients: tuple[str, ...]
    changed: bool
    revision: int | None

    def to_json(self) -> dict[str, object]:
        """The result as JSON-ready data (client ids are the only names in it)."""
        return {
            "action": self.action,
            "clients": list(self.clients),
            "changed": self.changed,
            "revision": self.revision,
        }


def rollback_change(
    affected: Collection[str], canary_clients: Collection[str]
) -> editing.OverrideChange | None:
    """The edit a rollback makes: the kill if every canary client is affected, else a deny each.

    Args:
        affected: Clients the report holds responsible for the regression.
        canary_clients: Every client on the shared path in the window.

    Returns:
        ``None`` when no client is affected (nothing to roll back).
    """
    if not affected:
        return None
    if set(canary_clients) <= set(affected):
        return editing.kill()
    clients = sorted(affected)
    return editing.OverrideChange(
        "deny " + ", ".join(clients), clients=dict.fromkeys(clients, False)
    )


def apply_rollback(
    path: Path, affected: Collection[str], canary_clients: Collection[str], *, note: str
) -> ApplyResult:
    """Write the rollback for ``affected`` into the overrides document at ``path``.

    Args:
        path: The overrides document; created when missing.
        affected: Clients to turn off.
        canary_clients: Every canary client; when all are affected, the kill is written.
        note: Why, stored in the document (reasons and metric names, never content).

    Raises:
        DocumentTooLargeError: The rollback does not fit the providers' size cap (a deny on
            a document near 1 MiB; a kill only if even its minimal form does not fit);
            nothing was written.
        DocumentError: The existing document is invalid; it is left untouched.
        CacheUnreadableError: A deny, and the configured cache cannot be read.
        OSError: The document cannot be read or written (the message names it).
    """
    change = rollback_change(affected, canary_clients)
    if change is None:
        return ApplyResult("none", (), changed=False, revision=None)
    action = "kill" if change.update else "deny"
    clients = () if action == "kill" else tuple(sorted(affected))
    if path.exists():
        current = read_document(path)
        flag = current.flag(SHARED_BUNDLE_FLAG)
        if flag is not None and change(flag) == flag:
            logger.info("guardrails rollback already in the overrides document (%s)", action)
            return ApplyResult(action, clients, changed=False, revision=current.revision)
    # A missing document is created at the clock's revision (editing.clock_revision), the same
    # rule as `leadctx flags ... --create`: above any revision a running process may hold.
    updated = editing.edit_document(
        path,
        change,
        updated_by=UPDATED_BY,
        note=note,
        create=True,
        cache=editing.configured_cache(),
    )
    logger.warning(
        "guardrails rollback applied: %s (%s client(s) named), revision %s",
        action,
        len(clients),
        updated.revision,
    )
    return ApplyResult(action, clients, changed=True, revision=updated.revision)
