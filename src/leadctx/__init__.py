"""leadctx: the application that wires the control plane and the data plane together.

The ``leadctx`` command (also ``python -m leadctx``) composes the command groups of
``leadctx_flags`` and ``leadctx_bundle``, sets up logging and, being an application rather
than a library, is the one place that configures the OpenTelemetry SDK. The demo and the smoke
checklist live here too. Libraries never import this package.
"""

from __future__ import annotations

__all__: list[str] = []
