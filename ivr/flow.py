"""The call flow as a pure state machine: menu + clock + caller input -> what to do next.

No I/O happens here. A driver (the FastAGI session, ``ivr simulate``, the
tests) asks :meth:`CallFlow.start` for the first action, performs it, and
feeds back what the caller did with :meth:`CallFlow.on_input`, until an
action is final (:class:`Route` or :class:`Hangup`).

Every :class:`Play` that expects an answer carries a :class:`Collect`: the
driver must play and collect in the same command, because Asterisk drops
digits pressed between two AGI commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ivr.menu.hours import Reason, Schedule, Status
from ivr.menu.model import Menu


class Outcome(StrEnum):
    ROUTED = "routed"
    CLOSED = "closed"
    INVALID = "invalid"
    NO_INPUT = "no_input"
    FALLBACK = "fallback"
    ABANDONED_IN_MENU = "abandoned_in_menu"
    ERROR = "error"


@dataclass(frozen=True)
class PromptItem:
    """A recorded prompt, by name."""

    name: str


@dataclass(frozen=True)
class SayDateTime:
    """A date and time spoken by Asterisk in the caller's language."""

    instant: datetime


AudioItem = PromptItem | SayDateTime


@dataclass(frozen=True)
class Collect:
    """Wait for one key among ``keys`` for ``timeout`` seconds after the audio ends."""

    keys: frozenset[str]
    timeout: float


@dataclass(frozen=True)
class Play:
    step: str
    items: tuple[AudioItem, ...]
    collect: Collect | None = None


@dataclass(frozen=True)
class Route:
    """Hand the call to an operator queue (after playing ``items``)."""

    step: str
    items: tuple[AudioItem, ...]
    queue: str
    vertiente: str
    area: str
    tag: str
    outcome: Outcome


@dataclass(frozen=True)
class Hangup:
    """Play ``items`` and end the call."""

    step: str
    items: tuple[AudioItem, ...]
    outcome: Outcome


Action = Play | Route | Hangup


@dataclass(frozen=True)
class Digits:
    keys: str


@dataclass(frozen=True)
class NoInput:
    pass


@dataclass(frozen=True)
class HungUp:
    pass


Input = Digits | NoInput | HungUp


@dataclass
class CallState:
    """What the flow has learned about the call so far, for the call record."""

    path: list[str] = field(default_factory=list)
    vertiente: str | None = None
    area: str | None = None
    queue: str | None = None
    outcome: Outcome | None = None
    reason: Reason | None = None
    next_open: datetime | None = None
    hangup_step: str | None = None
    privacy_notice_version: str | None = None
    contingencies: list[str] = field(default_factory=list)
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)


_MAIN = "main_menu"
ALL_KEYS = frozenset("0123456789*#")


