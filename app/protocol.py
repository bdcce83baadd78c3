"""Bounded request heads and a connection cap: the HTTP/1.1 protocol `python -m app` runs.

uvicorn's httptools protocol keeps every byte of a request head until the head
ends, with no limit on its size nor on how long it may take: a client sending one
endless header grows the server by as much as it sends, and one that never
finishes its head holds its connection for good. This subclass, per connection:

- hands the parser at most `max_head_bytes` of a request head; a longer head is
  answered 431 and the connection closes, so an attacker's header costs the
  server that many bytes, not what the attacker sends;
- closes a connection whose request head has not fully arrived `head_timeout`
  seconds after the connection opened (first request) or after the head's first
  byte (later requests; uvicorn's keep-alive timeout governs the wait between
  them), with 408 when part of the head came;
- answers 503 at once, before reading anything, to a connection that arrives
  while its process already holds `max_connections`.

A refusal is written, the sending side shut (the client sees the answer, then the
end of the stream), and what the client still sends is dropped until it closes,
for at most LINGER_S and LINGER_BYTES: closing at once would make the kernel
reset the connection, which can destroy the answer before the client reads it;
reading on for longer would let an attacker keep the process busy.
"""

import asyncio
import json
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.settings import Settings

# How long and how much a refused connection may go on sending (dropped) before it is closed.
LINGER_S = 1.0
LINGER_BYTES = 65_536


@dataclass(frozen=True)
class ConnectionLimits:
    max_head_bytes: int
    head_timeout: float
    max_connections: int

    @classmethod
    def of(cls, settings: Settings) -> "ConnectionLimits":
        return cls(settings.max_head_bytes, settings.head_timeout, settings.max_connections)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above; `bounded_protocol` makes the class for a set of limits."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # True from the connection's start and after each request's end: what arrives next is a request head.
        self.receiving_head = True
        self.head_bytes = 0
        self.heads_completed = 0
        self.head_timer: asyncio.TimerHandle | None = None
        # Set once a refusal is decided: from then on, input is dropped and the connection only waits to close.
        self.refusing = False
        # A refusal that waits for the response before it to be written (pipelined requests).
        self.pending_refusal: bytes | None = None
        self.linger_timer: asyncio.TimerHandle | None = None
        self.dropped_bytes = 0

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        at_capacity = len(self.connections) >= self.limits.max_connections
        super().connection_made(transport)
        if at_capacity:
            self.refuse(
                503,
                f"this server process already holds its limit of {self.limits.max_connections:,} connections "
                "(RNN_MAX_CONNECTIONS); try again shortly",
                {b"retry-after": b"1"},
            )
        else:
            self.start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_head_timer()
        if self.linger_timer is not None:
            self.linger_timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refusing:
            self.dropped_bytes += len(data)
            if self.dropped_bytes > LINGER_BYTES and self.pending_refusal is None:
                self.transport.close()
            return
        if not self.receiving_head:
            # A request body (the app limits it) and perhaps the start of a pipelined request's head.
            super().data_received(data)
            return
        if self.head_timer is None:
            self.start_head_timer()
        allowance = self.limits.max_head_bytes - self.head_bytes
        head_part, rest = data[:allowance], data[allowance:]
        heads_before = self.heads_completed
        super().data_received(head_part)
        if self.transport.is_closing() or self.refusing:
            return
        if self.heads_completed == heads_before:
            self.head_bytes += len(head_part)
            if rest:
                self.refuse(
                    431, f"the request head (request line and headers) is larger than the limit of {self.limits.max_head_bytes:,} bytes (RNN_MAX_HEAD_BYTES)"
                )
        elif rest:
            self.data_received(rest)

    # Parser callbacks

    def on_headers_complete(self) -> None:
        self.receiving_head = False
        self.heads_completed += 1
        self.stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.receiving_head = True
        self.head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.pending_refusal is not None and not self.transport.is_closing():
            response, self.pending_refusal = self.pending_refusal, None
            self.flow.resume_reading()
            self.send_refusal(response)

    # Limits

    def start_head_timer(self) -> None:
        self.head_timer = self.loop.call_later(self.limits.head_timeout, self.head_timed_out)

    def stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head behind a response still being written: its time starts after that response.
            self.start_head_timer()
            return
        if self.head_bytes == 0:
            # Nothing of a request came (an idle or speculative connection): there is no one to answer.
            self.transport.close()
            return
        self.refuse(408, f"the request head did not arrive within {self.limits.head_timeout:g} s (RNN_HEAD_TIMEOUT)", linger=False)

    def refuse(self, status: int, detail: str, headers: dict[bytes, bytes] | None = None, linger: bool = True) -> None:
        """Answer `status` with a JSON `detail` and close; after the response in progress, if there is one."""
        self.refusing = True
        self.stop_head_timer()
        body = json.dumps({"detail": detail}).encode()
        lines = [STATUS_LINE[status]]
        all_headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *(headers or {}).items(),
        ]
        lines += [name + b": " + value + b"\r\n" for name, value in all_headers]
        response = b"".join(lines) + b"\r\n" + body
        if self.cycle is not None and not self.cycle.response_complete:
            self.pending_refusal = response
            self.flow.pause_reading()
            return
        self.send_refusal(response, linger)

    def send_refusal(self, response: bytes, linger: bool = True) -> None:
        self.transport.write(response)
        if not linger:
            self.transport.close()
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        # The client's end of the stream closes it sooner (uvicorn's eof_received lets the transport close).
        self.linger_timer = self.loop.call_later(LINGER_S, self.transport.close)


def bounded_protocol(limits: ConnectionLimits) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for `limits`, for uvicorn.Config(http=...): uvicorn makes one instance per connection."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
