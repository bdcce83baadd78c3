"""Load test: simulated readers against a real server on loopback.

`--mode readers` (the default): readers arrive at `--rates` page views per
second, each for `--duration` seconds, and do what the article makes a browser
do (bench/readers.py says exactly what). For each rate it prints p50/p95/p99 per
request kind, errors, server CPU-seconds per page view and RSS, against the
targets: 0 errors, keystroke p99 < 250 ms, custom-text p99 < 3 s (every
matrices of a reader's own text), RSS growth < 10 %; then the highest rate that
met them all and the first that did not. Rates are run in the order given, on
one server, so list them rising:

    python bench/load.py --rates 4,8,12,16 --duration 60

It exits 1, saying why, unless the highest rate that met every target is at
least `--min-rate` (default 8 page views/s, the floor this project holds a
2-core machine to; `--min-rate 0` only reports).

`--url http://HOST:PORT` loads a server that is already running instead, such
as the caching proxy of deploy/compose.yaml, which CI loads that way
(tests/deploy/checks.py). Its CPU and memory are measured only for the processes
`--pids` names (the replicas' processes as this machine sees them), and the RSS
target applies only then; `--json FILE` writes each rate's figures for a script.

`--mode typists`: the older load, typists and hovers. It starts `python -m app`
on a free loopback port, then runs `--readers` readers
for `--duration` seconds (it stops by itself). Each reader types sentences one
character at a time, sending the keystroke request the article sends
(`positions: "last"`, all three models), and now and then hovers over a
character: one connectivity row per model, as the article asks for them.
Afterwards it times every bad request of tests/bad_inputs.py on the idle server.

Prints requests/s, p50/p95/p99 latency per endpoint, the error count, and the
server's resident memory at start (after a warm-up) and end, against the
targets: 0 errors, keystroke p99 < 250 ms, RSS growth < 10 %, each bad request
answered in < 100 ms (median of its repeats). Exits 1 when a target is missed.

    python bench/load.py --mode typists           # bundled checkpoints, or random ones of that size
    python bench/load.py --mode typists --checkpoints DIR --duration 20

The load generator shares the machine with the server, so the figures include
its own CPU use: they are pessimistic.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bad_inputs import BAD_INPUTS, BadInput  # noqa: E402
from bench_checkpoints import choose_checkpoints  # noqa: E402
from readers import KINDS, Stats as ReaderStats, arrive, discover  # noqa: E402
from server_process import cpu_seconds, resident_mib, start_on_free_port, wait_until_healthy  # noqa: E402

from models.units import PAPER_UNITS  # noqa: E402

KEYSTROKE_P99_TARGET_MS = 250.0
CUSTOM_TEXT_P99_TARGET_MS = 3000.0
# The floor this project holds a 2-core machine to, in page views per second (--min-rate's default).
MIN_SUSTAINED_RATE = 8.0
RSS_GROWTH_TARGET = 0.10
BAD_INPUT_TARGET_MS = 100.0
BAD_INPUT_REPEATS = 5
REQUEST_TIMEOUT_S = 30.0
# From this share of the cores taken by other processes (neither the server nor the load generator), a missed
# target is said to be possibly theirs: the latencies were measured on a shared machine.
BUSY_SHARE = 0.10

SENTENCES = (
    "the quick brown fox jumps over the lazy dog",
    "anarchism originated as a term of abuse first used against early working class radicals",
    "the city was founded in the eleventh century by the king",
    "in mathematics a group is a set with an operation",
    "she was the first woman to win the prize in physics",
    "the river flows north through the valley to the sea",
    "he played for the national team in two world cups",
    "the company was sold to a larger firm in nineteen ninety eight",
)


def busy_cpu_seconds() -> float:
    """CPU-seconds this machine's cores have spent busy since boot, every process together (/proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def busy_machine_note(others_cpu: float | None, elapsed: float) -> str:
    """A sentence for an exit message when other processes took BUSY_SHARE of the cores or more; else ''."""
    cores = os.cpu_count() or 1
    if others_cpu is None or others_cpu < BUSY_SHARE * cores * elapsed:
        return ""
    return (
        f". This machine was busy with other work: processes other than the server and the load generator used "
        f"{others_cpu / (cores * elapsed):.0%} of its {cores} cores during the load, so they, not the server, "
        "may be why targets were missed; run it again on an idle machine"
    )


