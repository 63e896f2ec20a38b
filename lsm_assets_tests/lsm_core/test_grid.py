import numpy as np
import pytest

from lsm_core.errors import GridMismatchError
from lsm_core.grid import AreaGrid, iter_blocks


@pytest.mark.parametrize("shape,block,halo", [((100, 70), 32, 0), ((100, 70), 17, 5), ((5, 3), 512, 2)])
def test_blocks_cover_every_pixel_once_and_halo_crops_back(shape, block, halo):
    counts = np.zeros(shape, int)
    data = np.arange(np.prod(shape)).reshape(shape)
    for b in iter_blocks(*shape, block=block, halo=halo):
        r, c = b.read.toslices()
        chunk = data[r, c]
        assert chunk.shape[0] <= block + 2 * halo and chunk.shape[1] <= block + 2 * halo
        wr, wc = b.write.toslices()
        np.testing.assert_array_equal(chunk[b.inner], data[wr, wc])
        counts[wr, wc] += 1
    assert (counts == 1).all()


def test_grid_geometry_and_json_round_trip():
    g = AreaGrid.from_bounds("EPSG:32649", (400000, 2850000, 401000, 2850500), 10)
    assert g.shape == (50, 100) and g.bounds == (400000, 2850000, 401000, 2850500)
    x, y = g.pixel_centers()
    assert x[0, 0] == 400005 and y[0, 0] == 2850495
    rows, cols = g.rowcol(np.array([400005.0, 400995.0]), np.array([2850495.0, 2850005.0]))
    assert rows.tolist() == [0, 49] and cols.tolist() == [0, 99]
    assert AreaGrid.from_json(g.to_json()) == g


def test_check_same_names_the_file():
    g = AreaGrid.from_bounds("EPSG:32649", (0, 0, 100, 100), 10)
    other = AreaGrid.from_bounds("EPSG:32647", (0, 0, 100, 100), 10)
    with pytest.raises(GridMismatchError, match="layer.tif.*CRS"):
        g.check_same(other, "layer.tif")
    with pytest.raises(GridMismatchError, match="differs"):
        g.check_same(AreaGrid.from_bounds("EPSG:32649", (0, 0, 200, 100), 10))
