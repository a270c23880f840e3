"""Building and reading the evaluation context that identifies a client."""

from __future__ import annotations

from typing import Final

from openfeature.evaluation_context import EvaluationContext, EvaluationContextAttribute

from leadctx_flags.client_ids import canonical_client_id

__all__ = ["CLIENT_ID_ATTRIBUTE", "CONTEXT_KIND", "InvalidClientContext", "client_context"]

CLIENT_ID_ATTRIBUTE: Final = "clientId"
"""Attribute read when the context has no ``targeting_key``."""

CONTEXT_KIND: Final = "client"
"""The context kind a client is, in LaunchDarkly's terms (``kind: client``)."""


class InvalidClientContext(ValueError):  # noqa: N818 - named for the OpenFeature error code it becomes
    """The context's ``targeting_key`` or ``clientId`` attribute is not a string."""


def client_context(client_id: str, **attributes: EvaluationContextAttribute) -> EvaluationContext:
    """The evaluation context for one client (workspace), as every pipeline should send it.

    ``targeting_key`` carries the client id; ``kind: client`` lets the same context drive
    LaunchDarkly's multi-kind targeting after a migration.

    Args:
        client_id: The client (workspace) id.
        **attributes: Extra attributes (``pipeline="draft"``...). Never put content here.
    """
    return EvaluationContext(
        targeting_key=client_id, attributes={"kind": CONTEXT_KIND, **attributes}
    )


def client_id_of(context: EvaluationContext | None) -> str | None:
    """The client id in ``context``: its ``targeting_key``, else its ``clientId`` attribute.

    Args:
        context: The evaluation context as the OpenFeature SDK passes it, or ``None``.

    Returns:
        The id in its canonical form (NFC, see ``canonical_client_id``), so that it matches
        the rules whichever way its accents were encoded; ``None`` when the context names
        no client (``None`` and empty strings count as none).

    Raises:
        InvalidClientContext: The ``targeting_key`` or the ``clientId`` attribute is present
            but not a string (a list, a number, a mapping...). Types are not enforced by the
            SDK at run time, and an id of another type must never be matched or stringified.
    """
    if context is None:
        return None
    key: object = context.targeting_key
    if type(key) is str:  # the common case, checked first: a plain, non-empty string
        if key:
            # ASCII is already canonical; the test is cheaper than a call (the hot path).
            return key if key.isascii() else canonical_client_id(key)
    elif key is not None:
        return _checked(key, "targeting_key")
    attribute: object = context.attributes.get(CLIENT_ID_ATTRIBUTE)
    if attribute is None or attribute == "":
        return None
    return _checked(attribute, f"attribute {CLIENT_ID_ATTRIBUTE!r}")


def _checked(value: object, where: str) -> str:
    # The type's name is safe to echo; the value is not (it may be anything a caller put in).
    if not isinstance(value, str):
        raise InvalidClientContext(
            f"evaluation context {where} must be a string, got {type(value).__name__}"
        )
    # A str subclass (a StrEnum, say) becomes the plain string, so that matching against the
    # rules cannot run a subclass's own __eq__ or __hash__.
    return canonical_client_id(str.__str__(value))
