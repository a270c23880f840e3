"""The demo's story, step by step. It prints nothing itself: a ``Reporter`` shows each step.

1. **before**: every client's leads go through the four pipelines via ``resolve_context``
   with the flag off for everyone (the real OpenFeature client, ``LeadCtxProvider`` polling
   the demo's overrides document);
2. **allowlist**: ``acme`` is allowed in the overrides document; the running provider picks it
   up within its poll interval;
3. **after**: the same again; acme's calls take the shared path, and its source fails for the
   first few reads (the fallback: legacy context, reason ``source_error``);
4. **guardrails**: ``leadctx guardrails report`` on the records, with ``--apply``;
5. **off**: the kill switch through the overrides document, or, when a regression was
   injected, the guardrails' own rollback; the time until the running provider answers off.

Every record carries simulated times (two weeks, switching half-way), so the guardrails
see a rollout's worth of history in a few seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider.no_op_provider import NoOpProvider

from leadctx.demo.outcomes import NO_EFFECT, REGRESSION, Outcomes
from leadctx.demo.records import RecordStore
from leadctx.demo.world import CANARY_CLIENT, CLIENTS, FlakySource, Lead, World
from leadctx_bundle.deadline import DEFAULT_DEADLINES
from leadctx_bundle.gate import ContextResolution, resolve_context
from leadctx_bundle.telemetry import GateTelemetry
from leadctx_flags import editing
from leadctx_flags.context import client_context
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import ENV_PREFIX, RolloutSettings
from leadctx_flags.storage import read_document
from leadctx_flags.vocabulary import PIPELINES, Pipeline, ResolutionPath

__all__ = ["FILES", "DemoConfig", "DemoError", "Reporter", "SilentReporter", "run_demo"]

FILES: Final = {
    "database": "demo.db",
    "overrides": "overrides.json",
    "spans": "spans.jsonl",
    "report": "guardrails-report.md",
    "plot": "guardrails-plot.png",
    "state": "guardrails-state.json",
    "summary": "summary.json",
}
"""The files the demo writes, by role, inside its output folder (and nothing else)."""

DOMAIN: Final = "leadctx-demo"
"""The OpenFeature domain the demo binds its provider to, leaving the default one alone."""

START: Final = datetime(2026, 11, 2, tzinfo=UTC)
PERIOD: Final = timedelta(days=7)


class DemoError(RuntimeError):
    """A step of the demo could not be completed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """What to run.

    Args:
        out: The output folder; created if missing. Only the files in ``FILES`` are written.
        leads: Leads per client and period (each goes through the four pipelines).
        seed: Seeds the synthetic world and the outcomes.
        inject_regression: The shared path's outcomes regress; the guardrails roll back.
        use_env: Read ``LEADCTX_*`` from the environment; otherwise the shell's are ignored.
        poll_seconds: The provider's overrides poll interval.
        failing_reads: Source reads that fail at the start of the "after" period.
        wait_timeout_s: The longest wait for the provider to pick up a document.
    """

    out: Path
    leads: int = 600
    seed: int = 7
    inject_regression: bool = False
    use_env: bool = False
    poll_seconds: float = 0.2
    failing_reads: int = 5
    wait_timeout_s: float = 10.0


class Reporter(Protocol):
    """Shows the story as it runs (the command renders it with rich; ``--json`` is silent)."""

    def track(self, description: str, total: int) -> contextlib.AbstractContextManager[Any]:
        """A progress bar; the context value is a function taking how many steps were done."""
        ...

    def show(self, step: str, data: Mapping[str, Any]) -> None:
        """A step's outcome (counts, names and reasons only)."""
        ...


