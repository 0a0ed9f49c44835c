"""The HTTP endpoint for Prometheus and orchestrators: ``/metrics``, ``/healthz``, ``/readyz``.

It runs on the service's own event loop (asyncio streams), on purpose: ``/healthz``
answering proves the loop that serves calls is alive, which a server in a thread would
not. Requests are tiny GETs from Prometheus, a healthcheck or ``curl``; anything else
gets a clear status, and every read has a size cap and a timeout, so a stuck or hostile
client costs one small task.

* ``/healthz``: 200 while the process's event loop answers.
* ``/readyz``: 200 when every readiness check passes, else 503; the JSON body lists
  each check (the menu is loaded, FastAGI is listening, call records are being written
  or spooled).
* ``/metrics``: the registry in Prometheus' text format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ivr.logging import get_logger

__all__ = ["HealthServer"]

Checks = Callable[[], Mapping[str, bool]]
_MAX_HEAD: Final = 8192
_READ_TIMEOUT: Final = 5.0
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _response(status: int, body: bytes, content_type: str, *, head: bool = False) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("ascii") + (b"" if head else body)


def _text(status: int, text: str) -> bytes:
    return _response(status, text.encode("utf-8"), "text/plain; charset=utf-8")


class HealthServer:
    def __init__(self, registry: CollectorRegistry, ready: Checks, *, host: str, port: int) -> None:
        self.registry = registry
        self.ready = ready
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._log = get_logger("ivr.health")

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def bound_port(self) -> int:
        """The port actually bound (useful with port 0 in tests)."""
        if self._server is None or not self._server.sockets:
            return self.port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=_MAX_HEAD
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
            except TimeoutError:
                writer.write(_text(408, "request timeout\n"))
                return
            except asyncio.LimitOverrunError:
                writer.write(_text(431, "request head too large\n"))
                return
            except asyncio.IncompleteReadError:
                return
            writer.write(self.respond(head))
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.drain(), _READ_TIMEOUT)
        except ConnectionError:
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), _READ_TIMEOUT)

    def respond(self, head: bytes) -> bytes:
        """The full response to a request head (pure apart from reading the state)."""
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _text(400, "bad request\n")
        method, target, _ = parts
        if method not in {"GET", "HEAD"}:
            return _text(405, "only GET and HEAD\n")
        head_only = method == "HEAD"
        path = target.split("?", 1)[0]
        if path == "/healthz":
            return _response(200, b"ok\n", "text/plain; charset=utf-8", head=head_only)
        if path == "/readyz":
            checks = dict(self.ready())
            ok = all(checks.values())
            body = json.dumps({"ready": ok, "checks": checks}, sort_keys=True).encode() + b"\n"
            return _response(200 if ok else 503, body, "application/json", head=head_only)
        if path == "/metrics":
            try:
                body = generate_latest(self.registry)
            except Exception:
                self._log.exception("metrics collection failed")
                return _text(500, "metrics collection failed\n")
            return _response(200, body, CONTENT_TYPE_LATEST, head=head_only)
        return _text(404, "not found: try /metrics, /healthz or /readyz\n")
