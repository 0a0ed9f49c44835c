"""The AMI link: panoramisk's ``Manager`` for the protocol, our own supervision.

panoramisk parses AMI messages, pairs responses (and ``EventList`` lists) with actions
and dispatches events; we keep that. What it does not do well enough for the line, this
module does (see DESIGN.md section 3):

* **UTF-8 split across reads.** ``AMIProtocol.data_received`` decodes each TCP chunk on
  its own with errors ignored, so a caller name like "Muñoz" whose "ñ" straddles two
  reads loses the letter. :class:`Utf8Protocol` decodes incrementally first.
* **Reconnection.** ``Manager`` retries every 2 s forever, wrong secret included (a hot
  loop against Asterisk's 1 s penalty). :class:`AmiClient` reconnects with capped
  exponential backoff and jitter, logs a refused login once per backoff step, and
  counts it.
* **Keep-alive.** ``Manager`` sends Ping but never notices a missing Pong; a half-open
  link would stay "connected" and silent. We wait for each Pong, and drop the link
  when it does not come.
* **Bounded buffer.** A peer that never ends a message cannot grow memory without bound
  (:data:`MAX_MESSAGE`), nor can one that answers an action with an endless list
  (:data:`MAX_PENDING`): the link is dropped and reconnected.
* **Malformed messages.** panoramisk raises from ``data_received`` on a message with a
  repeated ``Event``, ``Response`` or ``ActionID`` header (a list where it expects a
  string). :class:`Utf8Protocol` drops such a message, logs it, and reads on.

The client never blocks calls: it runs as one background task, and when AMI is down the
FastAGI side goes on serving; the queue tracker records what it could not see as unknown.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import itertools
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from ivr.ami.outcomes import AmiEvent, header
from ivr.ami.queues import QueueSnapshot, parse_queue_status
from ivr.logging import get_logger

__all__ = ["AmiClient", "AmiConfig", "LoginRefusedError", "Utf8Protocol", "backoff_delay"]

_CLOSE_TIMEOUT: Final = 2.0
_POLLS: Final = itertools.count(1)
MAX_MESSAGE: Final = 1 << 20  # bytes of one AMI message before we call the peer broken
# Characters of messages held for actions still waiting for their answer (a QueueStatus
# list of a large call centre is a few hundred kilobytes).
MAX_PENDING: Final = 16 << 20


class LoginRefusedError(Exception):
    """Asterisk answered the Login with an error (wrong user or secret, or ACL)."""


@dataclass(frozen=True, slots=True)
class AmiConfig:
    host: str
    port: int
    username: str
    secret: str
    connect_timeout: float = 5.0
    login_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 10.0
    poll_interval: float = 10.0
    action_timeout: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    refused_initial: float = 5.0  # a wrong secret will not fix itself in a second


def backoff_delay(attempt: int, initial: float, cap: float, draw: Callable[[], float]) -> float:
    """Delay before retry number ``attempt`` (0, 1, ...): exponential, capped, then
    jittered into [delay/2, delay] so that many services do not reconnect in step."""
    delay: float = min(cap, initial * 2.0 ** min(attempt, 32))
    return delay / 2 + draw() * delay / 2


class Utf8Protocol(AMIProtocol):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's protocol with an incremental UTF-8 decoder, bounded buffers, and no
    exception out of :meth:`data_received` whatever the peer sends."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        factory = getattr(self, "factory", None)
        super().connection_made(transport)
        self.factory = factory
        self.encoding = "utf-8"
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held: dict[str, int] = {}  # characters of messages held, per pending action
        self.broken = False  # we dropped the link: what still arrives is ignored

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        text = self._decoder.decode(data)
        if not text:
            return
        super().data_received(text.encode("utf-8"))
        if not self.broken and self.queue and len(self.queue[-1]) > MAX_MESSAGE:
            self._drop("AMI message too long: dropping the link")

    def handle_message(self, message: Any) -> None:
        if self.broken:
            return
        try:
            pending = self._pending(message)
            if pending is not None:
                size = sum(len(str(k)) + len(str(v)) + 4 for k, v in message.items())
                self._held[pending] = self._held.get(pending, 0) + size
                if sum(self._held.values()) > MAX_PENDING:
                    self._drop("AMI answer to an action too long: dropping the link")
                    return
            super().handle_message(message)
        except Exception:
            # panoramisk expects one value per header where AMI may repeat one: a
            # malformed message is dropped, the link goes on.
            get_logger("ivr.ami").exception(
                "AMI message not understood: ignored", ami_event=header(message, "Event")[:80]
            )
        for done in [key for key in self._held if key not in self.responses]:
            del self._held[done]

    def _pending(self, message: Any) -> str | None:
        """The id of the pending action ``message`` belongs to, if any."""
        for key in ("CommandID", "ActionID"):
            value = message.get(key)
            if isinstance(value, str) and value in self.responses:
                return value
        return None

    def forget(self, action_id: str) -> None:
        """Stop waiting for an action (its caller gave up): later answers are ignored."""
        self.responses.pop(action_id, None)
        self._held.pop(action_id, None)

    def _drop(self, reason: str) -> None:
        get_logger("ivr.ami").error(reason)
        self.broken = True
        self.queue.clear()
        self.transport.abort()


class _Manager(Manager):  # type: ignore[misc]  # panoramisk is untyped
    """A Manager whose link we supervise: a lost connection is reported, not retried."""

    def __init__(self, on_lost: Callable[[], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_lost = on_lost

    def connection_lost(self, exc: BaseException | None) -> None:
        del exc
        self._connected = False
        self.authenticated = False
        self._on_lost()


class AmiClient:
    """Keeps one logged-in AMI link; events and queue snapshots go to the callbacks."""

    def __init__(  # noqa: PLR0913 - callbacks, all keyword-only
        self,
        config: AmiConfig,
        *,
        on_event: Callable[[AmiEvent], None],
        on_link: Callable[[bool], None],
        on_snapshot: Callable[[QueueSnapshot], None],
        queues: Callable[[], Iterable[str]],
        on_login_refused: Callable[[], None] = lambda: None,
        on_login_error: Callable[[], None] = lambda: None,
        on_reconnect: Callable[[], None] = lambda: None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.on_event = on_event
        self.on_link = on_link
        self.on_snapshot = on_snapshot
        self.queues = queues
        self.on_login_refused = on_login_refused
        self.on_login_error = on_login_error
        self.on_reconnect = on_reconnect
        self.draw = draw
        self.connected = False
        self.sessions = 0  # successful logins
        self._log = get_logger("ivr.ami")
        self._lost: asyncio.Event = asyncio.Event()
        self._manager: _Manager | None = None

    # --- supervision --------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, and reconnect after every drop, until ``stop`` is set."""
        attempt = 0
        config = self.config
        while not stop.is_set():
            try:
                await self._session(stop)
            except LoginRefusedError as exc:
                self.on_login_refused()
                delay = backoff_delay(
                    attempt,
                    max(config.refused_initial, config.backoff_initial),
                    config.backoff_max,
                    self.draw,
                )
                self._log.error(
                    "AMI login refused: check IVR_AMI_USER and the secret against manager.conf",
                    user=config.username,
                    reason=str(exc)[:200],
                    retry_in=round(delay, 1),
                )
            except (OSError, TimeoutError, ConnectionError) as exc:
                delay = backoff_delay(
                    attempt, config.backoff_initial, config.backoff_max, self.draw
                )
                self._log.warning(
                    "AMI unreachable",
                    host=config.host,
                    port=config.port,
                    error=str(exc)[:200] or type(exc).__name__,
                    retry_in=round(delay, 1),
                )
            else:
                if stop.is_set():
                    break
                attempt = 0  # the link was up: start the backoff again from the bottom
                delay = backoff_delay(0, config.backoff_initial, config.backoff_max, self.draw)
                self._log.warning("AMI link lost", retry_in=round(delay, 1))
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _session(self, stop: asyncio.Event) -> None:
        """One connection: log in, then serve until the link drops or ``stop``."""
        loop = asyncio.get_running_loop()
        config = self.config
        self._lost = lost = asyncio.Event()
        manager = _Manager(lost.set, loop=loop, host=config.host, port=config.port)
        manager.register_event("*", self._dispatch)
        async with asyncio.timeout(config.connect_timeout):
            transport, protocol = await loop.create_connection(
                Utf8Protocol, config.host, config.port
            )
        try:
            protocol.factory = manager
            protocol.queue = deque()
            protocol.log = manager.log
            protocol.config = manager.config
            manager.protocol = protocol
            manager.responses = protocol.responses
            await self._login(manager, lost)
            self._manager = manager
            self.connected = True
            self.sessions += 1
            if self.sessions > 1:
                self.on_reconnect()
            self._log.info("AMI connected", host=config.host, port=config.port)
            self.on_link(True)
            tasks = [
                asyncio.create_task(self._keepalive(manager, transport)),
                asyncio.create_task(self._poll(manager)),
            ]
            stopping = asyncio.create_task(stop.wait())
            dropped = asyncio.create_task(lost.wait())
            try:
                await asyncio.wait([*tasks, stopping, dropped], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (*tasks, stopping, dropped):
                    task.cancel()
                await asyncio.wait([*tasks, stopping, dropped], timeout=_CLOSE_TIMEOUT)
        finally:
            was_connected = self.connected
            self.connected = False
            self._manager = None
            transport.close()
            # The socket is released when the transport reports the loss: wait for it,
            # so that a stop leaves nothing open behind.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), timeout=1.0)
            if was_connected:
                self.on_link(False)

    async def _login(self, manager: _Manager, lost: asyncio.Event) -> None:
        config = self.config
        reply = manager.send_action(
            {
                "Action": "Login",
                "Username": config.username,
                "Secret": config.secret,
                "Events": "on",
            }
        )
        dropped = asyncio.ensure_future(lost.wait())
        try:
            done, _ = await asyncio.wait(
                [reply, dropped], timeout=config.login_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            dropped.cancel()
        if reply in done:
            message = reply.result()
            if not message.success:
                raise LoginRefusedError(header(message, "Message") or "Login refused")
            return
        reply.cancel()
        self.on_login_error()
        if dropped in done:
            raise ConnectionError("Asterisk closed the AMI connection before answering Login")
        raise TimeoutError("no answer to Login")

    # --- while connected ------------------------------------------------------------

    def _dispatch(self, manager: _Manager, message: AmiEvent) -> None:
        del manager
        try:
            self.on_event(message)
        except Exception:
            # One odd event must not take the link down.
            self._log.exception("AMI event handling failed", ami_event=header(message, "Event"))

    async def _keepalive(self, manager: _Manager, transport: asyncio.BaseTransport) -> None:
        config = self.config
        while True:
            await asyncio.sleep(config.ping_interval)
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                # cancellation that lands as the reply arrives, and the task lives on.
                async with asyncio.timeout(config.ping_timeout):
                    await manager.send_action({"Action": "Ping"})
            except TimeoutError:
                self._log.warning("AMI did not answer a Ping: dropping the link")
                abort = getattr(transport, "abort", transport.close)
                abort()
                return

    async def _poll(self, manager: _Manager) -> None:
        config = self.config
        refused = False
        while True:
            names = sorted(set(self.queues()))
            if names:
                action_id = f"ivr-queuestatus-{next(_POLLS)}"
                try:
                    async with asyncio.timeout(config.action_timeout):
                        replies = await manager.send_action(
                            {"Action": "QueueStatus", "ActionID": action_id}
                        )
                except TimeoutError:
                    # An answer that never completes must not be kept growing.
                    manager.protocol.forget(action_id)
                    self._log.warning("AMI QueueStatus got no answer")
                else:
                    events = replies if isinstance(replies, list) else [replies]
                    if header(events[0], "Response") == "Success":
                        self.on_snapshot(parse_queue_status(events, names))
                    elif not refused:
                        # Zeros would pass for empty queues: export nothing instead.
                        refused = True
                        self._log.error(
                            "AMI refused QueueStatus: no queue gauges (check the AMI user's"
                            " privileges in manager.conf)",
                            reason=header(events[0], "Message")[:200],
                        )
            await asyncio.sleep(config.poll_interval)
