"""Validate bundle input into messages that name fields and never echo values.

pydantic's own ``str(ValidationError)`` quotes the offending input, which for a bundle may be
a lead's message, a client id or a lead id. ``describe_validation_error`` (shared with the
flags' settings and documents) keeps the location and the rule, and drops the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from leadctx_bundle.errors import BundleInputError
from leadctx_bundle.models import BundleInput
from leadctx_flags.errors import describe_validation_error

__all__ = ["parse_bundle_input"]


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
        raise BundleInputError(describe_validation_error(err)) from None
