"""Susceptibility map: a classifier's landslide probability for every valid pixel of a factor stack.

``predict_map`` maps the stack window by window - in process (``scheduler_address="serial"``), on a
``LocalCluster`` started for the call (default), or on an existing Dask scheduler (many machines for
a national-scale area) - and the driver writes each window as it completes, so peak memory depends
on the block size and ``max_in_flight``, not on the raster size. Every path runs the same per-window
function, so all give identical rasters, equal to the in-memory reference ``predict_in_memory``.

Distributed contract: workers read their windows from ``stack_path`` themselves, so the stack must be
on storage every worker mounts at the same path (NFS, a shared volume); workers also need lsm_core
and the model's library at the driver's versions, and the model must pickle (it is scattered once).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rasterio.windows import Window

from lsm_core.errors import ConfigError, InputFileError, LsmError, ModelError
from lsm_core.io import RasterFile, RasterWriter, gdal_cache_max, read_raster, write_raster

__all__ = ["BAND", "SERIAL", "WRITER_CACHE_BYTES", "PredictMapResult", "WriteFn", "local_cluster", "predict_in_memory",
           "predict_map"]

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

WriteFn = Callable[[np.ndarray, Window], None]

SERIAL = "serial"
BAND = "susceptibility"
# GDAL's block cache (default 5 % of RAM) fills while RasterWriter copies the scratch file into
# the COG with overviews, so the writer's memory would grow with the raster: cap it (bytes)
WRITER_CACHE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class PredictMapResult:
    """What ``predict_map`` wrote: the COG, its pixel counts, the probability summary (0..1) and the run's figures."""

    path: str  # the susceptibility COG
    band: str  # its one band's name (``BAND``)
    features: tuple[str, ...]  # the stack bands fed to the model, in the model's column order
    pixels: int  # all pixels of the grid
    valid_pixels: int  # pixels with a probability
    mean_probability: float | None  # None without valid pixels
    min_probability: float | None
    max_probability: float | None
    windows: int  # windows mapped
    block: int  # window size, pixels
    scheduler: str  # "serial", "local" (a LocalCluster for the call) or a scheduler address
    peak_in_flight: int  # most windows pending at once
    seconds: float  # wall time of the call

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON, Dagster metadata)."""
        return asdict(self)


@dataclass(frozen=True)
class _Plan:
    """What a worker needs besides the model: stack path, 1-based bands, column names, proba column."""

    path: str
    bands: list[int]
    features: list[str]
    positive: int
    as_frame: bool


def _plan(model: Any, stack: RasterFile, feature_names: Sequence[str] | None) -> _Plan:
    """Check the model against the stack and decide which bands feed which model columns."""
    if not callable(getattr(model, "predict_proba", None)):
        raise ModelError(f"{type(model).__name__} has no predict_proba")
    classes = getattr(model, "classes_", None)
    if classes is not None and len(classes) != 2:
        raise ModelError(f"{type(model).__name__} is not a binary classifier (classes {list(classes)})")
    model_names = getattr(model, "feature_names_in_", None)  # AttributeError-safe: unfitted models raise it
    names = stack.names
    features = list(feature_names if feature_names is not None else model_names if model_names is not None
                    else names)
    missing = [f for f in features if f not in names]
    if missing:
        raise ModelError(f"the stack lacks the factor(s) {missing} the model needs (stack bands: {names})",
                         stack.path)
    n_in = getattr(model, "n_features_in_", None)
    if n_in is not None and n_in != len(features):
        raise ModelError(f"{type(model).__name__} expects {n_in} features, {len(features)} selected: {features}")
    # sklearn warns on every call when a model fitted on a bare array gets a DataFrame, so give it an array
    as_frame = model_names is not None or n_in is None
    return _Plan(str(stack.path), [names.index(f) + 1 for f in features], features, 1, as_frame)


def _predict_array(model: Any, data: np.ndarray, plan: _Plan) -> np.ndarray:
    """Probability (rows x cols float32, 0..1, NaN where any selected band is nodata) of bands x rows x cols."""
    valid = np.isfinite(data).all(axis=0)
    out = np.full(valid.shape, np.nan, np.float32)
    if valid.any():  # some models fail on zero rows; an all-nodata window needs no model
        X = data[:, valid].T
        X = pd.DataFrame(X, columns=plan.features) if plan.as_frame else X
        out[valid] = model.predict_proba(X)[:, plan.positive]
    return out


def _predict_window(model: Any, plan: _Plan, window: Window) -> np.ndarray:
    """The per-window task (runs on a worker or in process): read the window, predict it."""
    if not os.path.exists(plan.path):
        raise InputFileError(f"stack not visible on host {socket.gethostname()}: put it on storage every "
                             "Dask worker mounts at the same path", plan.path)
    return _predict_array(model, read_raster(plan.path, window, plan.bands), plan)


def _check_output(out_path: Path, stack_path: Path) -> None:
    """Fail before any work when the output cannot be written (RasterWriter creates missing folders)."""
    if out_path.resolve() == stack_path.resolve():
        raise ConfigError("the output would overwrite the factor stack", out_path)
    probe = out_path.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise LsmError("output folder is not a writable directory", probe)


def _tags(model: Any, plan: _Plan) -> dict[str, str]:
    return {"model": type(model).__name__, "features": ",".join(plan.features), "units": "probability 0..1"}


def predict_in_memory(model: Any, stack_path: str | Path, out_path: str | Path | None = None, *,
                      feature_names: Sequence[str] | None = None) -> np.ndarray:
    """Reference: probability (rows x cols float32, 0..1, NaN nodata) from the whole stack read at once."""
    stack = RasterFile(stack_path)
    plan = _plan(model, stack, feature_names)
    if out_path is not None:
        _check_output(Path(out_path), stack.path)
    proba = _predict_array(model, stack.read(None, plan.bands), plan)
    if out_path is not None:
        with gdal_cache_max(WRITER_CACHE_BYTES):
            write_raster(out_path, proba[None], stack.grid, [BAND], tags=_tags(model, plan))
    return proba


def predict_map(model: Any, stack_path: str | Path, out_path: str | Path, *,
                feature_names: Sequence[str] | None = None, block: int = 512,
                scheduler_address: str | None = None, n_workers: int | None = None,
                max_in_flight: int | None = None, tags: Mapping[str, str] | None = None) -> PredictMapResult:
    """Write the susceptibility COG (band ``susceptibility``, float32 0..1, NaN nodata) window by window.

    ``tags``: extra GeoTIFF metadata (e.g. which strategy and model drew the map), kept with the raster
    so that whoever reads the map knows where it came from.

    ``scheduler_address``: None = a LocalCluster for this call (``n_workers`` processes, 1 thread
    each), ``"serial"`` = in process, else the address of a running Dask scheduler. At most
    ``max_in_flight`` windows (default 2 per worker thread) are pending at any time. Returns a
    ``PredictMapResult``: pixel counts, probability summary, windows, scheduler and the observed peak in flight.
    """
    start = time.perf_counter()
    stack, out_path = RasterFile(stack_path), Path(out_path)
    plan = _plan(model, stack, feature_names)
    if block <= 0 or block % 16:
        raise ConfigError(f"block must be a positive multiple of 16 (GeoTIFF tile size), got {block}")
    if max_in_flight is not None and max_in_flight < 1:
        raise ConfigError(f"max_in_flight must be at least 1, got {max_in_flight}")
    _check_output(out_path, stack.path)
    grid = stack.grid
    windows = [b.write for b in grid.windows(block)]
    stats = {"valid_pixels": 0, "sum": 0.0, "min": np.inf, "max": -np.inf}

    def write(writer: RasterWriter, proba: np.ndarray, window: Window) -> None:
        writer.write(proba, window)
        ok = proba[np.isfinite(proba)]
        if ok.size:
            stats["valid_pixels"] += int(ok.size)
            stats["sum"] += float(ok.sum(dtype=np.float64))
            stats["min"], stats["max"] = min(stats["min"], float(ok.min())), max(stats["max"], float(ok.max()))

    with gdal_cache_max(WRITER_CACHE_BYTES), \
            RasterWriter(out_path, grid, [BAND], block=block, tags={**_tags(model, plan), **(tags or {})}) as writer:
        if scheduler_address == SERIAL:
            for window in windows:
                write(writer, _predict_window(model, plan, window), window)
            peak = 1
        else:
            peak = _run_dask(model, plan, windows, lambda p, w: write(writer, p, w), scheduler_address,
                             n_workers, max_in_flight)
    n = stats["valid_pixels"]
    return PredictMapResult(path=str(out_path), band=BAND, features=tuple(plan.features), pixels=grid.n_pixels,
                            valid_pixels=int(n), mean_probability=stats["sum"] / n if n else None,
                            min_probability=stats["min"] if n else None, max_probability=stats["max"] if n else None,
                            windows=len(windows), block=block, scheduler=scheduler_address or "local",
                            peak_in_flight=peak, seconds=round(time.perf_counter() - start, 3))


def local_cluster(n_workers: int | None = None) -> LocalCluster:
    """The LocalCluster ``predict_map`` starts by default: ``n_workers`` (default: cores) processes x 1 thread."""
    from distributed import LocalCluster  # imported here: the serial path needs no Dask

    # Processes, not threads: predict_proba of an arbitrary sklearn-API model is not guaranteed
    # thread-safe and its pandas/validation overhead holds the GIL; processes also exercise the same
    # pickling as a remote scheduler, so a model that cannot travel fails here, not in production.
    # Loopback only, no dashboard; the scheduler's HTTP server (health, metrics) starts anyway and
    # would take port 8787 or warn when it is taken, so it gets a free loopback port.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return LocalCluster(n_workers=n_workers or cores, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=None,
                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


def _run_dask(model: Any, plan: _Plan, windows: list[Window], write: WriteFn, address: str | None,
              n_workers: int | None, max_in_flight: int | None) -> int:
    """Map the windows on a Dask cluster, writing results as they complete; returns the peak in flight."""
    from distributed import Client

    if address is not None:
        with Client(address, set_as_default=False) as client:
            return _map_bounded(client, model, plan, windows, write, max_in_flight)
    with local_cluster(n_workers) as cluster, Client(cluster, set_as_default=False) as client:
        return _map_bounded(client, model, plan, windows, write, max_in_flight)


def _map_bounded(client: Client, model: Any, plan: _Plan, windows: list[Window], write: WriteFn,
                 max_in_flight: int | None) -> int:
    """Submit windows keeping at most ``max_in_flight`` pending; the model travels to the workers once."""
    from distributed import as_completed

    limit = max_in_flight or max(2, 2 * sum(client.nthreads().values()))
    [model_f] = client.scatter([model], broadcast=True, hash=False)
    todo, pending = iter(windows), {}

    def submit(window: Window):
        fut = client.submit(_predict_window, model_f, plan, window, pure=False)
        pending[fut] = window
        return fut

    try:
        ac = as_completed([submit(window) for window in islice(todo, limit)], loop=client.loop)
        peak = len(pending)
        for fut in ac:
            write(fut.result(), pending.pop(fut))
            fut.release()  # free the result on the worker now, not when the loop ends
            nxt = next(todo, None)
            if nxt is not None:
                ac.add(submit(nxt))
            peak = max(peak, len(pending))
    finally:
        client.cancel(list(pending) + [model_f])  # on error a shared scheduler must not keep our work
    return peak
