import numpy as np
import pandas as pd
from PIL import Image

from lsm_core.grid import AreaGrid
from lsm_core.io import write_raster
from lsm_core.plots import plot_evaluation_history, plot_map_preview


def test_evaluation_history_plot(tmp_path):
    history = pd.DataFrame({"evaluated_at": pd.to_datetime(["2026-01-01"] * 2 + ["2026-02-01"] * 2),
                            "threshold_name": ["adaptive_js", "fixed_50"] * 2,
                            "TA": [0.9, 0.8, 0.9, 0.8], "POR": [0.7, 0.5, 0.6, 0.5], "LOR": [0.1, 0.2, 0.3, 0.2]})
    out = plot_evaluation_history(history, tmp_path / "h.png")
    with Image.open(out) as im:
        assert im.size[0] > 500


def test_map_preview_is_a_thumbnail_of_a_large_map(tmp_path):
    grid = AreaGrid.from_bounds("EPSG:32633", (0, 0, 30_000, 20_000), 10.0)
    y, x = np.mgrid[0:2000, 0:3000]
    prob = ((x + y) / 5000).astype(np.float32)[None]
    write_raster(tmp_path / "p.tif", prob, grid, ["probability"])
    write_raster(tmp_path / "m.tif", (prob > 0.6).astype(np.float32), grid, ["prone"])
    out = plot_map_preview(tmp_path / "p.tif", tmp_path / "m.tif", tmp_path / "preview.png", max_pixels=300)
    with Image.open(out) as im:
        w, h = im.size
    assert 300 < w < 1000 and h < w


def test_save_figure_takes_the_format_from_the_suffix_and_falls_back_to_png(tmp_path):
    from lsm_core.plots import new_figure, save_figure

    fig = new_figure(3, 2)
    fig.add_subplot().plot([0, 1], [1, 0])
    assert save_figure(fig, tmp_path / "a" / "f.svg").read_text().lstrip().startswith("<?xml")
    odd = save_figure(fig, tmp_path / "2026-01.preview", dpi=50)  # a suffix matplotlib does not know: PNG
    assert odd.read_bytes()[1:4] == b"PNG" and sorted(p.name for p in tmp_path.iterdir()) == ["2026-01.preview", "a"]