class CallFlow:
    """One call's walk through the menu."""

    def __init__(self, schedule: Schedule, clock: Callable[[], datetime]) -> None:
        self.schedule = schedule
        self.menu: Menu = schedule.menu
        self.clock = clock
        self.state = CallState()
        self._step = "start"
        self._vertiente: str | None = None
        self._invalid = 0
        self._silent = 0
        self._pending: Action | None = None
        self._closed: Play | None = None
        self._done = False
        self._started: datetime | None = None

    # --- public API ------------------------------------------------------------

    @property
    def step(self) -> str:
        return self._step

    @property
    def finished(self) -> bool:
        return self._done

    def start(self) -> Action:
        """The greeting, the privacy notice and any contingency announcement, then the menu."""
        line = self.menu.line
        now = self._started = self.clock()
        items: list[AudioItem] = [PromptItem(line.greeting), PromptItem(line.privacy_notice.prompt)]
        self.state.privacy_notice_version = line.privacy_notice.version
        seen: set[str] = set()
        for option in self.schedule.options.values():
            for window in self.schedule.active_windows(option, now):
                if window.announcement and window.announcement not in seen:
                    seen.add(window.announcement)
                    items.append(PromptItem(window.announcement))
                    self.state.contingencies.append(window.name)
        self._event("greeting", privacy_notice_version=line.privacy_notice.version)
        self._pending = self._main_menu()
        return self._emit(Play(step="greeting", items=tuple(items)))

    def next(self) -> Action:
        """After a Play without Collect: what comes next."""
        if self._pending is None:
            raise RuntimeError("no action is pending: the last action expected input or ended")
        action, self._pending = self._pending, None
        return self._emit(action)

    def on_input(self, given: Input) -> Action | None:
        """Feed the caller's answer to the last Play; returns the next action (None on hangup)."""
        if self._done:
            raise RuntimeError("the call flow has ended")
        if isinstance(given, HungUp):
            self.state.outcome = self.state.outcome or Outcome.ABANDONED_IN_MENU
            self.state.hangup_step = self._step
            self._event("hangup", step=self._step)
            self._done = True
            return None
        if isinstance(given, NoInput) or not given.keys:
            return self._emit(self._time_limit(self._on_silence()))
        key = given.keys[:1]
        self.state.path.append(key)
        self._event("digit", step=self._step, key=key)
        return self._emit(self._time_limit(self._on_key(key)))

    # --- transitions -------------------------------------------------------------

    def _time_limit(self, action: Action) -> Action:
        """Past ``max_menu_seconds``, a caller who would stay in the menus goes to the
        fallback instead (a choice that routes or ends the call still does)."""
        limit = self.menu.line.input.max_menu_seconds
        if not isinstance(action, Play) or self._started is None:
            return action
        if (self.clock() - self._started).total_seconds() <= limit:
            return action
        self._event("menu_time_limit", step=self._step)
        return self._fallback(Outcome.NO_INPUT)

    def _emit(self, action: Action) -> Action:
        self._step = action.step
        if isinstance(action, Route | Hangup):
            self._done = True
            if isinstance(action, Route):
                self.state.queue = action.queue
                self.state.vertiente = action.vertiente
                self.state.area = action.area
            self.state.outcome = action.outcome
            self._event(action.outcome.value, step=action.step)
        return action

    def _event(self, kind: str, **detail: object) -> None:
        self.state.events.append((kind, detail))

    def _keys(self) -> tuple[str, str, str | None]:
        k = self.menu.line.keys
        return k.repeat, k.back, k.operator

    def _collect(self) -> Collect:
        # Every key ends the prompt, so that a wrong one can be answered as invalid.
        return Collect(keys=ALL_KEYS, timeout=self.menu.line.input.timeout)

    def offered_vertientes(self, now: datetime) -> list[str]:
        return [
            vkey
            for vkey, vertiente in sorted(self.menu.vertientes.items(), key=lambda kv: kv[1].digit)
            if vertiente.enabled and self.offered_areas(vkey, now)
        ]

    def offered_areas(self, vertiente: str, now: datetime) -> list[str]:
        areas = self.menu.vertientes[vertiente].areas
        return [
            akey
            for akey, area in sorted(areas.items(), key=lambda kv: kv[1].digit)
            if self.schedule.is_offered(self.schedule.options[akey], now)
        ]

    def _main_menu(self, prefix: tuple[AudioItem, ...] = ()) -> Play:
        self._vertiente = None
        now = self.clock()
        vertientes = self.offered_vertientes(now)
        items: list[AudioItem] = [*prefix, PromptItem(self.menu.line.prompts.main_menu)]
        items.extend(PromptItem(self.menu.vertientes[v].prompt) for v in vertientes)
        return Play(step=_MAIN, items=tuple(items), collect=self._collect())

    def _submenu(self, vertiente: str, prefix: tuple[AudioItem, ...] = ()) -> Play:
        self._vertiente = vertiente
        v = self.menu.vertientes[vertiente]
        areas = self.offered_areas(vertiente, self.clock())
        items: list[AudioItem] = [*prefix, PromptItem(v.menu_prompt)]
        items.extend(PromptItem(v.areas[a].prompt) for a in areas)
        return Play(step=f"submenu:{vertiente}", items=tuple(items), collect=self._collect())

    def _current_menu(self, prefix: tuple[AudioItem, ...] = ()) -> Play:
        if self._vertiente is None:
            return self._main_menu(prefix=prefix)
        return self._submenu(self._vertiente, prefix=prefix)

    def _reset_counters(self) -> None:
        self._invalid = 0
        self._silent = 0

    def _on_key(self, key: str) -> Action:
        repeat, back, operator = self._keys()
        if self._closed is not None and self._step == self._closed.step:
            if key == back:
                self._reset_counters()
                return self._main_menu()
            if key == repeat:
                return self._closed
            return self._goodbye(Outcome.CLOSED)
        if key == repeat:
            return self._current_menu()
        if key == back:
            self._reset_counters()
            return self._main_menu()
        if operator is not None and key == operator and self.menu.line.operator:
            return self._decide(self.menu.line.operator, Outcome.ROUTED)
        now = self.clock()
        if self._vertiente is None:
            for vkey in self.offered_vertientes(now):
                if self.menu.vertientes[vkey].digit == key:
                    self._reset_counters()
                    self.state.vertiente = vkey
                    return self._submenu(vkey)
        else:
            v = self.menu.vertientes[self._vertiente]
            for akey in self.offered_areas(self._vertiente, now):
                if v.areas[akey].digit == key:
                    return self._decide(akey, Outcome.ROUTED)
        return self._on_invalid()

    def _on_invalid(self) -> Action:
        self._invalid += 1
        self._event("invalid", step=self._step)
        if self._invalid >= self.menu.line.input.max_invalid:
            return self._fallback(Outcome.INVALID)
        return self._current_menu(prefix=(PromptItem(self.menu.line.input.invalid_prompt),))

    def _on_silence(self) -> Action:
        if self._step.startswith("closed:"):
            return self._goodbye(Outcome.CLOSED)
        self._silent += 1
        self._event("no_input", step=self._step)
        if self._silent >= self.menu.line.input.max_no_input:
            return self._fallback(Outcome.NO_INPUT)
        return self._current_menu(prefix=(PromptItem(self.menu.line.input.no_input_prompt),))

    def _fallback(self, cause: Outcome) -> Action:
        fallback = self.menu.line.fallback
        prefix = (PromptItem(fallback.prompt),)
        if fallback.area is None:
            return self._goodbye(cause, prefix=prefix)
        return self._decide(fallback.area, Outcome.FALLBACK, prefix=prefix, cause=cause)

    def _goodbye(self, outcome: Outcome, prefix: tuple[AudioItem, ...] = ()) -> Hangup:
        items = (*prefix, PromptItem(self.menu.line.prompts.goodbye))
        return Hangup(step="goodbye", items=items, outcome=outcome)

    def _decide(
        self,
        area_key: str,
        outcome: Outcome,
        prefix: tuple[AudioItem, ...] = (),
        cause: Outcome | None = None,
    ) -> Action:
        """The hours check: route to the area's queue, or explain when it opens."""
        vertiente_key = self.schedule.options[area_key].vertiente
        area = self.menu.vertientes[vertiente_key].areas[area_key]
        status: Status = self.schedule.status(area_key, self.clock())
        self.state.vertiente = vertiente_key
        self.state.area = area_key
        self._event(
            "hours_check", area=area_key, open=status.open, reason=status.reason.value,
            next_open=status.next_open.isoformat() if status.next_open else None,
        )  # fmt: skip
        if status.open:
            self.state.reason = None
            self.state.next_open = None
            return Route(
                step=f"route:{area_key}",
                items=(*prefix, PromptItem(self.menu.line.prompts.transfer)),
                queue=area.queue,
                vertiente=vertiente_key,
                area=area_key,
                tag=area.tag or area_key,
                outcome=outcome,
            )
        self.state.reason = status.reason
        self.state.next_open = status.next_open
        prompts = self.menu.line.prompts
        items: list[AudioItem] = list(prefix)
        items.append(
            PromptItem(prompts.holiday if status.reason is Reason.HOLIDAY else prompts.closed)
        )
        hours_prompt = area.hours_prompt or self.menu.vertientes[vertiente_key].hours_prompt
        if hours_prompt is not None:
            items.append(PromptItem(hours_prompt))
        if status.next_open is not None:
            items.extend((PromptItem(prompts.next_opening), SayDateTime(status.next_open)))
        else:
            items.append(PromptItem(prompts.no_next_opening))
        if cause is not None:
            # Out of retries and the fallback is closed: explain and end the call.
            return self._goodbye(cause, prefix=tuple(items))
        items.append(PromptItem(prompts.back_to_menu))
        self._reset_counters()
        self._closed = Play(step=f"closed:{area_key}", items=tuple(items), collect=self._collect())
        return self._closed
