"""OpenFeature providers that misbehave: one that raises, one never ready, one fatal."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ProviderFatalError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.provider import AbstractProvider, Metadata


class _Base(AbstractProvider):
    name = "base"

    def get_metadata(self) -> Metadata:
        return Metadata(name=self.name)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return FlagResolutionDetails(value=True, variant="on")

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return FlagResolutionDetails(value=default_value)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return FlagResolutionDetails(value=default_value)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return FlagResolutionDetails(value=default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return FlagResolutionDetails(value=default_value)


class RaisingProvider(_Base):
    """Every evaluation raises (a bug in a provider)."""

    name = "raising"

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        raise RuntimeError("provider bug")


class NeverReadyProvider(_Base):
    """``initialize`` blocks until ``release`` is set (at most 30 s): never ready in a test.

    Its evaluations would answer ``True``: only OpenFeature's readiness check keeps them out.
    """

    name = "never-ready"

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        self.release.wait(30)

    def shutdown(self) -> None:
        self.release.set()


class FatalProvider(_Base):
    """``initialize`` fails for good (``PROVIDER_FATAL``)."""

    name = "fatal"

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        raise ProviderFatalError("bad SDK key")
