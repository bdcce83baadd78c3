"""Reader-shaped load: simulated readers arrive at a given rate and do what the article makes a browser do.

Each reader loads `/` and every static file the page pulls in (found once by
following the page's scripts, their imports and the data files they always
fetch), over up to six keep-alive connections as a browser opens, accepting
gzip; then makes the page's API calls in the page's order, as static/api.js
makes them: `/api/models`, the example sentence's suggestions and one
connectivity matrix per unit the page shows (GET, with the answer version), and the
autocomplete demo's first keystroke (POST). Then one reader in three types 20
characters into the demo, one request per key, a key every 0.2-0.4 s on a fixed
schedule (a key's latency counts from when it was due, so a slow server cannot
slow the typist down and hide its own queue), and one in ten asks about a text
of their own: 100-200 characters never seen before, its suggestions and one
full matrix per unit shown at once, as Figure 4 does. The units shown are the
page's default (static/unit-choice.js): the paper's, where they are served, and
every served unit otherwise; the page asks only for the units it shows.

Used by `bench/load.py --mode readers`.
"""

import asyncio
import json
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urljoin

ROOT = Path(__file__).resolve().parent.parent
PAPER = json.loads((ROOT / "static" / "data" / "paper.json").read_text())
EXAMPLE_TEXT = PAPER["connectivity"]["example_text"]
DEMO_PREFIX = PAPER["autocomplete_demo"]["example_prefix"]
BROWSER_CONNECTIONS = 6
REQUEST_TIMEOUT_S = 60.0
TYPED_CHARACTERS = 20
TYPIST_SHARE = 1 / 3
CUSTOM_TEXT_SHARE = 1 / 10
# Words for typed continuations and custom texts; a custom text also carries the reader's number
# spelled out, so no two are alike and none was seen before.
WORDS = (
    "the of and in a to was is for on as by with he that at from his it an were are which this be or first new had "
    "people city river music history war king church school water family time world year country state between "
    "against during under after before through around small large early modern ancient northern southern"
).split()
DIGIT_WORDS = "zero one two three four five six seven eight nine".split()
# What a browser sends; gzip answers are read and counted, not decompressed.
ACCEPT_ENCODING = "gzip, deflate, br"
KINDS = ("page", "static", "models", "article answer", "keystroke", "custom suggestions", "custom matrix", "custom text")


class BrokenConnection(Exception):
    """The server closed or garbled the connection."""


