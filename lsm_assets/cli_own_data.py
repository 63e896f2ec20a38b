"""Bring your own data: ``lsm evaluate-table`` and ``lsm add-table`` (sample tables, lsm_core.table_mode) and
``lsm add-area`` (a study area from the user's files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lsm_core.errors import LsmError

MODEL_CHOICES = ("logistic_regression", "svm", "mlp", "random_forest", "gbdt", "lightgbm")


def _names(value: str | None) -> list[str] | None:
    return None if not value else [v.strip() for v in value.split(",") if v.strip()]


def _fmt(v: float | None) -> str:
    return "  n/a" if v is None or v != v else f"{v:5.3f}"


def _auc_sd(mean: float | None, sd: float | None) -> str:
    return "n/a" if mean is None or mean != mean else f"{mean:5.3f} ({_fmt(sd).strip()})"


def _print_human(result) -> None:
    click.echo(f"{result.n_positive} landslides, {result.n_negative} absences, {len(result.factors)} factors: "
               f"{', '.join(result.factors)}")
    s = result.settings
    cv = f"AUC, mean (sd) over {s['n_repeats']} x {s['n_splits']} outer folds per CV scheme" if s["schemes"] \
        else "no CV (--cv none)"
    click.echo(f"{cv}; hyperparameters tuned in {s['inner_splits']} inner folds of each training set (nested)")
    click.echo(f"{'model':20s} {'random CV':>14s} {'spatial CV':>14s} {'InSAR-PU sp.':>14s} {'external':>9s} "
               f"{'temporal':>9s}")
    for name, m in result.models.items():
        click.echo(f"{name:20s} {_auc_sd(m.random_cv_auc, m.random_cv_auc_sd):>14s} "
                   f"{_auc_sd(m.spatial_cv_auc, m.spatial_cv_auc_sd):>14s} "
                   f"{_auc_sd(m.insar_pu_spatial_cv_auc, m.insar_pu_spatial_cv_auc_sd):>14s} "
                   f"{_fmt(m.external_auc):>9s} {_fmt(m.temporal.auc if m.temporal else None):>9s}")
    if result.temporal_status != "ok":
        click.echo(f"temporal (TA / POR / LOR): {result.temporal_status}")
    else:
        click.echo(f"temporal, split {s['split']}: share of rows above each threshold "
                   "(TA: training landslides; POR: later landslides; prone: later absences)")
        for name, m in result.models.items():
            for k, f in m.temporal.at.items():
                click.echo(f"  {name:20s} {k:20s} t={f.threshold:5.3f} TA={f.ta:5.3f} POR={f.por:5.3f} "
                           f"LOR={f.lor:5.3f} prone={f.prone_share:5.3f}")
    if result.insar_pu_status != "ok":
        click.echo(f"InSAR-PU strategy: {result.insar_pu_status}")
    for note in result.notes:
        click.echo(f"note: {note}")


# The columns of a sample table, shared by evaluate-table and add-table (which registers them for the UI).
_TABLE_COLUMN_OPTIONS = (
    click.option("--label", required=True, help="Column of the labels (1/True = landslide, 0/False = absence)."),
    click.option("--coords", required=True, help="The two coordinate columns as X,Y (map units, e.g. m)."),
    click.option("--factors", default=None,
                 help="Comma-separated factor columns (default: every other numeric column)."),
    click.option("--categorical", default=None, help="Comma-separated factors holding integer class codes."),
    click.option("--external", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Another table (same columns): models trained on TABLE predict it and report its AUC."),
    click.option("--deformation", default=None, help="Velocity column (mm/yr): enables the InSAR-PU strategy."),
    click.option("--deformation-nodata", type=float, default=None, help="Velocity value meaning 'no InSAR coverage'."),
    click.option("--date", "date_col", default=None, help="Event date column (a temporal evaluation with --split)."),
    click.option("--split", default=None, help="YYYY-MM-DD: train on rows dated before, score the later rows."),
)


def _table_columns(command):
    for option in reversed(_TABLE_COLUMN_OPTIONS):
        command = option(command)
    return command


@click.command("evaluate-table")
@click.argument("table", type=click.Path(dir_okay=False, path_type=Path))
@_table_columns
@click.option("--deformation-threshold", type=float, default=5.0, show_default=True,
              help="|v| (mm/yr) below which an absence joins the InSAR-PU pool.")
@click.option("--models", default=",".join(MODEL_CHOICES), show_default=True, help="Comma-separated models.")
@click.option("--repeats", type=int, default=5, show_default=True, help="Repeats of the outer 5-fold CV.")
@click.option("--inner", type=int, default=3, show_default=True, help="Inner folds for tuning (nested CV).")
@click.option("--cv", "schemes", default="random,spatial", show_default=True,
              help="CV schemes to run: random, spatial, both, or 'none' (e.g. a temporal evaluation alone).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_table_cmd(table: Path, label: str, coords: str, factors: str | None, categorical: str | None,
                       external: Path | None, deformation: str | None, deformation_nodata: float | None,
                       deformation_threshold: float, date_col: str | None, split: str | None, models: str,
                       repeats: int, inner: int, schemes: str, seed: int, as_json: bool) -> None:
    """Evaluate the six models on TABLE, a CSV of sample points (random and spatial CV, nested tuning)."""
    from tqdm import tqdm

    from lsm_core.sample_table import load_sample_table, parse_split_date
    from lsm_core.table_mode import evaluate_table

    try:
        if (split is None) != (date_col is None):
            raise LsmError("--date and --split go together")
        spec = {"label": label, "coords": coords, "factors": _names(factors),
                "categorical": _names(categorical) or ()}
        main = load_sample_table(table, **spec, date=date_col, deformation=deformation,
                                 deformation_nodata=deformation_nodata)
        other = None
        if external is not None:
            other = load_sample_table(external, **{**spec, "factors": list(main.factors)})
        chosen = _names(models) or MODEL_CHOICES
        # on stderr, so that --json output stays one clean object on stdout
        with tqdm(total=len(chosen), unit="model", desc="evaluating", file=sys.stderr) as bar:
            result = evaluate_table(main, models=chosen, n_repeats=repeats, inner_splits=inner,
                                    external=other, split=parse_split_date(split) if split else None,
                                    deformation_threshold_mm_yr=deformation_threshold, random_state=seed,
                                    schemes=[] if schemes.strip() == "none" else _names(schemes) or [],
                                    on_model_done=lambda name: (bar.set_postfix_str(name), bar.update()))
    except LsmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        _print_human(result)


def _scene(value: str) -> tuple:
    from lsm_core.sample_table import parse_split_date

    date, sep, path = value.partition("=")
    if not sep:
        raise LsmError(f"--ndvi takes YYYY-MM-DD=PATH, got {value!r}")
    return parse_split_date(date), Path(path)


def _layer_option(name: str, what: str):
    return click.option(f"--{name}", type=click.Path(dir_okay=False, path_type=Path), default=None, help=what)


@click.command("add-area")
@click.argument("name")
@click.option("--dem", required=True, type=click.Path(dir_okay=False, path_type=Path), help="DEM GeoTIFF (projected, m).")
@click.option("--inventory", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Landslides: GeoPackage/GeoJSON, or CSV with x, y (event_date optional).")
@click.option("--inventory-label", default=None, help="Inventory column marking landslides (1/True); other rows are "
              "left out.")
@click.option("--inventory-crs", default=None, help="CRS of a CSV inventory's x, y (default: the DEM's).")
@_layer_option("boundary", "Study-area polygon.")
@_layer_option("lithology", "Lithology polygons (with --lithology-field).")
@click.option("--lithology-field", default=None, help="Lithology unit-code column.")
@_layer_option("faults", "Fault lines.")
@_layer_option("rivers", "River lines.")
@_layer_option("roads", "Road lines.")
@_layer_option("buildings", "Building points.")
@_layer_option("mining", "Mining-site points.")
@_layer_option("rainfall", "Rainfall raster (mm/yr).")
@click.option("--ndvi", multiple=True, help="NDVI scene as YYYY-MM-DD=PATH (repeatable).")
@click.option("--insar", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of InSAR deliveries for the area.")
@click.option("--period", default=None, help="Monitoring period YYYYMM-YYYYMM to run without InSAR (default: the "
              "months the inventory's dates span; needed for an undated inventory).")
@click.option("--dem-only", "dem_only_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run terrain factors -> six models (spatial CV) -> map -> JS threshold -> prone areas in lsm_core "
                   "now, writing to this folder, instead of registering the area for the Dagster pipeline.")
@click.option("--models", default=",".join(MODEL_CHOICES), show_default=True, help="Models for --dem-only.")
@click.option("--repeats", type=int, default=5, show_default=True, help="Spatial-CV repeats for --dem-only.")
@click.pass_obj
def add_area_cmd(data_root: Path, name: str, dem: Path, inventory: Path, inventory_label: str | None,
                 inventory_crs: str | None, lithology_field: str | None, ndvi: tuple[str, ...], insar: Path | None,
                 period: str | None, dem_only_dir: Path | None, models: str, repeats: int,
                 **layers: Path | None) -> None:
    """Check the files of a new study area NAME, print what will and will not be computed, write its area.yaml."""
    from lsm_core.area import period_bounds
    from lsm_core.own_area import (
        check_area_files,
        dump_area_yaml,
        inventory_period,
        needs_normalised_inventory,
        write_area_inventory,
    )

    folder = data_root / "study_areas" / name
    try:
        if (folder / "area.yaml").exists():
            raise LsmError(f"study area {name!r} exists ({folder / 'area.yaml'})")
        check = check_area_files(name, dem, inventory, layers={k: v for k, v in layers.items() if v is not None},
                                 lithology_field=lithology_field, inventory_label=inventory_label,
                                 inventory_crs=inventory_crs, insar=insar, ndvi=[_scene(v) for v in ndvi])
        if period is not None:
            period_bounds(period)  # ConfigError for a malformed key
    except LsmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    g = check.grid
    click.echo(f"area {name}: {g.width} x {g.height} cells of {g.resolution_m:g} m, {g.crs}; {check.n_events} events"
               + (f" (reprojected from {check.inventory_reprojected_from})" if check.inventory_reprojected_from else ""))
    click.echo("will compute:")
    for item in check.will_compute():
        click.echo(f"  - {item}")
    click.echo("will not compute:")
    for item, why in check.will_not_compute():
        click.echo(f"  - {item}: {why}")
    if dem_only_dir is not None:
        _dem_only(check, dem_only_dir, inventory_label, _names(models) or MODEL_CHOICES, repeats)
        return
    if gaps := check.pipeline_gaps(period):
        click.echo("NOT WRITTEN: the raster pipeline cannot run the area yet; it needs " + "; ".join(gaps), err=True)
        sys.exit(3)
    # without InSAR the periods come from the user or the inventory's dates (area.yaml's `periods`)
    periods = [period] if period else [] if check.insar else [inventory_period(check, inventory_label, inventory_crs)]
    folder.mkdir(parents=True)
    own_inventory = None
    if needs_normalised_inventory(check, inventory_label):
        own_inventory = write_area_inventory(check, folder / "inventory.gpkg", inventory_label=inventory_label,
                                             inventory_crs=inventory_crs,
                                             stand_in_date=period_bounds(period)[0] if period else None)
        click.echo(f"wrote {own_inventory} (the events as the pipeline reads them"
                   + ("; undated: counted as known from the period's start)" if not check.has_dates else ")"))
    (folder / "area.yaml").write_text(dump_area_yaml(check, inventory=own_inventory,
                                                     periods=[p for p in periods if p]))
    from lsm_assets.cli import _instance
    from lsm_assets.intake_ops import deliver_insar
    from lsm_assets.registry import register

    instance = _instance()
    click.echo(f"wrote {folder / 'area.yaml'}")
    for delivery in sorted(p.parent for p in check.insar.glob("*/delivery.yaml")) if check.insar else []:
        out = deliver_insar(instance, data_root, delivery, name)  # the same intake as `lsm deliver-insar`
        click.echo(f"InSAR {delivery.name}: " + (f"accepted, period {out.accepted.delivery.period}" if out.accepted
                                                 else f"REJECTED: {out.rejected[1]}"))
    reg = register(instance, data_root)
    click.echo(f"registered study areas: {', '.join(reg.areas)}; periods of {name}: "
               f"{', '.join(p for a, p in reg.pairs if a == name) or 'none'}")


def _dem_only(check, out_dir: Path, inventory_label: str | None, models, repeats: int) -> None:
    from lsm_core.dem_only import dem_only_run

    try:
        r = dem_only_run(check, out_dir, inventory_label=inventory_label, models=models, n_repeats=repeats)
    except LsmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    ev = r.evaluation
    click.echo(f"samples: {ev.n_positive} landslide pixels, {ev.n_negative} random pixels inside the area; "
               f"spatial CV AUC, mean (sd) over {ev.settings['n_repeats']} x {ev.settings['n_splits']} folds, "
               "nested tuning:")
    for name, m in ev.models.items():
        click.echo(f"  {name:20s} {_auc_sd(m.spatial_cv_auc, m.spatial_cv_auc_sd)}")
    click.echo(f"map model: {r.map_model}; weighted-JS t* = {r.t_star_pct:g} %")
    for k in r.ta:
        click.echo(f"  {k:20s} TA={r.ta[k]:.3f} prone share={r.prone_share[k]:.3f}")
    s = r.prone_summary
    click.echo(f"prone areas at t*: {s.n_polygons} polygons, {s.prone_share:.3f} of the valid area after "
               f"filtering; POR / LOR: {r.por_lor_status}")
    click.echo(f"wrote {r.terrain}, {r.probability}, {r.prone_raster}, {r.prone_gpkg}")


@click.command("add-table")
@click.argument("name")
@click.argument("table", type=click.Path(dir_okay=False, path_type=Path))
@_table_columns
@click.pass_obj
def add_table_cmd(data_root: Path, name: str, table: Path, label: str, coords: str, factors: str | None,
                  categorical: str | None, external: Path | None, deformation: str | None,
                  deformation_nodata: float | None, date_col: str | None, split: str | None) -> None:
    """Check TABLE, register it as sample table NAME (data/tables/NAME.yaml) and add its Dagster partition, so
    the sample_table_evaluation asset runs table mode on it from the UI."""
    from lsm_core.table_registry import TableSpec, register_table

    xy = _names(coords) or []
    try:
        if len(xy) != 2:
            raise LsmError(f"--coords takes two columns as X,Y, got {coords!r}")
        spec = TableSpec(name=name, table=str(table), label=label, coords=(xy[0], xy[1]),
                         factors=tuple(_names(factors) or ()) or None, categorical=tuple(_names(categorical) or ()),
                         date=date_col, split=split, deformation=deformation, deformation_nodata=deformation_nodata,
                         external=None if external is None else str(external))
        path = register_table(data_root, spec)
    except LsmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    from lsm_assets.cli import _instance
    from lsm_assets.registry import register

    register(_instance(), data_root)
    click.echo(f"wrote {path}; registered sample table {name!r}: materialize sample_table_evaluation, "
               f"partition {name}, in the Dagster UI or with `lsm materialize --table {name}`")


COMMANDS = (evaluate_table_cmd, add_area_cmd, add_table_cmd)
