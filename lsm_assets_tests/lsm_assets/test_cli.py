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


def test_deliver_insar_and_ingest_events_run_the_sensors_intake(tmp_path, monkeypatch, demo_data):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    runner = CliRunner()
    src = sorted((data / "incoming" / "insar" / "karst").iterdir())[0]
    period = yaml.safe_load((src / "delivery.yaml").read_text())
    first = runner.invoke(main, ["--data-root", str(data), "deliver-insar", str(src), "--area", "karst"])
    assert first.exit_code == 0, first.output
    assert "as version 1 of karst:" in first.output and src.exists()  # copied, the user's folder stays
    second = runner.invoke(main, ["--data-root", str(data), "deliver-insar", str(src), "--area", "karst"])
    assert "as version 2 of karst:" in second.output and f"(replaces {src.name})" in second.output
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    (bad / "delivery.yaml").write_text(yaml.safe_dump({**period, "dates": period["dates"][:-1]}))
    out = runner.invoke(main, ["--data-root", str(data), "deliver-insar", str(bad), "--area", "karst"])
    assert out.exit_code == 1 and "bands but delivery.yaml lists" in out.output
    assert (data / "quarantine" / "insar" / "karst" / "bad.reason.txt").exists()

    csv = tmp_path / "events.csv"
    csv.write_text("event_id,date,x,y\nnew-1,2023-04-01,400000,2855000\n")
    out = runner.invoke(main, ["--data-root", str(data), "ingest-events", str(csv), "--area", "karst"])
    assert out.exit_code == 0, out.output
    assert "1 new, 0 corrected, 0 unchanged" in out.output
    csv.write_text("event_id,date,x,y\nnew-1,2023-04-09,400000,2855000\n")
    out = runner.invoke(main, ["--data-root", str(data), "ingest-events", str(csv), "--area", "karst"])
    assert "0 new, 1 corrected" in out.output and "corrected new-1: date (2023-04-01 -> 2023-04-09)" in out.output
    csv.write_text("event_id,date,x,y\nnew-2,2099-04-09,400000,2855000\n")
    out = runner.invoke(main, ["--data-root", str(data), "ingest-events", str(csv), "--area", "karst"])
    assert out.exit_code == 1 and "dated in the future" in out.output
