"""Parity of ``to_flagd`` with ``decide``, proven on the real flagd provider.

Random rollout configurations are exported, written to a file and loaded by
``openfeature-provider-flagd`` with its FILE resolver (in-process JSON Logic evaluation, no
daemon, no network). For every configuration, at least 1,000 client ids are evaluated by flagd
and by ``decide``; value and variant must agree every time, and the reason must be the one
``docs/migration.md`` documents.

The generator is seeded: a failure prints the seed, and ``LEADCTX_PARITY_SEED=<seed>`` replays
it (any other seed explores new configurations).
"""

from __future__ import annotations

import json
import os
import random
import string
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from leadctx_flags import (
    CLIENT_ID_ATTRIBUTE,
    SHARED_BUNDLE_FLAG,
    Decision,
    EnvRules,
    FlagOverride,
    OverridesDocument,
    RolloutState,
    Rule,
    decide,
    to_flagd,
)
from leadctx_flags.client_ids import MAX_CLIENT_ID_LENGTH, validate_client_id

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("LEADCTX_PARITY_SEED", "20261125"))
CONFIGURATIONS = 100
CLIENT_IDS_PER_CONFIGURATION = 1_000
CLIENT_PATH_SAMPLE = 40
"""Per configuration, ids also evaluated through an OpenFeature client (hooks included)."""

DOMAIN = "leadctx-flagd-parity"
WATCHER_THREAD = "FlagdFileWatcherWorkerThread"

# Ids that mean something to JSON Logic, to flagd or to our own formats, and ids that are
# merely awkward; all are valid client ids, so configurations may name them.
EDGE_CLIENT_IDS = (
    "0",
    "1",
    "null",
    "true",
    "false",
    "on",
    "off",
    "ON",
    "if",
    "in",
    "or",
    "var",
    "==",
    "!",
    "targetingKey",
    "clientId",
    "$flagd",
    "$flagd.flagKey",
    "$ref",
    '{"$ref": "shared"}',
    '{"var": "targetingKey"}',
    "[]",
    "{}",
    "a.b.c",
    "length",
    "acme",
    "Acme",
    "ACME",
    'quote"back\\slash',
    "ünïcödé",
    "客户-42",
    "🚀rocket",
    "مرحبا",
    "line\u2028separator",
    "x" * MAX_CLIENT_ID_LENGTH,
)
# Ids a configuration can never name (rejected by validate_client_id) but a context can carry.
UNCONFIGURABLE_CLIENT_IDS = (
    "",
    " padded ",
    "comma,separated",
    "new\nline",
    "nul\x00",
    "zero\u200bwidth",
    "y" * 300,
)
ALPHABETS = (
    string.ascii_lowercase + string.digits + "-_",
    string.ascii_letters + string.digits + string.punctuation + " ",
    "aäàâbcçdeéèfghiïjklmnoöpqrstuüvwxyzß客户데이터🙂",
)


@dataclass(frozen=True)
class Mismatch:
    configuration: int
    client_id: str | None
    path: str
    expected: tuple[bool, str | None, str | None]
    got: tuple[bool, str | None, str | None]


@pytest.fixture
def watcher_threads_stop() -> Iterator[None]:
    """Fail if a flagd file watcher started by the test outlives its provider's shutdown."""
    before = set(threading.enumerate())
    yield
    api.clear_providers()
    started = [t for t in threading.enumerate() if t not in before and t.name == WATCHER_THREAD]
    for thread in started:
        # The watcher sleeps one deadline (500 ms by default) before it sees the stop flag.
        thread.join(timeout=5)
    assert not [t for t in started if t.is_alive()], "flagd file watchers still running"


def random_client_id(rng: random.Random) -> str:
    while True:
        alphabet = rng.choice(ALPHABETS)
        candidate = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        # Env allowlists are trimmed and split on commas; keep generated ids usable anywhere.
        candidate = candidate.strip().replace(",", "")
        try:
            return validate_client_id(candidate)
        except ValueError:
            continue


def random_state(rng: random.Random, pool: list[str]) -> RolloutState:
    """A configuration mixing every precedence row, with frequent overlaps between rules."""
    allowlist = (
        frozenset() if rng.random() < 0.25 else frozenset(rng.sample(pool, rng.randint(1, 25)))
    )
    env = EnvRules(enabled=rng.random() < 0.5, allowlist=allowlist, kill=rng.random() < 0.08)
    document: OverridesDocument | None
    roll = rng.random()
    if roll < 0.25:
        document = None
    elif roll < 0.32:
        document = OverridesDocument(revision=rng.randint(0, 99))  # says nothing about our flag
    else:
        # Entries on allowlisted clients too, so that a document false must beat the allowlist.
        named = rng.sample(pool, rng.randint(0, 30)) + rng.sample(
            sorted(allowlist), min(len(allowlist), rng.randint(0, 5))
        )
        override = FlagOverride(
            kill=rng.random() < 0.08,
            default=rng.choice([None, None, True, False]),
            clients={client: rng.random() < 0.5 for client in named},
        )
        document = OverridesDocument(
            revision=rng.randint(0, 99), flags={SHARED_BUNDLE_FLAG: override}
        )
    return RolloutState(env=env, document=document, overrides_required=rng.random() < 0.15)


