"""Editing an overrides document: the no-redeploy rollback path.

Each change is a pure function over ``FlagOverride``; ``apply_change`` turns it into the next
revision of a document, and ``edit_document`` applies it to a file under a lock, atomically.
The CLI (``leadctx flags kill|unkill|allow|deny|clear``) and the guardrails use these.

Exit 0 means "in force": ``edit_document`` writes only through ``storage.write_document``,
which parses the new bytes with the providers' own parser and size cap first, so an edit that
returns is a document every provider accepts. A kill must always be writable: when the
document with the kill is above the size cap, the kill is written without its note, and
failing that in minimal form (``MINIMAL_KILL_NOTE``: the kill, the ``false`` entries and a
``false`` default are kept, the entries that turned the flag on are dropped).

A new revision must be above every revision a provider holds, or the provider refuses it as
a replay (a kill excepted: a kill is always applied). A missing document is never silently
started again from revision 1: ``edit_document`` refuses a missing file unless told to create
one, and a created document takes its revision from the clock (``clock_revision``). The clock
is not enough after a document whose revision was above it (a host with a fast clock, a typed
``--revision``), nor after an old copy was restored: every edit therefore also goes above the
revision in the provider's last-good cache (``LEADCTX_FLAG_OVERRIDES_CACHE``) when one is
configured, the cache a restarted provider starts from and that a running one keeps current.
A document created after a loss starts from that cache's copy, so the other rollbacks in force
are not dropped with the lost file.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from leadctx_flags.client_ids import canonical_client_id, validate_client_id
from leadctx_flags.document import (
    MAX_REVISION,
    DocumentError,
    DocumentTooLargeError,
    FlagOverride,
    OverridesDocument,
)
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.storage import exclusive_lock, read_document, write_document

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_VARIABLE",
    "MINIMAL_KILL_NOTE",
    "OVERRIDES_VARIABLE",
    "CacheUnreadableError",
    "DocumentMissingError",
    "OverrideChange",
    "RevisionError",
    "allow",
    "apply_change",
    "cached_document",
    "cached_revision",
    "clear",
    "clock_revision",
    "configured_cache",
    "configured_document",
    "deny",
    "edit_document",
    "kill",
    "minimal_kill",
    "relative_document_warning",
    "unfollowed_document_warning",
    "unkill",
]

OVERRIDES_VARIABLE: Final = "LEADCTX_FLAG_OVERRIDES"
"""The overrides location every provider reads; edits default to it when it is a file."""

CACHE_VARIABLE: Final = "LEADCTX_FLAG_OVERRIDES_CACHE"
"""The provider's last-good cache; every edit goes above the revision it holds."""

MINIMAL_KILL_NOTE: Final = (
    "kill in minimal form: the note and the entries that turned the flag on were dropped "
    "to fit the document size cap"
)
"""The note of a kill that did not fit the size cap otherwise (see ``minimal_kill``)."""


