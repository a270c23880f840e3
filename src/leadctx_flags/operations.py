"""Read-only operations on the live rollout configuration, as typed results.

``explain`` and ``export_flagd`` start the provider exactly as a pipeline would (cache, then
one poll of the source) under a private OpenFeature domain, ask it, and stop it. They write
nothing (not even the last-good cache). They return frozen values; the CLI only prints them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from openfeature import api
from openfeature.client import OpenFeatureClient

from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.context import client_context
from leadctx_flags.document import FlagOverride, OverridesDocument
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.export import to_flagd
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import (
    RolloutSettings,
    environment_value,
    parse_bool,
    parse_client_list,
)

__all__ = [
    "CLI_DOMAIN",
    "Explanation",
    "FlagdExport",
    "explain",
    "export_flagd",
    "masked_edit_warning",
    "unknown_client_warning",
]

CLI_DOMAIN = "leadctx-cli"
"""OpenFeature domain these operations bind their provider to, leaving the default alone."""


@dataclass(frozen=True, slots=True)
class Explanation:
    """What ``shared_bundle.enabled`` answers for one client, and which rule decided.

    Args:
        flag: The flag key.
        client_id: The client evaluated for.
        value: The flag's value.
        reason: OpenFeature reason (``TARGETING_MATCH``, ``STATIC``, ``DISABLED``, ...).
        variant: ``"on"`` or ``"off"``.
        source: ``flag_metadata["source"]``: the precedence rule that decided.
        error_code: OpenFeature error code, ``None`` unless the answer is a fail-closed error.
        provider: The provider's metadata name.
        overrides_unreadable: Set when overrides are configured but their source could not
            be read (missing, unreachable, not a valid document), or are required but not
            configured, or a ``LEADCTX_FLAG_OVERRIDES_*`` setting is set without the location:
            why, naming the source or variable and what the answer came from instead. Not
            part of ``to_json``; the CLI reports it on stderr and exits 3, so that the
            pre-deploy check fails.
    """

    flag: str
    client_id: str
    value: bool
    reason: str | None
    variant: str | None
    source: str | None
    error_code: str | None
    provider: str
    overrides_unreadable: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The eight keys ``leadctx flags explain --json`` prints, in that order."""
        return {
            "flag": self.flag,
            "client_id": self.client_id,
            "value": self.value,
            "reason": self.reason,
            "variant": self.variant,
            "source": self.source,
            "error_code": self.error_code,
            "provider": self.provider,
        }


@dataclass(frozen=True, slots=True)
class FlagdExport:
    """The effective configuration as a flagd flag-definition document.

    Args:
        document: The flagd JSON document (``{"$schema", "flags", "metadata"}``).
        revision: The overrides revision it was built from, ``None`` without a document.
    """

    document: dict[str, Any]
    revision: int | None

    def to_json(self) -> dict[str, Any]:
        """The document ``leadctx flags export --format flagd`` prints."""
        return self.document


def explain(client_id: str, settings: RolloutSettings | None = None) -> Explanation:
    """Evaluate ``shared_bundle.enabled`` for ``client_id`` through the OpenFeature client.

    Args:
        client_id: The client to evaluate for; its canonical form (NFC) is evaluated and
            reported, as a pipeline's would be.
        settings: Rollout settings; ``None`` reads the environment.

    Returns:
        The answer; its ``overrides_unreadable`` says when the configured overrides source
        could not be read, i.e. the answer ignores whatever the document says now.

    Raises:
        ConfigurationError: The settings (environment) cannot be loaded.
        ValueError: ``client_id`` is not a valid client id.
    """
    client_id = validate_client_id(client_id, field="--client-id")
    resolved = settings if settings is not None else RolloutSettings()
    with _serving(resolved) as client:
        details = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context(client_id))
        provider = client.provider
        assert isinstance(provider, LeadCtxProvider)  # noqa: S101 - _serving binds ours
        return Explanation(
            flag=details.flag_key,
            client_id=client_id,
            value=details.value,
            reason=None if details.reason is None else str(details.reason),
            variant=details.variant,
            source=_str_or_none(details.flag_metadata.get("source")),
            error_code=None if details.error_code is None else str(details.error_code),
            provider=provider.get_metadata().name,
            overrides_unreadable=_unreadable(provider) or _orphaned(resolved),
        )


def _orphaned(settings: RolloutSettings) -> str | None:
    names = settings.orphaned_overrides_settings()
    if not names:
        return None
    return (
        f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} set but LEADCTX_FLAG_OVERRIDES "
        "is not: no overrides document is read, so this answer comes from the environment's "
        "rules alone and a kill in the document would not reach this deployment"
    )


def _unreadable(provider: LeadCtxProvider) -> str | None:
    if provider.state.overrides_required and provider.overrides_source_description is None:
        return (
            "overrides are required (LEADCTX_FLAG_OVERRIDES_REQUIRED) but "
            "LEADCTX_FLAG_OVERRIDES is not set: off for every client"
        )
    if not provider.overrides_source_failing:
        return None
    fallback = (
        f"the cached document (revision {provider.state.revision})"
        if provider.state.document is not None
        else "the environment's rules alone"
    )
    return (
        f"the overrides source {provider.overrides_source_description} could not be read; "
        f"this answer comes from {fallback}, not from the document"
    )


