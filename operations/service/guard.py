"""The server's defences where it meets a network: clients too slow to send their request, too
many connections, and bodies over the upload limit however they are framed.

- :class:`GuardedH11` is uvicorn's HTTP/1.1 protocol with a deadline on the request's head (the
  request line and headers, as nginx's ``client_header_timeout``): a client that dribbles its
  headers, or connects and says nothing, is answered ``408`` and cut; and a cap on open
  connections far above the workers: one beyond it is answered ``503`` and closed at once,
  before any of its bytes are read. Admission to the workers counts requests, never idle
  connections (:class:`operations.service.server.Admission`), so idle connections cost a
  socket each and deny nobody.
- :class:`BodyGuard` (ASGI) counts a request's body as it is read, whatever its framing
  (declared length, chunked, multipart, base64 JSON): past the limit it answers ``413`` at once
  and the rest is not read (the connection is closed); a body that does not arrive within its
  deadline is answered ``408``. (A declared ``Content-Length`` over the limit is refused before
  the body is read, by the app's own first step.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT = 30.0  # seconds for the request line and headers (nginx: 60)
DEFAULT_BODY_TIMEOUT = 60.0  # seconds for the whole body
DEFAULT_MAX_CONNECTIONS = 1000


def _raw(status: int, reason: str) -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: 0\r\n"
        + ("Retry-After: 1\r\n" if status == 503 else "")
        + "\r\n"
    ).encode("ascii")


class GuardedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on each request's head and a connection cap.

    The settings are class attributes of a subclass made per server (:func:`guarded_protocol`),
    since uvicorn builds a protocol per connection from the class alone.
    """

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    refused: int = 0  # connections refused over the cap (read by the metrics)
    cut: int = 0  # requests cut for a head that did not arrive in time

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.max_connections:
            type(self).refused += 1
            transport.write(_raw(503, "Service Unavailable"))
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        type(self).cut += 1
        self.transport.write(_raw(408, "Request Timeout"))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of a request (a kept-alive connection's next one)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is in: the body has its own deadline (BodyGuard)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(header_timeout: float, max_connections: int) -> type[GuardedH11]:
    """A protocol class with these settings (its counters its own)."""
    settings = {"header_timeout": header_timeout, "max_connections": max_connections}
    return type("ServiceH11", (GuardedH11,), {**settings, "refused": 0, "cut": 0})


class BodyGuard:
    """An ASGI layer that holds every request body to ``limit`` bytes and ``timeout`` seconds.

    Args:
        answer: makes the guard's own answer's JSON body from (status, code, detail).
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        timeout: float,
        answer: Callable[[int, str, str], dict[str, Any]],
    ) -> None:
        self.app, self.limit, self.timeout, self.answer = app, limit, timeout, answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        answered = False
        state = scope.setdefault("state", {})  # the app's access log reads what the guard said

        async def reply(status: int, code: str, detail: str) -> None:
            nonlocal answered
            answered = True
            state["guard_status"] = status
            if started:  # the app already answered: nothing to add but the cut
                return
            body = json.dumps(self.answer(status, code, detail)).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the rest of the body is never read
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        received = 0

        async def guarded_receive() -> Message:
            nonlocal received
            if answered:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), max(0.001, deadline - loop.time()))
            except asyncio.TimeoutError:
                await reply(408, "body_timeout", f"the body did not arrive in {self.timeout:g} s")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    await reply(413, "file_too_large", f"at most {self.limit / 2**20:g} MB")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the guard's answer stands
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, guarded_receive, guarded_send)
