"""The re-entry matrix: a versioned table of decisions, and the ladder that resolves a closed trade
to exactly one of them (a lookup never returns nothing).

The document (YAML; its JSON Schema is schemas/reentry/matrix.v1.schema.json, and these models accept
exactly the documents it accepts):

    version: 1                        # document format
    matrix_version: "1.0.0"           # copied into every decision with the parameter set: PS-x@1.0.0
    fallback: {action: NO_REENTRY, parameter_set: PS-global-safe}    # tier 4, always safe
    families:                         # signal family: the strategy (or calendar signal type) of the original
      <family>:
        default: {action: ..., ...}   # tier 3
        cells:                        # generation and outcome always; proximity, then duration, optional
          - {generation: O, outcome: O5, proximity: LG, duration: QUICK, action: SAME_TRADE, ...}

Ladder for (generation, family, duration, outcome, proximity), the first hit wins:
    tier 0  exact: a cell naming generation, outcome, proximity and duration
    tier 1  drop duration: a cell naming generation, outcome and proximity only
    tier 2  drop proximity: a cell naming generation and outcome only
    tier 3  the family's default
    tier 4  the global fallback (NO_REENTRY)
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eafix.reentry_matrix_svc.classify import Duration, Outcome
from eafix.runtime.yaml_text import safe_load

DEFAULT_MATRIX = Path(__file__).with_name("matrix.default.yaml")


class Generation(StrEnum):
    O = "O"  # noqa: E741 - the domain's name for an original trade
    R1 = "R1"
    R2 = "R2"

    @property
    def next(self) -> Generation | None:
        return {Generation.O: Generation.R1, Generation.R1: Generation.R2}.get(self)


class Proximity(StrEnum):
    IM = "IM"  # immediate
    SH = "SH"  # short
    LG = "LG"  # long
    EX = "EX"  # extended
    CD = "CD"  # cooldown after an event
    NONE = "NONE"  # no calendar information for the symbol


class Action(StrEnum):
    NO_REENTRY = "NO_REENTRY"
    SAME_TRADE = "SAME_TRADE"
    REVERSE = "REVERSE"
    INCREASE_SIZE = "INCREASE_SIZE"
    HOLD = "HOLD"


ParameterSet = Annotated[str, Field(pattern=r"^PS-[a-z0-9-]{1,60}$")]


class Decision(BaseModel):
    """What a matrix entry decides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    parameter_set: ParameterSet
    size_multiplier: Annotated[Decimal, Field(ge=Decimal("0.1"), le=Decimal("3.0"), decimal_places=2)] = Decimal("1.0")
    delay_minutes: Annotated[int, Field(ge=0, le=1440)] = 0
    confidence_adjustment: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0


class Cell(Decision):
    generation: Literal[Generation.O, Generation.R1]  # an R2 trade ends its chain: nothing to decide
    outcome: Outcome
    proximity: Proximity | None = None
    duration: Duration | None = None

    @model_validator(mode="after")
    def _duration_needs_proximity(self) -> Cell:
        if self.duration is not None and self.proximity is None:
            raise ValueError("a cell naming a duration must name a proximity too (the ladder drops duration first)")
        return self

    @property
    def key(self) -> tuple[Generation, Outcome, Proximity | None, Duration | None]:
        return self.generation, self.outcome, self.proximity, self.duration


class Family(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: Decision
    cells: tuple[Cell, ...] = ()

    @model_validator(mode="after")
    def _unique_cells(self) -> Family:
        seen: set[tuple] = set()
        for cell in self.cells:
            if cell.key in seen:
                raise ValueError(f"two cells for {'/'.join(str(k) for k in cell.key if k is not None)}")
            seen.add(cell.key)
        return self


class Fallback(Decision):
    action: Literal[Action.NO_REENTRY] = Action.NO_REENTRY  # the global default is always safe


FamilyName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]


class Matrix(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1]
    matrix_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
    fallback: Fallback
    families: dict[FamilyName, Family] = Field(default_factory=dict)

    def resolve(self, generation: Generation, family: str, duration: Duration, outcome: Outcome,
                proximity: Proximity) -> Resolution:
        """The decision for a closed trade and the ladder tier (0-4) that produced it."""
        found = self.families.get(family)
        if found is not None:
            cells = {cell.key: cell for cell in found.cells}
            for tier, key in enumerate(((generation, outcome, proximity, duration),
                                        (generation, outcome, proximity, None),
                                        (generation, outcome, None, None))):
                cell = cells.get(key)
                if cell is not None:
                    return Resolution(cell, tier)
            return Resolution(found.default, 3)
        return Resolution(self.fallback, 4)

    def parameter_set(self, decision: Decision) -> str:
        """`PS-x@<matrix_version>`: the parameter set frozen into a decision."""
        return f"{decision.parameter_set}@{self.matrix_version}"


class Resolution(NamedTuple):
    decision: Decision
    tier: int  # 0 exact ... 4 global fallback


class MatrixError(ValueError):
    """An unusable matrix document; str() names the path of each problem."""


def parse_matrix(text: str, source: str = "matrix") -> Matrix:
    try:
        document = safe_load(text)
    except yaml.YAMLError as exc:
        raise MatrixError(f"{source}: not YAML ({str(exc).splitlines()[0]})") from None
    try:
        return Matrix.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise MatrixError(f"{source}: {problems}") from None


def load_matrix(path: Path = DEFAULT_MATRIX) -> Matrix:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    return parse_matrix(text, str(path))
