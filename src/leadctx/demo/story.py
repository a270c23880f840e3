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
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.provider.no_op_provider import NoOpProvider

from leadctx.demo.outcomes import NO_EFFECT, REGRESSION, Outcomes
from leadctx.demo.records import RecordStore
from leadctx.demo.tally import CallTally
from leadctx.demo.watch import FlagWatch
from leadctx.demo.world import CANARY_CLIENT, CLIENTS, FlakySource, Lead, World
from leadctx_bundle.deadline import DEFAULT_DEADLINES
from leadctx_bundle.gate import ContextResolution, resolve_context
from leadctx_bundle.telemetry import GateTelemetry
from leadctx_flags import editing
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import ENV_PREFIX, RolloutSettings
from leadctx_flags.storage import read_document
from leadctx_flags.vocabulary import PIPELINES, Pipeline

__all__ = [
    "FILES",
    "NOTHING_TO_DECIDE",
    "DemoConfig",
    "DemoError",
    "Reporter",
    "SilentReporter",
    "run_demo",
]

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

NOTHING_TO_DECIDE: Final = "nothing_to_decide"
"""The summary's ``decision`` when the report had no canary to decide on (its exit 3)."""

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


def _settings(config: DemoConfig, overrides: Path) -> RolloutSettings:
    """The provider's settings: all explicit, so the shell's ``LEADCTX_*`` cannot leak in."""
    pinned: dict[str, Any] = {
        # Absolute: the demo chose this path, so it is not the operator's relative setting
        # that the provider warns of.
        "flag_overrides": str(overrides.absolute()),
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
        self.tally = CallTally()
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

    def run(self, client: OpenFeatureClient, watch: FlagWatch, store: RecordStore) -> None:
        overrides = self.files["overrides"]
        self.reporter.show(
            "start",
            {
                "out": str(self.out),
                "clients": list(CLIENTS),
                "canary": CANARY_CLIENT,
                "leads": self.config.leads,
                "inject_regression": self.config.inject_regression,
                "use_env": self.config.use_env,
            },
        )
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

    def wait(self, watch: FlagWatch, written_at: datetime | None) -> dict[str, Any]:
        moment = written_at or datetime.now(UTC)
        result = watch.wait(moment, self.config.wait_timeout_s, self.config.poll_seconds)
        if result is None:
            raise DemoError(
                "the provider did not pick up the overrides document within "
                f"{self.config.wait_timeout_s:.0f} s"
            )
        return result

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
        printed, said = io.StringIO(), io.StringIO()
        # The report's JSON is read from what the command prints; a reporter writes to the
        # stream it was given, not to the redirected one.
        with (
            self.reporter.track("guardrails: queries, statistics, plot", 1) as done,
            contextlib.redirect_stdout(printed),
            contextlib.redirect_stderr(said),
        ):
            code = guardrails_cli.run_report(args, evaluate)
            done(1)
        if code == guardrails_cli.EXIT_NOTHING_TO_DECIDE:
            # e.g. --use-env with the shell's kill switch on: no client reached the shared
            # path, so the report has no canary to decide on (and says so, exit 3).
            line = said.getvalue().strip().removeprefix("leadctx: ")
            return {
                "decision": NOTHING_TO_DECIDE,
                "reasons": [line],
                "metrics": [],
                "applied": None,
            }
        if code != 0:
            raise DemoError(f"leadctx guardrails report exited with status {code}")
        report: dict[str, Any] = json.loads(printed.getvalue())
        return report

    def off(self, watch: FlagWatch, applied: Mapping[str, Any] | None) -> dict[str, Any]:
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
    watch = FlagWatch(client, CANARY_CLIENT)
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
