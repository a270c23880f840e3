"""Fixtures of the serve tests: the expected answers, from the in-process provider."""

from __future__ import annotations

from pathlib import Path

import pytest
from openfeature import api
from openfeature.flag_evaluation import FlagEvaluationDetails

from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import RolloutSettings
from tests.serve.matrix import CASES, Answer, Scenario, evaluation_context


def answer_of(details: FlagEvaluationDetails[bool]) -> Answer:
    """(value, variant, reason, error code) of an OpenFeature client's answer."""
    reason = None if details.reason is None else str(details.reason)
    code = None if details.error_code is None else str(details.error_code)
    return details.value, details.variant, reason, code


def over_the_wire(answer: Answer) -> Answer:
    """``answer`` as an OFREP client can give it: an error answer carries no variant.

    The official clients raise on an error response and the SDK then reports the caller's
    default with no variant; the in-process provider's error answers say ``off``. Value,
    reason and error code are unchanged: those are what a pipeline acts on.
    """
    value, variant, reason, code = answer
    return (value, None if code is not None else variant, reason, code)


def in_process_answers(
    scenario: Scenario, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Answer]:
    """Every case of the matrix through the standard client on the in-process provider."""
    for name, value in scenario.environment(folder).items():
        monkeypatch.setenv(name, value)
    provider = LeadCtxProvider(RolloutSettings())
    api.set_provider_and_wait(provider, domain=f"in-process-{scenario.name}")
    client = api.get_client(f"in-process-{scenario.name}")
    try:
        return {
            name: answer_of(client.get_boolean_details(flag, False, evaluation_context(context)))
            for name, (flag, context) in CASES.items()
        }
    finally:
        provider.shutdown()
        for name in scenario.environment(folder):
            monkeypatch.delenv(name)


@pytest.fixture
def overrides_folder(tmp_path: Path) -> Path:
    """A folder for the scenario's overrides document."""
    folder = tmp_path / "overrides"
    folder.mkdir()
    return folder
