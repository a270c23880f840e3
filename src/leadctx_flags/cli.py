"""``leadctx flags ...``: inspect and operate the rollout flag from a shell.

Every command takes ``--json``. Commands evaluate through the OpenFeature client, exactly as a
pipeline does, so what they print is what a pipeline would get.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from openfeature import api
from openfeature.flag_evaluation import FlagEvaluationDetails

from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.context import client_context
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import RolloutSettings

__all__ = ["add_commands", "explain"]

CLI_DOMAIN = "leadctx-cli"
"""OpenFeature domain the CLI binds its provider to, leaving the default provider alone."""


def add_commands(subparsers: Any) -> None:
    """Register ``leadctx flags ...`` on the top-level parser's subparsers.

    Args:
        subparsers: The object ``argparse.ArgumentParser.add_subparsers()`` returned.
    """
    flags = subparsers.add_parser("flags", help="inspect and operate the shared_bundle flag")
    commands = flags.add_subparsers(dest="flags_command", required=True, metavar="COMMAND")

    explain_parser = commands.add_parser(
        "explain", help="which rule decides the flag for one client, and what it answers"
    )
    explain_parser.add_argument("--client-id", required=True, help="the client (workspace) id")
    explain_parser.add_argument("--json", action="store_true", help="print one JSON object")
    explain_parser.set_defaults(handler=_explain_command)


def explain(client_id: str, settings: RolloutSettings | None = None) -> dict[str, Any]:
    """Evaluate ``shared_bundle.enabled`` for ``client_id`` through the OpenFeature client.

    Args:
        client_id: The client to evaluate for.
        settings: Rollout settings; ``None`` reads the environment.

    Returns:
        ``{"flag", "client_id", "value", "reason", "variant", "source", "error_code",
        "provider"}``.

    Raises:
        ConfigurationError: The settings (environment) cannot be loaded.
        ValueError: ``client_id`` is not a valid client id.
    """
    validate_client_id(client_id, field="--client-id")
    provider = LeadCtxProvider(settings if settings is not None else RolloutSettings())
    api.set_provider_and_wait(provider, domain=CLI_DOMAIN)
    try:
        client = api.get_client(domain=CLI_DOMAIN)
        details = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context(client_id))
        return _explanation(client_id, details, client.provider.get_metadata().name)
    finally:
        # Stop our provider's background work now; the domain binding is left for the next
        # call to replace (the SDK would shut it down again, which is idempotent).
        provider.shutdown()


def _explanation(
    client_id: str, details: FlagEvaluationDetails[bool], provider: str
) -> dict[str, Any]:
    return {
        "flag": details.flag_key,
        "client_id": client_id,
        "value": details.value,
        "reason": None if details.reason is None else str(details.reason),
        "variant": details.variant,
        "source": details.flag_metadata.get("source"),
        "error_code": None if details.error_code is None else str(details.error_code),
        "provider": provider,
    }


def _explain_command(args: argparse.Namespace) -> int:
    try:
        result = explain(args.client_id)
    except ConfigurationError as err:
        print(f"leadctx: configuration error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"leadctx: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<11} {value}")
    return 0
