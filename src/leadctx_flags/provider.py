"""``LeadCtxProvider``: the OpenFeature provider for ``shared_bundle.enabled``.

Pipelines never import this module: they ask the standard OpenFeature client, so the provider
can be swapped for flagd or LaunchDarkly without touching them::

    from openfeature import api
    from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, client_context

    api.set_provider_and_wait(LeadCtxProvider())
    on = api.get_client().get_boolean_value(SHARED_BUNDLE_FLAG, False, client_context("acme"))

Evaluation reads one immutable ``RolloutState`` and calls the pure ``decide``; it never raises,
never waits on I/O and never takes a lock. Every problem becomes an OpenFeature error value
with the flag off.

With ``LEADCTX_FLAG_OVERRIDES`` set, ``initialize()`` loads the cached document (if any), polls
the source once (within the fetch deadline), then keeps polling on a daemon thread; each new
document replaces the snapshot whole. A file source is also watched (``watch.py``), and with
``LEADCTX_FLAG_OVERRIDES_EVENTS`` a server's change events are followed (``events.py``): both
only wake the poller, so every document still goes through the same fetch, parse and replay
rule. ``shutdown()`` stops the threads, cancelling a fetch in flight. A process forked after
``initialize()`` starts its own poller, watcher and stream.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from leadctx_flags.context import InvalidClientContext, client_id_of
from leadctx_flags.decision import Decision, EnvRules, RolloutState, decide
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.flags import KNOWN_FLAGS
from leadctx_flags.forking import after_fork_in_child
from leadctx_flags.overrides_sources import FileSource, OverridesSource, SourceError, open_source
from leadctx_flags.poller import OverridesPoller
from leadctx_flags.storage import read_document, write_document
from leadctx_flags.wire import DocumentError

if TYPE_CHECKING:
    # Loaded when used: the document's models (pydantic) on the first parse; pydantic-settings
    # (and the asyncio it imports) when a provider reads the environment; watchfiles and
    # httpx-sse when a provider watches or subscribes.
    from leadctx_flags.document import FlagOverride, OverridesDocument
    from leadctx_flags.events import ChangeEventSubscriber
    from leadctx_flags.settings import RolloutSettings
    from leadctx_flags.watch import OverridesWatcher

__all__ = ["FLAG_SET_ID", "PROVIDER_NAME", "LeadCtxProvider"]

PROVIDER_NAME = "leadctx"

FLAG_SET_ID = "leadctx"
"""``flag_metadata["flagSetId"]`` of every result (OpenFeature's telemetry conventions)."""

logger = logging.getLogger(__name__)

T = TypeVar("T")

_CACHE_ORIGIN = "cache"


class _Outcome(enum.Enum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


class LeadCtxProvider(AbstractProvider):
    """OpenFeature provider resolving ``shared_bundle.enabled`` from the rollout settings.

    Args:
        settings: The rollout settings. ``None`` reads the ``LEADCTX_*`` environment; if that
            fails, the provider logs the error once and answers off, reason ERROR, for every
            client (fail closed) instead of raising into the application.
        source: Where overrides documents come from; by default the one named by
            ``settings.flag_overrides`` (``LEADCTX_FLAG_OVERRIDES``), if any.
        write_cache: Keep ``LEADCTX_FLAG_OVERRIDES_CACHE`` up to date with each applied
            document. Read-only tools (``leadctx flags explain``) pass ``False``: they read
            the cache like a pipeline but must never overwrite a service's last-good copy.

    Only boolean evaluation of known flags succeeds: another flag key answers FLAG_NOT_FOUND,
    another type TYPE_MISMATCH, both with the caller's default.

    Events: ``PROVIDER_CONFIGURATION_CHANGED`` (with ``flags_changed``) for each applied
    document, ``PROVIDER_STALE`` when the source has failed several polls in a row, and
    ``PROVIDER_READY`` again when it recovers.
    """

    def __init__(
        self,
        settings: RolloutSettings | None = None,
        *,
        source: OverridesSource | None = None,
        write_cache: bool = True,
    ) -> None:
        super().__init__()
        self._write_cache_enabled = write_cache
        self._highest_revision = -1  # the highest revision ever applied: the replay line
        self._metadata = Metadata(name=PROVIDER_NAME)
        self._writer = threading.Lock()  # serialises snapshot writers; readers never lock
        # Serialises initialize() and shutdown() on the threads they own (never held in a fetch).
        self._lifecycle = threading.Lock()
        # flag_metadata per decision for one snapshot, rebuilt when the snapshot changes: an
        # evaluation then allocates no dict (decisions are a bounded set of constants).
        self._flag_metadata: tuple[RolloutState | None, dict[int, Mapping[str, str]]] = (None, {})
        self._poller: OverridesPoller | None = None
        self._source: OverridesSource | None = None
        self._cache: Path | None = None
        self._cache_warned = False
        self._interval = 10.0
        self._watch = True
        self._watcher: OverridesWatcher | None = None
        self._subscriber: ChangeEventSubscriber | None = None
        after_fork_in_child(self._after_fork_in_child)
        try:
            if settings is None:
                from leadctx_flags.settings import RolloutSettings  # noqa: PLC0415 - see the imports

                settings = RolloutSettings()
            if source is None and settings.flag_overrides is not None:
                token = settings.flag_overrides_token
                source = open_source(
                    settings.flag_overrides,
                    token=None if token is None else token.get_secret_value(),
                    deadline=settings.flag_overrides_fetch_timeout_seconds,
                )
                _warn_if_relative(source)
            subscriber = self._subscriber_for(settings, source)
        except ConfigurationError as err:
            self._state = RolloutState(configuration_error=str(err))
            logger.error(  # noqa: TRY400 - the message is the whole story; no traceback helps
                "leadctx rollout configuration error, shared bundle off for every client: %s",
                err,
            )
            return
        self._source = source
        self._subscriber = subscriber
        self._cache = settings.flag_overrides_cache
        self._interval = settings.flag_overrides_poll_seconds
        self._watch = settings.flag_overrides_watch
        self._state = RolloutState(
            env=EnvRules(
                enabled=settings.shared_bundle_enabled,
                allowlist=frozenset(settings.shared_bundle_clients),
                kill=settings.shared_bundle_kill,
            ),
            overrides_required=settings.flag_overrides_required,
        )
        if settings.flag_overrides_required and source is None:
            logger.error(
                "LEADCTX_FLAG_OVERRIDES_REQUIRED is set but LEADCTX_FLAG_OVERRIDES is not: "
                "shared bundle off for every client"
            )
        orphans = [
            name
            for name in settings.orphaned_overrides_settings()
            if name != "LEADCTX_FLAG_OVERRIDES_EVENTS"  # warned about where events start
        ]
        if orphans:
            logger.warning(
                "%s set but LEADCTX_FLAG_OVERRIDES is not: ignored, no overrides document is read",
                ", ".join(orphans),
            )

    @property
    def state(self) -> RolloutState:
        """The snapshot in force now (immutable; read it once per decision)."""
        return self._state

    @property
    def configuration_error(self) -> str | None:
        """Why the configuration could not be loaded, or ``None`` when it was."""
        return self._state.configuration_error

    @property
    def overrides_source_failing(self) -> bool:
        """Whether the configured overrides source failed its latest poll.

        ``False`` without a source, and before ``initialize()``. A source that cannot be read
        (a missing file, a refused connection, a document that does not validate) leaves the
        process on its cache or on the environment's rules alone, which is why the pre-deploy
        check (``leadctx flags explain``) fails on it.
        """
        poller = self._poller
        return poller is not None and poller.consecutive_failures > 0

    @property
    def overrides_source_description(self) -> str | None:
        """Where overrides come from (a path or a URL without credentials), or ``None``."""
        return None if self._source is None else self._source.description

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Load the cached document, poll the overrides source once, then keep polling.

        Never raises, and returns within the fetch deadline
        (``LEADCTX_FLAG_OVERRIDES_FETCH_TIMEOUT_SECONDS``, 10 s by default): a source that is
        down or slow leaves the cached document (or the environment's rules, or, when
        overrides are required, off for everyone) in force while polling goes on in the
        background.
        """
        if self._source is None or self._poller is not None:
            return
        if self._cache is not None:
            self._load_cache(self._cache)
        poller = OverridesPoller(
            self._source,
            interval=self._interval,
            on_document=self._on_document,
            on_stale=self._on_stale,
            on_recovered=self._on_recovered,
        )
        with self._lifecycle:
            raced = self._poller is not None  # another initialize() won
            if not raced:
                self._poller = poller
                # The watch is registered before the first poll, so no change falls between.
                self._start_change_signals()
        if raced:
            return
        poller.poll_once()
        with self._lifecycle:
            # A shutdown() during that poll (OpenFeature runs initialize() on its own thread)
            # took this poller away: it must not start polling for a provider shut down.
            if self._poller is poller:
                poller.start()

    def _subscriber_for(
        self, settings: RolloutSettings, source: OverridesSource | None
    ) -> ChangeEventSubscriber | None:
        if settings.flag_overrides_events is None:
            return None
        if source is None:
            logger.warning(
                "LEADCTX_FLAG_OVERRIDES_EVENTS is set but LEADCTX_FLAG_OVERRIDES is not: "
                "change events ignored (they only trigger a fetch of the document)"
            )
            return None
        from leadctx_flags.events import ChangeEventSubscriber  # noqa: PLC0415 - see above

        token = settings.flag_overrides_events_token
        return ChangeEventSubscriber(
            settings.flag_overrides_events,
            self._wake_poller,
            token=None if token is None else token.get_secret_value(),
        )

    def _start_change_signals(self) -> None:
        """Start what wakes the poller early: the file watcher, the change-event stream."""
        if self._watch and isinstance(self._source, FileSource):
            from leadctx_flags.watch import OverridesWatcher  # noqa: PLC0415 - see above

            self._watcher = OverridesWatcher(self._source.path, self._wake_poller)
            self._watcher.start()
        if self._subscriber is not None:
            self._subscriber.start()

    def refresh(self) -> None:
        """Read the overrides source now instead of at the end of the poll interval.

        What a watch or a change event does, for a caller that knows of a change another way
        (``leadctx serve`` on SIGHUP, a deploy hook). Returns at once: the poller reads, and
        applies the document by the poll's rules (content hash, strict parse, replay rule,
        cache). Nothing happens before ``initialize()``, after ``shutdown()`` or without an
        overrides source. Never raises.
        """
        self._wake_poller()

    def _wake_poller(self) -> None:
        poller = self._poller
        if poller is not None:
            poller.wake()

    def shutdown(self) -> None:
        """Stop watching and polling, and join the threads. Idempotent; ``initialize()`` may follow.

        Returns within 2 s even in the middle of a fetch, which it cancels (the watcher and the
        event stream take at most 0.2 s each, the poller 1.5 s).
        """
        with self._lifecycle:
            watcher, self._watcher = self._watcher, None
            subscriber = self._subscriber
            if subscriber is not None:
                self._subscriber = subscriber.successor()  # unstarted, for a later initialize()
            poller, self._poller = self._poller, None
        if watcher is not None:
            watcher.shutdown()
        if subscriber is not None:
            subscriber.shutdown()
        if poller is not None:
            poller.shutdown()
        elif self._source is not None:
            self._source.close()

    def _after_fork_in_child(self) -> None:
        # The child has this provider and its snapshot but not the poller's thread; without a
        # new one it would answer from the snapshot of the fork for ever, a kill included.
        # The lock is replaced too: the parent's poller may have held it while forking.
        self._writer = threading.Lock()
        self._lifecycle = threading.Lock()
        poller = self._poller
        if poller is not None:
            self._poller = poller.successor()
            self._poller.start()
            logger.debug("overrides poller restarted in forked process %d", os.getpid())
        watcher = self._watcher
        if watcher is not None:
            # Registered here, before fork() returns in the child: a change the child's code
            # makes or waits for after the fork is seen. The wake covers the fork itself.
            self._watcher = watcher.successor()
            self._watcher.start()
            self._wake_poller()
        subscriber = self._subscriber
        if subscriber is not None and poller is not None:
            # The parent's stream is the parent's socket: the child opens its own.
            self._subscriber = subscriber.successor()
            self._subscriber.start()

    def update_overrides(self, document: OverridesDocument, *, origin: str = "api") -> bool:
        """Put ``document`` in force unless it is older than the one in force.

        The poller calls this for each new document; tests and in-process tools may too.

        Args:
            document: The new overrides document.
            origin: Where it came from, for the log line.

        Returns:
            Whether the document was applied. A lower ``revision`` than the highest one
            applied is refused as a replay (logged), unless the document kills the flag: a
            kill is always applied, and the replay line stays where it was. The same document
            again is a no-op.
        """
        return self._install(document, origin) is _Outcome.APPLIED

    def _install(self, document: OverridesDocument, origin: str) -> _Outcome:
        with self._writer:
            current = self._state
            previous = current.document
            if previous is not None and document == previous:
                return _Outcome.UNCHANGED
            if document.revision < self._highest_revision and not _kills(document):
                # A kill is never refused (see the rollout playbook): applying an old kill can
                # only turn the flag off, while refusing a new one after a lost document would
                # leave it on everywhere.
                logger.warning(
                    "refused overrides revision %d from %s: revision %d was applied (replay?)",
                    document.revision,
                    origin,
                    self._highest_revision,
                )
                return _Outcome.REFUSED
            self._highest_revision = max(self._highest_revision, document.revision)
            state = dataclasses.replace(current, document=document)
            self._state = state
            if (
                origin != _CACHE_ORIGIN
                and self._cache is not None
                and self._write_cache_enabled
                and not self._cache_is_the_document(self._cache)
            ):
                # Under the writer lock, so that the cache always ends at the newest revision.
                self._write_cache(self._cache, document)
        changed = [] if _rules(state.flag) == _rules(current.flag) else sorted(KNOWN_FLAGS)
        logger.info(
            "applied overrides revision %d from %s, updated by %s, flags changed: %s",
            document.revision,
            origin,
            document.updated_by or "unknown",
            ", ".join(changed) or "none",
        )
        self.emit_provider_configuration_changed(
            ProviderEventDetails(
                flags_changed=changed,
                message=f"overrides revision {document.revision}",
                metadata={"revision": document.revision},
            )
        )
        return _Outcome.APPLIED

    def _on_document(self, document: OverridesDocument) -> None:
        origin = self._source.description if self._source is not None else "source"
        if self._install(document, origin) is _Outcome.REFUSED:
            raise SourceError(
                f"{origin}: revision {document.revision} is older than the one in force",
                kind="ReplayedRevision",
            )

    def _on_stale(self, err: SourceError) -> None:
        self.emit_provider_stale(
            ProviderEventDetails(message=f"overrides source failing: {err.kind}")
        )

    def _on_recovered(self) -> None:
        self.emit_provider_ready(ProviderEventDetails(message="overrides source recovered"))

    def _load_cache(self, path: Path) -> None:
        try:
            document = read_document(path)
        except FileNotFoundError:
            return
        except (OSError, DocumentError) as err:
            logger.warning("ignoring overrides cache %s: %s", path, type(err).__name__)
            return
        self._install(document, _CACHE_ORIGIN)

    def _cache_is_the_document(self, cache: Path) -> bool:
        """Whether ``cache`` names the overrides file itself (the same path, or via a link).

        Writing the cache there would replace the operator's file with the copy this process
        read: a kill written between that read and the write would be put back to the older
        revision, in every process. Checked at each write, since either path may be a link
        that is swapped later.
        """
        source = self._source
        if not isinstance(source, FileSource):
            return False
        if os.path.realpath(cache) != os.path.realpath(source.path):
            return False
        if not self._cache_warned:
            self._cache_warned = True
            logger.warning(
                "LEADCTX_FLAG_OVERRIDES_CACHE names the overrides document itself (%s); "
                "the cache is not written: point it at a file of its own",
                cache,
            )
        return True

    @staticmethod
    def _write_cache(path: Path, document: OverridesDocument) -> None:
        try:
            write_document(path, document)
        except (OSError, DocumentError) as err:  # a cache no reader would accept is not kept
            logger.warning("could not write overrides cache %s: %s", path, type(err).__name__)

    def get_metadata(self) -> Metadata:
        """Provider metadata; its name, ``leadctx``, appears in telemetry."""
        return self._metadata

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Resolve a boolean flag; the only kind this provider serves. Never raises."""
        try:
            if flag_key not in KNOWN_FLAGS:
                return _not_found(flag_key, default_value)
            client_id = client_id_of(evaluation_context)
        except InvalidClientContext as err:
            return _off(ErrorCode.INVALID_CONTEXT, str(err), self._state)
        except Exception as err:  # noqa: BLE001 - evaluation must never raise into a pipeline
            # An argument of a type nobody planned for (an unhashable flag key, a context
            # whose attributes are not a mapping): off, like any other error.
            logger.warning("shared bundle evaluation failed, answering off: %s", type(err).__name__)
            return _off(ErrorCode.GENERAL, f"evaluation failed: {type(err).__name__}", self._state)
        state = self._state
        decision = decide(state, client_id)
        return FlagResolutionDetails(
            value=decision.value,
            reason=decision.reason,
            variant=decision.variant,
            flag_metadata=self._metadata_for(state, decision),
            error_code=decision.error_code,
            error_message=decision.error_message,
        )

    def _metadata_for(self, state: RolloutState, decision: Decision) -> Mapping[str, str]:
        """``flag_metadata`` of ``decision`` under ``state``: source, flagSetId and version.

        Built once per decision and snapshot. Threads that race on a new snapshot each build
        the same read-only mapping; the last one stored wins, which is harmless.
        """
        cached_state, by_decision = self._flag_metadata
        if cached_state is not state:
            by_decision = {}
            self._flag_metadata = (state, by_decision)
        metadata = by_decision.get(id(decision))
        if metadata is None:
            metadata = MappingProxyType({**decision.metadata, **_telemetry_metadata(state)})
            by_decision[id(decision)] = metadata
        return metadata

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        """Answer TYPE_MISMATCH (or FLAG_NOT_FOUND): no string flags are served."""
        return _wrong_type(flag_key, default_value, "string")

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        """Answer TYPE_MISMATCH (or FLAG_NOT_FOUND): no integer flags are served."""
        return _wrong_type(flag_key, default_value, "integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """Answer TYPE_MISMATCH (or FLAG_NOT_FOUND): no float flags are served."""
        return _wrong_type(flag_key, default_value, "float")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        """Answer TYPE_MISMATCH (or FLAG_NOT_FOUND): no object flags are served."""
        return _wrong_type(flag_key, default_value, "object")


def _kills(document: OverridesDocument) -> bool:
    """Whether ``document`` turns every served flag off outright (its kill switch is set)."""
    return all(
        (flag := document.flag(key)) is not None and flag.kill for key in sorted(KNOWN_FLAGS)
    )


def _telemetry_metadata(state: RolloutState) -> dict[str, str]:
    """OpenFeature's telemetry keys: ``flagSetId``, and ``version`` when a document is in force.

    ``version`` is the overrides revision as a string: telemetry reads it as an opaque ruleset
    identifier (``feature_flag.version``), and strings keep every provider's versions alike.
    """
    document = state.document
    if document is None:
        return {"flagSetId": FLAG_SET_ID}
    return {"flagSetId": FLAG_SET_ID, "version": str(document.revision)}


def _rules(flag: FlagOverride | None) -> tuple[bool, bool | None, dict[str, bool]]:
    """What decides evaluations; a reworded note changes no flag."""
    if flag is None:
        return False, None, {}
    return flag.kill, flag.default, flag.clients


def _off(code: ErrorCode, message: str, state: RolloutState) -> FlagResolutionDetails[bool]:
    return FlagResolutionDetails(
        value=False,
        reason=Reason.ERROR,
        variant="off",
        flag_metadata=_telemetry_metadata(state),
        error_code=code,
        error_message=message,
    )


def _not_found(flag_key: str, default_value: T) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default_value,
        reason=Reason.ERROR,
        flag_metadata={"flagSetId": FLAG_SET_ID},
        error_code=ErrorCode.FLAG_NOT_FOUND,
        error_message=f"flag {flag_key!r} is not served by the {PROVIDER_NAME} provider",
    )


def _wrong_type(flag_key: str, default_value: T, asked: str) -> FlagResolutionDetails[T]:
    if flag_key not in KNOWN_FLAGS:
        return _not_found(flag_key, default_value)
    return FlagResolutionDetails(
        value=default_value,
        reason=Reason.ERROR,
        flag_metadata={"flagSetId": FLAG_SET_ID},
        error_code=ErrorCode.TYPE_MISMATCH,
        error_message=f"flag {flag_key!r} is a boolean flag, not {asked}",
    )


def _warn_if_relative(source: OverridesSource) -> None:
    """Warn when ``LEADCTX_FLAG_OVERRIDES`` is a relative path: each process reads it against
    its own working directory, so a process started elsewhere, or an edit run from another
    directory, follows another file and a kill written there never reaches this one."""
    if isinstance(source, FileSource) and not source.path.is_absolute():
        try:
            here: object = Path.cwd()
        except OSError:  # the working directory was deleted
            here = "a directory that no longer exists"
        logger.warning(
            "LEADCTX_FLAG_OVERRIDES is a relative path, read against this process's working "
            "directory (%s): a process or an edit started in another directory reads another "
            "file; give an absolute path",
            here,
        )
