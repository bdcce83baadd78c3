"""What an attacker's endless request headers cost the server: its resident memory, before, during and after.

Starts `python -m app` on a free loopback port, then opens `--connections`
connections (default 50) that each send a request line and one header of
`--header-mib` MiB (default 64) that never ends, as fast as the server takes it.
Prints the server's RSS (its whole process tree) before, at its peak while they
send, while they still hold their connections, and after they close; what each
connection was answered; and the growth against the goal: under 20 MiB.

    python bench/head_limits.py
    python bench/head_limits.py --root /tmp/old-checkout --seconds 20   # a server without the limits, for comparison

A server without a limit on request heads keeps every byte it is sent, so
`--seconds` (default 60) ends the sending, and `--stop-growth-mib` (default
4096) ends it sooner, before it takes the machine's memory. Exits 1, saying
why, when the growth misses the goal.
"""

import argparse
import select
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_checkpoints import choose_checkpoints  # noqa: E402
from server_process import ROOT as PROJECT_ROOT, free_port, resident_mib, start_server, stop_server, wait_until_healthy  # noqa: E402

GROWTH_GOAL_MIB = 20.0
CHUNK_BYTES = 2**20
SAMPLE_S = 0.1


@dataclass
class Attacker:
    """One connection sending an endless header, and what the server made of it."""

    sock: socket.socket
    sent_bytes: int = 0
    answer: str = "none"
    answered_after_s: float | None = None
    done: threading.Event = field(default_factory=threading.Event)


def attack(attacker: Attacker, header_bytes: int, stop: threading.Event, started: float) -> None:
    """Send the request line and `header_bytes` of one header that never ends; stop when refused or told to."""
    head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: "
    chunk = b"a" * CHUNK_BYTES
    try:
        attacker.sock.sendall(head)
        while attacker.sent_bytes < header_bytes and not stop.is_set():
            attacker.sock.sendall(chunk[: min(CHUNK_BYTES, header_bytes - attacker.sent_bytes)])
            attacker.sent_bytes += min(CHUNK_BYTES, header_bytes - attacker.sent_bytes)
    except OSError:
        pass  # refused: the server closed the connection
    finally:
        attacker.done.set()


def listen(attacker: Attacker, stop: threading.Event, started: float) -> None:
    """Record the status line of whatever the server answers, if it does."""
    # select, not a socket timeout: that would apply to the sender's sendall on the same socket too.
    while not stop.is_set():
        try:
            if not select.select([attacker.sock], [], [], 0.5)[0]:
                continue
            data = attacker.sock.recv(256)
        except OSError:
            attacker.answer = "connection reset"
            return
        attacker.answer = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "closed without an answer"
        attacker.answered_after_s = time.monotonic() - started
        return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=50, help="attacking connections (default 50)")
    parser.add_argument("--header-mib", type=float, default=64.0, help="MiB each connection tries to send of its one header (default 64)")
    parser.add_argument("--seconds", type=float, default=60.0, help="longest time the connections send (default 60)")
    parser.add_argument("--stop-growth-mib", type=float, default=4096.0, help="stop sending once the server has grown this much (default 4096)")
    parser.add_argument("--processes", type=int, default=None, help="RNN_PROCESSES (default: the server's own, one per core)")
    parser.add_argument("--checkpoints", type=Path, help="checkpoint folder (default: the bundled ones, else random ones of that size)")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="checkout whose `python -m app` runs (default: this one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="head-limits-") as scratch:
        checkpoints = choose_checkpoints(args.checkpoints, Path(scratch))
        port = free_port()
        environment = {} if args.processes is None else {"RNN_PROCESSES": str(args.processes)}
        log = Path(scratch) / "server.log"
        server = start_server(checkpoints, port, log, root=args.root.resolve(), environment=environment)
        try:
            wait_until_healthy(server, f"http://127.0.0.1:{port}", log)
            time.sleep(1.0)  # let start-up's allocations settle
            before = resident_mib(server.pid)
            print(f"python -m app from {args.root.resolve()} on port {port} (pid {server.pid}), serving {checkpoints}")
            print(f"{args.connections} connections, each sending one header of {args.header_mib:g} MiB that never ends")
            stop = threading.Event()
            started = time.monotonic()
            attackers = [Attacker(socket.create_connection(("127.0.0.1", port))) for _ in range(args.connections)]
            threads = []
            for attacker in attackers:
                threads.append(threading.Thread(target=attack, args=(attacker, int(args.header_mib * 2**20), stop, started), daemon=True))
                threads.append(threading.Thread(target=listen, args=(attacker, stop, started), daemon=True))
            for thread in threads:
                thread.start()
            peak, reason = before, f"every connection sent its {args.header_mib:g} MiB or was refused"
            while not all(attacker.done.is_set() for attacker in attackers):
                peak = max(peak, resident_mib(server.pid))
                if time.monotonic() - started > args.seconds:
                    reason = f"stopped after {args.seconds:g} s"
                    break
                if peak - before > args.stop_growth_mib:
                    reason = f"stopped once the server had grown by {args.stop_growth_mib:g} MiB"
                    break
                time.sleep(SAMPLE_S)
            stop.set()
            sending_s = time.monotonic() - started
            time.sleep(1.0)
            held = resident_mib(server.pid)
            peak = max(peak, held)
            for attacker in attackers:
                try:
                    attacker.sock.shutdown(socket.SHUT_RDWR)  # wakes a sender blocked in sendall
                except OSError:
                    pass  # the server closed it already
                attacker.sock.close()
            time.sleep(2.0)
            after = resident_mib(server.pid)
            alive = server.poll() is None
        finally:
            stop_server(server)

    sent_mib = sum(attacker.sent_bytes for attacker in attackers) / 2**20
    answers: dict[str, int] = {}
    for attacker in attackers:
        answers[attacker.answer] = answers.get(attacker.answer, 0) + 1
    answer_times = [attacker.answered_after_s for attacker in attackers if attacker.answered_after_s is not None]
    print(f"sending: {sending_s:.1f} s ({reason}); {sent_mib:,.1f} MiB taken by the server's socket in all")
    print("answers: " + ", ".join(f"{answer!r} x{count}" for answer, count in sorted(answers.items())))
    if answer_times:
        print(f"answered after {min(answer_times):.2f} to {max(answer_times):.2f} s")
    print(f"server RSS before:                        {before:8.1f} MiB")
    print(f"server RSS peak while they sent:          {peak:8.1f} MiB ({peak - before:+.1f} MiB)")
    print(f"server RSS with the connections held:     {held:8.1f} MiB ({held - before:+.1f} MiB)")
    print(f"server RSS after the clients closed:      {after:8.1f} MiB ({after - before:+.1f} MiB)")
    growth = peak - before
    met = growth < GROWTH_GOAL_MIB and alive
    print(f"[{'met' if met else 'MISSED'}] growth under {GROWTH_GOAL_MIB:g} MiB: {growth:+.1f} MiB" + ("" if alive else " (the server died)"))
    if not met:
        print(f"exit 1: the server grew by {growth:.1f} MiB, not under {GROWTH_GOAL_MIB:g} MiB" + ("" if alive else ", and died"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
