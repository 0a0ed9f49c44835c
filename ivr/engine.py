"""One citizen's call: the AGI session drives the pure call flow and records the call.

:class:`CallEngine` is the FastAGI handler. For each call it takes the menu in force
(a reload later does not change a call in progress), answers, walks the caller through
:class:`~ivr.flow.CallFlow` playing each action as planned by :mod:`ivr.agi.render`,
and ends the AGI either after setting the ``IVR_*`` channel variables the dialplan
queues on, or after the goodbye. Records go through :class:`~ivr.records.calllog.CallLog`
(a synchronous enqueue): nothing on the call path waits for the database.

How a call can end, and what is recorded:

* the flow routes or says goodbye: its outcome (``routed``, ``fallback``, ``closed``,
  ``invalid``, ``no_input``);
* the caller hangs up (``HANGUP``, ``511``, EOF, ``READSTATUS=HANGUP``) before the
  dialplan got the call: ``abandoned_in_menu`` with the step;
* anything else (a timeout, a command Asterisk refused, a bug, the shutdown grace
  running out): ``error``, and ``failure`` is sent so that the dialplan's
  ``AGISTATUS=FAILURE`` branch queues the call to the general queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import parse_qs
from uuid import UUID

import structlog

from ivr.agi import commands as cmd
from ivr.agi.protocol import Environment, LocalProtocolError, ProtocolError, Reply
from ivr.agi.render import KEY_VARIABLE, Op, PlayFiles, ReadKey, Say, WaitKey, plan
from ivr.agi.session import AgiError, AgiSession, ChannelGoneError
from ivr.flow import (
    Action,
    CallFlow,
    Digits,
    Hangup,
    HungUp,
    Input,
    NoInput,
    Outcome,
    Play,
    Route,
)
from ivr.logging import get_logger
from ivr.menu.store import MenuStore
from ivr.metrics import Metrics
from ivr.records.calllog import CallLog, Sink
from ivr.records.model import call_id_for

__all__ = ["SCRIPT", "CallEngine", "EngineSettings", "RoutedHook"]

RoutedHook = Callable[[str, UUID, str], None]
"""Told (uniqueid, call_id, queue) when a call is handed to a queue: the AMI side."""

SCRIPT: Final = "citizen-line"
TAG_MAX: Final = 40
_CONTROL: Final = dict.fromkeys(range(32), " ")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    prompt_dir: str = "ivr-aqui"
    say_format: str = "AdB 'digits/at' HM"
    reply_timeout: float = 30.0
    media_timeout: float = 600.0
    allow_time_override: bool = False


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _clean(value: str | None) -> str | None:
    """A caller field fit for the database and a channel variable: no control bytes."""
    if value is None:
        return None
    cleaned = value.translate(_CONTROL).strip()
    return cleaned or None


def _script_and_query(env: Environment) -> tuple[str, dict[str, list[str]]]:
    script, _, query = env.get("network_script").partition("?")
    return script.strip("/"), parse_qs(query)


class CallEngine:
    """The FastAGI handler of the citizen line (one instance serves every call)."""

    def __init__(  # noqa: PLR0913 - collaborators; the optional ones keyword-only
        self,
        store: MenuStore,
        sink: Sink,
        settings: EngineSettings | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
        metrics: Metrics | None = None,
        on_routed: RoutedHook | None = None,
    ) -> None:
        self.store = store
        self.sink = sink
        self.settings = settings or EngineSettings()
        self.clock = clock
        self.metrics = metrics
        self.on_routed = on_routed

    async def __call__(self, session: AgiSession, env: Environment) -> None:
        script, query = _script_and_query(env)
        if script != SCRIPT:
            get_logger("ivr.engine").error(
                "unknown AGI script: check the dialplan", script=script[:80], expected=SCRIPT
            )
            await session.fail()
            return
        call = _Call(self, session, env, query)
        await call.run()


class _Call:
    def __init__(
        self,
        engine: CallEngine,
        session: AgiSession,
        env: Environment,
        query: dict[str, list[str]],
    ) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.session = session
        self.env = env
        self.live = engine.store.current  # this call keeps this menu to its end
        self.menu = self.live.loaded.menu
        self.clock = self._clock(query)
        self.flow = CallFlow(self.live.schedule, self.clock)
        # The record's id derives from the channel's uniqueid, so the AMI side (queue
        # events name the same channel) completes the same row without a lookup.
        self.uniqueid = _clean(env.get("uniqueid")) or ""
        call_id = call_id_for(self.uniqueid) if self.uniqueid else None
        self.record = CallLog(engine.sink, call_id=call_id, clock=engine.clock)
        self.metrics = engine.metrics
        # Bound once per call: a lazy logger re-reads structlog's configuration on every
        # line (about 15 µs of a line's 50).
        self.log = get_logger("ivr.call").bind()
        self._forwarded = 0
        self._decided = False  # the IVR_* variables are set on the channel
        self._handed_over = False  # the caller heard the last message: the dialplan's now

    # --- clock ------------------------------------------------------------------

    def _clock(self, query: dict[str, list[str]]) -> Callable[[], datetime]:
        wanted = query.get("at", [None])[0]
        if wanted is None:
            return self.engine.clock
        if not self.settings.allow_time_override:
            get_logger("ivr.engine").warning(
                "ignoring ?at= in the AGI URL: IVR_AGI_ALLOW_TIME_OVERRIDE is off"
            )
            return self.engine.clock
        try:
            at = datetime.fromisoformat(wanted)
        except ValueError:
            get_logger("ivr.engine").warning("ignoring an invalid ?at= in the AGI URL")
            return self.engine.clock
        if at.tzinfo is None:
            at = at.replace(tzinfo=self.live.schedule.tz)
        started = time.monotonic()
        return lambda: at + timedelta(seconds=time.monotonic() - started)

    # --- lifecycle ----------------------------------------------------------------

    async def run(self) -> None:
        env = self.env
        number = _clean(env.known("callerid"))
        name = _clean(env.known("calleridname"))
        structlog.contextvars.bind_contextvars(
            call_id=str(self.record.call_id),
            uniqueid=env.get("uniqueid"),
            caller=number or "unknown",  # masked by the logging processor, like every number
        )
        self.record.update(
            uniqueid=self.uniqueid or None,
            channel=_clean(env.get("channel")),
            caller_number=number,
            caller_name=name,
            line_number=self.menu.line.number,
            started_at=self.engine.clock(),
            menu_version=self.menu.version,
        )
        self.log.info("call started", menu_version=self.menu.version, channel_type=env.get("type"))
        try:
            await self._walk()
        except ChannelGoneError:
            self._on_hangup()
        except asyncio.CancelledError:
            self._record_error("shutdown")
            raise
        except (AgiError, LocalProtocolError, ProtocolError) as exc:
            await self._on_error(type(exc).__name__, str(exc))
        except Exception as exc:
            self.log.exception("call failed")
            await self._on_error(type(exc).__name__, str(exc))
        finally:
            self._finish()

    def _on_hangup(self) -> None:
        state = self.flow.state
        if not self.flow.finished:
            self.flow.on_input(HungUp())
        elif not self._handed_over and state.outcome in {Outcome.ROUTED, Outcome.FALLBACK}:
            # Hung up on the way to the queue: the queue never saw this caller.
            state.outcome = Outcome.ABANDONED_IN_MENU
            state.hangup_step = self.flow.step
            state.events.append(("hangup", {"step": self.flow.step}))

    async def _on_error(self, cause: str, detail: str = "") -> None:
        if self._decided:
            # The IVR_* variables are set: the dialplan can act on the decision as it is.
            self.log.error("AGI failed after the decision", cause=cause, detail=detail[:200])
            return
        self._record_error(cause)
        self.log.error("call handed back to the dialplan", cause=cause, detail=detail[:200])
        await self.session.fail()

    def _record_error(self, cause: str) -> None:
        if self._decided:
            return
        state = self.flow.state
        state.outcome = Outcome.ERROR
        state.events.append(("error", {"step": self.flow.step, "cause": cause}))

    def _finish(self) -> None:
        self._forward_events()
        state = self.flow.state
        self.record.update(
            ended_at=(ended := self.engine.clock()),
            path=state.path,
            vertiente=state.vertiente,
            area=state.area,
            queue=state.queue,
            outcome=state.outcome.value if state.outcome else Outcome.ERROR.value,
            hangup_step=state.hangup_step,
            privacy_notice_version=state.privacy_notice_version,
        )
        if self.metrics is not None:
            outcome = state.outcome.value if state.outcome else Outcome.ERROR.value
            self.metrics.call_ended(state.vertiente, state.area, outcome)
        self.log.info(
            "call ended",
            seconds=round((ended - self.record.get("started_at")).total_seconds(), 3),
            outcome=state.outcome.value if state.outcome else None,
            step=self.flow.step,
            area=state.area,
            queue=state.queue,
            commands=self.session.commands,
        )

    def _forward_events(self) -> None:
        events = self.flow.state.events
        for kind, detail in events[self._forwarded :]:
            self.record.event(kind, **detail)
        self._forwarded = len(events)

    # --- the walk -------------------------------------------------------------------

    async def _command(self, line: bytes, *, media: bool = False) -> Reply:
        timeout = self.settings.media_timeout if media else self.settings.reply_timeout
        reply = await self.session.command(line, timeout)
        if self.session.hung_up:
            raise ChannelGoneError("HANGUP")
        return reply

    async def _walk(self) -> None:
        # First, so that AMI queue events (manager.conf channelvars) and a FAILURE
        # hand-off can be tied to this call's record.
        await self._command(cmd.set_variable("IVR_CALL_ID", str(self.record.call_id)))
        await self._command(cmd.answer())
        self.record.update(answered_at=self.engine.clock())
        linked = await self._command(cmd.get_full_variable(["CHANNEL(linkedid)"]))
        if linked.data:
            self.record.update(linkedid=_clean(linked.data))
        action: Action | None = self.flow.start()
        while action is not None:
            self._forward_events()
            if isinstance(action, Route):
                await self._route(action)
                return
            if isinstance(action, Hangup):
                await self._goodbye(action)
                return
            action = await self._play(action)

    async def _play(self, action: Play) -> Action | None:
        ops = plan(
            action.items,
            action.collect,
            prompt_dir=self.settings.prompt_dir,
            barge_in=True,
        )
        started = time.monotonic()
        given = await self._run_ops(ops, action.step)
        if self.metrics is not None:
            self.metrics.step_took(action.step, time.monotonic() - started)
        if action.collect is None:
            following = self.flow.next()
            if isinstance(given, Digits) and isinstance(following, Play) and following.collect:
                # A key pressed during the greeting answers the menu that follows it.
                self._forward_events()
                return self.flow.on_input(given)
            return following
        return self.flow.on_input(given or NoInput())

    async def _run_ops(self, ops: tuple[Op, ...], step: str) -> Input | None:
        """Play ``ops``; the key that interrupted them, or the silence after a menu."""
        for op in ops:
            if isinstance(op, ReadKey):
                given = await self._read_key(op, step)
                if isinstance(given, Digits) or op.final:
                    return given
            elif isinstance(op, PlayFiles):
                reply = await self._command(
                    cmd.exec_app("Playback", "&".join(op.files)), media=True
                )
                self._check_app(reply, "Playback", step)
            elif isinstance(op, Say):
                line = cmd.say_datetime(
                    op.epoch, op.escape, self.settings.say_format, self.menu.line.timezone
                )
                reply = await self._command(line, media=True)
                number = reply.number
                if number is not None and number > 0:
                    return Digits(chr(number))
                if number is not None and number < 0:
                    self.log.warning("date not spoken: check asterisk-core-sounds-es", step=step)
            else:
                return await self._wait_key(op)
        return None

    def _check_app(self, reply: Reply, app: str, step: str) -> None:
        if reply.number == -2:
            raise LocalProtocolError(f"Asterisk has no {app} application loaded")
        if reply.number is not None and reply.number < 0:
            self.log.warning("message did not play", step=step, app=app)

    async def _read_key(self, op: ReadKey, step: str) -> Input:
        files = "&".join(op.files)
        reply = await self._command(
            cmd.exec_app("Read", KEY_VARIABLE, files, "1", "t", "1", f"{op.timeout:g}"),
            media=True,
        )
        self._check_app(reply, "Read", step)
        result = await self._command(cmd.get_full_variable([KEY_VARIABLE, "READSTATUS"]))
        key, _, status = (result.data or "").rpartition("|")
        if status == "HANGUP":
            raise ChannelGoneError("READSTATUS=HANGUP")
        if key:
            return Digits(key[:1])
        if status == "OK":
            # Only '#' ends a Read with nothing read when 't' keeps '#' as the
            # terminator (Asterisk before 16.23/18.9): it was the caller pressing '#'.
            return Digits("#")
        if status != "TIMEOUT":
            # ERROR: a prompt is missing. A menu that could not play counts as silence,
            # so the caller reaches the fallback after the retries, never a dead end.
            self.log.warning("prompts did not play", step=step, status=status or "unknown")
        return NoInput()

    async def _wait_key(self, op: WaitKey) -> Input:
        reply = await self._command(cmd.wait_for_digit(op.timeout), media=True)
        number = reply.number
        return Digits(chr(number)) if number is not None and number > 0 else NoInput()

    async def _set(self, variables: dict[str, str | None]) -> None:
        for name, value in variables.items():
            if value is not None:
                await self._command(cmd.set_variable(name, value))

    def _common_variables(self, outcome: Outcome) -> dict[str, str | None]:
        return {
            "IVR_OUTCOME": outcome.value,
            "IVR_AT": self.clock().isoformat(timespec="seconds"),
        }

    async def _route(self, action: Route) -> None:
        name = _clean(self.env.known("calleridname"))
        tag = f"{action.tag}: {name}" if name else action.tag
        await self._set(
            {
                **self._common_variables(action.outcome),
                "IVR_QUEUE": action.queue,
                "IVR_VERTIENTE": action.vertiente,
                "IVR_AREA": action.area,
                "CALLERID(name)": tag[:TAG_MAX],
            }
        )
        self._decided = True
        if self.engine.on_routed is not None and self.uniqueid:
            self.engine.on_routed(self.uniqueid, self.record.call_id, action.queue)
        started = time.monotonic()
        await self._run_ops(
            plan(action.items, None, prompt_dir=self.settings.prompt_dir, barge_in=False),
            action.step,
        )
        if self.metrics is not None:
            self.metrics.step_took(action.step, time.monotonic() - started)
        self._handed_over = True

    async def _goodbye(self, action: Hangup) -> None:
        state = self.flow.state
        await self._set(
            {
                **self._common_variables(action.outcome),
                "IVR_VERTIENTE": state.vertiente,
                "IVR_AREA": state.area,
            }
        )
        self._decided = True
        self._handed_over = True  # the goodbye may be cut short: the outcome stands
        await self._run_ops(
            plan(action.items, None, prompt_dir=self.settings.prompt_dir, barge_in=False),
            action.step,
        )