class SilentReporter:
    """Shows nothing (``--json``, tests)."""

    @contextlib.contextmanager
    def track(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """No bar: the returned function ignores its argument."""
        yield lambda _: None

    def show(self, step: str, data: Mapping[str, Any]) -> None:
        """Nothing to show."""


@contextlib.contextmanager
def _shell_settings_ignored(use_env: bool) -> Iterator[list[str]]:
    """Hide the shell's ``LEADCTX_*`` variables for the run, unless ``use_env``.

    Explicit settings alone would not do: the bundle's profiles, deadlines and worker count
    are read from the environment too. The names hidden are yielded (never their values).
    """
    if use_env:
        yield []
        return
    hidden = {name: os.environ.pop(name) for name in list(os.environ) if _ours(name)}
    try:
        yield sorted(hidden)
    finally:
        os.environ.update(hidden)


def _ours(name: str) -> bool:
    return name.upper().startswith(ENV_PREFIX)


@dataclass
class _Tally:
    """Counts of the calls, by period, client and path, and what the fallbacks returned."""

    calls: dict[str, dict[str, Counter[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Counter))
    )
    fallback_pipelines: Counter[str] = field(default_factory=Counter)
    fallback_reasons: Counter[str] = field(default_factory=Counter)
    fallback_errors: Counter[str] = field(default_factory=Counter)
    fallback_legacy_text: int = 0
    shared_assets_truncated: int = 0
    shared_memory_truncated: int = 0
    shared_tokens: int = 0

    def add(self, period: str, lead: Lead, resolution: ContextResolution) -> None:
        path = resolution.path
        self.calls[period][lead.client_id][path.value] += 1
        if path is ResolutionPath.SHARED and resolution.stats is not None:
            sections = resolution.stats.sections
            self.shared_tokens += resolution.stats.tokens_total
            self.shared_assets_truncated += bool(sections["knowledge_assets"].items_truncated)
            self.shared_memory_truncated += bool(sections["lead_memory"].items_truncated)
        if path is ResolutionPath.FALLBACK:
            self.fallback_pipelines[str(resolution.pipeline)] += 1
            self.fallback_reasons[str(resolution.fallback_reason)] += 1
            self.fallback_errors[str(resolution.error_type)] += 1
            # The pipeline still got its context: today's assembly, exactly.
            self.fallback_legacy_text += resolution.text == lead.legacy_text() != ""

    def period(self, period: str) -> dict[str, dict[str, int]]:
        return {client: dict(sorted(self.calls[period][client].items())) for client in CLIENTS}

    def fallback(self) -> dict[str, Any]:
        return {
            "calls": sum(self.fallback_pipelines.values()),
            "legacy_text": self.fallback_legacy_text,
            "by_pipeline": dict(sorted(self.fallback_pipelines.items())),
            "reasons": dict(sorted(self.fallback_reasons.items())),
            "error_types": dict(sorted(self.fallback_errors.items())),
        }


class _FlagWatch:
    """Notes when the running provider first answers from a new overrides document.

    The provider emits ``PROVIDER_CONFIGURATION_CHANGED`` after swapping in a new document;
    the handler evaluates the flag there and then, so the time is that of the switch even
    when the document was written by another step (the guardrails' ``--apply``).
    """

    def __init__(self, client: OpenFeatureClient, client_id: str) -> None:
        self.client = client
        self._client_id = client_id
        self._want: bool | None = None
        self._version: object = None
        self._armed = False
        self._reached = threading.Event()
        self.at: float | None = None
        client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, self._changed)

    def close(self) -> None:
        self.client.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, self._changed)

    def expect(self, value: bool | None) -> None:
        """Wait for the next document; with ``value``, for one that gives this answer."""
        self._reached.clear()
        self.at = None
        self._want = value
        self._version = self.details()["version"]
        self._armed = True

    def _changed(self, _: EventDetails) -> None:
        if not self._armed or self._reached.is_set():
            return
        details = self.details()
        if details["version"] != self._version and self._want in (None, details["value"]):
            self.at = time.time()
            self._reached.set()

    def value(self) -> bool:
        return self.details()["value"] is True

    def details(self) -> dict[str, Any]:
        details = self.client.get_boolean_details(
            SHARED_BUNDLE_FLAG, False, client_context(self._client_id)
        )
        metadata = details.flag_metadata or {}
        return {
            "client_id": self._client_id,
            "value": details.value,
            "reason": None if details.reason is None else str(details.reason),
            "source": metadata.get("source"),
            "version": metadata.get("version"),
        }

    def wait(self, written_at: datetime, timeout_s: float, poll_s: float) -> dict[str, Any]:
        """Wait (bounded) for the expected answer; the time from ``written_at`` to it."""
        if not self._reached.wait(timeout_s) or self.at is None:
            raise DemoError(
                f"the provider did not pick up the overrides document within {timeout_s:.0f} s"
            )
        return {
            "seconds": round(max(self.at - written_at.timestamp(), 0.0), 3),
            "poll_interval_s": poll_s,
            "flag": self.details(),
        }


