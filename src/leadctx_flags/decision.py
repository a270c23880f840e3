"""The rollout decision: one pure function over one immutable snapshot.

``decide(state, client_id)`` implements the precedence table of the design, first match wins:

=  ==========================================  =====  ===============  =======  ================
#  rule                                        value  reason           variant  source
=  ==========================================  =====  ===============  =======  ================
1  env kill, or the document's ``kill: true``  false  DISABLED         off      kill
2  overrides required but unavailable          false  ERROR (GENERAL)  off      unavailable
3  document per-client entry                   entry  TARGETING_MATCH  on/off   override
4  env allowlist contains the client           true   TARGETING_MATCH  on       allowlist
5  document ``default`` set                    it     STATIC           on/off   override-default
6  env default                                 it     STATIC/DEFAULT   on/off   env
=  ==========================================  =====  ===============  =======  ================

Row 6 answers DEFAULT when there is no client id at all. A configuration that could not be
loaded answers off with reason ERROR before any row is consulted: when in doubt, the shared
bundle is off.

Everything here is immutable and allocation-free on the hot path: every possible ``Decision``
is a module constant, and ``RolloutState`` is swapped whole by the provider, so evaluations
never take a lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum, unique
from types import MappingProxyType
from typing import TYPE_CHECKING

from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from leadctx_flags.client_ids import canonical_client_id
from leadctx_flags.flags import SHARED_BUNDLE_FLAG

if TYPE_CHECKING:
    from leadctx_flags.document import FlagOverride, OverridesDocument

__all__ = ["Decision", "EnvRules", "RolloutState", "Rule", "decide"]


@unique
class Rule(StrEnum):
    """Which precedence rule decided; its value is ``flag_metadata["source"]``.

    The metadata key keeps the name ``source`` (a published contract); in code the word
    "source" is kept for where data comes from (``OverridesSource``, ``ContextSource``).
    """

    KILL = "kill"
    UNAVAILABLE = "unavailable"
    OVERRIDE = "override"
    ALLOWLIST = "allowlist"
    OVERRIDE_DEFAULT = "override-default"
    ENV = "env"
    CONFIG_ERROR = "config-error"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one evaluation, in OpenFeature's terms.

    Args:
        value: Is the shared bundle on?
        reason: OpenFeature reason (``TARGETING_MATCH``, ``STATIC``, ...).
        rule: Which precedence row decided; published as ``flag_metadata["source"]``.
        error_code: Set only when the decision is a fail-closed error.
        error_message: Human-readable cause for an error decision; never holds client lists.

    ``variant`` (``"on"``/``"off"``) and ``metadata`` (``{"source": rule}``) are derived.
    """

    value: bool
    reason: Reason
    rule: Rule
    error_code: ErrorCode | None = None
    error_message: str | None = None
    variant: str = field(init=False, compare=False)
    metadata: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Precomputed: decisions are constants, evaluations only read them.
        object.__setattr__(self, "variant", "on" if self.value else "off")
        object.__setattr__(self, "metadata", MappingProxyType({"source": str(self.rule)}))


KILLED = Decision(value=False, reason=Reason.DISABLED, rule=Rule.KILL)
UNAVAILABLE = Decision(
    value=False,
    reason=Reason.ERROR,
    rule=Rule.UNAVAILABLE,
    error_code=ErrorCode.GENERAL,
    error_message=(
        "overrides are required (LEADCTX_FLAG_OVERRIDES_REQUIRED) but no document could be loaded"
    ),
)
OVERRIDE_ON = Decision(value=True, reason=Reason.TARGETING_MATCH, rule=Rule.OVERRIDE)
OVERRIDE_OFF = Decision(value=False, reason=Reason.TARGETING_MATCH, rule=Rule.OVERRIDE)
ALLOWLISTED = Decision(value=True, reason=Reason.TARGETING_MATCH, rule=Rule.ALLOWLIST)
OVERRIDE_DEFAULT_ON = Decision(value=True, reason=Reason.STATIC, rule=Rule.OVERRIDE_DEFAULT)
OVERRIDE_DEFAULT_OFF = Decision(value=False, reason=Reason.STATIC, rule=Rule.OVERRIDE_DEFAULT)
_ENV = {
    (value, has_client): Decision(
        value=value, reason=Reason.STATIC if has_client else Reason.DEFAULT, rule=Rule.ENV
    )
    for value in (True, False)
    for has_client in (True, False)
}


@dataclass(frozen=True, slots=True)
class EnvRules:
    """The environment's rules (``LEADCTX_SHARED_BUNDLE_*``), already parsed.

    Args:
        enabled: Default for clients no other rule covers.
        allowlist: Clients for which the bundle is on; kept in canonical form (NFC, see
            ``canonical_client_id``), the form ``decide`` compares in.
        kill: Off for everyone.
    """

    enabled: bool = False
    allowlist: frozenset[str] = frozenset()
    kill: bool = False

    def __post_init__(self) -> None:
        # Settings already give canonical ids; rules built in code get the same guarantee.
        object.__setattr__(
            self, "allowlist", frozenset(canonical_client_id(client) for client in self.allowlist)
        )


@dataclass(frozen=True, slots=True)
class RolloutState:
    """Everything a decision depends on, as one immutable value.

    Args:
        env: The environment's rules.
        document: The overrides document in force, if any.
        overrides_required: ``LEADCTX_FLAG_OVERRIDES_REQUIRED``: without a document, rule 2
            answers off for everyone.
        configuration_error: Set when the configuration could not be loaded; every decision
            is then off with reason ERROR and this message.
    """

    env: EnvRules = EnvRules()
    document: OverridesDocument | None = None
    overrides_required: bool = False
    configuration_error: str | None = None
    flag: FlagOverride | None = field(init=False, repr=False, compare=False)
    error_decision: Decision | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived once per snapshot so that decide() does no lookups it can avoid.
        flag = self.document.flag(SHARED_BUNDLE_FLAG) if self.document is not None else None
        object.__setattr__(self, "flag", flag)
        error = (
            None
            if self.configuration_error is None
            else Decision(
                value=False,
                reason=Reason.ERROR,
                rule=Rule.CONFIG_ERROR,
                error_code=ErrorCode.GENERAL,
                error_message=self.configuration_error,
            )
        )
        object.__setattr__(self, "error_decision", error)

    @property
    def revision(self) -> int | None:
        """Revision of the document in force, or ``None``."""
        return None if self.document is None else self.document.revision


def decide(state: RolloutState, client_id: str | None) -> Decision:  # noqa: PLR0911 - one return per precedence row
    """Decide whether the shared bundle is on for ``client_id``.

    Args:
        state: The snapshot in force.
        client_id: The evaluation context's targeting key in canonical form (NFC, as
            ``client_id_of`` returns it); ``None`` when there is none.

    Returns:
        One of a fixed set of ``Decision`` values (first matching precedence row).
    """
    if state.error_decision is not None:
        return state.error_decision
    flag = state.flag
    if state.env.kill or (flag is not None and flag.kill):
        return KILLED
    if state.overrides_required and state.document is None:
        return UNAVAILABLE
    if client_id is not None:
        if flag is not None:
            entry = flag.clients.get(client_id)
            if entry is not None:
                return OVERRIDE_ON if entry else OVERRIDE_OFF
        if client_id in state.env.allowlist:
            return ALLOWLISTED
    if flag is not None and flag.default is not None:
        return OVERRIDE_DEFAULT_ON if flag.default else OVERRIDE_DEFAULT_OFF
    return _ENV[state.env.enabled, client_id is not None]
