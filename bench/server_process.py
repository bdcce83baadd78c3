"""A `python -m app` server on a free loopback port for the benches, and its CPU and memory.

With RNN_PROCESSES above 1 the server is a supervisor and its workers, so CPU
time and resident memory are summed over the whole process tree.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """`pid` and every descendant, from /proc/PID/task/*/children."""
    pids, index = [pid], 0
    while index < len(pids):
        for task in Path(f"/proc/{pids[index]}/task").glob("*"):
            try:
                pids.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                pass
        index += 1
    return pids


def _ticks(stat_file: Path) -> int:
    """User plus system clock ticks from a /proc stat file."""
    # The command name (field 2) may contain spaces, so fields are counted after its closing parenthesis.
    fields = stat_file.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """CPU time of `pid`'s whole process tree.

    Live threads count from their scheduler statistics (/proc/PID/task/TID/schedstat, in
    nanoseconds); threads that have ended count from what their process's tick count
    (/proc/PID/stat, 10 ms steps) holds beyond its live threads'. Ticks alone would put
    10 ms of noise per process on every reading, as much as a whole page view costs.
    """
    total = 0.0
    for member in process_tree(pid):
        try:
            process_ticks = _ticks(Path(f"/proc/{member}/stat"))
            live_ticks, live_nanoseconds = 0, 0
            for task in Path(f"/proc/{member}/task").iterdir():
                live_ticks += _ticks(task / "stat")
                live_nanoseconds += int((task / "schedstat").read_text().split()[0])
        except OSError:
            continue
        total += max(0, process_ticks - live_ticks) / os.sysconf("SC_CLK_TCK") + live_nanoseconds / 1e9
    return total


def resident_mib(pid: int) -> float:
    """VmRSS of `pid`'s whole process tree, in MiB."""
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


def start_server(checkpoints: Path, port: int, log: Path, root: Path = ROOT, environment: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m app` run from `root` (its `app` package is the one imported), logging to `log`."""
    env = {
        **os.environ,
        "RNN_CHECKPOINT_DIR": str(checkpoints),
        "RNN_HOST": "127.0.0.1",
        "RNN_PORT": str(port),
        "RNN_LOG_LEVEL": "warning",
        **(environment or {}),
    }
    with log.open("wb") as output:
        return subprocess.Popen([sys.executable, "-m", "app"], cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT)


def start_on_free_port(checkpoints: Path, scratch: Path, processes: int | None, root: Path = ROOT) -> tuple[subprocess.Popen, str, Path]:
    """`python -m app` of `root` on a free loopback port, logging into `scratch`: (process, base URL, log file)."""
    port = free_port()
    log = scratch / "server.log"
    environment = {} if processes is None else {"RNN_PROCESSES": str(processes)}
    return start_server(checkpoints, port, log, root=root, environment=environment), f"http://127.0.0.1:{port}", log


def wait_until_healthy(server: subprocess.Popen, base_url: str, log: Path) -> list[str]:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            response = httpx.get(f"{base_url}/healthz", timeout=2)
            if response.status_code == 200:
                return response.json()["models"]
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer /healthz within {SERVER_START_TIMEOUT_S:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
