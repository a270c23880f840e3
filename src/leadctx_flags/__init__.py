"""leadctx_flags: is the shared LeadContextBundle on for this client, and should it stay on?

The control plane: an OpenFeature provider (``LeadCtxProvider``) resolving
``shared_bundle.enabled`` from environment rules and remote overrides, through one pure
precedence function (``decide``).
"""

from leadctx_flags import editing
from leadctx_flags.context import CLIENT_ID_ATTRIBUTE, client_context
from leadctx_flags.decision import Decision, EnvRules, RolloutState, Source, decide
from leadctx_flags.document import OVERRIDES_SCHEMA, FlagOverride, OverridesDocument
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.export import to_flagd
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.provider import PROVIDER_NAME, LeadCtxProvider
from leadctx_flags.settings import RolloutSettings

__all__ = [
    "CLIENT_ID_ATTRIBUTE",
    "OVERRIDES_SCHEMA",
    "PROVIDER_NAME",
    "SHARED_BUNDLE_FLAG",
    "ConfigurationError",
    "Decision",
    "EnvRules",
    "FlagOverride",
    "LeadCtxProvider",
    "OverridesDocument",
    "RolloutSettings",
    "RolloutState",
    "Source",
    "client_context",
    "decide",
    "editing",
    "to_flagd",
]
