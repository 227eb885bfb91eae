"""The render profiles of every chart: chart defaults, each environment overlay, each ci/ scenario."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CHARTS = REPO / "charts"
ENVIRONMENTS = ("dev", "staging", "prod")


@dataclass(frozen=True)
class Profile:
    chart: str
    name: str  # "defaults", "env-prod", "ci-hpa", ...
    values_files: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def chart_dir(self) -> Path:
        return CHARTS / self.chart

    @property
    def id(self) -> str:
        return f"{self.chart}:{self.name}"


def env_overlay(chart: str, env: str) -> Path:
    return REPO / "values" / env / f"{chart}.yaml"


def profiles(chart: str = "eafix-trading") -> list[Profile]:
    out = [Profile(chart, "defaults")]
    for env in ENVIRONMENTS:
        overlay = env_overlay(chart, env)
        if overlay.exists():
            out.append(Profile(chart, f"env-{env}", (overlay,)))
    for scenario in sorted((CHARTS / chart / "ci").glob("*-values.yaml")):
        out.append(Profile(chart, f"ci-{scenario.name.removesuffix('-values.yaml')}", (scenario,)))
    return out
