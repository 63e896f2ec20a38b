"""Shared fixtures."""

from pathlib import Path

import pytest

from lsm_core.synthetic import generate_demo

DEMO_SEED = 0
DEMO_SCALE = 0.15  # 462 x 462 cells of 10 m per area (~213k pixels): both areas in a few seconds


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data root (the ``data/`` folder) of a small synthetic world: areas ``karst`` and ``loess``, seed 0.

    Holds ``study_areas/<area>/`` (area.yaml, inputs, ``truth/``) and ``incoming/insar/<area>/``
    (two deliveries per area). Shared by the whole session: copy it (``shutil.copytree``) before
    moving, adding or changing files.
    """
    root = tmp_path_factory.mktemp("demo_data")
    generate_demo(root, seed=DEMO_SEED, scale=DEMO_SCALE)
    return root
