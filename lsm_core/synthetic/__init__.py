"""An embedded synthetic world with ground truth: two study areas, their inputs, InSAR deliveries and truth.

``generate_demo(data_root)`` writes, under the project's ``data/`` folder:

* ``study_areas/<area>/``: ``area.yaml`` and every input layer of DESIGN 5 (DEM, lithology,
  faults, rivers, roads, buildings, mining sites, 1 km rainfall, 30 m NDVI scenes, the dated
  landslide inventory);
* ``incoming/insar/<area>/<delivery>/``: one InSAR delivery per monitoring period (``karst``: a
  cumulative-displacement time series, ``loess``: velocity maps), with coherence;
* ``study_areas/<area>/truth/``: what the pipeline must never read and tests compare with: the
  true hazard, true LOS velocity per period, the unstable-slope mask, the unstable slopes, every
  deformation bowl and the world's knobs (``WorldKnobs``; see the README written there).

``karst`` is modelled on Longsheng, Guangxi (peak-cluster karst, UTM 49N); ``loess`` on Tongren,
Qinghai (dissected loess plateau along the Longwu River fault zone, UTM 47N). The same seed gives
byte-identical files; ``scale`` multiplies the area (same 10 m resolution) for benchmarks.

Modules: ``terrain`` (random fields, channel networks, DEMs, lithology), ``hazard`` (true hazard,
unstable slopes, landslide events, NDVI), ``motion`` (deformation bowls and true LOS velocities under
the world's ``knobs``: precursory creep, LOS projection, decorrelation, subsidence), ``insar``
(coherence, time series, velocity maps), ``writer`` (the area specifications and the files), ``toy``
(a 40 x 40 pixel area for examples: ``toy_area``).
"""

from __future__ import annotations

from lsm_core.synthetic.knobs import WorldKnobs
from lsm_core.synthetic.toy import TOY_BANDS, ToyArea, toy_area
from lsm_core.synthetic.writer import AREAS, AreaSpec, area_grid, generate_area, generate_demo, ndvi_dates

__all__ = ["AREAS", "TOY_BANDS", "AreaSpec", "ToyArea", "area_grid", "generate_area", "generate_demo", "ndvi_dates",
           "toy_area", "WorldKnobs"]
