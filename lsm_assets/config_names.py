"""Names the launchpad checks before a run starts: negative strategies, models and CV schemes as Dagster enums.

A ``list[str]`` config field accepts any string, so a typo ('insarpu') only fails inside the run. These
enums are built from lsm_core's own name tuples, so the two can never drift apart; ``plain_names`` turns
the parsed values back into the plain strings lsm_core and the tables use (Dagster passes defaults as
strings and launchpad values as enum members).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from pydantic import field_validator

from lsm_core.models import MODEL_NAMES
from lsm_core.sampling import NEGATIVE_STRATEGIES

__all__ = ["CvSchemeName", "ModelName", "StrategyName", "plain_names", "plain_names_validator"]

StrategyName = enum.StrEnum("StrategyName", {s: s for s in NEGATIVE_STRATEGIES})  # type: ignore[misc]
ModelName = enum.StrEnum("ModelName", {m: m for m in MODEL_NAMES})  # type: ignore[misc]
CvSchemeName = enum.StrEnum("CvSchemeName", {s: s for s in ("random", "spatial")})  # type: ignore[misc]


def plain_names(values: Iterable[object]) -> list[str]:
    """The values of enum members (or strings) as plain strings, in order."""
    return [str(v) for v in values]


def plain_names_validator(*fields: str):
    """A pydantic validator for a dg.Config: the named list-of-enum fields arrive as plain strings."""
    return field_validator(*fields, mode="after")(classmethod(lambda cls, v: plain_names(v)))
