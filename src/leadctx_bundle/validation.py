"""Turn pydantic validation errors into messages that name fields and never echo values.

pydantic's own ``str(ValidationError)`` quotes the offending input, which for a bundle may be
a lead's message. These helpers keep the location and the rule, and drop the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from leadctx_bundle.errors import BundleInputError
from leadctx_bundle.models import BundleInput

__all__ = ["describe", "field_path", "parse_bundle_input"]


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("knowledge_assets", 2, "content")`` → ``knowledge_assets[2].content``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(input)"


def describe(err: ValidationError, *, prefix: str = "", upper: bool = False) -> list[str]:
    """One ``"<field>: <rule>"`` string per error in ``err``, without the input values.

    Args:
        err: A pydantic validation error.
        prefix: Prepended to each field path (an environment variable prefix).
        upper: Upper-case the field path (for environment variable names).
    """
    problems = []
    for error in err.errors(include_url=False, include_input=False, include_context=False):
        path = field_path(error["loc"])
        name = prefix + (path.upper() if upper else path)
        problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return problems


def parse_bundle_input(data: BundleInput | Mapping[str, Any]) -> BundleInput:
    """Validate ``data`` into a ``BundleInput`` (returned as is if it already is one).

    Args:
        data: A ``BundleInput``, or a mapping of the CLI input file's shape.

    Raises:
        BundleInputError: Each problem is named by its field path; values are not echoed.
    """
    if isinstance(data, BundleInput):
        return data
    if not isinstance(data, Mapping):
        raise BundleInputError([f"(input): expected a mapping, got {type(data).__name__}"])
    try:
        return BundleInput.model_validate(data)
    except ValidationError as err:
        raise BundleInputError(describe(err)) from None