class Connection:
    """One keep-alive HTTP/1.1 connection that speaks just enough HTTP for these requests.

    A full client (httpx) spent about as much CPU per request as the server: on two
    cores the generator would take one of them.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
        """(status, headers with lowercase names, raw body: gzip as sent)."""
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept-Encoding: {ACCEPT_ENCODING}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        reused = self.streams is not None
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        try:
            writer.write(head.encode() + b"\r\n" + payload)
            status_line = await reader.readline()
            if not status_line and reused:
                # The server closed the idle connection (its keep-alive timeout): like any client, send again on a new one.
                self.close()
                return await self.request(method, path, body)
            status = int(status_line.split(b" ", 2)[1])
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if headers.get(b"transfer-encoding") == b"chunked":
                content = b""
                while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
                    content += await reader.readexactly(size + 2)
                await reader.readline()
            else:
                content = await reader.readexactly(int(headers.get(b"content-length", b"0")))
            return status, headers, content
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
            self.close()
            raise BrokenConnection(str(error)) from error

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


@dataclass
class Stats:
    """Latencies (ms) of answered requests and failures, per request kind, and bytes received."""

    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    readers: int = 0
    received_bytes: int = 0

    def record(self, kind: str, started: float, outcome: str | None) -> None:
        if outcome is None:
            self.latencies_ms.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        else:
            self.errors.setdefault(kind, []).append(outcome)


@dataclass(frozen=True)
class Site:
    """What the page loads: its static files, the answer version for GET questions, and the units it shows at first."""

    static_paths: list[str]
    version: str
    models: list[str]


def discover(host: str, port: int) -> Site:
    """The page's static files, by following / and every script's imports and fixed fetches, as the browser will."""
    import httpx

    base = f"http://{host}:{port}"
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S) as client:
        page = client.get("/").text
        pending = [path for path in re.findall(r'(?:src|href)="(/(?:static|vendor)/[^"#?]+)"', page)]
        found: list[str] = []
        while pending:
            path = pending.pop(0)
            if path in found:
                continue
            found.append(path)
            if path.endswith(".js") and path.startswith("/static/"):
                source = client.get(path).text
                for target in re.findall(r'(?:from\s+|import\()\s*"(\.{1,2}/[^"]+)"', source):
                    pending.append(urljoin(path, target))
                # Data files a script always fetches (api.js: the paper's numbers, the demo's prefix); a fetch
                # whose path is built at run time (the paper's rows of one unit) happens only on a reader's request.
                pending.extend(re.findall(r'request\("(/static/[^"]+)"\)', source))
        models = client.get("/api/models")
        served = [model["id"] for model in models.json()]
        shown = [model for model in served if model in PAPER["model_ids"]["names"]] or served
        return Site(static_paths=found, version=models.headers.get("x-answers-version", ""), models=shown)


async def timed(stats: Stats, kind: str, connection: Connection, method: str, path: str, body: dict | None = None, started: float | None = None) -> bool:
    """Send and record one request; `started` (perf_counter) backdates it to when it was due. True when answered 200."""
    started = time.perf_counter() if started is None else started
    try:
        status, _, content = await asyncio.wait_for(connection.request(method, path, body), REQUEST_TIMEOUT_S)
    except (BrokenConnection, TimeoutError) as error:
        connection.close()
        stats.record(kind, started, type(error).__name__)
        return False
    stats.received_bytes += len(content)
    stats.record(kind, started, None if status == 200 else f"HTTP {status}")
    return status == 200


def get_path(path: str, fields: dict, version: str) -> str:
    """The GET question static/api.js makes: lists comma-joined, the answer version last."""
    query = {name: ",".join(map(str, value)) if isinstance(value, list) else value for name, value in fields.items()}
    return f"{path}?{urlencode({**query, 'v': version})}"


def custom_text(rng: random.Random, number: int) -> str:
    length = rng.randint(100, 200)
    words = [DIGIT_WORDS[int(digit)] for digit in str(number)]
    while len(" ".join(words)) < length:
        words.insert(rng.randrange(len(words) + 1), rng.choice(WORDS))
    return " ".join(words)[:length].strip()


async def read(host: str, port: int, site: Site, stats: Stats, rng: random.Random, number: int) -> None:
    """One reader: the page view, then maybe typing or a text of their own."""
    connections = [Connection(host, port) for _ in range(BROWSER_CONNECTIONS)]
    try:
        await timed(stats, "page", connections[0], "GET", "/")
        queue = list(site.static_paths)

        async def fetch_static(connection: Connection) -> None:
            while queue:
                await timed(stats, "static", connection, "GET", queue.pop(0))

        await asyncio.gather(*(fetch_static(connection) for connection in connections))
        await timed(stats, "models", connections[0], "GET", "/api/models")
        question = {"text": EXAMPLE_TEXT, "top_k": 3, "positions": "all", "models": site.models}
        await on_connections(stats, connections, [
            ("article answer", "GET", get_path("/api/autocomplete", question, site.version), None),
            *(
                ("article answer", "GET", get_path("/api/connectivity", {"text": EXAMPLE_TEXT, "model": model, "positions": "all", "method": "gradient"}, site.version), None)
                for model in site.models
            ),
            ("keystroke", "POST", "/api/autocomplete", {"text": DEMO_PREFIX, "top_k": 3, "positions": "last", "models": site.models}),
        ])
        choice = rng.random()
        if choice < TYPIST_SHARE:
            await type_into_demo(connections, site, stats, rng)
        elif choice < TYPIST_SHARE + CUSTOM_TEXT_SHARE:
            await ask_own_text(connections, site, stats, rng, number)
        stats.readers += 1
    finally:
        for connection in connections:
            connection.close()


async def type_into_demo(connections: list[Connection], site: Site, stats: Stats, rng: random.Random) -> None:
    typed = DEMO_PREFIX
    continuation = " ".join(rng.choice(WORDS) for _ in range(8))
    due = time.perf_counter()
    keys = []
    for character in continuation[:TYPED_CHARACTERS]:
        due += rng.uniform(0.2, 0.4)
        typed += character
        keys.append((due, typed))
    # Each key goes out when due, on a free connection; a browser aborts the previous key's request, the server still answers it.
    free = list(connections)

    async def key(due_at: float, text: str) -> None:
        await asyncio.sleep(max(0.0, due_at - time.perf_counter()))
        connection = free.pop() if free else Connection(connections[0].host, connections[0].port)
        try:
            await timed(stats, "keystroke", connection, "POST", "/api/autocomplete", {"text": text, "top_k": 3, "positions": "last", "models": site.models}, started=due_at)
        finally:
            free.append(connection)

    await asyncio.gather(*(key(due_at, text) for due_at, text in keys))
    for connection in free[len(connections):]:
        connection.close()


async def ask_own_text(connections: list[Connection], site: Site, stats: Stats, rng: random.Random, number: int) -> None:
    text = custom_text(rng, number)
    started = time.perf_counter()
    results = await on_connections(stats, connections, [
        ("custom suggestions", "GET", get_path("/api/autocomplete", {"text": text, "top_k": 3, "positions": "all", "models": site.models}, site.version), None),
        *(
            ("custom matrix", "GET", get_path("/api/connectivity", {"text": text, "model": model, "positions": "all", "method": "gradient"}, site.version), None)
            for model in site.models
        ),
    ])
    # The figure is drawn when the last matrix arrives.
    stats.record("custom text", started, None if all(results) else "a request failed")


async def on_connections(stats: Stats, connections: list[Connection], requests: list[tuple[str, str, str, dict | None]]) -> list[bool]:
    """Send `requests` (kind, method, path, body) at once, as a browser does: spread over its connections, queued
    on each when there are more requests than connections (one per served model makes that depend on the server)."""
    results = [False] * len(requests)

    async def send_in_turn(index: int) -> None:
        for number in range(index, len(requests), len(connections)):
            kind, method, path, body = requests[number]
            results[number] = await timed(stats, kind, connections[index], method, path, body)

    await asyncio.gather(*(send_in_turn(index) for index in range(min(len(connections), len(requests)))))
    return results


async def arrive(host: str, port: int, site: Site, rate: float, duration: float, seed: int, first_number: int = 0) -> tuple[Stats, float, int]:
    """Readers arriving as a Poisson process at `rate` per second for `duration` seconds; waits for all to finish.

    Returns the stats, the seconds from the first arrival to the last reader's finish, and the readers started.
    """
    stats = Stats()
    rng = random.Random(seed)
    tasks = []
    started = time.perf_counter()
    arrival = 0.0
    while True:
        arrival += rng.expovariate(rate)
        if arrival >= duration:
            break
        await asyncio.sleep(max(0.0, started + arrival - time.perf_counter()))
        number = first_number + len(tasks)
        tasks.append(asyncio.ensure_future(read(host, port, site, stats, random.Random(seed * 1_000_003 + number), number)))
    await asyncio.gather(*tasks)
    return stats, time.perf_counter() - started, len(tasks)
