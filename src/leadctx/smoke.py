"""``leadctx smoke``: the checklist to run before each allowlist expansion.

``leadctx smoke --client-id ID [--input FILE] [--json]`` starts ``LeadCtxProvider`` exactly as a
pipeline does (the ``LEADCTX_*`` environment and the overrides document it names), binds it to
an OpenFeature domain of its own, and runs ``resolve_context`` for one client on a lead: the
built-in synthetic one (``leadctx.samples``) or the user's own (``--input``, the
``BundleInput`` shape of ``leadctx bundle build``; its ``client_id`` is replaced by
``--client-id``). The checks:

* **flag on for ID**: the flag answers on for the client; the precedence rule that decided is
  named either way.
* **(a) scheduling inbound**: a draft is built on the shared path; then the overseer asks with
  a source that fails, and still gets its context (path ``fallback``, the legacy text) and
  runs: the fallback is not fatal.
* **(b) auto-send on a pricing thread**: the knowledge assets ("verified context") section is
  in the bundle and its stats add up (included + dropped = total, truncated within included,
  each section within its budget, the sections' tokens sum to ``tokens_total`` and that is
  within ``budget_total``).
* **(c) no lead memory text emitted**: each memory entry carries a random sentinel; every log
  record (a handler on the root logger), span and metric (an SDK ``TracerProvider`` and
  ``MeterProvider`` with in-memory exporters set up for the run) and every ``metadata()`` dict
  is searched for the sentinels and the memory texts.

When the flag is off for the client, the flag check fails naming the rule, and (a) and (b) say
what they could not exercise: the command never passes for a client that would not get the
bundle. Exit codes: 0 every check passed; 1 a check failed; 2 bad input file, client id or
configuration (one line on stderr naming the file, option or variable), or the OpenTelemetry
SDK (the ``otel`` extra) missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from openfeature import api
from openfeature.client import OpenFeatureClient

from leadctx import samples
from leadctx_bundle.cli import read_input
from leadctx_bundle.deadline import deadline_for
from leadctx_bundle.encodings import TIKTOKEN_ENCODINGS, load_encoding
from leadctx_bundle.errors import BundleInputError, EncodingDataError
from leadctx_bundle.gate import ContextResolution, resolve_context
from leadctx_bundle.models import BundleInput
from leadctx_bundle.profiles import load_profiles
from leadctx_bundle.stats import BundleStats
from leadctx_bundle.telemetry import GateTelemetry
from leadctx_bundle.validation import parse_bundle_input
from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.context import client_context
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import RolloutSettings
from leadctx_flags.vocabulary import FallbackReason, Pipeline, ResolutionPath

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = [
    "CHECK_FLAG",
    "CHECK_NO_MEMORY_TEXT",
    "CHECK_PRICING",
    "CHECK_SCHEDULING",
    "SMOKE_DOMAIN",
    "Check",
    "LegacyAssembler",
    "SmokeReport",
    "add_commands",
    "legacy_context",
    "run_smoke",
]

SMOKE_DOMAIN: Final = "leadctx-smoke"
"""The OpenFeature domain the checklist binds its provider to, leaving the default alone."""

CHECK_SCHEDULING: Final = "scheduling inbound: draft built, overseer runs on a fallback"
CHECK_PRICING: Final = "auto-send on a pricing thread: verified context present, stats consistent"
CHECK_NO_MEMORY_TEXT: Final = "no lead memory text in logs, spans, metrics or metadata"


def CHECK_FLAG(client_id: str) -> str:  # noqa: N802 - reads as the constant it stands for
    """The flag check's name for ``client_id``.

    Args:
        client_id: The client checked.
    """
    return f"flag on for {client_id}"


# Shorter texts could match an unrelated log line by chance; the sentinels cover them.
_MIN_SEARCHED_TEXT: Final = 16

LegacyAssembler = Callable[[BundleInput], str]
"""Today's context assembly for a lead: what a pipeline gets when the flag is off or the
shared path fails."""


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist.

    Args:
        name: What was checked.
        passed: Whether it held.
        detail: Why it passed or failed, or what could not be exercised: counts, section
            names, reasons and rules only.
    """

    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        """``{"name", "passed", "detail"}``."""
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class SmokeReport:
    """The checklist's result for one client.

    Args:
        client_id: The client checked.
        checks: The checks, in the order they ran.
    """

    client_id: str
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(check.passed for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        """``{"client_id", "checks": [{"name", "passed", "detail"}], "passed"}``."""
        return {
            "client_id": self.client_id,
            "checks": [check.to_json() for check in self.checks],
            "passed": self.passed,
        }


def legacy_context(lead: BundleInput) -> str:
    """A stand-in for a pipeline's own context assembly: every row joined, no budget.

    Args:
        lead: The lead's rows.
    """
    parts = [f"{asset.title}: {asset.content}" for asset in lead.knowledge_assets]
    parts += [entry.content for entry in lead.lead_memory]
    parts += [f"{message.role}: {message.content}" for message in lead.thread]
    return "\n\n".join(parts)


class _FailingSource:
    """A context source whose database is unreachable: every read raises."""

    def knowledge_assets(self, client_id: str) -> Iterable[Any]:
        raise ConnectionError("context database unreachable (smoke check)")

    def lead_memory(self, lead_id: str) -> Iterable[Any]:
        raise ConnectionError("context database unreachable (smoke check)")

    def thread(self, lead_id: str) -> Iterable[Any]:
        raise ConnectionError("context database unreachable (smoke check)")


def _overseer_gate(context: str) -> str:
    """A stand-in for the overseer's decision, which needs a context of any kind."""
    return "review" if context.strip() else "blocked: no context"


class _Capture(logging.Handler):
    """Keeps the text of every log record: message, exception and ``extra`` fields."""

    _STANDARD: Final = frozenset(vars(logging.makeLogRecord({})))

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in vars(record).items() if k not in self._STANDARD}
        parts = [record.getMessage(), json.dumps(extras, default=str)]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            parts.append(record.stack_info)
        self.texts.append("\n".join(parts))