@dataclass
class Stats:
    """Latencies (ms) of successful requests and failures, per endpoint label."""

    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def record(self, label: str, started: float, outcome: int | Exception) -> None:
        """`outcome` is the HTTP status, or the exception that broke the request."""
        if outcome == 200:
            self.latencies_ms.setdefault(label, []).append((time.perf_counter() - started) * 1000)
        else:
            reason = f"HTTP {outcome}" if isinstance(outcome, int) else type(outcome).__name__
            self.errors.setdefault(label, []).append(reason)


# What reading an answer from a closed or garbled connection raises (a status line that is not one: ValueError, IndexError).
BROKEN_CONNECTION = (OSError, asyncio.IncompleteReadError, ValueError, IndexError)


class Connection:
    """One keep-alive HTTP/1.1 connection that speaks just enough HTTP for JSON POSTs.

    A full client (httpx) spent about as much CPU per request as the server: on two
    cores the generator took one of them. This one costs a small fraction of that.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: dict) -> int:
        """The response's status; the body is read and dropped. Raises one of BROKEN_CONNECTION on a broken connection."""
        payload = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        reused = self.streams is not None
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        try:
            writer.write(head.encode() + payload)
            status_line = await reader.readline()
            if not status_line and reused:
                # The server closed the idle connection (uvicorn's keep-alive timeout): like any client, send again on a new one.
                self.close()
                return await self.post(path, body)
            status = int(status_line.split(b" ", 2)[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            return status
        except BROKEN_CONNECTION:
            self.close()
            raise

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def timed_post(connection: Connection, stats: Stats, label: str, path: str, body: dict) -> None:
    started = time.perf_counter()
    try:
        stats.record(label, started, await asyncio.wait_for(connection.post(path, body), REQUEST_TIMEOUT_S))
    except (*BROKEN_CONNECTION, TimeoutError) as error:
        connection.close()
        stats.record(label, started, error)


async def reader(host: str, port: int, stats: Stats, models: list[str], deadline: float, rng: random.Random, args: argparse.Namespace) -> None:
    """Type sentences one character at a time until the deadline, hovering now and then."""
    keys = Connection(host, port)
    hovers = {model: Connection(host, port) for model in models}
    try:
        while True:
            sentence = rng.choice(SENTENCES)
            for length in range(1, len(sentence) + 1):
                if time.monotonic() >= deadline:
                    return
                text = sentence[:length]
                await timed_post(keys, stats, "keystroke", "/api/autocomplete", {"text": text, "models": models, "top_k": 3, "positions": "last"})
                if rng.random() < args.hover_probability:
                    # The normalised text starts with a space, so its positions run 0..len(text).
                    body = {"text": text, "positions": [rng.randrange(len(text) + 1)], "method": "gradient"}
                    await asyncio.gather(
                        *(timed_post(hovers[model], stats, "hover row", "/api/connectivity", {**body, "model": model}) for model in models)
                    )
                # A steady typist: on average `keystroke_interval` seconds between keys.
                await asyncio.sleep(rng.uniform(0.5, 1.5) * args.keystroke_interval)
    finally:
        for connection in (keys, *hovers.values()):
            connection.close()


async def run_readers(port: int, models: list[str], args: argparse.Namespace) -> tuple[Stats, float]:
    stats = Stats()
    started = time.monotonic()
    deadline = started + args.duration
    await asyncio.gather(*(reader("127.0.0.1", port, stats, models, deadline, random.Random(args.seed + index), args) for index in range(args.readers)))
    return stats, time.monotonic() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def first_response_ms(port: int, bad: BadInput) -> tuple[int, float]:
    """(status, ms from sending the request head to the first byte of the answer) over a raw socket.

    The body is sent from another thread, so a server that refuses a 10 MB body before reading
    it is timed by its answer, not by how long the client takes to upload the rest.
    """
    framing = "Transfer-Encoding: chunked" if bad.streamed else f"Content-Length: {len(bad.body)}"
    head = f"{bad.http_method} {bad.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n"
    if bad.streamed:
        payload = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in bad.content()) + b"0\r\n\r\n"
    else:
        payload = bad.body

    def send_body(sock: socket.socket) -> None:
        try:
            sock.sendall(payload)
        except OSError:
            pass  # the server answered and closed the connection before taking the whole body

    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT_S) as sock:
        started = time.perf_counter()
        sock.sendall(head.encode())
        sender = threading.Thread(target=send_body, args=(sock,), daemon=True)
        sender.start()
        first = sock.recv(64)
        elapsed_ms = (time.perf_counter() - started) * 1000
    sender.join(timeout=REQUEST_TIMEOUT_S)
    return int(first.split(b" ", 2)[1]), elapsed_ms


