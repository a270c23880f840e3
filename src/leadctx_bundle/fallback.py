"""Why a shared build failed: one pure mapping from an exception to a ``FallbackReason``.

The gate knows which stage failed: reading the sources, or validating and building. The
exception's type decides first, then the stage, then where in the code it was raised:

=======================================================  ===================
exception                                                 reason
=======================================================  ===================
``DeadlineExceeded`` (incl. ``WorkerPoolSaturated``)      ``timeout``
``BundleInputError``, pydantic ``ValidationError``        ``invalid_data``
``EncodingDataError``; anything raised inside tiktoken    ``tokenizer_error``
or leadctx's token counter
``ConfigurationError`` (profiles, deadline settings),     ``budget_error``
``ArithmeticError``; anything raised inside the profile
or packing code
anything else raised by a source                          ``source_error``
anything else                                             ``internal_error``
=======================================================  ===================

A source's own ``TimeoutError`` (a database read timing out) is a ``source_error``: only the
gate's deadline is a ``timeout``.

Every exception class counts, ``BaseException`` subclasses included (``GeneratorExit``, an
``asyncio.CancelledError`` a source raises itself), with one rule for the two that stop a
process: ``KeyboardInterrupt`` and ``SystemExit`` (``PROCESS_EXITS``) are never turned into a
fallback, wherever on the shared path they are raised; they propagate, as asyncio lets them
out of any task. A caller's own task being cancelled is not a failure of the shared path
either: its ``CancelledError`` propagates.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import ValidationError

from leadctx_bundle.deadline import DeadlineExceeded
from leadctx_bundle.errors import BundleInputError, EncodingDataError
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.vocabulary import FallbackReason

__all__ = ["PROCESS_EXITS", "SharedPathFailure", "Stage", "classify", "error_type_of"]

PROCESS_EXITS: Final = (KeyboardInterrupt, SystemExit)
"""The exceptions the gate lets through from the shared path: the process is stopping."""

_TOKENIZER_MODULES: Final = ("tiktoken", "leadctx_bundle.tokens", "leadctx_bundle.encodings")
_BUDGET_MODULES: Final = ("leadctx_bundle.profiles", "leadctx_bundle.packing")

# In order: the first matching type decides, whatever the stage.
_BY_TYPE: Final[
    tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], FallbackReason], ...]
] = (
    (DeadlineExceeded, FallbackReason.TIMEOUT),
    ((BundleInputError, ValidationError), FallbackReason.INVALID_DATA),
    (EncodingDataError, FallbackReason.TOKENIZER_ERROR),
    ((ConfigurationError, ArithmeticError), FallbackReason.BUDGET_ERROR),
)


class Stage(StrEnum):
    """Where on the shared path an exception was raised."""

    SOURCE = "source"
    """Reading rows from the ``ContextSource``."""
    BUILD = "build"
    """Validating the rows, applying the profile, counting tokens, packing, rendering."""


class SharedPathFailure(Exception):  # noqa: N818 - it is the outcome the gate falls back on
    """The shared path failed; the original exception is the ``__cause__``.

    The message is fixed (the reason and the type); the original message never appears.

    Args:
        reason: Why the gate falls back.
        error_type: ``error.type`` of the original exception (its class).
    """

    def __init__(self, reason: FallbackReason, error_type: str) -> None:
        self.reason = reason
        self.error_type = error_type
        super().__init__(f"shared path failed: {reason} ({error_type})")


def error_type_of(exc: BaseException) -> str:
    """``error.type`` of an exception: its class, module-qualified unless a builtin.

    Only the class: an exception's message may quote a lead's data and never leaves here.

    Args:
        exc: The exception.
    """
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _innermost_module(exc: BaseException) -> str:
    """The module of the frame that raised ``exc`` (the traceback's last frame)."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    name = tb.tb_frame.f_globals.get("__name__", "")
    return name if isinstance(name, str) else ""


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def classify(exc: BaseException, stage: Stage) -> FallbackReason:
    """The fallback reason for ``exc`` raised at ``stage`` (see the module's table).

    Args:
        exc: What the shared path raised.
        stage: Where it was raised.
    """
    if isinstance(exc, SharedPathFailure):
        return exc.reason
    for types, reason in _BY_TYPE:
        if isinstance(exc, types):
            return reason
    if stage is Stage.SOURCE:
        return FallbackReason.SOURCE_ERROR
    module = _innermost_module(exc)
    if _within(module, _TOKENIZER_MODULES):
        return FallbackReason.TOKENIZER_ERROR
    if _within(module, _BUDGET_MODULES):
        return FallbackReason.BUDGET_ERROR
    return FallbackReason.INTERNAL_ERROR