def export_flagd(settings: RolloutSettings | None = None) -> FlagdExport:
    """The effective configuration (env rules and the overrides document) as flagd JSON.

    The provider is started as a pipeline would start it, so the export holds exactly what
    pipelines decide on now.

    Args:
        settings: Rollout settings; ``None`` reads the environment.

    Raises:
        ConfigurationError: The configuration cannot be loaded, or overrides are configured
            but no document could be had: exporting the env rules alone would silently drop
            a rollback.
    """
    resolved = settings if settings is not None else RolloutSettings()
    with _serving(resolved) as client:
        provider = client.provider
        assert isinstance(provider, LeadCtxProvider)  # noqa: S101 - _serving binds ours
        state = provider.state
        if resolved.flag_overrides is not None and state.document is None:
            # Named as the provider describes it (a URL without its credentials), never as
            # the variable's value.
            where = provider.overrides_source_description or "LEADCTX_FLAG_OVERRIDES"
            raise ConfigurationError(
                f"{where}: no overrides document could be loaded (source down and no cache); "
                "refusing to export the env rules alone"
            )
        revision = None if state.document is None else state.document.revision
        return FlagdExport(document=to_flagd(state), revision=revision)


def unknown_client_warning(
    client_id: str, before: FlagOverride, environ: Mapping[str, str] | None = None
) -> str | None:
    """A warning when an edit names a client that no rule knew: perhaps not the id meant.

    ``deny`` of a misspelt id exits 0 and rolls back nobody; a client that neither the env
    allowlist (``LEADCTX_SHARED_BUNDLE_CLIENTS`` here) nor the document named is the sign.

    Args:
        client_id: The edited client id (canonical form, as the edit wrote it).
        before: The flag's overrides as they were before the edit.
        environ: The environment whose allowlist is consulted (default: ``os.environ``).

    Returns:
        The warning (naming neither the id nor the allowlist), or ``None`` when the id was
        known to one of them.
    """
    if client_id in before.clients:
        return None
    try:
        allowlist = parse_client_list(
            environment_value("LEADCTX_SHARED_BUNDLE_CLIENTS", environ) or ""
        )
    except ValueError:  # ConfigurationError included: an allowlist unusable here knows no one
        allowlist = ()
    if client_id in allowlist:
        return None
    return (
        "warning: the client id given is neither in LEADCTX_SHARED_BUNDLE_CLIENTS nor in the "
        "document; check that it is the id pipelines send (the edit was made)"
    )


def masked_edit_warning(
    turns_on: bool, written: OverridesDocument, environ: Mapping[str, str] | None = None
) -> str | None:
    """A warning when an edit that turns the flag on (an ``allow``, an ``unkill``) was written
    but a kill still answers off for everyone, so that it is not in force as the operator means
    it: the document's own kill, or ``LEADCTX_SHARED_BUNDLE_KILL`` in this environment.

    Args:
        turns_on: The edit turns the flag on for someone (sets a client or the default on, or
            lifts the document's kill).
        written: The document the edit wrote.
        environ: The environment whose kill switch is consulted (default: ``os.environ``).

    Returns:
        The warning, or ``None`` when nothing masks the edit.
    """
    if not turns_on:
        return None
    try:
        raw = environment_value("LEADCTX_SHARED_BUNDLE_KILL", environ)
        env_kill = raw is not None and parse_bool(raw)
    except ValueError:  # ConfigurationError included: processes here fail closed, all off
        env_kill = True
    if env_kill:
        return (
            "warning: LEADCTX_SHARED_BUNDLE_KILL is on (or unusable) in this environment: "
            "processes with it answer off for every client whatever the document says "
            "(the edit was made)"
        )
    flag = written.flag(SHARED_BUNDLE_FLAG)
    if flag is not None and flag.kill:
        return (
            "warning: the document's kill is on, so the flag stays off for every client "
            "until `leadctx flags unkill` (the edit was made)"
        )
    return None


@contextlib.contextmanager
def _serving(settings: RolloutSettings | None) -> Iterator[OpenFeatureClient]:
    """A client bound to a freshly initialised provider under the operations' own domain.

    The provider reads the cache as a pipeline would but never writes it: an operator's
    ``explain --overrides scratch.json`` must not replace a service's last-good document.
    """
    provider = LeadCtxProvider(
        settings if settings is not None else RolloutSettings(), write_cache=False
    )
    if provider.configuration_error is not None:
        raise ConfigurationError(provider.configuration_error)
    api.set_provider_and_wait(provider, domain=CLI_DOMAIN)
    try:
        yield api.get_client(domain=CLI_DOMAIN)
    finally:
        # Stop the poller now; the SDK may shut the provider down again later (idempotent).
        provider.shutdown()


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