class DocumentMissingError(FileNotFoundError):
    """The document to edit does not exist and creating one was not asked for.

    Args:
        path: The missing document.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path}: no overrides document here. If it was lost, re-create it with --create "
            "(its revision is taken from the clock, above any a running or restarted process "
            "holds); check the path first if it should exist"
        )
        self.path = path


class RevisionError(ValueError):
    """A requested revision that cannot be used (not above the current one, or out of range)."""


class CacheUnreadableError(DocumentError):
    """The configured cache exists but cannot be read, so the revision it holds is unknown.

    An edit other than a kill is then refused: written at a revision below the one the cache
    (and the running providers) hold, it would be refused by them as a replay.

    Args:
        cache: The cache file.
        kind: What went wrong (an exception class name; never the file's content).
    """

    def __init__(self, cache: Path, kind: str) -> None:
        super().__init__(
            f"{cache}: the overrides cache ({CACHE_VARIABLE}) cannot be read ({kind}), so "
            "the revision the services hold is unknown; the edit was not written. Fix the "
            "cache, or pass --revision above the revision the services log"
        )
        self.cache = cache


def clock_revision(now: datetime | None = None) -> int:
    """The revision for a newly created document: ``now`` in unix milliseconds.

    Documents edited one step at a time (+1 per edit) stay far below the clock in
    milliseconds, so a document created after a loss outranks a lost one that was created on
    a host whose clock was not ahead of this one. ``edit_document`` also goes above the
    configured cache's revision, which covers the rest on the hosts that share the cache.

    Args:
        now: The time (default: now).
    """
    moment = now or datetime.now(UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class OverrideChange:
    """A named edit of one flag's overrides.

    Args:
        name: What the change is, for people (``"deny globex"``).
        update: Fields of ``FlagOverride`` to set, or ``None`` to leave as they are.
        clients: Per-client entries to set (``True``/``False``) or remove (``None``).
    """

    name: str
    update: dict[str, Any] | None = None
    clients: dict[str, bool | None] | None = None

    @property
    def kills(self) -> bool:
        """Whether this change sets the kill switch (a kill must always be writable)."""
        return (self.update or {}).get("kill") is True

    def __call__(self, flag: FlagOverride) -> FlagOverride:
        """The flag's overrides after this change (validated)."""
        values = flag.model_dump()
        values.update(self.update or {})
        for given, value in (self.clients or {}).items():
            # Entries are keyed by the canonical id (NFC), however the change spelt it: a
            # rollback of an id read from records must replace the entry, not collide with it.
            client_id = canonical_client_id(given)
            if value is None:
                values["clients"].pop(client_id, None)
            else:
                values["clients"][client_id] = value
        return FlagOverride.model_validate(values)


def kill() -> OverrideChange:
    """Off for every client, beating every other rule (the document's kill switch)."""
    return OverrideChange("kill", update={"kill": True})


def unkill() -> OverrideChange:
    """Lift the document's kill switch; the other rules apply again."""
    return OverrideChange("unkill", update={"kill": False})


def allow(client_id: str) -> OverrideChange:
    """On for ``client_id``, whatever the env allowlist says (kill still wins)."""
    return OverrideChange(f"allow {client_id}", clients={_checked(client_id): True})


def deny(client_id: str) -> OverrideChange:
    """Off for ``client_id``, even if the env allowlist names it: a one-client rollback."""
    return OverrideChange(f"deny {client_id}", clients={_checked(client_id): False})


def clear(client_id: str) -> OverrideChange:
    """Remove the document's entry for ``client_id``; the env rules decide again."""
    return OverrideChange(f"clear {client_id}", clients={_checked(client_id): None})


def apply_change(
    document: OverridesDocument,
    change: Callable[[FlagOverride], FlagOverride],
    *,
    updated_by: str,
    now: datetime | None = None,
    note: str | None = None,
    flag_key: str = SHARED_BUNDLE_FLAG,
    revision: int | None = None,
) -> OverridesDocument:
    """The next revision of ``document`` with ``change`` applied to ``flag_key``.

    Args:
        document: The current document (revision N).
        change: The edit, e.g. ``deny("globex")``.
        updated_by: Who makes the change; recorded in the document and logged by providers.
        now: The time to record (default: now, UTC).
        note: The note of this revision. ``None`` clears the previous note: a note says why
            one edit was made, and kept on the next edit it would tell the wrong story.
        flag_key: The flag to edit.
        revision: The new revision (default N + 1); it must be above N. A kill of a document
            at ``MAX_REVISION`` stays at ``MAX_REVISION`` (providers apply a kill whatever
            its revision).

    Returns:
        A new document with revision N + 1 (or ``revision``); ``document`` is unchanged.

    Raises:
        RevisionError: ``revision`` is not above N, or above ``MAX_REVISION``.
    """
    new_revision = document.revision + 1 if revision is None else revision
    # A document at MAX_REVISION can still be killed, at that revision: providers apply a
    # kill whatever its revision, and a kill must always be writable.
    at_ceiling = getattr(change, "kills", False) is True and document.revision == MAX_REVISION
    if at_ceiling and new_revision >= MAX_REVISION:
        new_revision = MAX_REVISION
    elif new_revision <= document.revision or new_revision > MAX_REVISION:
        raise RevisionError(
            f"revision must be above the document's revision {document.revision} "
            f"and at most {MAX_REVISION}"
        )
    flag = change(document.flag(flag_key) or FlagOverride())
    flag = FlagOverride.model_validate({**flag.model_dump(), "note": note})
    return OverridesDocument.model_validate(
        {
            **document.model_dump(by_alias=True),
            "revision": new_revision,
            "updated_at": now or datetime.now(UTC),
            "updated_by": updated_by,
            "flags": {**document.model_dump()["flags"], flag_key: flag.model_dump()},
        }
    )


def minimal_kill(
    document: OverridesDocument, flag_key: str = SHARED_BUNDLE_FLAG
) -> OverridesDocument:
    """``document`` with ``flag_key`` reduced to what a kill must keep.

    Kept: the kill, every per-client ``false`` (each one is a rollback that must still hold
    after an unkill) and a ``false`` default. Dropped: the entries that turned the flag on and
    a ``true`` default; while killed they change no answer, and after an unkill the clients
    they named follow the environment's rules again. The note becomes ``MINIMAL_KILL_NOTE``.

    Args:
        document: The document with the kill applied.
        flag_key: The killed flag.
    """
    flag = document.flag(flag_key) or FlagOverride()
    kept = FlagOverride(
        kill=True,
        default=False if flag.default is False else None,
        clients={client_id: False for client_id, on in flag.clients.items() if not on},
        note=MINIMAL_KILL_NOTE,
    )
    return document.model_copy(update={"flags": {**document.flags, flag_key: kept}})


def configured_cache(*, kill: bool = False) -> Path | None:
    """The cache file ``LEADCTX_FLAG_OVERRIDES_CACHE`` names, or ``None`` when it is unset.

    Read as the providers read it: the variable in any case (``leadctx_flag_overrides_cache``
    is the same variable to them), its value verbatim, never trimmed. An edit that read it
    otherwise would miss the revision the providers hold and be refused by them as a replay
    while exiting 0. Read directly, not through ``RolloutSettings``: a kill must not fail on
    an unrelated variable that does not parse.

    Args:
        kill: The edit is a kill. A kill is applied at any revision, so an unusable value
            is then warned about and the cache left out, instead of refusing the kill.

    Raises:
        ConfigurationError: The variable is set but unusable (under two spellings, with
            whitespace or a quote at either end, with a control character): the providers
            refuse it too. Not raised for a kill. The message names the variable.
    """
    from leadctx_flags.settings import check_verbatim, environment_value  # noqa: PLC0415

    try:
        value = environment_value(CACHE_VARIABLE)
        if value is None or not value.strip():
            return None  # blank is unset, as for the providers
        try:
            check_verbatim(value)  # the providers' rule
        except ValueError as err:
            raise ConfigurationError(f"{CACHE_VARIABLE}: {err}") from None
    except ConfigurationError as err:
        if not kill:
            raise
        logger.warning("%s; the kill is written without reading the cache", err)
        return None
    return Path(value)


def configured_document(option: Path | None, *, option_name: str = "--overrides") -> Path:
    """The document file an edit writes: ``option`` when given, else ``LEADCTX_FLAG_OVERRIDES``.

    The variable is read and parsed exactly as the providers read it (the same verbatim rule,
    the same ``file://`` handling), so an edit writes the document the processes follow.

    Args:
        option: The path given on the command line, or ``None``.
        option_name: The option's name, for the message.

    Raises:
        ConfigurationError: ``LEADCTX_FLAG_OVERRIDES`` is set but unusable (surrounding
            spaces or quotes, an invalid location); the message names the variable.
        ValueError: Neither names a local file (unset, or an https source); the message
            names the option and the variable.
    """
    if option is not None:
        return option
    # Loaded on use: the https source's client (httpx) is not needed to edit a file.
    from leadctx_flags.overrides_sources import FileSource, open_source  # noqa: PLC0415
    from leadctx_flags.settings import check_verbatim, environment_value  # noqa: PLC0415

    location = environment_value(OVERRIDES_VARIABLE)
    if location is not None and location.strip():
        try:
            check_verbatim(location)  # the same rule as the provider's
        except ValueError as err:
            raise ConfigurationError(f"{OVERRIDES_VARIABLE}: {err}") from None
        source = open_source(location)  # the same parsing as the provider's
        source.close()
        if isinstance(source, FileSource):
            return source.path
    raise ValueError(
        f"name the overrides document with {option_name} PATH "
        f"({OVERRIDES_VARIABLE} is not set to a local file)"
    )


def unfollowed_document_warning(path: Path, *, option_name: str = "--overrides") -> str | None:
    """A warning when ``path`` (given as ``option_name``) is not the local file that
    ``LEADCTX_FLAG_OVERRIDES`` names here: processes with this environment read another
    document, so the edit is not in force for them.

    No warning when the variable is unset, unusable (its own error is the providers') or not
    a local file (an https source: editing the file its server serves is the usual route).

    Args:
        path: The document the edit wrote.
        option_name: The option that named it, for the message.
    """
    try:
        followed = configured_document(None)
    except ValueError:  # unset, https, or unusable: nothing to compare with
        return None
    try:
        same = path.resolve() == followed.resolve()
    except (OSError, RuntimeError):  # a loop of links, a name too long: cannot say
        return None
    if same:
        return None
    return (
        f"warning: {option_name} {path} is not the document {OVERRIDES_VARIABLE} names here "
        f"({followed}): processes with this environment do not read it (the edit was made)"
    )


def relative_document_warning(path: Path) -> str | None:
    """A warning when the document an edit wrote was named by a relative path (from
    ``LEADCTX_FLAG_OVERRIDES``): each process reads it against its own working directory, so
    one started elsewhere follows another file.

    Args:
        path: The document the edit wrote, as it was named.
    """
    if path.is_absolute():
        return None
    return (
        f"warning: {OVERRIDES_VARIABLE} is a relative path: this edit wrote {path.absolute()}, "
        "and a process started in another directory reads another file (the edit was made); "
        "give an absolute path"
    )


def cached_document(cache: Path | None) -> OverridesDocument | None:
    """The document in the provider cache ``cache``: the last one a provider there applied.

    Args:
        cache: The cache file, or ``None`` (none configured).

    Returns:
        ``None`` when no cache is configured or the file does not exist (a host that never
        applied a document holds no revision).

    Raises:
        CacheUnreadableError: The cache exists but cannot be read or is not a document.
    """
    if cache is None:
        return None
    try:
        return read_document(cache)
    except FileNotFoundError:
        return None
    except (OSError, DocumentError) as err:
        raise CacheUnreadableError(cache, type(err).__name__) from None


def cached_revision(cache: Path | None) -> int | None:
    """The revision of the document in the provider cache ``cache``, if there is one.

    Args:
        cache: The cache file, or ``None`` (none configured).

    Raises:
        CacheUnreadableError: The cache exists but cannot be read or is not a document.
    """
    document = cached_document(cache)
    return None if document is None else document.revision


def edit_document(
    path: Path,
    change: Callable[[FlagOverride], FlagOverride],
    *,
    updated_by: str,
    note: str | None = None,
    create: bool = False,
    revision: int | None = None,
    now: datetime | None = None,
    cache: Path | None = None,
) -> OverridesDocument:
    """Apply ``change`` to the document file at ``path``, atomically and under a lock.

    A symlink is followed: its target is rewritten and the link stays. The rewritten file
    keeps its mode (and owner and group where allowed); see ``storage.atomic_write``. What is
    written is first parsed as every provider parses it (``storage.write_document``).

    Args:
        path: The document file, or a symlink to it.
        change: The edit, e.g. ``kill()``.
        updated_by: Who makes the change.
        note: The note of the new revision; ``None`` clears the previous one.
        create: Start a new document when none exists, at ``revision`` or else at
            ``clock_revision(now)`` (and above ``cache``'s revision). It starts from the
            document in ``cache`` when there is one (the last good copy of the lost one),
            else from an empty document. Without it, a missing file is an error.
        revision: The new revision; by default the current one + 1 (or the clock's, for a
            created document). It must be above the current revision.
        now: The time to record (default: now, UTC).
        cache: A provider's last-good cache (``configured_cache()``); the new revision then
            also goes above the revision it holds, and an explicit ``revision`` that is not
            above it is refused, unless the change is a kill (a kill is always applied).

    Returns:
        The document written. For a kill that did not fit the size cap, it has no note, or
        is in minimal form (``minimal_kill``).

    Raises:
        DocumentMissingError: No file at ``path`` and ``create`` is false.
        RevisionError: ``revision`` is not above the current revision (or the cache's).
        CacheUnreadableError: ``cache`` exists but cannot be read (not raised for a kill).
        DocumentTooLargeError: The new document is above the size cap (for a kill: even in
            minimal form); nothing was written.
        DocumentError: The existing file is not a valid document; it is left untouched.
        OSError: The file or its directory cannot be read or written; the message names
            ``path``.
    """
    moment = now or datetime.now(UTC)
    kills = isinstance(change, OverrideChange) and change.kills
    with exclusive_lock(path):
        try:
            current: OverridesDocument | None = read_document(path)
        except FileNotFoundError:
            if not create:
                raise DocumentMissingError(path) from None
            current = None
        cached = _held_document(cache, tolerate=kills)
        held = None if cached is None else cached.revision
        new_revision = _new_revision(current, held, revision, moment, kills=kills, cache=cache)
        created = current is None
        if current is None:
            # Re-created after a loss: start from the last good copy, the document in force
            # (other clients' rollbacks included), not from nothing. Its revision was taken
            # into account above; 0 lets a kill be written at any revision.
            current = (cached or OverridesDocument()).model_copy(update={"revision": 0})
        updated = apply_change(
            current,
            change,
            updated_by=updated_by,
            note=note,
            revision=new_revision,
            now=moment,
        )
        forms = list(_kill_forms(updated)) if kills else [updated]
        for index, form in enumerate(forms):
            try:
                write_document(path, form)
            except DocumentTooLargeError:
                if index == len(forms) - 1:
                    raise
                continue
            if created:
                _readable_by_services(path)
            return form
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _readable_by_services(path: Path) -> None:
    """Give a document this edit created read access for group and others when the umask
    left it to its owner alone (``umask 077`` gives ``0600``): the services that poll it run
    under their own accounts, and a kill they cannot read is a kill lost. A umask that keeps
    group read (``027``: ``0640``) is the operator's choice and is kept."""
    target = path.resolve()
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
        if mode & 0o044:
            return
        target.chmod(mode | 0o044)
    except OSError as err:  # the document is written: say what is left to do, never "not written"
        logger.warning(
            "created %s, but could not make it readable by other accounts (%s): "
            "chmod 0644 it if the services run under their own accounts",
            path,
            err.strerror or type(err).__name__,
        )
        return
    logger.warning(
        "created %s readable by every account (%s, not %s as the umask gave): the services "
        "that read it run under their own accounts",
        path,
        oct(mode | 0o044),
        oct(mode),
    )


def _held_document(cache: Path | None, *, tolerate: bool) -> OverridesDocument | None:
    try:
        return cached_document(cache)
    except CacheUnreadableError:
        if tolerate:  # a kill is applied at any revision: never let the cache stop it
            return None
        raise


def _new_revision(
    current: OverridesDocument | None,
    held: int | None,
    requested: int | None,
    moment: datetime,
    *,
    kills: bool,
    cache: Path | None,
) -> int:
    floor = -1 if held is None else held
    if requested is not None:
        if requested <= floor and not kills:
            raise RevisionError(
                f"revision {requested} is not above revision {held} that the overrides cache "
                f"{cache} holds: a process holding it would refuse the edit as a replay"
            )
        return requested
    base = clock_revision(moment) if current is None else current.revision + 1
    if kills:  # at the ceiling a kill keeps MAX_REVISION: it is applied at any revision
        return min(max(base, floor + 1), MAX_REVISION)
    return max(base, floor + 1)


def _kill_forms(updated: OverridesDocument) -> Iterator[OverridesDocument]:
    """The kill as asked, then without its note, then in minimal form: the first that fits."""
    yield updated
    flag = updated.flag(SHARED_BUNDLE_FLAG)
    if flag is not None and flag.note is not None:
        without_note = flag.model_copy(update={"note": None})
        yield updated.model_copy(
            update={"flags": {**updated.flags, SHARED_BUNDLE_FLAG: without_note}}
        )
    yield minimal_kill(updated)


def _checked(client_id: str) -> str:
    return validate_client_id(client_id, field="client id")
