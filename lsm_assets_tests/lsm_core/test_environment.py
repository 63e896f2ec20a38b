"""Tests of lsm_core.environment beyond the area-scope ones (test_area_scope.py)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from shapely.geometry import MultiPolygon, Polygon

from lsm_core.environment import rasterize_codes
from lsm_core.grid import AreaGrid

CRS = "EPSG:32633"


def test_rasterize_codes_with_the_mappings_given_once_equal_the_per_window_conversion():
    """Issue 13: environment_factors converts the polygons to GeoJSON mappings once; same codes in every window."""
    grid = AreaGrid.from_bounds(CRS, (500000.0, 4000000.0, 500370.0, 4000290.0), 10.0)
    ring = [(500013.0, 4000007.0), (500301.5, 4000021.0), (500355.0, 4000250.0), (500040.0, 4000281.0)]
    hole = [(500100.0, 4000100.0), (500200.0, 4000100.0), (500200.0, 4000200.0)]
    polygons = gpd.GeoDataFrame({"code": [3, 7]}, crs=CRS, geometry=[
        Polygon(ring, [hole]),
        MultiPolygon([Polygon([(500105.0, 4000105.0), (500195.0, 4000105.0), (500195.0, 4000195.0)]),
                      Polygon([(500300.0, 4000000.0), (500370.0, 4000000.0), (500370.0, 4000060.0)])])])
    mappings = [g.__geo_interface__ for g in polygons.geometry]
    seen = set()
    for blk in grid.windows(16):
        plain = rasterize_codes(polygons, "code", grid, blk.write)
        np.testing.assert_array_equal(rasterize_codes(polygons, "code", grid, blk.write, mappings=mappings), plain)
        seen |= set(np.unique(plain[np.isfinite(plain)]).tolist())
    assert seen == {3.0, 7.0}
