"""Contingency of every strategy's map: the sampled matrix and the one-panel-per-strategy plot."""

import numpy as np
import pytest

from lsm_core.contingency import (
    contingency_long,
    deformation_susceptibility_contingency,
    plot_contingency_panels,
    sampled_contingency,
)
from lsm_core.errors import ConfigError
from lsm_core.grid import AreaGrid
from lsm_core.io import write_raster

GRID = AreaGrid.from_bounds("EPSG:32647", (500000, 4000000, 502000, 4002000), 10)  # 200 x 200


def _world(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Velocity (mm/yr) and probability where deforming pixels lean towards high probability."""
    rng = np.random.default_rng(seed)
    prob = rng.beta(1, 3, GRID.shape)
    moving = rng.random(GRID.shape) < 0.05 + 0.4 * prob
    fast = rng.choice([-1, 1], GRID.shape) * rng.uniform(5, 40, GRID.shape)
    vel = np.where(moving, fast, rng.normal(0, 1.5, GRID.shape))
    prob[:5, :5] = np.nan
    vel[10, :] = np.nan
    return vel, prob


def test_all_pixels_give_the_full_raster_matrix(tmp_path):
    vel, prob = _world()
    vpath = write_raster(tmp_path / "v.tif", vel[None].astype("float32"), GRID, ["velocity_mm_yr"])
    ppath = write_raster(tmp_path / "p.tif", prob[None].astype("float32"), GRID, ["probability"])
    breaks = [0.1, 0.2, 0.35, 0.5]
    full = deformation_susceptibility_contingency(vpath, ppath, susceptibility_breaks=breaks)
    every = sampled_contingency(vel.astype("float32"), prob.astype("float32"), susceptibility_breaks=breaks)
    assert every.counts.equals(full.counts) and every.consistency_score == full.consistency_score
    assert every.n_sampled == full.n_valid and every.prone_counts is None
    assert len(contingency_long(every)) == 4 * 5


def test_a_sample_estimates_the_consistency_within_its_standard_error():
    vel, prob = _world(1)
    breaks = [0.1, 0.2, 0.35, 0.5]
    full = sampled_contingency(vel, prob, susceptibility_breaks=breaks)
    rng = np.random.default_rng(2)
    misses = 0
    for _ in range(20):  # 20 seeded samples of 5000 pixels: about 1 in 20 may fall outside 2 SE
        idx = rng.choice(vel.size, 5000, replace=False)
        s = sampled_contingency(vel.ravel()[idx], prob.ravel()[idx], susceptibility_breaks=breaks)
        assert 0 < s.consistency_se < 0.05
        misses += abs(s.consistency_score - full.consistency_score) > 2 * s.consistency_se
    assert misses <= 3


def test_default_breaks_are_natural_breaks_of_the_sampled_probabilities():
    vel, prob = _world(3)
    res = sampled_contingency(vel, prob, sample=2000, seed=4)
    assert len(res.susceptibility_breaks) == 4 and np.all(np.diff(res.susceptibility_breaks) > 0)
    with pytest.raises(ConfigError, match="velocities"):
        sampled_contingency(vel.ravel()[:10], prob.ravel()[:11])


def test_one_panel_per_strategy(tmp_path):
    vel, prob = _world()
    results = {f"{s} (sample)": sampled_contingency(vel, prob ** (1 + i), sample=2000)
               for i, s in enumerate(["random", "buffer", "insar_pu"])}
    out = plot_contingency_panels(results, tmp_path / "panels.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and list(tmp_path.iterdir()) == [out]
    with pytest.raises(ConfigError):
        plot_contingency_panels({}, tmp_path / "none.png")