@contextlib.contextmanager
def _capturing_logs() -> Iterator[_Capture]:
    """Every record of every logger, at any level, while the block runs.

    The root logger is lowered to DEBUG for the run so that the gate's INFO records are
    emitted; the handlers already there keep showing only what they showed before.
    """
    root = logging.getLogger()
    level = root.level
    raised = [h for h in root.handlers if h.level == logging.NOTSET]
    capture = _Capture()
    for handler in raised:
        handler.setLevel(level)
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.setLevel(level)
        root.removeHandler(capture)
        for handler in raised:
            handler.setLevel(logging.NOTSET)


@dataclass
class _Emitted:
    """What the run emitted, as text to search."""

    logs: _Capture
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    metadata: list[str] = field(default_factory=list)


def _with_sentinels(lead: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """``lead`` with a random sentinel in each memory entry, and one entry that is only one.

    Returns:
        The lead, the sentinels, and the memory texts (as given) long enough to search for.
    """
    marked = dict(lead)
    entries = [dict(entry) for entry in lead.get("lead_memory") or []]
    originals = [str(entry.get("content", "")) for entry in entries]
    token = secrets.token_hex(8)
    sentinels = [f"LEADCTX-SMOKE-SENTINEL-{token}-{n}" for n in range(len(entries) + 1)]
    for entry, sentinel in zip(entries, sentinels, strict=False):
        entry["content"] = f"{entry.get('content', '')} {sentinel}"
    entries.append(
        {
            "id": f"smoke-sentinel-{token}",
            "content": sentinels[-1],
            "created_at": datetime.now(UTC).isoformat(),
        }
    )
    marked["lead_memory"] = entries
    searched = [text for text in originals if len(text.strip()) >= _MIN_SEARCHED_TEXT]
    return marked, sentinels, searched


def _check_bundle_configuration() -> None:
    """Read the ``LEADCTX_BUNDLE_*`` settings the checks will use, and load their tokenizers.

    A bad variable is a configuration error (exit 2, naming it) rather than three failed
    checks. The tokenizers are loaded here so that the checks measure a warm process, as a
    pipeline's calls after its first are: loading one takes a good part of a second, which a
    loaded machine could stretch past the overseer's 1 s deadline. A tokenizer that cannot be
    loaded is left for the checks to report (fallback ``tokenizer_error``).

    Raises:
        ConfigurationError: A ``LEADCTX_BUNDLE_*`` variable cannot be used.
    """
    profiles = load_profiles()
    for pipeline in (Pipeline.DRAFT, Pipeline.OVERSEER, Pipeline.AUTO_SEND):
        deadline_for(pipeline)
    for name in TIKTOKEN_ENCODINGS:
        if any(profile.encoding == name for profile in profiles.values()):
            with contextlib.suppress(EncodingDataError):
                load_encoding(name)


def _stats_problems(stats: BundleStats) -> list[str]:
    problems = []
    for name, section in stats.sections.items():
        if section.items_included + section.items_dropped != section.items_total:
            problems.append(f"{name}: included + dropped != total")
        if section.items_truncated > section.items_included:
            problems.append(f"{name}: more items truncated than included")
        if section.tokens > section.budget:
            problems.append(f"{name}: tokens above the section budget")
    if sum(section.tokens for section in stats.sections.values()) != stats.tokens_total:
        problems.append("the sections' tokens do not add up to tokens_total")
    if stats.tokens_total > stats.budget_total:
        problems.append("tokens_total above budget_total")
    return problems


def _tokens(resolution: ContextResolution) -> str:
    stats = resolution.stats
    return "no stats" if stats is None else f"{stats.tokens_total}/{stats.budget_total} tokens"


class _Run:
    """One smoke run: the lead, the client, the telemetry, and what each call emitted."""

    def __init__(
        self,
        lead: BundleInput,
        client: OpenFeatureClient,
        telemetry: GateTelemetry,
        emitted: _Emitted,
        legacy: LegacyAssembler,
    ) -> None:
        self.lead = lead
        self.client = client
        self.telemetry = telemetry
        self.emitted = emitted
        self.legacy = legacy

    def resolve(self, pipeline: str, *, source: Any = None) -> ContextResolution:
        lead = self.lead.model_copy(update={"pipeline": pipeline})
        resolution = resolve_context(
            lead,
            legacy=lambda: self.legacy(lead),
            source=source,
            client=self.client,
            telemetry=self.telemetry,
        )
        self.emitted.metadata.append(json.dumps(resolution.metadata()))
        return resolution


def _flag_check(client: OpenFeatureClient, client_id: str) -> tuple[Check, bool]:
    details = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context(client_id))
    rule = details.flag_metadata.get("source")
    on = details.value is True and details.error_code is None
    why = f"reason {details.reason}, rule {rule}"
    if details.error_code is not None:
        why += f", error {details.error_code}"
    state = "on" if on else "off"
    return Check(CHECK_FLAG(client_id), on, f"{state} ({why})"), on


