"""``leadctx flags ...``: inspect and operate the rollout flag from a shell.

Every command takes ``--json``. Commands evaluate through the OpenFeature client, exactly as a
pipeline does, so what they print is what a pipeline would get. ``explain``, ``show`` and
``export`` only read: they never write the cache or any other file.

Exit codes: 0 done (for an edit: written in a form every provider accepts); 1 an edit was
not written because the file cannot take it (the document would be, or is, above the size
cap; the disk is full or read-only; permission denied); 2 the arguments, the configuration or
the document are unusable; 3 (``explain`` only) the answer is printed, but the configured
overrides source could not be read, so it does not reflect the document, or a ``LEADCTX_*``
variable that nothing reads is set (a misspelling the answer ignores): the pre-deploy check
fails. One line on stderr names the option, variable, file or field, never a value; a failed
kill also says that the kill was not written and names the env route.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from leadctx_flags import editing
from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.document import (
    MAX_REVISION,
    DocumentTooLargeError,
    FlagOverride,
    OverridesDocument,
)
from leadctx_flags.errors import ConfigurationError, describe_validation_error
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.operations import (
    explain,
    export_flagd,
    masked_edit_warning,
    unknown_client_warning,
)
from leadctx_flags.settings import RolloutSettings, check_verbatim, unknown_variables
from leadctx_flags.storage import read_document

__all__ = ["add_commands"]

EXIT_OVERRIDES_UNREADABLE = 3
"""``flags explain``'s status when the answer may not be what the deployment means: the
configured overrides source could not be read, or a ``LEADCTX_*`` variable nothing reads is
set."""


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
    explain_parser.add_argument(
        "--overrides", help="overrides document to use instead of LEADCTX_FLAG_OVERRIDES"
    )
    explain_parser.add_argument("--json", action="store_true", help="print one JSON object")
    explain_parser.set_defaults(handler=_explain_command)

    edits: dict[str, tuple[str, Callable[[argparse.Namespace], editing.OverrideChange]]] = {
        "kill": ("off for every client (document kill switch)", lambda _: editing.kill()),
        "unkill": ("lift the document kill switch", lambda _: editing.unkill()),
        "allow": (
            "on for one client, whatever the env allowlist says",
            lambda args: editing.allow(args.client_id),
        ),
        "deny": (
            "off for one client, even if allowlisted: a one-client rollback",
            lambda args: editing.deny(args.client_id),
        ),
        "clear": (
            "remove one client's entry; the env rules decide again",
            lambda args: editing.clear(args.client_id),
        ),
    }
    for name, (summary, change) in edits.items():
        edit_parser = commands.add_parser(name, help=f"{summary}; bumps the revision")
        if name in {"allow", "deny", "clear"}:
            edit_parser.add_argument("client_id", metavar="ID", help="the client id")
        _add_overrides_path(edit_parser)
        edit_parser.add_argument(
            "--by", default=None, help="who makes the change (default: leadctx-cli:<user>)"
        )
        edit_parser.add_argument("--note", default=None, help="why (stored in the document)")
        edit_parser.add_argument(
            "--create",
            action="store_true",
            help="start a new document if none exists (e.g. after one was lost), from the copy "
            "in LEADCTX_FLAG_OVERRIDES_CACHE when set; its revision is taken from the clock "
            "(unix ms) and above the cache's, unless --revision is given",
        )
        edit_parser.add_argument(
            "--revision",
            type=int,
            default=None,
            metavar="N",
            help="the new revision (default: current + 1, or the clock for a new document); "
            "must be above the current one",
        )
        edit_parser.add_argument("--json", action="store_true", help="print the new document")
        edit_parser.set_defaults(handler=_edit_command, change=change)

    export_parser = commands.add_parser(
        "export", help="print the effective configuration (env + document) for another system"
    )
    export_parser.add_argument(
        "--format", choices=["flagd"], required=True, help="flagd: a flag-definition JSON"
    )
    export_parser.add_argument(
        "--overrides", help="overrides document to use instead of LEADCTX_FLAG_OVERRIDES"
    )
    export_parser.add_argument("--json", action="store_true", help="the output is JSON anyway")
    export_parser.set_defaults(handler=_export_command)

    show_parser = commands.add_parser("show", help="print the overrides document")
    _add_overrides_path(show_parser)
    show_parser.add_argument("--json", action="store_true", help="print the document as JSON")
    show_parser.set_defaults(handler=_show_command)


def _add_overrides_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overrides",
        type=Path,
        default=None,
        help="the overrides document file (default: LEADCTX_FLAG_OVERRIDES when it is a path)",
    )


def _settings(args: argparse.Namespace) -> RolloutSettings:
    """The environment's settings, with ``--overrides`` in place of LEADCTX_FLAG_OVERRIDES."""
    if args.overrides:
        try:
            check_verbatim(str(args.overrides))  # the variable's rule, under the option's name
        except ValueError as err:
            raise ConfigurationError(f"--overrides: {err}") from None
        return RolloutSettings(flag_overrides=str(args.overrides))
    return RolloutSettings()


