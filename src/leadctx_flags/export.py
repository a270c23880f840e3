"""Export the effective rollout configuration as a flagd flag definition.

``to_flagd(state)`` turns one ``RolloutState`` (environment rules plus the overrides document in
force) into the JSON document flagd and its in-process providers read, such that the flagd
evaluation of ``shared_bundle.enabled`` gives the same value and variant as ``decide(state,
client_id)`` for every client id. ``leadctx flags export --format flagd`` prints it.

How the precedence table becomes one flagd flag:

* Rows 1 and 2 (kill switch; overrides required but unavailable) answer off for everyone, so
  the flag is exported without targeting and with ``defaultVariant: "off"``. flagd's own
  ``state: DISABLED`` is deliberately not used: flagd treats a disabled flag as missing, and the
  caller's default value (not ``false``) would win.
* Rows 3 and 4 (document per-client entries, env allowlist) become two membership tests on the
  client id: the document's ``false`` entries answer ``"off"``, its ``true`` entries and the
  allowlisted clients without an entry answer ``"on"``. A document ``false`` therefore still
  beats the allowlist.
* Rows 5 and 6 (document default, env default) become ``defaultVariant``: targeting that
  returns ``null`` falls through to it.

The client id is read as our provider reads it: the ``targetingKey`` (which flagd fills from the
evaluation context's ``targeting_key``), else the ``clientId`` attribute. Client ids only ever
appear as JSON string literals inside arrays, which JSON Logic never interprets as rules, so an
id such as ``{"var": "x"}``, ``$ref`` or ``targetingKey`` matches only itself.

Reasons differ where flagd has no equivalent (see ``docs/migration.md``): rows 1 and 2 answer
``STATIC`` (ours: ``DISABLED``, and ``ERROR`` for row 2), rows 5 and 6 answer ``DEFAULT`` when
the flag has targeting and ``STATIC`` when it has none. ``flag_metadata["source"]`` has no flagd
counterpart; the exported flag set carries ``flagSetId: "leadctx"`` and, when a document is in
force, its revision as ``version``.
"""

from __future__ import annotations

from typing import Any, Final

from leadctx_flags.context import CLIENT_ID_ATTRIBUTE
from leadctx_flags.decision import RolloutState
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.flags import SHARED_BUNDLE_FLAG

__all__ = ["FLAGD_FLAG_SET_ID", "FLAGD_SCHEMA", "to_flagd"]

FLAGD_SCHEMA: Final = "https://flagd.dev/schema/v0/flags.json"
"""The JSON schema flagd flag definitions are validated against."""

FLAGD_FLAG_SET_ID: Final = "leadctx"
"""``metadata.flagSetId`` of every exported document."""

_ON: Final = "on"
_OFF: Final = "off"


def to_flagd(state: RolloutState) -> dict[str, Any]:
    """Express ``state`` as a flagd flag-definition document for ``shared_bundle.enabled``.

    The result is plain JSON data (``json.dumps`` it as is). Client lists are sorted, so the
    same configuration always exports to the same bytes and diffs stay readable.

    Args:
        state: The snapshot to export: environment rules, the overrides document in force (if
            any) and whether overrides are required.

    Returns:
        ``{"$schema", "metadata", "flags": {"shared_bundle.enabled": {...}}}``, whose flagd
        evaluation gives the value and variant of ``decide(state, client_id)`` for every
        client id (see the module docstring for the reasons, which can differ).

    Raises:
        ConfigurationError: ``state`` holds a configuration error. The provider answers off
            for every client then, but exporting that would write an all-off flag into another
            system that outlives the mistake; fix the configuration and export again.
    """
    if state.configuration_error is not None:
        raise ConfigurationError(
            "refusing to export a configuration that failed to load "
            f"(the provider answers off for every client): {state.configuration_error}"
        )
    metadata: dict[str, str] = {"flagSetId": FLAGD_FLAG_SET_ID}
    if state.revision is not None:
        metadata["version"] = str(state.revision)
    return {
        "$schema": FLAGD_SCHEMA,
        "metadata": metadata,
        "flags": {SHARED_BUNDLE_FLAG: _flag_definition(state)},
    }


def _flag_definition(state: RolloutState) -> dict[str, Any]:
    flag = state.flag
    definition: dict[str, Any] = {
        "state": "ENABLED",
        "variants": {_ON: True, _OFF: False},
        "defaultVariant": _OFF,
    }
    killed = state.env.kill or (flag is not None and flag.kill)
    unavailable = state.overrides_required and state.document is None
    if killed or unavailable:
        return definition

    entries = flag.clients if flag is not None else {}
    default = flag.default if flag is not None and flag.default is not None else state.env.enabled
    definition["defaultVariant"] = _ON if default else _OFF

    off = sorted(client for client, value in entries.items() if not value)
    on = sorted(
        {client for client, value in entries.items() if value}
        | {client for client in state.env.allowlist if client not in entries}
    )
    branches: list[Any] = []
    for clients, variant in ((off, _OFF), (on, _ON)):
        if clients:
            branches += [{"in": [_client_id_rule(), clients]}, variant]
    if branches:
        # No branch matched: null, which flagd answers with defaultVariant (reason DEFAULT).
        definition["targeting"] = {"if": [*branches, None]}
    return definition


def _client_id_rule() -> dict[str, Any]:
    # Our provider's client id: the targeting key, else the `clientId` attribute. JSON Logic's
    # `or` returns its first truthy operand and an empty string is falsy, as in client_id_of().
    # A fresh object per use: callers (and flagd's own parser) may mutate what we return.
    return {"or": [{"var": "targetingKey"}, {"var": CLIENT_ID_ATTRIBUTE}]}
