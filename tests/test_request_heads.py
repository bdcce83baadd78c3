"""Bounded request heads and the connection cap of `python -m app` (app/protocol.py), over raw sockets.

Each server here is `python -m app` itself (one process, the tiny checkpoints), since the limits live in
the HTTP protocol it runs, below the app. A server without them fails every test: it waits for the
rest of an endless head (so the reads below time out), keeps it in memory, and serves any number of
connections.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from processes import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
MAX_HEAD_BYTES = 4096
HEAD_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 4
# A server that never answers fails a read after this long, instead of hanging the test.
READ_TIMEOUT_S = 5.0


@contextmanager
def app_server(checkpoint_dir: Path, **environment: str) -> Iterator[tuple[int, subprocess.Popen]]:
    """`python -m app` with one process on a free loopback port: (port, process)."""
    port = free_port()
    env = {
        **os.environ,
        "RNN_CHECKPOINT_DIR": str(checkpoint_dir),
        "RNN_HOST": "127.0.0.1",
        "RNN_PORT": str(port),
        "RNN_PROCESSES": "1",
        "RNN_THREADS": "1",
        "RNN_LOG_LEVEL": "warning",
        **environment,
    }
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"python -m app exited {process.returncode}: {process.stdout.read().decode()[-2000:]}"  # type: ignore[union-attr]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "python -m app did not answer /healthz within 120 s"
            time.sleep(0.2)
        yield port, process
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def bounded_server(tiny_checkpoint_dir: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    with app_server(tiny_checkpoint_dir, RNN_MAX_HEAD_BYTES=str(MAX_HEAD_BYTES), RNN_HEAD_TIMEOUT=str(HEAD_TIMEOUT_S)) as server:
        yield server


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lowercase names, body) of one response; fails the test when none comes in time."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection without an answer (received {data[:200]!r})"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers.get("content-length", "0")):
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection in the middle of a body"
            body += chunk
    except TimeoutError:
        pytest.fail(f"no answer within {READ_TIMEOUT_S:.0f} s (received {data[:200]!r})", pytrace=False)
    return int(lines[0].split(" ", 2)[1]), headers, body


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """Whether the server ends the connection (EOF or reset) within `within_s`; input is read and dropped meanwhile."""
    deadline = time.monotonic() + within_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
    return False


def head_of_size(size: int, path: str = "/healthz") -> bytes:
    """A complete GET head of exactly `size` bytes, padded with one header."""
    start = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ".encode()
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def send_in_background(sock: socket.socket, data: bytes, chunk: int = 65536) -> threading.Thread:
    """Send `data` from another thread, as a client that keeps sending while the server answers; stops when refused."""

    def send() -> None:
        try:
            for offset in range(0, len(data), chunk):
                sock.sendall(data[offset : offset + chunk])
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender


def resident_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) * 1024


def test_a_head_of_exactly_the_limit_is_served(bounded_server: tuple[int, subprocess.Popen]) -> None:
    with connect(bounded_server[0]) as sock:
        sock.sendall(head_of_size(MAX_HEAD_BYTES))
        status, _, body = read_response(sock)
        assert status == 200 and json.loads(body)["status"] == "ok"
        # The connection is kept for the next request, whose head is counted afresh.
        sock.sendall(head_of_size(MAX_HEAD_BYTES))
        assert read_response(sock)[0] == 200


def test_one_byte_over_the_limit_gets_431_and_the_connection_closes(bounded_server: tuple[int, subprocess.Popen]) -> None:
    with connect(bounded_server[0]) as sock:
        sock.sendall(head_of_size(MAX_HEAD_BYTES + 1))
        status, headers, body = read_response(sock)
        assert status == 431
        assert headers["connection"] == "close" and headers["content-type"] == "application/json"
        assert "RNN_MAX_HEAD_BYTES" in json.loads(body)["detail"] and f"{MAX_HEAD_BYTES:,}" in json.loads(body)["detail"]
        assert closed_by_server(sock, within_s=3), "the connection stayed open after the 431"


def test_an_8_mb_header_line_is_refused_while_it_is_still_being_sent(bounded_server: tuple[int, subprocess.Popen]) -> None:
    with connect(bounded_server[0]) as sock:
        sender = send_in_background(sock, head_of_size(8 * 2**20))
        status, _, _ = read_response(sock)
        assert status == 431
        assert closed_by_server(sock, within_s=3), "the connection stayed open after the 431"
        sender.join(timeout=10)


def test_an_unfinished_head_is_answered_408_and_closed_after_the_head_timeout(bounded_server: tuple[int, subprocess.Popen]) -> None:
    with connect(bounded_server[0]) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # A slow client trickling headers: each keeps the connection busy, none finishes the head.
        for number in range(3):
            time.sleep(HEAD_TIMEOUT_S / 4)
            sock.sendall(f"X-Slow-{number}: 1\r\n".encode())
        status, _, body = read_response(sock)
        elapsed = time.monotonic() - started
        assert status == 408 and "RNN_HEAD_TIMEOUT" in json.loads(body)["detail"]
        assert HEAD_TIMEOUT_S * 0.9 <= elapsed < HEAD_TIMEOUT_S + 2, f"408 after {elapsed:.1f} s, with a head timeout of {HEAD_TIMEOUT_S} s"
        assert closed_by_server(sock, within_s=2)


def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(bounded_server: tuple[int, subprocess.Popen]) -> None:
    with connect(bounded_server[0]) as sock:
        started = time.monotonic()
        assert closed_by_server(sock, within_s=HEAD_TIMEOUT_S + 2), f"an idle connection was still open after {HEAD_TIMEOUT_S + 2:.0f} s"
        assert time.monotonic() - started >= HEAD_TIMEOUT_S * 0.9


def test_a_slow_head_that_ends_in_time_is_served(bounded_server: tuple[int, subprocess.Popen]) -> None:
    with connect(bounded_server[0]) as sock:
        head = head_of_size(600)
        for offset in range(0, len(head), 200):
            sock.sendall(head[offset : offset + 200])
            time.sleep(HEAD_TIMEOUT_S / 5)
        assert read_response(sock)[0] == 200


def test_a_reused_connection_gets_a_new_head_timeout_per_request(bounded_server: tuple[int, subprocess.Popen]) -> None:
    with connect(bounded_server[0]) as sock:
        # Three requests over more than the head timeout in all, each head within it.
        for _ in range(3):
            sock.sendall(head_of_size(300))
            assert read_response(sock)[0] == 200
            time.sleep(HEAD_TIMEOUT_S / 2)


def test_attackers_headers_do_not_grow_the_server(bounded_server: tuple[int, subprocess.Popen]) -> None:
    port, process = bounded_server
    before = resident_bytes(process.pid)
    sockets = [connect(port) for _ in range(10)]
    # Ten unfinished 16 MB headers: 160 MB kept by a server without a limit.
    senders = [send_in_background(sock, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (16 * 2**20)) for sock in sockets]
    peak = before
    deadline = time.monotonic() + 15
    while any(sender.is_alive() for sender in senders) and time.monotonic() < deadline:
        peak = max(peak, resident_bytes(process.pid))
        time.sleep(0.05)
    statuses = [read_response(sock)[0] for sock in sockets]
    for sock in sockets:
        sock.close()
    assert statuses == [431] * 10
    assert peak - before < 20 * 2**20, f"the server grew by {(peak - before) / 2**20:.1f} MiB while ten clients sent endless headers"


def test_connections_over_the_cap_get_503_at_once(tiny_checkpoint_dir: Path) -> None:
    with app_server(tiny_checkpoint_dir, RNN_MAX_CONNECTIONS=str(MAX_CONNECTIONS)) as (port, _):
        held = [connect(port) for _ in range(MAX_CONNECTIONS)]
        held[0].sendall(head_of_size(200))
        assert read_response(held[0])[0] == 200, "a connection within the cap was not served"
        started = time.monotonic()
        with connect(port) as extra:
            # Answered before it sends anything.
            status, headers, body = read_response(extra)
            assert time.monotonic() - started < 1.0
            assert status == 503 and headers["retry-after"] == "1" and headers["connection"] == "close"
            assert "RNN_MAX_CONNECTIONS" in json.loads(body)["detail"]
            extra.sendall(head_of_size(200))  # a client that sends its request anyway gets nothing more and is closed
            assert closed_by_server(extra, within_s=3)
        # A held connection that closes makes room for a new one.
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:
            with connect(port) as again:
                again.sendall(head_of_size(200))
                status = read_response(again)[0]
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200, "a connection was refused after one of the held ones closed"
        for sock in held:
            sock.close()