def _explain_command(args: argparse.Namespace) -> int:
    try:
        result = explain(args.client_id, _settings(args))
    except ConfigurationError as err:
        print(f"leadctx: configuration error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"leadctx: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        for key, value in result.to_json().items():
            print(f"{key:<11} {value}")
    status = 0
    if result.overrides_unreadable is not None:
        print(f"leadctx: {result.overrides_unreadable}", file=sys.stderr)
        status = EXIT_OVERRIDES_UNREADABLE
    # Each is also warned about by name (with the variable meant) when the settings load.
    unknown = [name for name, _ in unknown_variables()]
    if unknown:
        pronoun = "it" if len(unknown) == 1 else "them"
        print(
            f"leadctx: the pre-deploy check fails: nothing reads {', '.join(unknown)} "
            f"(misspelt?), so the answer ignores {pronoun}",
            file=sys.stderr,
        )
        status = EXIT_OVERRIDES_UNREADABLE
    return status


def _export_command(args: argparse.Namespace) -> int:
    try:
        exported = export_flagd(_settings(args))
    except ConfigurationError as err:
        print(f"leadctx: configuration error: {err}", file=sys.stderr)
        return 2
    # ASCII escapes: flagd's file loader reads with the platform's default encoding.
    print(json.dumps(exported.to_json(), indent=2))
    return 0


def _document_path(args: argparse.Namespace) -> Path:
    return editing.configured_document(None if args.overrides is None else Path(args.overrides))


@dataclasses.dataclass(frozen=True, slots=True)
class _Recorded(editing.OverrideChange):
    """An edit that keeps the flag as it found it, under the document's lock.

    The unknown-id warning compares the id with the document the edit actually changed, not
    with a copy read before the lock was taken.
    """

    seen: list[FlagOverride] = dataclasses.field(default_factory=list)

    def __call__(self, flag: FlagOverride) -> FlagOverride:
        """Record ``flag``, then apply the change (a kill stays a kill: ``kills`` is kept)."""
        self.seen.append(flag)
        return editing.OverrideChange.__call__(self, flag)


def _edit_command(args: argparse.Namespace) -> int:
    # Set once the document is touched; a kill from the start: whatever stops it (an unusable
    # location or option included), the operator is told it was NOT written, and the env route.
    attempted: editing.OverrideChange | None = None
    try:
        change: editing.OverrideChange = args.change(args)
        if change.kills:
            attempted = change
        path = _document_path(args)
        notices: list[str] = []
        updated_by = _audit_text(
            "--by", args.by or f"leadctx-cli:{_user()}", OverridesDocument, change.kills, notices
        )
        note = args.note
        if note is not None:
            note = _audit_text("--note", note, FlagOverride, change.kills, notices)
        _check_revision(args.revision)
        attempted = change
        recorded = _Recorded(change.name, change.update, change.clients)
        document = editing.edit_document(
            path,
            recorded,
            updated_by=updated_by,
            note=note,
            create=args.create,
            revision=args.revision,
            cache=editing.configured_cache(kill=change.kills),
        )
    except ValidationError as err:  # a field the options above do not cover
        return _edit_failed(attempted, "; ".join(describe_validation_error(err)), 2)
    except FileNotFoundError as err:
        message = str(err) if isinstance(err, editing.DocumentMissingError) else _os_error(err)
        return _edit_failed(attempted, message, 2)
    except OSError as err:  # full or read-only disk, permission: the file cannot take it
        return _edit_failed(attempted, _os_error(err), 1)
    except DocumentTooLargeError as err:
        return _edit_failed(attempted, str(err), 1)
    except ValueError as err:
        return _edit_failed(attempted, str(err), 2)
    for notice in notices:
        print(f"leadctx: {notice}", file=sys.stderr)
    _warn_after_edit(args, path, recorded, document)
    if change.kills:
        _report_kill_form(document, note)
    if args.json:
        print(document.model_dump_json(by_alias=True))
    else:
        print(f"{path}: {change.name}, now revision {document.revision}")
    return 0


def _warn_after_edit(
    args: argparse.Namespace, path: Path, recorded: _Recorded, written: OverridesDocument
) -> None:
    """The warnings of an edit that was made: an id no rule knew, a file no process here
    reads, an edit turning the flag on that a kill still masks."""
    warnings = []
    client_id = getattr(args, "client_id", None)
    if client_id is not None and recorded.seen:
        warnings.append(unknown_client_warning(validate_client_id(client_id), recorded.seen[-1]))
    if args.overrides is not None:
        warnings.append(editing.unfollowed_document_warning(path))
    else:
        warnings.append(editing.relative_document_warning(path))
    turns_on = (recorded.update or {}).get("kill") is False or any(
        value is True for value in (recorded.clients or {}).values()
    )
    warnings.append(masked_edit_warning(turns_on, written))
    for warning in warnings:
        if warning is not None:
            print(f"leadctx: {warning}", file=sys.stderr)


def _edit_failed(change: editing.OverrideChange | None, message: str, code: int) -> int:
    """Print why an edit failed, in one line; a kill also gets the route that needs no file.

    ``change`` is ``None`` when the options were refused before the document was touched
    (never for a kill): the message then only names the option.
    """
    if change is not None and change.kills:
        message += (
            "; the kill was NOT written. To turn the shared bundle off without the document, "
            "set LEADCTX_SHARED_BUNDLE_KILL=true in the services' environment"
        )
    elif change is not None and not message.endswith("it was not written"):
        message += "; the edit was not written"
    print(f"leadctx: {message}", file=sys.stderr)
    return code


def _report_kill_form(document: OverridesDocument, note: str | None) -> None:
    """Say on stderr when a kill was written in a reduced form to fit the size cap."""
    flag = document.flag(SHARED_BUNDLE_FLAG)
    written_note = None if flag is None else flag.note
    if written_note == editing.MINIMAL_KILL_NOTE and note != editing.MINIMAL_KILL_NOTE:
        print(
            "leadctx: the kill was written in minimal form to fit the document size cap: "
            "the note and the entries that turned the flag on were dropped",
            file=sys.stderr,
        )
    elif note is not None and written_note is None:
        print(
            "leadctx: the kill was written without its note to fit the document size cap",
            file=sys.stderr,
        )


def _show_command(args: argparse.Namespace) -> int:
    try:
        path = _document_path(args)
        document = read_document(path)
    except OSError as err:
        print(f"leadctx: {_os_error(err)}", file=sys.stderr)
        return 2
    except ValueError as err:  # DocumentError included
        print(f"leadctx: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(document.model_dump_json(by_alias=True))
    else:
        print(document.to_json(), end="")
    return 0


def _limit(model: type[FlagOverride | OverridesDocument], field: str) -> int:
    """The ``max_length`` the document model sets on ``field``: one limit, defined there."""
    for constraint in model.model_fields[field].metadata:
        limit = getattr(constraint, "max_length", None)
        if isinstance(limit, int):
            return limit
    raise LookupError(f"{model.__name__}.{field} has no max_length")  # pragma: no cover


def _audit_text(
    option: str,
    value: str,
    model: type[FlagOverride | OverridesDocument],
    kills: bool,
    notices: list[str],
) -> str:
    """``value`` of ``--by`` or ``--note`` as the document can hold it.

    Too long, or holding bytes that are not UTF-8 (``surrogateescape`` in ``sys.argv``):
    another edit is refused (``ValueError``, naming the option); a kill is written with the
    text repaired, the bytes as U+FFFD and the text cut to the limit, and ``notices`` gets
    the line that says so (printed once the kill is written), as a kill is written without
    its note when the document would not fit otherwise: an audit text never stops a kill.
    """
    field = "updated_by" if model is OverridesDocument else "note"
    limit = _limit(model, field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        if not kills:
            raise ValueError(f"{option} holds bytes that are not UTF-8") from None
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        notices.append(
            f"the kill was written with the bytes of its {option} that are not UTF-8 as U+FFFD"
        )
    if len(value) <= limit:
        return value
    if not kills:
        raise ValueError(f"{option} is {len(value)} characters long; at most {limit} are allowed")
    cut = value[: limit - 1]
    notices.append(
        f"the kill was written with its {option} cut to the first {len(cut)} of its "
        f"{len(value)} characters (at most {limit} are kept)"
    )
    return cut + "\N{HORIZONTAL ELLIPSIS}"


def _check_revision(revision: int | None) -> None:
    if revision is not None and not 0 < revision <= MAX_REVISION:
        raise ValueError(f"--revision must be from 1 to {MAX_REVISION}")


def _os_error(err: OSError) -> str:
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or type(err).__name__}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary uid in a container
        return "unknown"