def _scheduling_check(run: _Run, *, flag_on: bool) -> Check:
    try:
        draft = run.resolve("draft")
        overseer = run.resolve("overseer", source=_FailingSource())
        decision = _overseer_gate(overseer.text)
    except Exception as exc:  # noqa: BLE001 - a raise is exactly what this check reports
        return Check(CHECK_SCHEDULING, False, f"resolve_context raised {type(exc).__name__}")
    if not flag_on:
        return Check(
            CHECK_SCHEDULING,
            False,
            f"not exercised: the flag is off, so the draft took the {draft.path} path and no "
            "shared build could fail; the overseer got the legacy context",
        )
    problems = []
    if draft.path is not ResolutionPath.SHARED or not draft.text:
        problems.append(f"draft path {draft.path} ({draft.fallback_reason or 'no reason'})")
    legacy_text = run.legacy(run.lead.model_copy(update={"pipeline": "overseer"}))
    if overseer.path is not ResolutionPath.FALLBACK:
        problems.append(f"overseer with a failing source took path {overseer.path}")
    elif overseer.fallback_reason is not FallbackReason.SOURCE_ERROR:
        problems.append(f"overseer fell back for {overseer.fallback_reason}, not source_error")
    if overseer.text != legacy_text:
        problems.append("the overseer did not get the legacy context")
    if decision.startswith("blocked"):
        problems.append("the overseer gate had no context")
    if problems:
        return Check(CHECK_SCHEDULING, False, "; ".join(problems))
    return Check(
        CHECK_SCHEDULING,
        True,
        f"draft: shared, {_tokens(draft)}; overseer with a failing source: fallback "
        f"({overseer.fallback_reason}, {overseer.error_type}), legacy context returned, "
        "the gate ran",
    )


