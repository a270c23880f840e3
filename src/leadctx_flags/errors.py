"""Errors raised by leadctx_flags, and the one way a validation error becomes a message.

Evaluation never raises: the provider turns every problem into an OpenFeature error value
with the flag off. These exceptions are for the places where a person can act on them at once:
loading settings, editing an overrides document, the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only annotated: importing the provider loads no pydantic (docs/performance.md).
    from pydantic import ValidationError

__all__ = ["ConfigurationError", "describe_validation_error", "field_path"]


class ConfigurationError(ValueError):
    """Rollout configuration that cannot be used as given.

    The message names the environment variable (or document field, or file) and the rule that
    failed, never the value given: values may be client lists or tokens, and messages travel
    to logs. A provider built from such a configuration fails closed: the shared bundle is off
    for every client.
    """


def field_path(loc: tuple[int | str, ...]) -> str:
    """A readable path for a pydantic error location.

    ``("knowledge_assets", 2, "content")`` becomes ``knowledge_assets[2].content``; an empty
    location is ``(input)``.

    Args:
        loc: The ``loc`` of one pydantic error.
    """
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(input)"


def describe_validation_error(
    err: ValidationError, *, name: Callable[[tuple[int | str, ...]], str] = field_path
) -> list[str]:
    """One ``"<field>: <rule>"`` string per problem in ``err``, never with the input value.

    pydantic's own ``str(ValidationError)`` quotes the input (a lead's message, a client list,
    a token) and links to its documentation; these messages keep the location and the rule.

    Args:
        err: A pydantic validation error.
        name: Turns an error location into what the reader knows the field as (an environment
            variable, a JSON path). Defaults to ``field_path``.
    """
    problems = []
    for error in err.errors(include_url=False, include_input=False, include_context=False):
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{name(error['loc'])}: {message}")
    return problems
