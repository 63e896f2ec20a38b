"""Run a function in a child process and measure its wall time and peak memory (shared by the library benchmarks).

Peak memory is the rise of the child's resident set above what it held when the call started
(Linux ``VmHWM`` reset through ``/proc/self/clear_refs``), so it counts NumPy, numba and C
allocations alike, which ``tracemalloc`` would not. Each call runs in a freshly spawned child
(spawned, not forked: numba's OpenMP layer, which pysheds uses, aborts on fork), so one
measurement never inherits another's heap; the child first makes a warm-up call on small input
(imports, numba compilation or cache loading) that is neither timed nor counted.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import time
from collections.abc import Callable
from typing import Any


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child(conn: Any, fn: Callable[..., Any], args: tuple, warm_args: tuple | None) -> None:
    if warm_args is not None:
        fn(*warm_args)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    base = _status_kb("VmRSS")
    t0 = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM") - base
    conn.send_bytes(pickle.dumps((seconds, peak / 1024, out), protocol=pickle.HIGHEST_PROTOCOL))
    conn.close()


def measure(fn: Callable[..., Any], *args: Any, warm_args: tuple | None = None,
            repeat: int = 1) -> tuple[float, float, Any]:
    """(best wall seconds, peak extra RSS in MB of that run's child, result) of ``fn(*args)`` over ``repeat`` children.

    ``fn`` must be importable by the child (a module-level function of a script run as ``__main__`` is).
    """
    ctx = mp.get_context("spawn")
    best: tuple[float, float, Any] | None = None
    for _ in range(repeat):
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(send, fn, args, warm_args))
        proc.start()
        send.close()
        seconds, peak_mb, out = pickle.loads(recv.recv_bytes())
        proc.join()
        if best is None or seconds < best[0]:
            best = (seconds, peak_mb, out)
    assert best is not None
    return best