def _pricing_check(run: _Run, *, flag_on: bool) -> Check:
    try:
        result = run.resolve("auto_send")
    except Exception as exc:  # noqa: BLE001 - a raise is exactly what this check reports
        return Check(CHECK_PRICING, False, f"resolve_context raised {type(exc).__name__}")
    if not flag_on:
        return Check(
            CHECK_PRICING,
            False,
            f"not exercised: the flag is off, the auto-send evaluator took the {result.path} "
            "path; no bundle, so no verified-context section or stats to check",
        )
    stats = result.stats
    if result.path is not ResolutionPath.SHARED or stats is None:
        return Check(
            CHECK_PRICING,
            False,
            f"path {result.path} ({result.fallback_reason or 'no reason'}): no bundle built",
        )
    assets = stats.sections["knowledge_assets"]
    problems = _stats_problems(stats)
    if assets.items_included == 0 or assets.tokens == 0:
        problems.insert(0, f"knowledge_assets section empty ({assets.items_total} assets given)")
    if problems:
        return Check(CHECK_PRICING, False, "; ".join(problems))
    return Check(
        CHECK_PRICING,
        True,
        f"knowledge_assets: {assets.items_included}/{assets.items_total} assets, "
        f"{assets.tokens}/{assets.budget} tokens; {stats.tokens_total}/{stats.budget_total} "
        "tokens in all; included + dropped = total, truncated within included, every section "
        "within its budget",
    )


def _no_content_check(
    emitted: _Emitted, sentinels: list[str], texts: list[str], *, flag_on: bool
) -> Check:
    emitted.metrics.collect()
    data = emitted.metrics.get_metrics_data()
    metric_text = "" if data is None else data.to_json(indent=None)
    spans = emitted.spans.get_finished_spans()
    places = {
        "logs": emitted.logs.texts,
        "spans": [span.to_json(indent=None) for span in spans],
        "metrics": [metric_text],
        "metadata": emitted.metadata,
    }
    needles = [*sentinels, *texts]
    leaks = sorted(
        {place for place, items in places.items() for item in items for n in needles if n in item}
    )
    counted = (
        f"{len(emitted.logs.texts)} log records, {len(spans)} spans, "
        f"{len(emitted.metadata)} metadata dicts and the metrics searched for "
        f"{len(sentinels)} sentinels and {len(texts)} memory texts"
    )
    if leaks:
        return Check(
            CHECK_NO_MEMORY_TEXT, False, f"lead memory text found in {', '.join(leaks)}; {counted}"
        )
    if not spans or not emitted.logs.texts:
        return Check(CHECK_NO_MEMORY_TEXT, False, f"nothing was captured to search; {counted}")
    caveat = "" if flag_on else " (the shared path was not exercised: the flag is off)"
    return Check(CHECK_NO_MEMORY_TEXT, True, f"none found in {counted}{caveat}")


