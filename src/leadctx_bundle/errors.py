"""Errors raised by leadctx_bundle.

Messages name the field, variable or file at fault and never echo item content: a bundle's
inputs are lead data, and error messages travel to logs and terminals.
"""

from __future__ import annotations

__all__ = ["BundleInputError", "EncodingDataError"]


class BundleInputError(ValueError):
    """Bundle input that cannot be used as given.

    The message lists each problem as ``<field path>: <what is wrong>`` (for example
    ``knowledge_assets[2].content: Input should be a valid string``), without the value.

    Args:
        problems: One ``"<field path>: <message>"`` string per problem.
        where: Where the input came from (``--input request.json``), named once before the
            problems; ``None`` when the caller passed the input in.
    """

    def __init__(self, problems: list[str], *, where: str | None = None) -> None:
        self.problems = tuple(problems)
        self.where = where
        head = "invalid bundle input: " if where is None else f"invalid bundle input: {where}: "
        super().__init__(head + "; ".join(self.problems))

    def located(self, where: str) -> BundleInputError:
        """The same problems, said to come from ``where`` (a file the CLI read).

        Args:
            where: E.g. ``--input request.json``.
        """
        return BundleInputError(list(self.problems), where=where)


class EncodingDataError(RuntimeError):
    """A tokenizer encoding cannot be built from the data shipped with leadctx.

    Raised when a rank file is missing, unreadable or corrupt, when its SHA-256 differs from
    the hash the installed tiktoken declares, or when the installed tiktoken does not define
    the encoding. The message names the file or the encoding. leadctx never falls back to the
    network or to a guess: a heuristic count must be asked for explicitly.
    """
