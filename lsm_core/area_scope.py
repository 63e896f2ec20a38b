"""What a study area can compute from the layers and data it has (issue 11: incomplete areas in the asset graph).

An area added with ``lsm add-area`` may lack optional layers (faults, rivers, roads, buildings,
mining, rainfall, NDVI, lithology), InSAR deliveries, or event dates. The raster pipeline still
runs it: a factor whose layer is missing is left out of the stack; a period without an InSAR
delivery (declared in area.yaml's ``periods``) gets an *absent* velocity layer, a one-band
all-nodata raster tagged with the reason, which the factor stack leaves out; negative strategies
that need the velocity are skipped with the reason; POR / LOR of an undated inventory are "not
computable". These helpers decide that, so the asset bodies only call them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import yaml

from lsm_core.area import PERIOD_RE, AreaConfig
from lsm_core.errors import ConfigError
from lsm_core.grid import AreaGrid
from lsm_core.io import RasterFile, RasterWriter

__all__ = ["ABSENT_TAG", "ENVIRONMENT_BANDS", "NO_DATES_STATUS", "OPTIONAL_LAYERS", "PLACEHOLDER_BANDS",
           "VELOCITY_STRATEGIES", "absent_reason", "applicable_strategies", "declared_periods", "environment_bands",
           "factors_left_out", "inventory_has_dates", "missing_layers", "present_sources", "proximity_bands",
           "scored_later_events", "undated_update_hint", "write_absent_layer"]

OPTIONAL_LAYERS = ("lithology", "faults", "rivers", "roads", "buildings", "mining", "rainfall", "ndvi")
ABSENT_TAG = "absent_reason"
NO_DATES_STATUS = "not computable: the inventory has no dates"
ENVIRONMENT_BANDS = ("lithology", "rainfall_mm_yr", "ndvi_mean")  # environment.BANDS, in that order
PLACEHOLDER_BANDS = ("proximity", "environment")  # band names of absent proximity / environment layers
# negative strategies that read the InSAR velocity band of the stack (their pool is defined by it)
VELOCITY_STRATEGIES = {"insar_pu": "velocity_mm_yr"}


def missing_layers(cfg: AreaConfig) -> tuple[str, ...]:
    """Optional layers the area.yaml does not give (their factors are left out)."""
    return tuple(k for k in OPTIONAL_LAYERS if (not cfg.ndvi if k == "ndvi" else k not in cfg.layers))


def proximity_bands(cfg: AreaConfig) -> tuple[list[str], dict[str, str]]:
    """The proximity bands the area's layers allow, and {band: why left out} of the others."""
    from lsm_core.proximity import PROXIMITY_BANDS, SOURCE_LAYER

    bands = [b for b in PROXIMITY_BANDS if SOURCE_LAYER[b] in cfg.layers]
    return bands, {b: f"no {SOURCE_LAYER[b]} layer in area.yaml" for b in PROXIMITY_BANDS if b not in bands}


def environment_bands(cfg: AreaConfig, start: dt.date, end: dt.date) -> tuple[list[str], dict[str, str]]:
    """The environment bands the area's layers allow for the period [start, end], and {band: why left out}."""
    have = {"lithology": "lithology" in cfg.layers, "rainfall_mm_yr": "rainfall" in cfg.layers,
            "ndvi_mean": bool(cfg.ndvi_in(start, end))}
    why = {"lithology": "no lithology layer in area.yaml", "rainfall_mm_yr": "no rainfall layer in area.yaml",
           "ndvi_mean": "no NDVI scene in area.yaml" if not cfg.ndvi else f"no NDVI scene dated {start}..{end}"}
    bands = [b for b in ENVIRONMENT_BANDS if have[b]]
    return bands, {b: why[b] for b in ENVIRONMENT_BANDS if not have[b]}


def factors_left_out(cfg: AreaConfig, start: dt.date, end: dt.date, absent: dict[str, str] | None = None
                     ) -> dict[str, str]:
    """{factor: why left out} of the proximity and environment factors the area's layers do not allow for the
    period [start, end], and of the ``absent`` sources' bands (``present_sources``; their placeholder band names
    "proximity" and "environment" are not factors, the factors they stand for are listed instead)."""
    out = proximity_bands(cfg)[1] | environment_bands(cfg, start, end)[1]
    return out | {k: v for k, v in (absent or {}).items() if k not in PLACEHOLDER_BANDS}


def inventory_has_dates(cfg: AreaConfig) -> bool:
    """False when area.yaml says the inventory has no event dates (``parameters.inventory_has_dates: false``).

    ``lsm add-area`` stamps undated events with their period's first day so the catalog can hold
    them; this flag keeps POR / LOR from being computed on those stand-in dates.
    """
    return bool(cfg.parameters.get("inventory_has_dates", True))


