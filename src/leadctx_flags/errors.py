"""Errors raised by leadctx_flags.

Evaluation never raises: the provider turns every problem into an OpenFeature error value
with the flag off. These exceptions are for the places where a person can act on them at once:
loading settings, editing an overrides document, the CLI.
"""

from __future__ import annotations

__all__ = ["ConfigurationError"]


class ConfigurationError(ValueError):
    """Rollout configuration that cannot be used as given.

    The message names the environment variable (or document field) and the value that was
    given, so that an operator can fix it without reading code. A provider built from such a
    configuration fails closed: the shared bundle is off for every client.
    """
