"""leadctx_bundle: what context goes into the prompt, and what did it cost?

The data plane: builds the shared LeadContextBundle (knowledge assets, lead memory, the recent
thread) under per-pipeline token budgets, with content-free stats. Token counts come from
tiktoken encodings built offline from package data; see ``docs/bundle.md``.
"""

from leadctx_bundle.builder import build_bundle, environment_profiles
from leadctx_bundle.deadline import (
    DEADLINE_ENV,
    DEFAULT_DEADLINES,
    WORKERS_ENV,
    DeadlineExceeded,
    WorkerPoolClosed,
    WorkerPoolSaturated,
)
from leadctx_bundle.encodings import TIKTOKEN_ENCODINGS, build_encoding, load_encoding
from leadctx_bundle.errors import BundleInputError, EncodingDataError
from leadctx_bundle.gate import (
    AsyncContextSource,
    ContextResolution,
    FlagOutcome,
    resolve_context,
    resolve_context_async,
)
from leadctx_bundle.models import (
    PIPELINES,
    BudgetOverrides,
    BundleInput,
    BundleRequest,
    KnowledgeAsset,
    LeadContextBundle,
    LeadMemoryEntry,
    Pipeline,
    ThreadMessage,
)
from leadctx_bundle.profiles import (
    DEFAULT_PROFILES,
    ENCODING_ENV,
    PROFILES_ENV,
    BundleProfile,
    BundleSettings,
    load_profiles,
)
from leadctx_bundle.sources import ContextSource, StaticContextSource, load_bundle_input
from leadctx_bundle.stats import SECTIONS, BundleStats, SectionName, SectionStats
from leadctx_bundle.telemetry import GateTelemetry
from leadctx_bundle.tokens import EncodingName, TokenCounter, token_counter
from leadctx_bundle.warmup import warm_up

__all__ = [
    "DEADLINE_ENV",
    "DEFAULT_DEADLINES",
    "DEFAULT_PROFILES",
    "ENCODING_ENV",
    "PIPELINES",
    "PROFILES_ENV",
    "SECTIONS",
    "TIKTOKEN_ENCODINGS",
    "WORKERS_ENV",
    "AsyncContextSource",
    "BudgetOverrides",
    "BundleInput",
    "BundleInputError",
    "BundleProfile",
    "BundleRequest",
    "BundleSettings",
    "BundleStats",
    "ContextResolution",
    "ContextSource",
    "DeadlineExceeded",
    "EncodingDataError",
    "EncodingName",
    "FlagOutcome",
    "GateTelemetry",
    "KnowledgeAsset",
    "LeadContextBundle",
    "LeadMemoryEntry",
    "Pipeline",
    "SectionName",
    "SectionStats",
    "StaticContextSource",
    "ThreadMessage",
    "TokenCounter",
    "WorkerPoolClosed",
    "WorkerPoolSaturated",
    "build_bundle",
    "build_encoding",
    "environment_profiles",
    "load_bundle_input",
    "load_encoding",
    "load_profiles",
    "resolve_context",
    "resolve_context_async",
    "token_counter",
    "warm_up",
]