def scored_later_events(later: gpd.GeoDataFrame, cfg: AreaConfig) -> tuple[gpd.GeoDataFrame, str | None]:
    """The later events (dated after a period's end) that POR / LOR and the prediction rate may score, and the
    status that replaces POR / LOR when they may not.

    A dated area: every later event, no status. An area added with an undated inventory: its own events carry
    stand-in dates (``lsm add-area``), so only events whose newest revision came from elsewhere count: updates
    taken in by ``lsm ingest-events`` / ``inventory_update_sensor``, which must be dated (a dated correction of an
    own event counts too). ``later`` as from ``catalog.read_events`` (with ``source_file``). Without any such
    event POR / LOR stay ``NO_DATES_STATUS``.

    >>> from pathlib import Path
    >>> cfg = AreaConfig("a", Path("/a"), "EPSG:32649", 10.0, (0, 0, 100, 100), {"inventory": Path("/a/inventory.gpkg")},
    ...                  (), parameters={"inventory_has_dates": False})
    >>> later = gpd.GeoDataFrame({"event_id": ["ev0001", "new-1"],
    ...                           "source_file": ["/a/inventory.gpkg", "archive/inventory/a/x__1f.csv"]})
    >>> events, status = scored_later_events(later, cfg)
    >>> list(events["event_id"]), status
    (['new-1'], None)
    >>> scored_later_events(later.iloc[:1], cfg)[1]
    'not computable: the inventory has no dates'
    """
    if inventory_has_dates(cfg):
        return later, None
    dated = later[later["source_file"].astype(str) != str(cfg.layers["inventory"])]
    return dated, (None if len(dated) else NO_DATES_STATUS)


def undated_update_hint(cfg: AreaConfig) -> str | None:
    """Why an inventory update of an area added with an undated inventory must be dated (None for a dated area)."""
    if inventory_has_dates(cfg):
        return None
    return (f"study area {cfg.name!r} was added with an undated inventory: an update must date every event, so it "
            "can be placed before or after each monitoring period (undated, it could be a later event leaking into "
            "the training set); events dated after a period are the later events its POR / LOR score. To train "
            "on more undated landslides, add the area again under a new name with the combined inventory "
            "(lsm add-area NEW_NAME --inventory ... --period ...)")


def declared_periods(area_folder: str | Path) -> list[str]:
    """Monitoring periods the area declares in area.yaml (``periods: [YYYYMM-YYYYMM, ...]``), for areas without
    InSAR deliveries; ConfigError names the file for a malformed key."""
    path = Path(area_folder) / "area.yaml"
    raw: Any = yaml.safe_load(path.read_text()) if path.is_file() else None
    periods = (raw or {}).get("periods") or [] if isinstance(raw, dict) else []
    bad = [p for p in periods if not PERIOD_RE.match(str(p))]
    if bad:
        raise ConfigError(f"periods {bad} are not of the form YYYYMM-YYYYMM", path)
    return sorted(str(p) for p in periods)


def write_absent_layer(grid: AreaGrid, out_path: str | Path, band: str, reason: str, *, block: int = 512) -> Path:
    """A one-band all-nodata raster on ``grid``, tagged with why the layer is absent; window by window."""
    with RasterWriter(out_path, grid, [band], block=block, tags={ABSENT_TAG: reason}) as w:
        for b in grid.windows(block):
            w.write(np.full((1, int(b.write.height), int(b.write.width)), np.nan, np.float32), b.write)
    return Path(out_path)


def absent_reason(raster: RasterFile) -> str | None:
    """Why ``raster`` is an absent layer (``write_absent_layer``), else None."""
    return raster.tags.get(ABSENT_TAG)


def present_sources(sources: Iterable[tuple[RasterFile, Sequence[str]]]
                    ) -> tuple[list[tuple[RasterFile, Sequence[str]]], dict[str, str]]:
    """The stack sources that hold data, and {band: reason} of the absent ones left out."""
    present: list[tuple[RasterFile, Sequence[str]]] = []
    left_out: dict[str, str] = {}
    for src, bands in sources:
        if (why := absent_reason(src)) is None:
            present.append((src, bands))
        else:
            left_out |= {b: why for b in bands}
    return present, left_out


def applicable_strategies(requested: Sequence[str], factor_names: Sequence[str], *,
                          pu_ablation: bool = True) -> tuple[list[str], dict[str, str]]:
    """The requested negative strategies the factor stack supports, and {strategy: why skipped} of the others.

    ``pu`` is InSAR-PU's Bagging-PU without the velocity pool. Beside ``insar_pu`` it is an ablation
    (it separates what the velocity adds from what PU learning adds), run only with ``pu_ablation``;
    where ``insar_pu`` cannot run (no velocity band), it is the area's PU strategy and always runs.
    """
    run, skipped = [], {}
    for s in requested:
        band = VELOCITY_STRATEGIES.get(s)
        if band is not None and band not in factor_names:
            skipped[s] = (f"skipped: the factor stack has no {band} band (no InSAR delivery for this area and "
                          "period), and its unlabeled pool is defined by the velocity")
        else:
            run.append(s)
    if not pu_ablation and "pu" in run and "insar_pu" in run:
        run.remove("pu")
        skipped["pu"] = ("skipped: beside insar_pu, pu is the ablation (Bagging-PU without the velocity pool), run "
                         "with pu_ablation=true (the thorough preset)")
    return run, skipped
