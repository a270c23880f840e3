"""Apply a rollback to the overrides document: the affected clients off, or the kill.

Only a rollback is ever applied (``expand`` is a recommendation for a person). Applying is
idempotent: when the document already says what the rollback would write, nothing is written
and the revision stays. A missing document is created first at a revision derived from the
clock, so that it is above any revision a provider may hold from an earlier document (a new
document at revision 1 would be refused as a replay). The write is ``editing.edit_document``'s,
as for ``leadctx flags kill|deny``: validated as every provider reads it, above the revision of
the provider cache ``LEADCTX_FLAG_OVERRIDES_CACHE`` when one is configured, and a kill that does
not fit the size cap is written without its note or in minimal form.

The clients come from the records (``clientId`` as the database stores it), so they are
checked with the one id rule (``client_ids.validate_client_id``) before they reach the
document: a padded ``CHAR`` column's ``'acme pad   '`` or an id holding a control character is
never written, never echoed (it is named by its position, ``affected_clients[1]``), and never
costs the other clients their rollback: every usable affected client is denied, and when none
is usable the kill is written instead (it covers the unnamed one too).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from leadctx_flags import editing
from leadctx_flags.client_ids import canonical_client_id, validate_client_id
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.storage import read_document

if TYPE_CHECKING:
    from leadctx_flags.document import OverridesDocument

__all__ = [
    "UPDATED_BY",
    "ApplyResult",
    "UnusableId",
    "apply_rollback",
    "describe_rollback",
    "rollback_change",
    "usable_clients",
]

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
        left_out: The positions (``affected_clients[1]``) of affected ids that break the id
            rule and were not rolled back: empty after a kill, which covers every client.
        unusable: Every affected id that broke the id rule, by position and rule (also those a
            kill covered), for the operator's message.
    """

    action: str
    clients: tuple[str, ...]
    changed: bool
    revision: int | None
    left_out: tuple[str, ...] = ()
    unusable: tuple[UnusableId, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The result as JSON-ready data (valid client ids are the only names in it)."""
        return {
            "action": self.action,
            "clients": list(self.clients),
            "changed": self.changed,
            "revision": self.revision,
            "left_out": list(self.left_out),
        }


@dataclass(frozen=True, slots=True)
class UnusableId:
    """An affected id that breaks the id rule, named by where it sits, never by its text.

    Args:
        position: Its label, ``<list>[<index>]`` in the list the caller passed
            (``affected_clients[1]``: the report's JSON holds the same list in that order).
        problem: The rule it breaks, as ``validate_client_id`` words it for that label.
    """

    position: str
    problem: str


def describe_rollback(action: str, clients: Sequence[str]) -> str:
    """What a rollback turned off, in one phrase: the log record and every output say this.

    Counts only, no client names (logs carry no client lists).

    Args:
        action: ``ApplyResult.action``.
        clients: ``ApplyResult.clients`` (empty for a kill).
    """
    if action == "kill":
        return "kill: every client off"
    if action == "deny":
        return f"deny: {len(clients)} client(s) off"
    return "nothing turned off"


def usable_clients(
    clients: Sequence[str], *, label: str = "affected_clients"
) -> tuple[tuple[str, ...], tuple[UnusableId, ...]]:
    """Split ``clients`` into usable ids (canonical, NFC, deduplicated) and unusable ones.

    A pure function: the one id rule (``validate_client_id``) applied to ids that came from
    records, where a database may have padded, quoted or otherwise mangled them.

    Args:
        clients: Client ids as read, in the order the report lists them.
        label: The list's name in the report, used to name an unusable id's position.

    Returns:
        The usable ids, sorted, and the unusable ones by position, in order.
    """
    usable: set[str] = set()
    unusable: list[UnusableId] = []
    for index, client in enumerate(clients):
        position = f"{label}[{index}]"
        try:
            usable.add(validate_client_id(client, field=position))
        except ValueError as err:
            unusable.append(UnusableId(position, str(err)))
    return tuple(sorted(usable)), tuple(unusable)


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
    # Compared in the canonical form: NFD and NFC spellings from the records are one client.
    if {canonical_client_id(c) for c in canary_clients} <= {
        canonical_client_id(c) for c in affected
    }:
        return editing.kill()
    return _deny(sorted(affected))


def apply_rollback(
    path: Path,
    affected: Sequence[str],
    canary_clients: Collection[str],
    *,
    note: str,
    label: str = "affected_clients",
) -> ApplyResult:
    """Write the rollback for ``affected`` into the overrides document at ``path``.

    Affected ids that break the id rule are not written: the usable ones are denied and the
    rest reported in ``left_out`` by position; when no affected id is usable, the kill is
    written (``left_out`` is then empty: the kill covers them).

    Args:
        path: The overrides document; created when missing.
        affected: Clients to turn off, as the report lists them (positions refer to it).
        canary_clients: Every canary client; when all are affected, the kill is written.
        note: Why, stored in the document (reasons and metric names, never content).
        label: What ``affected`` is called in the report, to name positions.

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
    usable, unusable = usable_clients(affected, label=label)
    clients: tuple[str, ...]
    left_out: tuple[str, ...]
    if change.kills or not usable:
        # The kill covers every client, the unusable ones too: nothing is left out.
        change, action, clients, left_out = editing.kill(), "kill", (), ()
    else:
        action, clients = "deny", usable
        change = _deny(usable)
        left_out = tuple(item.position for item in unusable)
    if unusable:
        logger.warning(
            "guardrails rollback: %s affected id(s) break the id rule (%s)",
            len(unusable),
            ", ".join(item.position for item in unusable),
        )
    if path.exists():
        current = read_document(path)
        flag = current.flag(SHARED_BUNDLE_FLAG)
        if flag is not None and change(flag) == flag and _held_by_providers(current, change):
            logger.info("guardrails rollback already in the overrides document (%s)", action)
            return ApplyResult(
                action, clients, False, current.revision, left_out=left_out, unusable=unusable
            )
    # A missing document is created at the clock's revision (editing.clock_revision), the same
    # rule as `leadctx flags ... --create`: above any revision a running process may hold.
    updated = editing.edit_document(
        path,
        change,
        updated_by=UPDATED_BY,
        note=note,
        create=True,
        cache=editing.configured_cache(kill=change.kills),
    )
    logger.warning(
        "guardrails rollback applied (%s), revision %s",
        describe_rollback(action, clients),
        updated.revision,
    )
    return ApplyResult(
        action, clients, True, updated.revision, left_out=left_out, unusable=unusable
    )


def _held_by_providers(current: OverridesDocument, change: editing.OverrideChange) -> bool:
    """Whether a rollback already in ``current`` is in force, so that nothing need be written.

    A kill is applied at any revision. A deny is applied only at a revision the providers do
    not refuse as a replay: an old copy put back (revision 5 while the providers' cache holds
    12) may hold the deny while every provider still answers from revision 12; the deny is
    then written again, above the cache (``editing.edit_document``).

    Raises:
        ConfigurationError: The cache variable is unusable (``editing.configured_cache``).
        CacheUnreadableError: The cache exists but cannot be read.
    """
    if change.kills:
        return True
    held = editing.cached_revision(editing.configured_cache())
    return held is None or held <= current.revision


def _deny(clients: Sequence[str]) -> editing.OverrideChange:
    return editing.OverrideChange(
        "deny " + ", ".join(clients), clients=dict.fromkeys(clients, False)
    )
