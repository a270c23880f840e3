"""Per-pipeline token budgets: defaults in code, overridable from a file or the environment.

Sources, lowest precedence first (each may change any subset of fields):

1. ``DEFAULT_PROFILES`` below.
2. The JSON file named by ``LEADCTX_BUNDLE_PROFILES``: ``{"<pipeline>": {<field>: value}}``,
   for example ``{"draft": {"budget_total": 12000, "thread": 4000}}``.
3. ``LEADCTX_BUNDLE_ENCODING``: one encoding for every pipeline. ``heuristic`` is only ever
   used when asked for here or in the file.
4. Per-call ``budgets`` in the bundle input (see ``BundleProfile.with_budgets``).

A bad value anywhere is a ``ConfigurationError`` naming the variable, the file and the field;
nothing is partially applied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictInt, ValidationError
from pydantic_settings import SettingsConfigDict

from leadctx_bundle.models import PIPELINES, BudgetOverrides
from leadctx_bundle.stats import SectionName
from leadctx_bundle.tokens import EncodingName
from leadctx_flags.errors import ConfigurationError, describe_validation_error
from leadctx_flags.settings import (
    EnvSettings,
    register_environment_variables,
    warn_about_unknown_variables,
)

__all__ = [
    "DEFAULT_PROFILES",
    "ENCODING_ENV",
    "PROFILES_ENV",
    "BundleProfile",
    "BundleSettings",
    "load_profiles",
]

_BUNDLE_PREFIX: Final = "LEADCTX_BUNDLE_"
PROFILES_ENV: Final = "LEADCTX_BUNDLE_PROFILES"
ENCODING_ENV: Final = "LEADCTX_BUNDLE_ENCODING"

Budget = Annotated[StrictInt, Field(ge=0)]


class BundleProfile(BaseModel):
    """The budgets of one pipeline.

    Args:
        budget_total: Tokens the whole bundle may take; > 0 (``total_budget`` is accepted
            in a profiles file, the name it had before ``BundleStats.budget_total``).
        knowledge_assets: Budget of the assets section (heading included); 0 leaves it out.
        lead_memory: Budget of the memory section; 0 leaves it out.
        thread: Budget of the thread section; 0 leaves it out.
        min_item_tokens: An item that does not fit whole is cut only if at least this many of
            its tokens (heading line included) fit; otherwise it is dropped.
        encoding: ``o200k_base`` (default), ``cl100k_base``, or ``heuristic`` (one token per
            UTF-8 byte: a safe bound when no tokenizer data can be had).

    Section budgets may add up to more than the total: sections are filled in order
    (assets, memory, thread) and the total caps what the later ones get.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget_total: Annotated[
        StrictInt, Field(gt=0, validation_alias=AliasChoices("budget_total", "total_budget"))
    ]
    knowledge_assets: Budget
    lead_memory: Budget
    thread: Budget
    min_item_tokens: Annotated[StrictInt, Field(gt=0)] = 32
    encoding: EncodingName = "o200k_base"

    def section_budget(self, section: SectionName) -> int:
        """The budget of ``section`` (``knowledge_assets``, ``lead_memory``, ``thread``)."""
        budget: int = getattr(self, section)
        return budget

    def with_budgets(self, budgets: BudgetOverrides | None) -> BundleProfile:
        """A copy with the per-call overrides applied (keys left out keep their value)."""
        if budgets is None:
            return self
        changes = budgets.model_dump(exclude_none=True)
        return self.model_copy(update=changes) if changes else self


DEFAULT_PROFILES: Final[Mapping[str, BundleProfile]] = MappingProxyType(
    {
        # Drafts read the most: verified context first, then what we know, then the thread.
        "draft": BundleProfile(
            budget_total=8000, knowledge_assets=4000, lead_memory=1500, thread=2500
        ),
        # The overseer judges a meeting decision: the thread matters as much as the assets.
        "overseer": BundleProfile(
            budget_total=6000, knowledge_assets=2500, lead_memory=1000, thread=2500
        ),
        "auto_send": BundleProfile(
            budget_total=6000, knowledge_assets=3000, lead_memory=1000, thread=2000
        ),
        # Parsing proposed times needs the recent thread, little else.
        "proposed_times": BundleProfile(
            budget_total=3000, knowledge_assets=500, lead_memory=500, thread=2000
        ),
    }
)


