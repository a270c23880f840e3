"""``warm_up``: the one-time builds happen when the caller says, not in a call's deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from leadctx_bundle import DEFAULT_PROFILES, warm_up
from leadctx_flags.errors import ConfigurationError

# A fresh process: the tokenizer is built there or not at all. The first call gets 0.1 s,
# far less than building o200k_base takes (0.3 s on a quiet host) and far more than a small
# build on warm caches does (about 1 ms).
FIRST_CALL = textwrap.dedent(
    """
    import json, sys
    from openfeature import api
    from leadctx_bundle import StaticContextSource, resolve_context, warm_up
    from leadctx_flags import LeadCtxProvider, RolloutSettings

    if sys.argv[1] == "warm":
        warm_up()
    api.set_provider_and_wait(LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme")))
    source = StaticContextSource(assets={"acme": [{"id": "a", "title": "T", "content": "C"}]})
    result = resolve_context(
        {"client_id": "acme", "lead_id": "lead-1", "pipeline": "draft"},
        legacy=lambda: "legacy",
        source=source,
    )
    print(json.dumps([str(result.path.value), result.fallback_reason]))
    """
)


def first_call(mode: str) -> list[str | None]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("LEADCTX_", "OTEL_"))}
    env["LEADCTX_BUNDLE_DEADLINE_SECONDS"] = "0.1"
    done = subprocess.run(  # noqa: S603 - this interpreter running the code above
        [sys.executable, "-c", FIRST_CALL, mode],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    answer: list[str | None] = json.loads(done.stdout)
    return answer


def test_a_cold_first_call_pays_the_tokenizer_inside_its_deadline() -> None:
    # The failure warm_up exists for: without it the first call falls back on its deadline
    assert first_call("cold") == ["fallback", "timeout"]


def test_after_warm_up_the_first_call_is_shared() -> None:
    assert first_call("warm") == ["shared", None]


def test_it_builds_each_profiles_encoding_once() -> None:
    from leadctx_bundle import tokens  # noqa: PLC0415 - the process-wide counters

    profiles = dict(DEFAULT_PROFILES)
    profiles["overseer"] = profiles["overseer"].model_copy(update={"encoding": "cl100k_base"})
    warm_up(profiles)
    assert {"o200k_base", "cl100k_base"} <= set(tokens._counters)
    built = dict(tokens._counters)
    warm_up(profiles)
    assert all(tokens._counters[name] is counter for name, counter in built.items())


def test_invalid_profiles_in_the_environment_name_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADCTX_BUNDLE_ENCODING", "o300k")
    from leadctx_bundle import builder  # noqa: PLC0415 - its cache of the environment's profiles

    builder.environment_profiles.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="LEADCTX_BUNDLE_ENCODING"):
            warm_up()
    finally:
        builder.environment_profiles.cache_clear()