def time_bad_inputs(port: int) -> list[tuple[BadInput, int, float, float]]:
    """(case, status, median ms, max ms) for each bad request, sent BAD_INPUT_REPEATS times to the idle server."""
    results = []
    for bad in BAD_INPUTS:
        answers = [first_response_ms(port, bad) for _ in range(BAD_INPUT_REPEATS)]
        times = [elapsed for _, elapsed in answers]
        results.append((bad, answers[-1][0], statistics.median(times), max(times)))
    return results


def report(
    stats: Stats, elapsed: float, server_cpu: float, others_cpu: float, rss_start: float, rss_end: float, bad_results: list, args: argparse.Namespace
) -> bool:
    """Print the tables; True when every target is met."""
    total = sum(len(values) for values in stats.latencies_ms.values()) + sum(len(values) for values in stats.errors.values())
    offered_keystrokes = args.readers / args.keystroke_interval
    print(
        f"\n{args.readers} readers for {elapsed:.1f} s: {total} requests, {total / elapsed:.1f} requests/s "
        f"(offered: {offered_keystrokes:.0f} keystrokes/s + {offered_keystrokes * args.hover_probability * len(PAPER_UNITS):.0f} hover rows/s, "
        "less whatever waiting on answers slows the readers)\n"
    )
    print(f"{'endpoint':<12} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}")
    for label in ("keystroke", "hover row"):
        values = stats.latencies_ms.get(label, [])
        errors = len(stats.errors.get(label, []))
        if not values:
            print(f"{label:<12} {errors:>8} {'':>7} {'-':>8} {'-':>8} {'-':>8} {'-':>8} {errors:>6}")
            continue
        count = len(values) + errors
        print(
            f"{label:<12} {count:>8} {count / elapsed:>7.1f} {percentile(values, 0.5):>8.1f} {percentile(values, 0.95):>8.1f} "
            f"{percentile(values, 0.99):>8.1f} {max(values):>8.1f} {errors:>6}"
        )
    for label, reasons in stats.errors.items():
        print(f"  {label} errors: " + ", ".join(f"{reason} x{reasons.count(reason)}" for reason in sorted(set(reasons))))
    # CPU time per request does not depend on what else the machine runs, unlike the latencies.
    print(
        f"\nserver CPU: {server_cpu:.1f} s in {elapsed:.1f} s ({server_cpu / elapsed:.0%} of one core), "
        f"{server_cpu * 1000 / max(total, 1):.1f} ms per request"
    )
    print(f"other processes on this machine: {others_cpu:.1f} CPU-s ({others_cpu / (elapsed * (os.cpu_count() or 1)):.0%} of its cores)")
    growth = rss_end / rss_start - 1
    print(f"server RSS: {rss_start:.1f} MiB at start (after warm-up), {rss_end:.1f} MiB at end, growth {growth * 100:+.1f} %")

    print(f"\n{'bad request':<45} {'status':>6} {'median ms':>10} {'max ms':>8}")
    for bad, status, median_ms, max_ms in bad_results:
        print(f"{bad.name:<45} {status:>6} {median_ms:>10.1f} {max_ms:>8.1f}")

    keystrokes = stats.latencies_ms.get("keystroke", [])
    keystroke_p99 = percentile(keystrokes, 0.99) if keystrokes else float("inf")
    error_count = sum(len(values) for values in stats.errors.values())
    slowest_bad = max(median_ms for _, _, median_ms, _ in bad_results)
    wrong_status = [bad.name for bad, status, _, _ in bad_results if status != bad.status]
    targets = [
        (f"0 errors: {error_count}", error_count == 0),
        (f"keystroke p99 < {KEYSTROKE_P99_TARGET_MS:.0f} ms: {keystroke_p99:.1f} ms", keystroke_p99 < KEYSTROKE_P99_TARGET_MS),
        (f"RSS growth < {RSS_GROWTH_TARGET:.0%}: {growth * 100:+.1f} %", growth < RSS_GROWTH_TARGET),
        (f"each bad request < {BAD_INPUT_TARGET_MS:.0f} ms (median): slowest {slowest_bad:.1f} ms", slowest_bad < BAD_INPUT_TARGET_MS),
        (f"each bad request gets its 4xx: {len(wrong_status)} wrong {wrong_status or ''}", not wrong_status),
    ]
    print("\ntargets:")
    for description, met in targets:
        print(f"  [{'met' if met else 'MISSED'}] {description}")
    return all(met for _, met in targets)


