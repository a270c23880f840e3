"""What the gate produces: one value per call, recorded by telemetry and read by the pipeline.

``FlagOutcome`` is what the OpenFeature client answered; ``ContextResolution`` is the whole
outcome of one ``resolve_context`` call. The gate builds them; ``telemetry`` records them;
neither of those two imports the other's internals, and nothing here imports either: data
flows gate → value → telemetry, one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from leadctx_bundle.stats import BundleStats
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.vocabulary import FallbackReason, Pipeline, ResolutionPath

__all__ = ["NOT_EVALUATED", "ContextResolution", "FlagOutcome"]


@dataclass(frozen=True, slots=True)
class FlagOutcome:
    """What the OpenFeature client answered for ``shared_bundle.enabled``.

    Args:
        key: The flag key.
        value: The value used (``False`` whenever ``error_code`` is set).
        variant: The provider's variant (``on``/``off`` for leadctx), if any.
        reason: OpenFeature's reason as given (``TARGETING_MATCH``...), if any.
        source: ``flag_metadata["source"]``: which leadctx precedence rule decided.
        version: ``flag_metadata["version"]``: the overrides revision in force, as a string.
        set_id: ``flag_metadata["flagSetId"]``.
        provider: The provider's name.
        error_code: OpenFeature's error code (``PROVIDER_NOT_READY``, ``GENERAL``...) when
            the evaluation failed.
    """

    key: str
    value: bool
    variant: str | None = None
    reason: str | None = None
    source: str | None = None
    version: str | None = None
    set_id: str | None = None
    provider: str | None = None
    error_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``flag`` object of ``metadata()``."""
        return {
            "key": self.key,
            "value": self.value,
            "variant": self.variant,
            "reason": self.reason,
            "source": self.source,
            "version": self.version,
            "set_id": self.set_id,
            "provider": self.provider,
            "error_code": self.error_code,
        }


NOT_EVALUATED: Final = FlagOutcome(key=SHARED_BUNDLE_FLAG, value=False)
"""The flag outcome of a call whose request did not validate: the flag was not asked."""


@dataclass(frozen=True, slots=True)
class ContextResolution:
    """The context a pipeline puts in its prompt, and how it was had.

    Args:
        text: The context: the shared bundle's text, or what ``legacy()`` returned. Left out
            of ``repr`` and of ``metadata()``: it is content.
        path: ``shared`` (the bundle), ``legacy`` (flag off or not evaluable) or
            ``fallback`` (flag on, shared path failed).
        fallback_reason: Why, when ``path`` is ``fallback``.
        stats: The bundle's stats when ``path`` is ``shared``, else ``None``.
        flag: The flag evaluation.
        pipeline: The pipeline that asked; ``None`` only if the request did not validate.
        error_type: The class of the exception behind a fallback (``error.type``).
        client_id: The client the flag was evaluated for (``feature_flag.context.id``);
            ``None`` when the request did not validate and the flag was not asked.
    """

    text: str = field(repr=False)
    path: ResolutionPath
    fallback_reason: FallbackReason | None
    stats: BundleStats | None
    flag: FlagOutcome
    pipeline: Pipeline | None
    error_type: str | None = None
    client_id: str | None = None

    def metadata(self) -> dict[str, Any]:
        """``{"leadctx": {...}}`` for ``AIInteraction.metadata``: no content, JSON-ready.

        Shape (documented in ``docs/telemetry.md``)::

            {"leadctx": {"path": "shared", "fallback_reason": null, "error_type": null,
                         "pipeline": "draft",
                         "flag": {"key": ..., "value": true, "variant": "on", ...},
                         "stats": {<BundleStats JSON>} | null}}
        """
        return {
            "leadctx": {
                "path": self.path.value,
                "fallback_reason": None
                if self.fallback_reason is None
                else str(self.fallback_reason),
                "error_type": self.error_type,
                "pipeline": None if self.pipeline is None else self.pipeline.value,
                "flag": self.flag.to_json(),
                "stats": None if self.stats is None else self.stats.model_dump(mode="json"),
            }
        }