def _settings(config: DemoConfig, overrides: Path) -> RolloutSettings:
    """The provider's settings: all explicit, so the shell's ``LEADCTX_*`` cannot leak in."""
    pinned: dict[str, Any] = {
        "flag_overrides": str(overrides),
        "flag_overrides_poll_seconds": config.poll_seconds,
        "flag_overrides_fetch_timeout_seconds": 2.0,
        "flag_overrides_cache": None,
    }
    if config.use_env:
        return RolloutSettings(**pinned)
    return RolloutSettings(
        shared_bundle_enabled=False,
        shared_bundle_clients=(),
        shared_bundle_kill=False,
        flag_overrides_token=None,
        flag_overrides_required=False,
        **pinned,
    )


class _Story:
    def __init__(
        self, config: DemoConfig, reporter: Reporter, telemetry: GateTelemetry, spans: str
    ) -> None:
        self.config = config
        self.reporter = reporter
        self.telemetry = telemetry
        self.out = config.out
        self.files = {role: config.out / name for role, name in FILES.items()}
        self.world = World(config.seed, START - PERIOD)
        self.source = FlakySource(self.world)
        self.outcomes = Outcomes(config.seed, REGRESSION if config.inject_regression else NO_EFFECT)
        self.tally = _Tally()
        self.timings: dict[str, float] = {}
        self.summary: dict[str, Any] = {
            "out": str(config.out),
            "files": {role: str(path) for role, path in self.files.items()},
            "leads_per_client_per_period": config.leads,
            "seed": config.seed,
            "inject_regression": config.inject_regression,
            "use_env": config.use_env,
        }
        self.summary["files"]["spans"] = spans

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[step] = round(time.perf_counter() - started, 3)

    def run(self, client: OpenFeatureClient, watch: _FlagWatch, store: RecordStore) -> None:
        overrides = self.files["overrides"]
        with self.timed("before"):
            self.period("before", START, client, store)
        self.reporter.show("before", {"calls": self.tally.period("before")})
        with self.timed("allowlist"):
            # Any new document: with --use-env, the shell's rules may still keep acme off.
            watch.expect(value=None)
            document = editing.edit_document(
                overrides, editing.allow(CANARY_CLIENT), updated_by="demo", note="leadctx demo"
            )
            allow = self.wait(watch, document.updated_at)
        self.summary["allowlist"] = allow
        self.reporter.show("allowlist", allow)
        self.source.fail_next(self.config.failing_reads)
        with self.timed("after"):
            self.period("after", START + PERIOD, client, store)
        store.flush()
        fallback = self.tally.fallback()
        self.summary["calls"] = {p: self.tally.period(p) for p in ("before", "after")}
        self.summary["fallback"] = fallback
        self.summary["shared"] = {
            "calls": sum(c.get("shared", 0) for c in self.summary["calls"]["after"].values()),
            "assets_truncated": self.tally.shared_assets_truncated,
            "memory_truncated": self.tally.shared_memory_truncated,
            "tokens_total": self.tally.shared_tokens,
        }
        self.summary["records"] = dict(store.counts)
        self.reporter.show(
            "after",
            {"calls": self.summary["calls"]["after"], "shared": self.summary["shared"]},
        )
        self.reporter.show("fallback", fallback)
        watch.expect(value=False)
        with self.timed("guardrails"):
            report = self.guardrails()
        self.summary["guardrails"] = report
        self.summary["decision"] = report["decision"]
        self.reporter.show("guardrails", report)
        with self.timed("off"):
            self.summary["off"] = self.off(watch, applied=report.get("applied"))
        self.reporter.show("off", self.summary["off"])

    def period(
        self, period: str, start: datetime, client: OpenFeatureClient, store: RecordStore
    ) -> None:
        order = [(c, index) for c in CLIENTS for index in range(self.config.leads)]
        random.Random(f"{self.config.seed}/{period}/order").shuffle(order)
        step = PERIOD / max(len(order), 1)
        with self.reporter.track(f"{period}: {len(order)} leads x 4 pipelines", len(order)) as done:
            for position, (client_id, index) in enumerate(order):
                lead = self.world.lead(client_id, period, index)
                self.source.register(lead)
                self.lead(period, lead, start + step * position, client, store)
                done(1)

    def lead(
        self,
        period: str,
        lead: Lead,
        created: datetime,
        client: OpenFeatureClient,
        store: RecordStore,
    ) -> None:
        for offset, pipeline in enumerate(PIPELINES):
            resolution = self.resolve(lead, pipeline, client)
            self.tally.add(period, lead, resolution)
            at = created + timedelta(seconds=offset)
            metadata: dict[str, Any] = resolution.metadata()
            if pipeline is Pipeline.PROPOSED_TIMES:
                metadata["proposedTimes"] = self.outcomes.proposed_times(resolution.path)
            interaction = store.interaction(lead.client_id, at, pipeline, metadata)
            if pipeline is Pipeline.DRAFT:
                outcome = self.outcomes.draft(lead.client_id, resolution.path)
                store.draft(lead.client_id, at, interaction, outcome)
            elif pipeline is Pipeline.OVERSEER:
                decision, confidence = self.outcomes.overseer(resolution.path)
                store.decision(lead.client_id, at, interaction, decision, confidence)

    def resolve(
        self, lead: Lead, pipeline: Pipeline, client: OpenFeatureClient
    ) -> ContextResolution:
        return resolve_context(
            {"client_id": lead.client_id, "lead_id": lead.lead_id, "pipeline": pipeline.value},
            legacy=lead.legacy_text,
            source=self.source,
            client=client,
            # Explicit, so that no LEADCTX_BUNDLE_DEADLINE_SECONDS of the shell applies.
            deadline_s=DEFAULT_DEADLINES[pipeline],
            telemetry=self.telemetry,
        )

    def wait(self, watch: _FlagWatch, written_at: datetime | None) -> dict[str, Any]:
        moment = written_at or datetime.now(UTC)
        return watch.wait(moment, self.config.wait_timeout_s, self.config.poll_seconds)

    def guardrails(self) -> dict[str, Any]:
        """``leadctx guardrails report --json --apply ...``: the command's own code path."""
        try:
            from leadctx_flags.guardrails import cli as guardrails_cli  # noqa: PLC0415
            from leadctx_flags.guardrails.decision import evaluate  # noqa: PLC0415
        except ImportError as err:  # pragma: no cover - the command checks the extra first
            raise DemoError(f"the guardrails need {err.name}") from None
        parser = argparse.ArgumentParser(prog="leadctx")
        guardrails_cli.add_commands(parser.add_subparsers())
        files = self.files
        args = parser.parse_args(
            [
                "guardrails",
                "report",
                "--db",
                f"sqlite:///{files['database']}",
                "--json",
                "--markdown",
                str(files["report"]),
                "--plot",
                str(files["plot"]),
                "--state",
                str(files["state"]),
                "--apply",
                "--overrides",
                str(files["overrides"]),
            ]
        )
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = guardrails_cli.run_report(args, evaluate)
        if code != 0:
            raise DemoError(f"leadctx guardrails report exited with status {code}")
        report: dict[str, Any] = json.loads(printed.getvalue())
        return report

    def off(self, watch: _FlagWatch, applied: Mapping[str, Any] | None) -> dict[str, Any]:
        """The flag off for the canary through the overrides document, and how fast."""
        overrides = self.files["overrides"]
        if applied and applied.get("changed"):
            route = f"guardrails rollback ({applied.get('action')})"
            written_at = read_document(overrides).updated_at
        else:
            route = "kill switch"
            watch.expect(value=False)
            document = editing.edit_document(
                overrides, editing.kill(), updated_by="demo", note="leadctx demo: kill switch"
            )
            written_at = document.updated_at
        result = {"route": route, **self.wait(watch, written_at)}
        document = read_document(overrides)
        result["document"] = {
            "revision": document.revision,
            "updated_by": document.updated_by,
        }
        # One more draft for the canary: the pipeline is back on its own context.
        lead = self.world.lead(CANARY_CLIENT, "after", 0)
        result["next_draft_path"] = self.resolve(lead, Pipeline.DRAFT, watch.client).path.value
        return result


