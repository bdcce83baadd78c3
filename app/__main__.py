"""`python -m app`: serve the article and API with uvicorn, configured by RNN_* environment variables.

With RNN_PROCESSES above 1 (the default on a machine with several cores: one
process per core), the listening socket is opened once and that many server
processes are forked to share it. Each loads the models and keeps its own
caches; all give the same answers, which are a pure function of the model
files and the request. The parent only waits: it forwards SIGINT/SIGTERM to
the processes and starts a new one if one dies after starting; one that cannot
start (a damaged checkpoint) stops them all, with uvicorn's start-up failure
status. (uvicorn's own `--workers`
supervisor pings every process twice a second, which cost an idle server more
CPU than a page view does.)

Each process speaks HTTP through app/protocol.py: request heads bounded in size
and time, and a cap on its open connections (RNN_MAX_HEAD_BYTES,
RNN_HEAD_TIMEOUT, RNN_MAX_CONNECTIONS).
"""

import asyncio
import logging
import os
import resource
import signal
import socket
import sys
import time

import uvicorn

from app.protocol import ConnectionLimits, bounded_protocol
from app.registry import check_headers
from app.settings import Settings, SettingsError, load_settings
from models.checkpoint import CheckpointError

logger = logging.getLogger("app")
# What `uvicorn` exits with when the app cannot start (its lifespan failed).
STARTUP_FAILURE = 3
# A process that ends sooner than this after its start is not restarted: the next would fail alike.
MIN_LIFETIME_S = 30.0
TICK_S = 1.0


class Server(uvicorn.Server):
    """uvicorn's server with a tick once a second instead of ten times.

    uvicorn wakes every 0.1 s to look for a stop request and refreshes the Date header
    every tenth wake; those wakes were four fifths of an idle process's CPU (2.5 ms a
    second). The header still changes each second; a stop request waits up to TICK_S.
    """

    async def main_loop(self) -> None:
        counter = 0  # on_tick refreshes the Date header when the counter is a multiple of 10
        while not await self.on_tick(counter):
            await asyncio.sleep(TICK_S)
            counter = (counter + 10) % 864000


# Files a server process has open besides its connections (the listening socket, the event loop, logs, pipes).
OTHER_OPEN_FILES = 64


def allow_open_files(connections: int) -> None:
    """Raise the soft limit on open files (often 1024) to what `connections` need, as far as the hard limit allows.

    Past the limit accept() fails and new connections wait unanswered, where RNN_MAX_CONNECTIONS would answer them 503.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections + OTHER_OPEN_FILES
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        if raised < needed:
            logger.warning("open files are limited to %d: fewer than RNN_MAX_CONNECTIONS=%d connections fit", raised, connections)


def serve_one(settings: Settings, sock: socket.socket | None = None) -> int:
    """Serve until told to stop; the exit status: 0, or STARTUP_FAILURE when the app never started."""
    config = uvicorn.Config(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Bounded request heads and a connection cap (app/protocol.py), in place of uvicorn's unbounded protocol.
        http=bounded_protocol(ConnectionLimits.of(settings)),
    )
    server = Server(config)
    server.run(sockets=None if sock is None else [sock])
    return 0 if server.started else STARTUP_FAILURE


def fork_server(settings: Settings, sock: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        # The child: default signal handling (uvicorn installs its own), then serve until told to stop.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code = 1
        try:
            code = serve_one(settings, sock)
        except SystemExit as exit:  # uvicorn exits with STARTUP_FAILURE when the app cannot start
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException:
            logger.exception("server process %d failed", os.getpid())
        finally:
            os._exit(code)
    return pid


def serve_processes(settings: Settings) -> int:
    """`settings.processes` forked servers on one socket, until all have stopped; the exit status."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.create_server((settings.host, settings.port), family=family, backlog=2048)
    children: dict[int, float] = {}
    stopping = False
    status = 0

    def stop(signum: int, frame: object | None = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for _ in range(settings.processes):
        children[fork_server(settings, sock)] = time.monotonic()
    print(f"serving on http://{settings.host}:{settings.port} with {settings.processes} processes", file=sys.stderr, flush=True)
    while children:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, time.monotonic())
        code = os.waitstatus_to_exitcode(wait_status)
        if stopping:
            continue
        if code == STARTUP_FAILURE or time.monotonic() - started < MIN_LIFETIME_S:
            # Every process loads the same files: if one cannot start, none can.
            print(f"server process {pid} ended at start-up (exit code {code}); stopping", file=sys.stderr, flush=True)
            status = code or 1
            stop(signal.SIGTERM)
        else:
            print(f"server process {pid} ended (exit code {code}); starting another", file=sys.stderr, flush=True)
            children[fork_server(settings, sock)] = time.monotonic()
    sock.close()
    return status


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as error:
        sys.exit(f"error: {error}")
    try:
        # A failing start-up inside uvicorn prints a traceback; what the headers show is said in one line here.
        check_headers(settings.checkpoint_dir)
    except CheckpointError as error:
        sys.exit(f"error: {error}")
    allow_open_files(settings.max_connections)
    sys.exit(serve_one(settings) if settings.processes == 1 else serve_processes(settings))


if __name__ == "__main__":
    main()
