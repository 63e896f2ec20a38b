"""The real Dagster webserver shows the asset graph with the registered areas and periods."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import yaml

from lsm_assets.registry import register
from lsm_core.area import REQUIRED_LAYERS
from lsm_core.grid import AreaGrid
from lsm_core.io import write_raster

ROOT = Path(__file__).resolve().parents[2]
QUERY = """{ assetNodes { assetKey { path } partitionKeysByDimension { name partitionKeys } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_area(root: Path, area: str, periods: list[tuple[str, str]]) -> None:
    (root / "study_areas" / area).mkdir(parents=True)
    layers = {k: f"{k}.tif" for k in REQUIRED_LAYERS if k != "ndvi"} | {"ndvi": []}
    (root / "study_areas" / area / "area.yaml").write_text(yaml.safe_dump(
        {"name": area, "crs": "EPSG:32649", "resolution_m": 10, "bounds": [0, 0, 100, 100], "layers": layers}))
    grid = AreaGrid.from_bounds("EPSG:32649", (0, 0, 100, 100), 10)
    for start, end in periods:
        d = root / "incoming" / "insar" / area / f"d_{start}"
        d.mkdir(parents=True)
        (d / "delivery.yaml").write_text(yaml.safe_dump({"area": area, "period_start": start, "period_end": end,
                                                         "unit": "mm/yr"}))
        write_raster(d / "velocity.tif", np.zeros((1, *grid.shape), "float32"), grid, ["v"])


@pytest.mark.integration
def test_webserver_lists_assets_and_registered_partitions(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    _fake_area(data, "karst", [("2019-01", "2020-12"), ("2021-01", "2022-12")])
    _fake_area(data, "loess", [("2016-02", "2017-06")])
    env = {**os.environ, "DAGSTER_HOME": str(home), "LSM_DATA_ROOT": str(data)}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        reg = register(instance, data)
    assert reg.areas == ("karst", "loess") and reg.periods == ("201602-201706", "201901-202012", "202101-202212")
    port = _free_port()
    exe = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen([str(exe), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        nodes = _query_until_ready(port, QUERY, timeout_s=90)["data"]["assetNodes"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert {"study_area_grid", "landslide_inventory"} <= set(by_key)
    dims = {d["name"]: d["partitionKeys"] for d in by_key["study_area_grid"]["partitionKeysByDimension"]}
    assert dims == {"default": ["karst", "loess"]}


def _query_until_ready(port: int, query: str, timeout_s: float) -> dict:
    body = json.dumps({"query": query}).encode()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                out = json.loads(resp.read())
            if out.get("data", {}).get("assetNodes"):
                return out
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"webserver on port {port} did not answer within {timeout_s} s")
        time.sleep(1)