@dataclass
class Measured:
    """The server's CPU-seconds and RSS (MiB) at the start and end of a rate, when it is a local process."""

    server_cpu: float
    rss_start: float
    rss_end: float


def report_readers(
    rate: float, duration: float, stats: ReaderStats, elapsed: float, arrivals: int, measured: Measured | None, generator_cpu: float,
    others_cpu: float | None,
) -> dict:
    """Print one rate's table; its figures, with `met`: whether every target was met."""
    total = sum(len(values) for values in stats.latencies_ms.values()) + sum(len(values) for values in stats.errors.values())
    # Page views finished per second of arrivals: the offered rate when the server keeps up.
    carried = stats.readers / duration
    print(
        f"\n{rate:g} page views/s offered: {arrivals} readers in {elapsed:.1f} s (arrivals and finishing), "
        f"{total} requests, {stats.received_bytes / 1e6:.1f} MB received; {stats.readers} page views finished, "
        f"{carried:.2f} page views/s carried over the {duration:g} s of arrivals"
    )
    print(f"{'request kind':<19} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}")
    latencies = {}
    for kind in KINDS:
        values = stats.latencies_ms.get(kind, [])
        errors = len(stats.errors.get(kind, []))
        if not values:
            print(f"{kind:<19} {errors:>8} {'-':>8} {'-':>8} {'-':>8} {'-':>8} {errors:>6}")
            continue
        latencies[kind] = {"requests": len(values) + errors, **{f"p{int(q * 100)}_ms": percentile(values, q) for q in (0.5, 0.95, 0.99)}, "max_ms": max(values)}
        print(
            f"{kind:<19} {len(values) + errors:>8} {percentile(values, 0.5):>8.1f} {percentile(values, 0.95):>8.1f} "
            f"{percentile(values, 0.99):>8.1f} {max(values):>8.1f} {errors:>6}"
        )
    for kind, reasons in stats.errors.items():
        print(f"  {kind} errors: " + ", ".join(f"{reason} x{reasons.count(reason)}" for reason in sorted(set(reasons))))
    if measured is None:
        print(f"server CPU and RSS: not measured (no local process named: --pids); load generator CPU: {generator_cpu:.1f} s")
    else:
        server_cpu = measured.server_cpu
        print(f"server CPU: {server_cpu:.1f} s, {server_cpu / max(arrivals, 1):.3f} s per page view (every reader, typists and custom texts included)")
        # Server and generator share the machine, so the cores cap the rate at cores / (CPU per page view), before any queueing.
        machine_cpu_per_view = (server_cpu + generator_cpu) / max(arrivals, 1)
        cores = os.cpu_count() or 1
        print(f"load generator CPU: {generator_cpu:.1f} s, {generator_cpu / max(arrivals, 1):.3f} s per page view; "
              f"{cores} cores at 100 % would carry at most {cores / max(machine_cpu_per_view, 1e-9):.1f} page views/s of this mix")
        growth = measured.rss_end / measured.rss_start - 1
        print(f"server RSS: {measured.rss_start:.1f} MiB at start, {measured.rss_end:.1f} MiB at end, growth {growth * 100:+.1f} %")
    if others_cpu is not None:
        print(f"other processes on this machine: {others_cpu:.1f} CPU-s ({others_cpu / (elapsed * (os.cpu_count() or 1)):.0%} of its cores)")
    keystrokes = stats.latencies_ms.get("keystroke", [])
    custom = stats.latencies_ms.get("custom text", [])
    keystroke_p99 = percentile(keystrokes, 0.99) if keystrokes else float("inf")
    custom_p99 = percentile(custom, 0.99) if custom else 0.0
    errors = sum(len(values) for values in stats.errors.values())
    targets = [
        (f"0 errors: {errors}", errors == 0),
        (f"keystroke p99 < {KEYSTROKE_P99_TARGET_MS:.0f} ms: {keystroke_p99:.1f} ms", keystroke_p99 < KEYSTROKE_P99_TARGET_MS),
        (f"custom-text p99 < {CUSTOM_TEXT_P99_TARGET_MS / 1000:.0f} s: {custom_p99 / 1000:.2f} s", custom_p99 < CUSTOM_TEXT_P99_TARGET_MS),
    ]
    if measured is not None:
        targets.append((f"RSS growth < {RSS_GROWTH_TARGET:.0%}: {growth * 100:+.1f} %", growth < RSS_GROWTH_TARGET))
    for description, met in targets:
        print(f"  [{'met' if met else 'MISSED'}] {description}")
    return {
        "rate": rate,
        "arrivals": arrivals,
        "page_views_finished": stats.readers,
        "duration_s": duration,
        "elapsed_s": elapsed,
        "carried_page_views_per_s": carried,
        "requests": total,
        "errors": {kind: reasons for kind, reasons in stats.errors.items()},
        "error_count": errors,
        "latency": latencies,
        "server_cpu_s": None if measured is None else measured.server_cpu,
        "generator_cpu_s": generator_cpu,
        "others_cpu_s": others_cpu,
        "missed": [description for description, met in targets if not met],
        "met": all(met for _, met in targets),
    }


