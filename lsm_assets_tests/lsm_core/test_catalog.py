"""The DuckDB catalog: result tables that grow new columns, and writers from several processes."""

import subprocess
import sys
import textwrap

import pandas as pd

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
