"""The `lsm` command: generate a world, register partitions, refuse bad drops with a reason."""

import shutil

import yaml
from click.testing import CliRunner

from lsm_assets.cli import main


def test_generate_register_and_quarantine(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    runner = CliRunner()
    out = runner.invoke(main, ["--data-root", str(data), "generate-demo", "--scale", "0.05", "--seed", "3"])
    assert out.exit_code == 0, out.output
    assert (data / "study_areas" / "karst" / "area.yaml").exists()
    again = runner.invoke(main, ["--data-root", str(data), "generate-demo"])
    assert "exists; use --force" in again.output
    # a broken copy of a delivery: unknown unit -> quarantined with its reason, the rest accepted
    src = next((data / "incoming" / "insar" / "loess").iterdir())
    bad = src.with_name("broken")
    shutil.copytree(src, bad)
    spec = yaml.safe_load((bad / "delivery.yaml").read_text())
    (bad / "delivery.yaml").write_text(yaml.safe_dump({**spec, "unit": "inches/yr"}))
    out = runner.invoke(main, ["--data-root", str(data), "register"])
    assert out.exit_code == 1
    assert "areas: karst, loess" in out.output and "karst:201901-202012" in out.output
    assert "unknown unit 'inches/yr'" in (data / "quarantine" / "insar" / "loess" / "broken.reason.txt").read_text()
    assert len(list((data / "archive" / "insar").glob("*/*/delivery.yaml"))) == 4