def run_reader_rates(host: str, port: int, server_pids: list[int], args: argparse.Namespace) -> int:
    """Every rate in turn against the server at host:port; `server_pids`: its processes on this machine, whose CPU and RSS are measured."""
    site = discover(host, port)
    print(f"the page loads {len(site.static_paths)} static files; answer version {site.version}")
    # Warm-up: first calls allocate PyTorch's buffers and fill the static files' cache; RSS at start is measured after it.
    asyncio.run(arrive(host, port, site, 2.0, 5.0, seed=args.seed + 999, first_number=10**6))
    readers = 0
    results = []
    for rate in args.rates:
        if server_pids:
            rss_start, cpu_start = sum(map(resident_mib, server_pids)), sum(map(cpu_seconds, server_pids))
        generator_start, busy_start = time.process_time(), busy_cpu_seconds()
        stats, elapsed, arrivals = asyncio.run(arrive(host, port, site, rate, args.duration, seed=args.seed, first_number=readers))
        readers += arrivals
        generator_cpu, busy = time.process_time() - generator_start, busy_cpu_seconds() - busy_start
        measured = None
        others_cpu = None  # without the server's processes, what the others took cannot be told from what it took
        if server_pids:
            measured = Measured(sum(map(cpu_seconds, server_pids)) - cpu_start, rss_start, sum(map(resident_mib, server_pids)))
            others_cpu = max(0.0, busy - measured.server_cpu - generator_cpu)
        results.append(report_readers(rate, args.duration, stats, elapsed, arrivals, measured, generator_cpu, others_cpu))
    sustained = [result["rate"] for result in results if result["met"]]
    broken = [result["rate"] for result in results if not result["met"]]
    print(f"\nhighest rate meeting every target: {max(sustained):g} page views/s" if sustained else "\nno rate met every target")
    if broken:
        print(f"lowest rate missing a target: {min(broken):g} page views/s")
    if args.json is not None:
        args.json.write_text(json.dumps({"url": f"http://{host}:{port}", "answer_version": site.version, "rates": results}, indent=2))
    first_broken = next((result for result in results if not result["met"]), None)
    note = "" if first_broken is None else busy_machine_note(first_broken["others_cpu_s"], first_broken["elapsed_s"])
    if not sustained:
        missed = next(result for result in results if not result["met"])["missed"]
        print(f"exit 1: no rate met every target (at {min(broken):g} page views/s: missed {'; '.join(missed)}){note}", file=sys.stderr)
        return 1
    if max(sustained) < args.min_rate:
        print(
            f"exit 1: the highest rate meeting every target, {max(sustained):g} page views/s, is below the floor of "
            f"{args.min_rate:g} (--min-rate; list higher rates, or pass --min-rate 0 only to report){note}",
            file=sys.stderr,
        )
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["readers", "typists"], default="readers", help="reader-shaped page views (default) or typists and hovers")
    parser.add_argument("--checkpoints", type=Path, help="checkpoint folder (default: the bundled ones, else random ones of that size)")
    parser.add_argument("--rates", default="8", help="readers mode: page views per second, comma-separated, rising (default 8)")
    parser.add_argument("--processes", type=int, help="RNN_PROCESSES for the server (default: its own default, one per core)")
    parser.add_argument("--readers", type=int, default=50, help="typists mode: simulated readers at once (default 50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (per rate in readers mode; default 60)")
    parser.add_argument(
        "--keystroke-interval", type=float, default=0.3, help="typists mode: mean seconds between a reader's keys (default 0.3: about 40 words a minute)"
    )
    parser.add_argument("--hover-probability", type=float, default=0.1, help="typists mode: chance of a hover after each keystroke (default 0.1)")
    parser.add_argument(
        "--min-rate", type=float, default=MIN_SUSTAINED_RATE,
        help=f"readers mode: exit 1 unless some rate at or above this met every target (default {MIN_SUSTAINED_RATE:g}; 0 only reports)",
    )
    parser.add_argument("--url", help="readers mode: load this running server (http://HOST:PORT, such as a proxy) instead of starting one")
    parser.add_argument(
        "--pids", help="with --url: the server's processes on this machine (comma-separated; the replicas behind a proxy), to measure their CPU and RSS"
    )
    parser.add_argument("--json", type=Path, help="readers mode: write each rate's figures to this file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        args.rates = [float(rate) for rate in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates {args.rates!r}: give page views per second as numbers, comma-separated")
    if args.pids is not None and args.url is None:
        parser.error("--pids goes with --url (without it, the server this starts is the one measured)")
    if args.url is not None:
        target = urlsplit(args.url)
        if args.mode != "readers":
            parser.error("--url works with --mode readers only")
        if target.scheme != "http" or target.path not in ("", "/") or target.query or not target.hostname:
            parser.error(f"--url {args.url!r}: give http://HOST:PORT, the server's root (https and paths are not supported)")
        try:
            pids = [int(pid) for pid in args.pids.split(",")] if args.pids else []
        except ValueError:
            parser.error(f"--pids {args.pids!r}: give process ids, comma-separated")
        if missing := [pid for pid in pids if not Path(f"/proc/{pid}").is_dir()]:
            parser.error(f"--pids: no process {', '.join(map(str, missing))} on this machine")
        print(f"loading the running server at {args.url}" + (f", measuring processes {', '.join(map(str, pids))}" if pids else ""))
        return run_reader_rates(target.hostname, target.port or 80, pids, args)

    with tempfile.TemporaryDirectory(prefix="load-") as scratch:
        checkpoints = choose_checkpoints(args.checkpoints, Path(scratch))
        server, base_url, log = start_on_free_port(checkpoints, Path(scratch), args.processes)
        port = int(base_url.rsplit(":", 1)[1])
        try:
            models = wait_until_healthy(server, base_url, log)
            print(f"serving {', '.join(models)} from {checkpoints} at {base_url} (server pid {server.pid})")
            if args.mode == "readers":
                return run_reader_rates("127.0.0.1", port, [server.pid], args)
            # Warm-up: first calls allocate PyTorch's buffers; RSS at start is measured after them.
            asyncio.run(run_readers(port, models, argparse.Namespace(**{**vars(args), "readers": 2, "duration": 3.0})))
            rss_start, cpu_start = resident_mib(server.pid), cpu_seconds(server.pid)
            generator_start, busy_start = time.process_time(), busy_cpu_seconds()
            stats, elapsed = asyncio.run(run_readers(port, models, args))
            rss_end, server_cpu = resident_mib(server.pid), cpu_seconds(server.pid) - cpu_start
            others_cpu = max(0.0, busy_cpu_seconds() - busy_start - server_cpu - (time.process_time() - generator_start))
            bad_results = time_bad_inputs(port)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if report(stats, elapsed, server_cpu, others_cpu, rss_start, rss_end, bad_results, args):
            return 0
        print(f"exit 1: a target was missed (marked MISSED above){busy_machine_note(others_cpu, elapsed)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
