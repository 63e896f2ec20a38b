"""The ``lsm`` command: generate the demo data, register partitions, materialize the graph."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lsm_assets.cli_own_data import COMMANDS as OWN_DATA_COMMANDS
from lsm_assets.cli_report import COMMANDS as REPORT_COMMANDS
from lsm_assets.resources import default_data_root

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


def _instance():
    import dagster as dg

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()


@click.group()
@click.option("--data-root", default=default_data_root, show_default="data/ or $LSM_DATA_ROOT",
              help="The data folder (study_areas/, incoming/, warehouse/ ...).")
@click.pass_context
def main(ctx: click.Context, data_root: str) -> None:
    """Landslide susceptibility mapping as Dagster assets."""
    ctx.obj = Path(data_root)


@main.command("generate-demo")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic world.")
@click.option("--scale", default=1.0, show_default=True, help="K-times larger areas (benchmarks).")
@click.option("--force", is_flag=True, help="Regenerate even if the study areas exist.")
@click.pass_obj
def generate_demo_cmd(data_root: Path, seed: int, scale: float, force: bool) -> None:
    """Generate the two synthetic study areas (karst, loess) with ground truth."""
    from lsm_core.synthetic import generate_demo

    if (data_root / "study_areas").exists() and any((data_root / "study_areas").iterdir()) and not force:
        click.echo(f"{data_root / 'study_areas'} exists; use --force to regenerate")
        return
    t0 = time.perf_counter()
    summary = generate_demo(data_root, seed=seed, scale=scale)
    click.echo(json.dumps(summary, indent=2, default=str))
    click.echo(f"generated in {time.perf_counter() - t0:.1f} s under {data_root}")


@main.command()
@click.pass_obj
def register(data_root: Path) -> None:
    """Take in dropped InSAR deliveries and register areas and periods as partitions."""
    from lsm_assets.registry import register as do_register

    reg = do_register(_instance(), data_root)
    _report(reg)
    if reg.rejected:
        sys.exit(1)


def _report(reg) -> None:
    click.echo(f"areas: {', '.join(reg.areas) or '(none)'}")
    click.echo(f"periods: {', '.join(f'{a}:{p}' for a, p in reg.pairs) or '(none)'}")
    click.echo(f"sample tables: {', '.join(reg.tables) or '(none)'}")
    for folder in reg.accepted:
        click.echo(f"accepted {folder}")
    for folder, reason in reg.rejected:
        click.echo(f"REJECTED {folder}: {reason}", err=True)


@main.command("deliver-insar")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--area", required=True, help="Study area the delivery is for.")
@click.option("--materialize", "run", is_flag=True,
              help="Also materialize the period's area x period assets now (otherwise the sensor or "
                   "`lsm materialize` does it).")
@click.pass_obj
def deliver_insar(data_root: Path, folder: Path, area: str, run: bool) -> None:
    """Take in one InSAR delivery FOLDER for AREA, as insar_delivery_sensor does (the folder is copied)."""
    from lsm_assets.intake_ops import deliver_insar as do_deliver

    outcome = do_deliver(_instance(), data_root, folder, area)
    if outcome.rejected:
        click.echo(f"REJECTED {outcome.rejected[0]}: {outcome.rejected[1]}", err=True)
        sys.exit(1)
    v = outcome.accepted
    click.echo(f"accepted {v.delivery.folder} as version {v.version} of {area}:{v.delivery.period}"
               + (f" (replaces {v.replaces})" if v.replaces else ""))
    if run:
        _run_partitions(data_root, [outcome.partition_key])


@main.command("ingest-events")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--area", required=True, help="Study area the events belong to.")
@click.option("--materialize", "run", is_flag=True,
              help="Also re-run the inventory and the evaluations of every period of the area now.")
@click.pass_obj
def ingest_events(data_root: Path, file: Path, area: str, run: bool) -> None:
    """Take in one inventory FILE for AREA, as inventory_update_sensor does (the file is copied)."""
    from lsm_assets.intake_ops import ingest_events as do_ingest

    outcome = do_ingest(_instance(), data_root, file, area, data_root / "warehouse" / "lsm.duckdb")
    if outcome.rejected:
        click.echo(f"REJECTED {outcome.rejected[0]}: {outcome.rejected[1]}", err=True)
        sys.exit(1)
    r = outcome.accepted
    click.echo(f"accepted {r.received_as} -> {r.archived}: {r.summary()}")
    for c in r.corrected:
        click.echo(f"  corrected {c}")
    if run:
        _run_partitions(data_root, [area], evaluations=outcome.evaluation_keys)


def _run_partitions(data_root: Path, keys: list[str], evaluations: list[str] | None = None) -> None:
    """Materialize: every asset of ``keys`` (area x period), or the inventory of an area key and then the
    evaluation assets of ``evaluations``."""
    from tqdm import tqdm

    from lsm_assets.definitions import defs
    from lsm_assets.intake_ops import EVALUATION_ASSETS
    from lsm_assets.materialize import run_partition

    instance = _instance()
    runs = ([(k, None) for k in keys] if evaluations is None else
            [(k, ["landslide_inventory"]) for k in keys] + [(k, EVALUATION_ASSETS) for k in evaluations])
    results = []
    with tqdm(total=len(runs), unit="run", desc="materializing", file=sys.stderr) as bar:
        for key, selection in runs:
            results.append(run_partition(defs, instance, data_root, key, selection=selection))
            bar.update()
    for r in results:
        click.echo(f"{'ok    ' if r.success else 'FAILED'} {r.partition_key:24s} run {r.run_id}"
                   + (f"\n       {r.error}" if r.error else ""))
    if not all(r.success for r in results):
        sys.exit(1)


WORKERS = click.option("--workers", type=int, default=None, show_default="one per core",
                       help="Partitions materialized side by side (worker processes); 1 = one after the other.")
PRESET = click.option("--preset", type=click.Choice(["default", "thorough"]), default="default", show_default=True,
                      help="thorough: 100 PU bags, 300-tree forests, exact-split GBDT, kernel SHAP, and the pu "
                           "ablation beside insar_pu (publication runs; several times slower).")


@main.command()
@click.option("--area", "areas", multiple=True,
              help="Only these study areas (repeatable; no sample table then, unless --table names some).")
@click.option("--table", "tables", multiple=True,
              help="Only these sample tables of `lsm add-table` (repeatable; no area then, unless --area names some). "
                   "Default: every area and every table.")
@click.option("--run-config", "run_config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="YAML run config over the preset (ops: {asset: {config: {...}}}, e.g. fewer models "
                                 "or repeats); each run gets the ops it has.")
@WORKERS
@PRESET
@click.pass_obj
def materialize(data_root: Path, areas: tuple[str, ...], tables: tuple[str, ...], run_config_file: Path | None,
                workers: int | None, preset: str) -> None:
    """Materialize every asset for every registered partition, and every registered sample table."""
    _materialize(data_root, areas, workers, preset, tables=tables, run_config_file=run_config_file)


def _materialize(data_root: Path, areas: tuple[str, ...], workers: int | None = None, preset: str = "default",
                 tables: tuple[str, ...] = (), run_config_file: Path | None = None,
                 pool: ProcessPoolExecutor | None = None) -> None:
    import yaml

    from lsm_assets.definitions import defs
    from lsm_assets.materialize import PRESETS, choose_runs, materialize_all, merge_run_config
    from lsm_assets.registry import register as do_register
    from lsm_core.errors import LsmError

    try:
        extra = yaml.safe_load(run_config_file.read_text()) if run_config_file else None
        if extra is not None and not isinstance(extra, dict):
            raise LsmError(f"a run config is a mapping (ops: {{asset: {{config: ...}}}}), got {type(extra).__name__}",
                           run_config_file)
    except yaml.YAMLError as exc:
        click.echo(f"error: {run_config_file}: invalid YAML ({exc})", err=True)
        sys.exit(2)
    except LsmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    run_config = merge_run_config(PRESETS[preset], extra) if extra else PRESETS[preset]
    instance = _instance()
    reg = do_register(instance, data_root)
    _report(reg)
    try:
        chosen, chosen_tables = choose_runs(reg, areas, tables)
    except LsmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    from tqdm import tqdm

    t0 = time.perf_counter()
    total = len(chosen) + sum(1 for a, _ in reg.pairs if a in chosen) + len(chosen_tables)
    with tqdm(total=total, unit="run", desc="materializing", file=sys.stderr) as bar:
        def done(r) -> None:
            bar.set_postfix_str(f"{r.label} {'ok' if r.success else 'FAILED'} {r.seconds:.0f} s")
            bar.update()

        results = materialize_all(defs, instance, reg, data_root, chosen, run_config=run_config,
                                  max_workers=workers, on_done=done, tables=chosen_tables, pool=pool)
    failed = [r for r in results if not r.success]
    for r in results:
        click.echo(f"{'ok    ' if r.success else 'FAILED'} {r.label:24s} {r.seconds:6.1f} s  run {r.run_id}"
                   + (f"\n       {r.error}" if r.error else ""))
    click.echo(f"{len(results)} runs in {time.perf_counter() - t0:.1f} s, {len(failed)} failed")
    click.echo(f"outputs: {data_root / 'warehouse'} (COG, GeoParquet, JSON; DuckDB catalog "
               f"{data_root / 'warehouse' / 'lsm.duckdb'})")
    for p in sorted((data_root / "warehouse").rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            click.echo(f"  {p.relative_to(data_root)}")
    if failed:
        sys.exit(1)


@main.command()
@click.option("--seed", default=0, show_default=True)
@WORKERS
@PRESET
@click.pass_obj
def demo(data_root: Path, seed: int, workers: int | None, preset: str) -> None:
    """Generate the default data if missing, register partitions, materialize everything."""
    from lsm_assets.materialize import start_workers
    from lsm_core.synthetic import generate_demo

    n_workers = workers or os.cpu_count() or 1
    pool = start_workers(n_workers) if n_workers > 1 else None  # they start up, then generate the data
    try:
        if not (data_root / "study_areas").exists() or not any((data_root / "study_areas").iterdir()):
            t0 = time.perf_counter()
            generate_demo(data_root, seed=seed, workers=n_workers, executor=pool)
            click.echo(f"generated the demo study areas in {time.perf_counter() - t0:.1f} s")
        _materialize(data_root, (), workers, preset, pool=pool)
    finally:
        if pool is not None:
            pool.shutdown()


for _command in (*OWN_DATA_COMMANDS, *REPORT_COMMANDS):  # own data (issue 11); report and status
    main.add_command(_command)

if __name__ == "__main__":
    main()
