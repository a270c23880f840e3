"""Running a method in the child after ``os.fork()``, without keeping its object alive.

A pre-forking server (gunicorn ``--preload``, multiprocessing's fork context) copies a process
with only the thread that forked: background threads, locks held by them and event loops do
not survive as such. Objects that own those register a method to repair themselves in the
child.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable

__all__ = ["after_fork_in_child"]

logger = logging.getLogger(__name__)


def after_fork_in_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in every child forked later, while its object is alive.

    The handler holds a weak reference (``os.register_at_fork`` handlers cannot be removed),
    as OpenTelemetry's ``BatchSpanProcessor`` does; an object that was collected costs a
    no-op per fork. Errors are logged, never raised into the forking code.

    Args:
        method: A bound method taking no arguments.
    """
    if not hasattr(os, "register_at_fork"):  # pragma: no cover - platforms without fork
        return
    reference = weakref.WeakMethod(method)
    owner = getattr(method, "__qualname__", "handler")

    def in_child() -> None:
        bound = reference()
        if bound is None:
            return
        try:
            bound()
        except Exception:  # a repair that fails must not break the child's start
            logger.exception("%s after fork failed", owner)

    os.register_at_fork(after_in_child=in_child)
