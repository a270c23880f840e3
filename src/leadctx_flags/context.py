"""Building and reading the evaluation context that identifies a client."""

from __future__ import annotations

from typing import Final

from openfeature.evaluation_context import EvaluationContext, EvaluationContextAttribute

__all__ = ["CLIENT_ID_ATTRIBUTE", "CONTEXT_KIND", "InvalidClientContext", "client_context"]

CLIENT_ID_ATTRIBUTE: Final = "clientId"
"""Attribute read when the context has no ``targeting_key``."""

CONTEXT_KIND: Final = "client"
"""The context kind a client is, in LaunchDarkly's terms (``kind: client``)."""


class InvalidClientContext(ValueError):  # noqa: N818 - named for the OpenFeature error code it becomes
    """The context's client id attribute is not a string."""


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

    Returns:
        The id, or ``None`` when the context names no client (empty strings count as none).

    Raises:
        InvalidClientContext: ``clientId`` is present but not a string.
    """
    if context is None:
        return None
    if context.targeting_key:
        return context.targeting_key
    attribute = context.attributes.get(CLIENT_ID_ATTRIBUTE)
    if attribute is None or attribute == "":
        return None
    if not isinstance(attribute, str):
        raise InvalidClientContext(
            f"evaluation context attribute {CLIENT_ID_ATTRIBUTE!r} must be a string, "
            f"got {type(attribute).__name__}"
        )
    return attribute