def client_ids_to_ask(rng: random.Random, state: RolloutState, pool: list[str]) -> list[str]:
    """Every configured id, the edge cases, then pool ids and strangers up to the quota."""
    configured = sorted(state.env.allowlist | set(state.flag.clients if state.flag else ()))
    asked = [*configured, *EDGE_CLIENT_IDS, *UNCONFIGURABLE_CLIENT_IDS]
    while len(asked) < CLIENT_IDS_PER_CONFIGURATION:
        asked.append(rng.choice(pool) if rng.random() < 0.5 else random_client_id(rng))
    return asked


def expected_flagd_reason(decision: Decision, *, has_targeting: bool) -> Reason:
    """The reason flagd answers for ``decision`` (the table in docs/migration.md)."""
    if decision.rule in {Rule.KILL, Rule.UNAVAILABLE}:
        return Reason.STATIC
    if decision.reason == Reason.TARGETING_MATCH:
        return Reason.TARGETING_MATCH
    return Reason.DEFAULT if has_targeting else Reason.STATIC


def as_tuple(
    value: bool, variant: str | None, reason: str | None
) -> tuple[bool, str | None, str | None]:
    return value, variant, None if reason is None else str(reason)


def test_flagd_export_agrees_with_decide(
    tmp_path: Path,
    watcher_threads_stop: None,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(SEED)  # noqa: S311 - reproducible test data, not secrets
    pool = list(EDGE_CLIENT_IDS)
    pool += [random_client_id(rng) for _ in range(200)]
    mismatches: list[Mismatch] = []
    compared = 0
    by_source: Counter[str] = Counter()
    client_ids_per_configuration: list[int] = []

    for index in range(CONFIGURATIONS):
        # Given a random configuration exported to a flagd file
        state = random_state(rng, pool)
        exported = to_flagd(state)
        has_targeting = "targeting" in exported["flags"][SHARED_BUNDLE_FLAG]
        path = tmp_path / f"configuration-{index:02d}.flagd.json"
        path.write_text(json.dumps(exported, indent=2), encoding="utf-8")

        # When the real flagd provider loads it
        provider = FlagdProvider(
            resolver_type=ResolverType.FILE, offline_flag_source_path=str(path)
        )
        try:
            api.set_provider_and_wait(provider, domain=DOMAIN)
            client = api.get_client(domain=DOMAIN)
            asked = client_ids_to_ask(rng, state, pool)
            client_ids_per_configuration.append(len(asked))

            # Then flagd and decide() agree for every client id, whatever default the caller
            # passes (a flagd DISABLED flag would answer the caller's default)
            for position, client_id in enumerate([None, *asked]):
                caller_default = position % 2 == 0
                decision = decide(state, client_id or None)
                by_source[decision.rule.value] += 1
                expected = as_tuple(
                    decision.value,
                    decision.variant,
                    expected_flagd_reason(decision, has_targeting=has_targeting),
                )
                contexts = [("targeting_key", EvaluationContext(client_id, {"kind": "client"}))]
                if position < CLIENT_PATH_SAMPLE:
                    contexts.append(
                        (
                            "clientId attribute",
                            EvaluationContext(None, {CLIENT_ID_ATTRIBUTE: client_id or ""}),
                        )
                    )
                for label, context in contexts:
                    resolved = provider.resolve_boolean_details(
                        SHARED_BUNDLE_FLAG, caller_default, context
                    )
                    got = as_tuple(resolved.value, resolved.variant, resolved.reason)
                    compared += 1
                    if got != expected:
                        mismatches.append(
                            Mismatch(index, client_id, f"resolve/{label}", expected, got)
                        )
                if position < CLIENT_PATH_SAMPLE:
                    details = client.get_boolean_details(
                        SHARED_BUNDLE_FLAG,
                        caller_default,
                        EvaluationContext(client_id, {"kind": "client"}),
                    )
                    got = as_tuple(details.value, details.variant, details.reason)
                    compared += 1
                    if got != expected:
                        mismatches.append(Mismatch(index, client_id, "client", expected, got))
        finally:
            provider.shutdown()

    report = (
        f"flagd parity, seed {SEED}: {CONFIGURATIONS} configurations x "
        f"{min(client_ids_per_configuration):,} client ids (+ no id), "
        f"{compared:,} evaluations compared, {compared - len(mismatches):,} agree; "
        f"decisions by source: {dict(sorted(by_source.items()))}"
    )
    record_property("flagd_parity", report)
    with capsys.disabled():
        print(f"\n{report}")  # noqa: T201 - the figures are this test's report
    assert not mismatches, (
        f"{len(mismatches)} disagreements (replay with LEADCTX_PARITY_SEED={SEED}, files in "
        f"{tmp_path}); first: {mismatches[:5]}"
    )
    # The generator must keep exercising every precedence row, or the agreement proves little.
    assert min(client_ids_per_configuration) >= CLIENT_IDS_PER_CONFIGURATION
    assert {
        Rule.KILL,
        Rule.UNAVAILABLE,
        Rule.OVERRIDE,
        Rule.ALLOWLIST,
        Rule.OVERRIDE_DEFAULT,
        Rule.ENV,
    } <= {s for s, n in by_source.items() if n >= 100}
