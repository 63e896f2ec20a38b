"""Knobs of the synthetic world: how much, and where, the ground moves and shows it (issue 12).

The default world is meant to be realistic rather than kind to any method: most unstable slopes
fail without creeping first (rainfall-triggered shallow slides), the satellite sees only the part of
the motion along its line of sight, forest decorrelates the radar signal, some deformation has
nothing to do with landslides (mining and karst subsidence), and NDVI shows no precursor. The
knobs are written to ``truth/knobs.yaml`` beside the ground truth: the pipeline never reads them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import yaml

from lsm_core.errors import ConfigError

__all__ = ["KNOBS_FILE", "WorldKnobs"]

KNOBS_FILE = "knobs.yaml"  # inside truth/; nothing outside lsm_core.synthetic may read it (tested)


@dataclass(frozen=True)
class WorldKnobs:
    """What the synthetic ground motion and its observation look like (mm/yr, degrees, counts per km2).

    ``precursory_share``: share of unstable slopes that creep detectably before they fail (or, for
    those that never fail, at all); the others are still there in the hazard and the unstable mask
    but do not move until they fail. Rainfall-triggered shallow slides rarely creep first: 0.4.
    ``deformation_on_hazard``: True puts each creeping slope's deformation bowl on the slope itself;
    False puts every bowl (precursory creep, post-failure creep of landslides) at a uniformly random
    place of the area and replaces the background creep ~ hazard^2 by one following an independent
    random field: deformation then carries no information on the hazard (the falsification world).
    ``los_projection``: True projects the motion on the radar line of sight, so the share seen depends
    on aspect: for an ascending (east-looking) track east-facing slopes show most of their downslope
    motion, west-facing ones least (towards the satellite horizontally, away vertically), north- and
    south-facing ones only about the vertical part; False lets the satellite see the full speed.
    ``heading_deg`` / ``incidence_deg``: sensor geometry; None takes the area's Sentinel-1 ascending
    track (about -12 deg and 37-39 deg).
    ``vegetation_decorrelation``: temporal coherence lost per unit of NDVI above 0.35 (coherence below
    0.3 is nodata in the delivery, lower coherence is noisier); None takes the area's value (karst
    forest 1.1, loess grass 0.8).
    ``subsidence_per_km2``: subsidence bowls per km2 unrelated to landslide hazard, half over mining
    sites (as far as there are sites), the rest at random on gentle ground (karst depressions, fills).
    ``subsidence_mm_yr``: range of their peak vertical sinking rate (uniform draw).
    ``ndvi_precursor``: NDVI drop at the centre of a creeping slope before it fails (0: none; the
    post-failure scar is always there, a consequence of failure).
    """

    precursory_share: float = 0.4
    deformation_on_hazard: bool = True
    los_projection: bool = True
    heading_deg: float | None = None
    incidence_deg: float | None = None
    vegetation_decorrelation: float | None = None
    subsidence_per_km2: float = 0.15
    subsidence_mm_yr: tuple[float, float] = (8.0, 30.0)
    ndvi_precursor: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.precursory_share <= 1.0:
            raise ConfigError(f"precursory_share must be in [0, 1], got {self.precursory_share}")
        if self.subsidence_per_km2 < 0 or self.ndvi_precursor < 0:
            raise ConfigError("subsidence_per_km2 and ndvi_precursor must be >= 0")
        lo, hi = self.subsidence_mm_yr
        if not 0 <= lo <= hi:
            raise ConfigError(f"subsidence_mm_yr must be (low, high) with 0 <= low <= high, got {self.subsidence_mm_yr}")
        if self.vegetation_decorrelation is not None and self.vegetation_decorrelation < 0:
            raise ConfigError("vegetation_decorrelation must be >= 0")

    def as_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists), for YAML and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> WorldKnobs:
        """Knobs from plain values; unknown names raise ConfigError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown world knobs {unknown}; known: {sorted(names)}")
        v = dict(values)
        if "subsidence_mm_yr" in v:
            v["subsidence_mm_yr"] = tuple(float(x) for x in v["subsidence_mm_yr"])
        return cls(**v)

    def to_yaml(self) -> str:
        """The knobs as the YAML written to ``truth/knobs.yaml``."""
        return ("# World knobs of this synthetic area (lsm_core.synthetic.knobs.WorldKnobs); see README.md here.\n"
                + yaml.safe_dump(self.as_dict(), sort_keys=False, default_flow_style=None))