class BundleSettings(EnvSettings):
    """Where profile overrides come from: ``LEADCTX_BUNDLE_*`` environment variables.

    Args:
        profiles: ``LEADCTX_BUNDLE_PROFILES``, a JSON file of per-pipeline overrides.
        encoding: ``LEADCTX_BUNDLE_ENCODING``, one encoding for every pipeline.

    Raises:
        ConfigurationError: A value cannot be parsed; the message names the variable.
    """

    model_config = SettingsConfigDict(
        env_prefix=_BUNDLE_PREFIX, case_sensitive=False, extra="forbid", frozen=True
    )

    profiles: Path | None = None
    encoding: EncodingName | None = None

    def __init__(self, **values: Any) -> None:
        warn_about_unknown_variables()
        type(self).check_spellings(values, what="bundle settings")
        try:
            super().__init__(**values)
        except ValidationError as err:
            problems = describe_validation_error(err, name=_variable_of)
            raise ConfigurationError("invalid bundle settings: " + "; ".join(problems)) from None


def _variable_of(loc: tuple[int | str, ...]) -> str:
    return f"{_BUNDLE_PREFIX}{str(loc[0]).upper()}" if loc else f"{_BUNDLE_PREFIX}*"


register_environment_variables(
    _BUNDLE_PREFIX, [f"{_BUNDLE_PREFIX}{name.upper()}" for name in BundleSettings.model_fields]
)


class _ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    budget_total: Annotated[StrictInt, Field(gt=0)] | None = Field(
        default=None, validation_alias=AliasChoices("budget_total", "total_budget")
    )
    knowledge_assets: Budget | None = None
    lead_memory: Budget | None = None
    thread: Budget | None = None
    min_item_tokens: Annotated[StrictInt, Field(gt=0)] | None = None
    encoding: EncodingName | None = None


class _ProfilesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    draft: _ProfilePatch | None = None
    overseer: _ProfilePatch | None = None
    auto_send: _ProfilePatch | None = None
    proposed_times: _ProfilePatch | None = None


def load_profiles(settings: BundleSettings | None = None) -> Mapping[str, BundleProfile]:
    """The profile of every pipeline: defaults, then the file, then the encoding override.

    Args:
        settings: Where overrides come from; ``None`` reads the environment.

    Returns:
        A read-only mapping with one ``BundleProfile`` per pipeline.

    Raises:
        ConfigurationError: A variable, the file or a field in it is invalid; the message
            names which (``LEADCTX_BUNDLE_PROFILES=/etc/p.json: draft.total_budget: ...``).
    """
    settings = settings if settings is not None else BundleSettings()
    patches = _read_file(settings.profiles) if settings.profiles is not None else None
    profiles: dict[str, BundleProfile] = {}
    for pipeline in PIPELINES:
        profile = DEFAULT_PROFILES[pipeline]
        patch = getattr(patches, pipeline) if patches is not None else None
        if patch is not None:
            profile = profile.model_copy(update=patch.model_dump(exclude_none=True))
        if settings.encoding is not None:
            profile = profile.model_copy(update={"encoding": settings.encoding})
        profiles[pipeline] = profile
    return MappingProxyType(profiles)


def _read_file(path: Path) -> _ProfilesFile:
    where = f"{PROFILES_ENV}={path}"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigurationError(f"{where}: cannot read ({type(err).__name__})") from None
    except json.JSONDecodeError as err:
        raise ConfigurationError(
            f"{where}: not JSON (line {err.lineno}, column {err.colno})"
        ) from None
    except RecursionError:
        raise ConfigurationError(f"{where}: JSON nested too deeply") from None
    try:
        return _ProfilesFile.model_validate(raw)
    except ValidationError as err:
        raise ConfigurationError(f"{where}: " + "; ".join(describe_validation_error(err))) from None
