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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from leadctx_flags.context import InvalidClientContext, client_id_of
from leadctx_flags.decision import EnvRules, RolloutState, decide
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.flags import KNOWN_FLAGS
from leadctx_flags.settings import RolloutSettings

__all__ = ["PROVIDER_NAME", "LeadCtxProvider"]

PROVIDER_NAME = "leadctx"

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LeadCtxProvider(AbstractProvider):
    """OpenFeature provider resolving ``shared_bundle.enabled`` from the rollout settings.

    Args:
        settings: The rollout settings. ``None`` reads the ``LEADCTX_*`` environment; if that
            fails, the provider logs the error once and answers off, reason ERROR, for every
            client (fail closed) instead of raising into the application.

    Only boolean evaluation of known flags succeeds: another flag key answers FLAG_NOT_FOUND,
    another type TYPE_MISMATCH, both with the caller's default.
    """

    def __init__(self, settings: RolloutSettings | None = None) -> None:
        super().__init__()
        self._metadata = Metadata(name=PROVIDER_NAME)
        self._state = _state_from(settings)
        if self._state.configuration_error is not None:
            logger.error(
                "leadctx rollout configuration error, shared bundle off for every client: %s",
                self._state.configuration_error,
            )

    @property
    def state(self) -> RolloutState:
        """The snapshot in force now (immutable; read it once per decision)."""
        return self._state

    @property
    def configuration_error(self) -> str | None:
        """Why the configuration could not be loaded, or ``None`` when it was."""
        return self._state.configuration_error

    def get_metadata(self) -> Metadata:
        """Provider metadata; its name, ``leadctx``, appears in telemetry."""
        return self._metadata

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Resolve a boolean flag; the only kind this provider serves."""
        if flag_key not in KNOWN_FLAGS:
            return _not_found(flag_key, default_value)
        try:
            client_id = client_id_of(evaluation_context)
        except InvalidClientContext as err:
            return FlagResolutionDetails(
                value=False,
                reason=Reason.ERROR,
                variant="off",
                error_code=ErrorCode.INVALID_CONTEXT,
                error_message=str(err),
            )
        decision = decide(self._state, client_id)
        return FlagResolutionDetails(
            value=decision.value,
            reason=decision.reason,
            variant=decision.variant,
            flag_metadata=decision.metadata,
            error_code=decision.error_code,
            error_message=decision.error_message,
        )

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


def _state_from(settings: RolloutSettings | None) -> RolloutState:
    if settings is None:
        try:
            settings = RolloutSettings()
        except ConfigurationError as err:
            return RolloutState(configuration_error=str(err))
    return RolloutState(
        env=EnvRules(
            enabled=settings.shared_bundle_enabled,
            allowlist=frozenset(settings.shared_bundle_clients),
            kill=settings.shared_bundle_kill,
        ),
        overrides_required=settings.flag_overrides_required,
    )


def _not_found(flag_key: str, default_value: T) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default_value,
        reason=Reason.ERROR,
        error_code=ErrorCode.FLAG_NOT_FOUND,
        error_message=f"flag {flag_key!r} is not served by the {PROVIDER_NAME} provider",
    )


def _wrong_type(flag_key: str, default_value: T, asked: str) -> FlagResolutionDetails[T]:
    if flag_key not in KNOWN_FLAGS:
        return _not_found(flag_key, default_value)
    return FlagResolutionDetails(
        value=default_value,
        reason=Reason.ERROR,
        error_code=ErrorCode.TYPE_MISMATCH,
        error_message=f"flag {flag_key!r} is a boolean flag, not {asked}",
    )