def run_smoke(
    client_id: str,
    *,
    lead: Mapping[str, Any] | None = None,
    settings: RolloutSettings | None = None,
    legacy: LegacyAssembler = legacy_context,
) -> SmokeReport:
    """Run the checklist for ``client_id`` against the configured provider.

    Args:
        client_id: The client to check.
        lead: A ``BundleInput``-shaped mapping (its ``client_id`` and ``pipeline`` are replaced);
            ``None``: the built-in sample lead, with a scheduling thread for (a) and a pricing
            thread for (b).
        settings: Rollout settings; ``None`` reads the ``LEADCTX_*`` environment, as a
            pipeline's provider does.
        legacy: The legacy assembly the gate falls back to (default ``legacy_context``).

    Raises:
        ConfigurationError: The rollout or bundle settings (``LEADCTX_*``) cannot be used.
        BundleInputError: ``lead`` is not a valid bundle input.
        ValueError: ``client_id`` is not a valid client id.
    """
    validate_client_id(client_id, field="--client-id")
    resolved = settings if settings is not None else RolloutSettings()
    if lead is None:
        scheduling = samples.scheduling_inbound(client_id)
        pricing = samples.pricing_thread(client_id)
    else:
        scheduling = pricing = {**lead, "client_id": client_id, "pipeline": "draft"}
    scheduling, sentinels, texts = _with_sentinels(scheduling)
    pricing, more_sentinels, more_texts = _with_sentinels(pricing)
    scheduling_lead = parse_bundle_input(scheduling)
    pricing_lead = parse_bundle_input(pricing)

    # The SDK is loaded here, not when `leadctx` starts: other commands do not pay for it.
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
        InMemorySpanExporter,
    )

    _check_bundle_configuration()
    provider = LeadCtxProvider(resolved, write_cache=False)
    if provider.configuration_error is not None:
        raise ConfigurationError(provider.configuration_error)
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    telemetry = GateTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        with _capturing_logs() as logs:
            api.set_provider_and_wait(provider, domain=SMOKE_DOMAIN)
            client = api.get_client(domain=SMOKE_DOMAIN)
            emitted = _Emitted(logs=logs, spans=spans, metrics=reader)
            flag, on = _flag_check(client, client_id)
            scheduling_check = _scheduling_check(
                _Run(scheduling_lead, client, telemetry, emitted, legacy), flag_on=on
            )
            pricing_check = _pricing_check(
                _Run(pricing_lead, client, telemetry, emitted, legacy), flag_on=on
            )
            provider.shutdown()
        no_content = _no_content_check(
            emitted, [*sentinels, *more_sentinels], sorted({*texts, *more_texts}), flag_on=on
        )
    finally:
        provider.shutdown()
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return SmokeReport(client_id, (flag, scheduling_check, pricing_check, no_content))


def add_commands(subparsers: Any) -> None:
    """Register ``leadctx smoke``.

    Args:
        subparsers: The object ``argparse.ArgumentParser.add_subparsers()`` returned.
    """
    parser = subparsers.add_parser(
        "smoke",
        help="the pre-expansion checklist for one client, against the configured provider",
        description="Check that the shared bundle works for one client as configured (the "
        "LEADCTX_* environment and its overrides document): a draft built, a fallback that "
        "is not fatal, the verified-context section and consistent stats, and no lead memory "
        "text in logs, spans, metrics or metadata. Exit 0 all passed, 1 a check failed, 2 an "
        "input or configuration error.",
    )
    parser.add_argument("--client-id", required=True, help="the client to check")
    parser.add_argument(
        "--input",
        metavar="FILE",
        help="your own lead: a JSON file of the BundleInput shape, as 'leadctx bundle build "
        "--input' reads ('-' for stdin); its client_id is replaced by --client-id "
        "(default: a built-in synthetic lead)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_smoke_command)


def _read_lead(name: str, client_id: str) -> dict[str, Any]:
    """The ``--input`` file as a mapping, checked as ``run_smoke`` will use it."""
    lead = read_input(name)
    where = f"--input {name}"
    if not isinstance(lead, dict):
        raise BundleInputError(["expected a JSON object"], where=where)
    try:
        parse_bundle_input({**lead, "client_id": client_id})
    except BundleInputError as err:
        raise err.located(where) from None  # the file named once, not once per problem
    return lead


def _smoke_command(args: argparse.Namespace) -> int:
    try:
        lead = None if args.input is None else _read_lead(args.input, args.client_id)
        report = run_smoke(args.client_id, lead=lead)
    except (BundleInputError, ConfigurationError, ValueError) as err:
        print(f"leadctx: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        # The SDK is the `otel` extra; the checklist needs it to see what was emitted.
        print(
            f"leadctx: smoke needs {err.name or 'the OpenTelemetry SDK'}; "
            "install the extra: pip install 'leadctx[otel]'",
            file=sys.stderr,
        )
        return 2
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        for check in report.checks:
            mark = "✓" if check.passed else "✗"
            print(f"{mark} {check.name} — {check.detail}")
        passed = sum(check.passed for check in report.checks)
        verdict = "passed" if report.passed else "FAILED"
        print(f"smoke {verdict} for {report.client_id}: {passed}/{len(report.checks)} checks")
    return 0 if report.passed else 1
