"""The DuckDB catalog: result tables that grow new columns, and writers from several processes."""

import subprocess
import sys
import textwrap

import duckdb
import pandas as pd
import pytest

from lsm_core import catalog


def test_result_table_gains_new_columns_and_keeps_old_rows(tmp_path):
    db = tmp_path / "lsm.duckdb"
    with catalog.connect(db) as con:
        catalog.replace_partition_rows(con, "shap_importance", pd.DataFrame({"factor": ["slope"], "v": [1.0]}),
                                       "karst", "201901-202012")
    with catalog.connect(db) as con:  # a newer version writes one more column
        catalog.replace_partition_rows(con, "shap_importance",
                                       pd.DataFrame({"factor": ["twi"], "v": [2.0], "explainer": ["tree"]}),
                                       "loess", "201602-201706")
        rows = con.execute("SELECT area, factor, explainer FROM shap_importance ORDER BY area").fetchall()
    assert rows == [("karst", "slope", None), ("loess", "twi", "tree")]


def test_a_writer_waits_while_another_process_holds_the_file(tmp_path):
    db = tmp_path / "lsm.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time, duckdb
        con = duckdb.connect({str(db)!r})
        print("locked", flush=True)
        time.sleep(1.5)
        con.close()
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with catalog.connect(db, timeout_s=30) as con:  # would raise "Could not set lock" without waiting
            catalog.append_rows(con, "history", pd.DataFrame({"a": [1]}))
            assert con.execute("SELECT count(*) FROM history").fetchone()[0] == 1
    finally:
        holder.wait(timeout=30)
        holder.stdout.close()


def test_a_failed_replace_keeps_the_partition_rows(tmp_path):
    db = tmp_path / "lsm.duckdb"
    with catalog.connect(db) as con:
        catalog.replace_partition_rows(con, "model_comparison", pd.DataFrame({"auc": [0.8, 0.9]}), "karst", "p1")
        # a value that cannot be cast to the table's column type fails the insert after the delete
        with pytest.raises(duckdb.ConversionException):
            catalog.replace_partition_rows(con, "model_comparison", pd.DataFrame({"auc": ["not a number"]}),
                                           "karst", "p1")
        assert con.execute("SELECT auc FROM model_comparison ORDER BY auc").fetchall() == [(0.8,), (0.9,)]


WRITER = """
import sys, pandas as pd
from lsm_core import catalog
db, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # all writers start together
for i in range(n):
    with catalog.connect(db, timeout_s=60) as con:
        catalog.replace_partition_rows(con, "results", pd.DataFrame({"i": [i] * 3, "writer": name}), name, f"p{i}")
        catalog.append_rows(con, "history", pd.DataFrame({"i": [i], "writer": [name]}))
"""


def _run_together(script: str, argvs: list[list[str]]) -> None:
    """Start one process per argv on ``script``, let them all go at once, and assert every one succeeded."""
    procs = [subprocess.Popen([sys.executable, "-c", script, *argv], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in argvs]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * len(procs), errors
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.mark.integration
def test_writers_in_several_processes_at_once_all_succeed_and_keep_every_row(tmp_path):
    db, n, names = tmp_path / "lsm.duckdb", 10, ["a", "b", "c"]
    _run_together(WRITER, [[str(db), name, str(n)] for name in names])
    with catalog.connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM results").fetchone()[0] == 3 * n * len(names)
        assert con.execute("SELECT count(DISTINCT (writer, i)) FROM history").fetchone()[0] == n * len(names)


OPENER = """
import sys
from lsm_core import catalog
print("ready", flush=True)
sys.stdin.readline()
with catalog.connect(sys.argv[1], timeout_s=60, spatial=False) as con:
    con.execute("SELECT count(*) FROM landslide_events").fetchone()
"""


@pytest.mark.integration
def test_processes_creating_the_catalog_at_once_never_see_a_half_written_file(tmp_path):
    # CI once failed with "exists, but it is not a valid DuckDB database file": a writer opened
    # the path while another process was still writing the new file's header.
    for round_ in range(2):
        db = tmp_path / f"round{round_}" / "lsm.duckdb"
        _run_together(OPENER, [[str(db)]] * 6)
        assert [f.name for f in db.parent.iterdir()] == ["lsm.duckdb"]  # no scratch file left behind


def test_a_catalog_created_by_another_process_meanwhile_is_kept(tmp_path, monkeypatch):
    db = tmp_path / "lsm.duckdb"
    with catalog.connect(db, spatial=False) as con:
        catalog.append_rows(con, "history", pd.DataFrame({"i": [1, 2]}))
    # as if this process checked before the other one linked its file into place
    monkeypatch.setattr(catalog.Path, "exists", lambda self: False)
    with catalog.connect(db, spatial=False) as con:
        assert con.execute("SELECT count(*) FROM history").fetchone()[0] == 2
    monkeypatch.undo()
    assert [f.name for f in tmp_path.iterdir()] == ["lsm.duckdb"]
