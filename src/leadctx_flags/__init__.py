"""leadctx_flags: is the shared LeadContextBundle on for this client, and should it stay on?

The control plane: an OpenFeature provider (``LeadCtxProvider``) resolving
``shared_bundle.enabled`` from environment rules and remote overrides, through one pure
precedence function (``decide``), and the rollout's vocabulary (``Pipeline``,
``ResolutionPath``, ``FallbackReason``).

Public names are re-exported lazily (PEP 562): ``import leadctx_flags`` loads only this file,
so the data plane can import the vocabulary or validate a client id without loading the
provider, its poller or httpx. The guardrails (``leadctx_flags.guardrails``) are never
imported from here: their statistics stack is an optional extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadctx_flags import editing
    from leadctx_flags.context import CLIENT_ID_ATTRIBUTE, client_context
    from leadctx_flags.decision import Decision, EnvRules, RolloutState, Rule, decide
    from leadctx_flags.document import OVERRIDES_SCHEMA, FlagOverride, OverridesDocument
    from leadctx_flags.errors import ConfigurationError
    from leadctx_flags.export import to_flagd
    from leadctx_flags.flags import SHARED_BUNDLE_FLAG
    from leadctx_flags.operations import Explanation, FlagdExport, explain, export_flagd
    from leadctx_flags.provider import FLAG_SET_ID, PROVIDER_NAME, LeadCtxProvider
    from leadctx_flags.settings import RolloutSettings
    from leadctx_flags.vocabulary import (
        FALLBACK_REASONS,
        PATHS,
        PIPELINES,
        FallbackReason,
        Pipeline,
        ResolutionPath,
    )

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "CLIENT_ID_ATTRIBUTE": "leadctx_flags.context",
    "FALLBACK_REASONS": "leadctx_flags.vocabulary",
    "FLAG_SET_ID": "leadctx_flags.provider",
    "OVERRIDES_SCHEMA": "leadctx_flags.document",
    "PATHS": "leadctx_flags.vocabulary",
    "PIPELINES": "leadctx_flags.vocabulary",
    "PROVIDER_NAME": "leadctx_flags.provider",
    "SHARED_BUNDLE_FLAG": "leadctx_flags.flags",
    "ConfigurationError": "leadctx_flags.errors",
    "Decision": "leadctx_flags.decision",
    "EnvRules": "leadctx_flags.decision",
    "Explanation": "leadctx_flags.operations",
    "FallbackReason": "leadctx_flags.vocabulary",
    "FlagOverride": "leadctx_flags.document",
    "FlagdExport": "leadctx_flags.operations",
    "LeadCtxProvider": "leadctx_flags.provider",
    "OverridesDocument": "leadctx_flags.document",
    "Pipeline": "leadctx_flags.vocabulary",
    "ResolutionPath": "leadctx_flags.vocabulary",
    "RolloutSettings": "leadctx_flags.settings",
    "RolloutState": "leadctx_flags.decision",
    "Rule": "leadctx_flags.decision",
    "client_context": "leadctx_flags.context",
    "decide": "leadctx_flags.decision",
    "explain": "leadctx_flags.operations",
    "export_flagd": "leadctx_flags.operations",
    "to_flagd": "leadctx_flags.export",
}
_SUBMODULES = frozenset({"editing"})

__all__ = [
    "CLIENT_ID_ATTRIBUTE",
    "FALLBACK_REASONS",
    "FLAG_SET_ID",
    "OVERRIDES_SCHEMA",
    "PATHS",
    "PIPELINES",
    "PROVIDER_NAME",
    "SHARED_BUNDLE_FLAG",
    "ConfigurationError",
    "Decision",
    "EnvRules",
    "Explanation",
    "FallbackReason",
    "FlagOverride",
    "FlagdExport",
    "LeadCtxProvider",
    "OverridesDocument",
    "Pipeline",
    "ResolutionPath",
    "RolloutSettings",
    "RolloutState",
    "Rule",
    "client_context",
    "decide",
    "editing",
    "explain",
    "export_flagd",
    "to_flagd",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
