"""`dagster dev` (webserver + daemon) for tests: started in its own session, stopped by its PID and group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(env: dict, log: Path, timeout_s: float = 180) -> tuple[subprocess.Popen, int]:
    """Start `dagster dev` on a free port of 127.0.0.1 in its own session; return it and the port once it answers."""
    port = free_port()
    # `dagster dev` ignores SIGTERM in the background unless its default signal handling is restored
    cmd = ["env", "--default-signal=INT,TERM", str(Path(sys.executable).with_name("dagster")), "dev",
           "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with open(log, "a") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                return proc, port
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"dagster dev did not come up: {log.read_text()[-3000:]}")
        time.sleep(1)


def stop(proc: subprocess.Popen) -> None:
    """Stop `dagster dev` by its PID, then kill whatever it left in its session (webserver, daemon, code server, runs)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def dagster_dev(home: Path, data_root: Path, log: Path, timeout_s: float = 180) -> Iterator[int]:
    """Serve the project's workspace on 127.0.0.1 over ``home`` and ``data_root``; yields the port.

    Everything it started is killed on exit, even on failure.
    """
    env = {**os.environ, "DAGSTER_HOME": str(home), "LSM_DATA_ROOT": str(data_root)}
    proc, port = start(env, log, timeout_s)
    try:
        yield port
    finally:
        stop(proc)
