"""The asset pages a user opens first, rendered by `dagster dev` in Debian's headless Chromium.

A small karst area is materialized for one period into a temporary DAGSTER_HOME; `dagster dev`
serves it on 127.0.0.1; Chromium (through chromedriver, both installed by `make system-deps`) opens
each asset page, opens the plot's Markdown metadata and checks that a PNG is embedded and decoded.
Screenshots are kept in ``.test-artifacts/ui/`` (or ``$LSM_TEST_ARTIFACTS``).
"""

import contextlib
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from lsm_assets.definitions import defs
from lsm_assets.materialize import run_partition
from lsm_assets.partitions import area_period_key
from lsm_assets.registry import register
from lsm_assets_tests.dagster_dev import dagster_dev
from lsm_core.synthetic import generate_demo

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LSM_TEST_ARTIFACTS", ROOT / ".test-artifacts")) / "ui"
FAST = {"ops": {
    "trained_models": {"config": {"models": ["logistic_regression", "lightgbm"], "max_samples_per_class": 400}},
    "shap_importance": {"config": {"models": ["logistic_regression", "lightgbm"], "n_explain": 50,
                                   "n_bootstrap": 2}},
    "susceptibility_map": {"config": {"scheduler_address": "serial"}}}}
# (asset, metadata entry holding its plot)
PAGES = [("model_comparison", "roc_curves"), ("shap_importance", "shap_summary"), ("js_threshold", "js_curve"),
         ("prone_areas", "map_preview"), ("prone_area_evaluation", "history"),
         ("deformation_susceptibility_contingency", "contingency_matrix")]
ERRORS = ("Something went wrong", "Unexpected GraphQL error", "An unexpected error occurred")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`dagster dev` over a materialized karst period; yields its port; stopped by PID (and group) after."""
    tmp = tmp_path_factory.mktemp("ui")
    home, data = tmp / "home", tmp / "data"
    home.mkdir()
    generate_demo(data, seed=3, scale=0.08)
    shutil.rmtree(data / "study_areas" / "loess")  # one area is enough to look at
    shutil.rmtree(data / "incoming" / "insar" / "loess")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        reg = register(instance, data)
        area, period = reg.pairs[0]
        for key in (area, str(area_period_key(area, period))):
            outcome = run_partition(defs, instance, data, key, FAST if "|" in key else None)
            assert outcome.success, outcome.error
    with dagster_dev(home, data, tmp / "dagster_dev.log") as port:
        yield port


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "Debian's chromium and chromium-driver are missing: run `make system-deps`"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1200"):
        options.add_argument(arg)
    service = Service(driver)
    d = webdriver.Chrome(service=service, options=options)
    try:
        yield d
    finally:
        d.quit()
        if service.process is not None and service.process.poll() is None:  # chromedriver, by its PID
            service.process.kill()


def _dismiss_onboarding(d) -> None:
    from selenium.webdriver.common.by import By

    for button in d.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
        with contextlib.suppress(Exception):
            button.click()


def _click_when_free(d, xpath: str) -> bool:
    """Click the element at ``xpath`` unless something lies over it (the onboarding dialog may open, or still
    be fading out, after the page has rendered: CI once clicked into it); False to be tried again."""
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.common.by import By

    _dismiss_onboarding(d)
    try:
        d.find_element(By.XPATH, xpath).click()
    except ElementClickInterceptedException:
        return False
    return True


@pytest.mark.integration
@pytest.mark.parametrize(("asset", "entry"), PAGES)
def test_asset_page_shows_its_plot_inline(served, browser, asset, entry):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.get(f"http://127.0.0.1:{served}/assets/{asset}")
    try:
        row = f"//tr[td[normalize-space()='{entry}']]"
        WebDriverWait(browser, 90).until(lambda d: d.find_element(By.XPATH, row))
        WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: _click_when_free(d, f"{row}//*[contains(text(), 'Show Markdown')]"))
        images = WebDriverWait(browser, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "img[src^='data:image/png;base64,']"))
        WebDriverWait(browser, 30).until(
            lambda d: all(int(i.get_attribute("naturalWidth") or 0) > 100 for i in images))  # decoded, not broken
        body = browser.find_element(By.TAG_NAME, "body").text
        assert not [e for e in ERRORS if e in body], body[:2000]
    finally:
        browser.save_screenshot(str(ARTIFACTS / f"{asset}.png"))
