"""The side-by-side materializer's worker pool (Linux: /proc and the parent-death signal)."""

import os
import subprocess
import sys
import textwrap
import time


def test_workers_die_with_a_killed_parent(tmp_path):
    """A SIGKILLed `lsm materialize` leaves no worker processes behind."""
    pids = tmp_path / "pids.txt"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context
        from lsm_assets.materialize import _worker_init

        if __name__ == "__main__":
            pool = ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=_worker_init)
            worker = pool.submit(os.getpid).result()
            open({str(pids)!r}, "w").write(str(worker))
            time.sleep(120)
    """)])
    try:
        deadline = time.monotonic() + 60
        while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        worker = int(pids.read_text())
        assert _alive(worker)
    finally:
        parent.kill()
        parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_pid_check_sees_this_process():
    assert _alive(os.getpid())


def test_started_workers_have_imported_the_definitions_before_their_first_run():
    """`lsm demo` starts the workers, which import the assets and then generate its data (issue 13)."""
    from lsm_assets.materialize import start_workers

    with start_workers(2) as pool:
        loaded = [pool.submit(eval, "'lsm_assets.definitions' in __import__('sys').modules") for _ in range(4)]
        assert all(f.result() for f in loaded)
        # the start-up objects are frozen out of the garbage collector's walks, young passes are rarer
        frozen, threshold = pool.submit(eval, "__import__('gc').get_freeze_count()"), pool.submit(
            eval, "__import__('gc').get_threshold()")
        assert frozen.result() > 100_000 and threshold.result()[0] == 10_000
