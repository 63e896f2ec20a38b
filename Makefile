# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test ui install system-deps lint bench clean-data

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -c "from lsm_core import hydrology, mlp, proximity; hydrology.compile_kernels(); mlp.compile_kernels(); proximity.compile_kernels()"
	@touch $(STAMP)

install: $(STAMP)

# gdaldem is the reference the terrain tests compare against (Debian's gdal-bin);
# chromium + chromium-driver: the UI test opens the asset pages in a real headless browser.
DEBIAN_PACKAGES := gdal-bin chromium chromium-driver
system-deps:
	@{ command -v gdaldem && command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; }

demo: $(STAMP)
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/lsm demo

test: $(STAMP) system-deps
	$(BIN)/ruff check lsm_core lsm_assets lsm_assets_tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

ui: $(STAMP)
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/lsm register
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: $(STAMP)
	$(BIN)/ruff check lsm_core lsm_assets lsm_assets_tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/bench_pu.py
	$(BIN)/python benchmarks/bench_threshold.py
	$(BIN)/python benchmarks/bench_shap.py
	$(BIN)/python benchmarks/bench_predict.py
	$(BIN)/python benchmarks/bench_demo.py
	$(BIN)/python benchmarks/bench_jenks.py
	$(BIN)/python benchmarks/bench_d8.py
	$(BIN)/python benchmarks/bench_label.py
	$(BIN)/python benchmarks/bench_mlp.py

clean-data:
	rm -rf data/study_areas data/incoming data/warehouse data/archive data/quarantine