def run_demo(
    config: DemoConfig,
    reporter: Reporter | None = None,
    telemetry: GateTelemetry | None = None,
    spans: str | None = None,
) -> dict[str, Any]:
    """Run the whole story into ``config.out`` and return the summary (also ``summary.json``).

    Args:
        config: What to run.
        reporter: Shows each step; ``None`` shows nothing.
        telemetry: Where spans and metrics go (the command's OTLP set-up); ``None`` writes
            the spans to ``spans.jsonl`` in the output folder.
        spans: Where ``telemetry`` sends spans, for the summary (e.g. the OTLP endpoint).

    Raises:
        DemoError: A step failed (the message names it).
        OSError: The output folder cannot be written.
    """
    started = time.perf_counter()
    config.out.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        (config.out / name).unlink(missing_ok=True)
    with _shell_settings_ignored(config.use_env) as ignored:
        setup = None
        if telemetry is None:
            from leadctx.telemetry import configure_telemetry  # noqa: PLC0415 - the SDK

            spans_file = config.out / FILES["spans"]
            setup = configure_telemetry(spans_file=spans_file)
            assert setup is not None  # noqa: S101 - a spans file always gives a set-up
            telemetry, spans = setup.gate_telemetry(), str(spans_file)
        try:
            summary = _run(config, reporter or SilentReporter(), telemetry, spans or "otlp")
        finally:
            if setup is not None:
                setup.shutdown()
    summary["ignored_variables"] = ignored
    summary["timings_s"]["total"] = round(time.perf_counter() - started, 3)
    (config.out / FILES["summary"]).write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
    return summary


def _run(
    config: DemoConfig, reporter: Reporter, telemetry: GateTelemetry, spans: str
) -> dict[str, Any]:
    story = _Story(config, reporter, telemetry, spans)
    overrides = story.files["overrides"]
    # A new document (at a clock revision) with nothing allowed: the flag off for everyone.
    editing.edit_document(
        overrides, editing.unkill(), updated_by="demo", note="leadctx demo", create=True
    )
    provider = LeadCtxProvider(_settings(config, overrides))
    with story.timed("provider_start"):
        api.set_provider_and_wait(provider, domain=DOMAIN)
    client = api.get_client(domain=DOMAIN)
    watch = _FlagWatch(client, CANARY_CLIENT)
    store = RecordStore(story.files["database"])
    try:
        story.run(client, watch, store)
    finally:
        watch.close()
        store.close()
        provider.shutdown()
        # Unbind the domain; OpenFeature shuts the old provider down again (idempotent).
        api.set_provider(NoOpProvider(), domain=DOMAIN)
    story.summary["timings_s"] = story.timings
    return story.summary
