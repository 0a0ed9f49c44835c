"""Walk the menu on paper: what a caller hears at an instant, pressing given keys.

The script is a list of answers, one per prompt that waits for a key: a key
(``0``-``9``, ``*``, ``#``) or ``-`` for staying silent until the timeout.
When the script runs out while the menu waits for an answer, the walk stops
there and reports the last answer's kind: ``invalid`` after a wrong key,
``no_input`` otherwise (``closed`` after a closed-hours message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.flow import (
    Action,
    AudioItem,
    CallFlow,
    Digits,
    Hangup,
    NoInput,
    Outcome,
    Play,
    PromptItem,
    Route,
    SayDateTime,
)
from ivr.menu.hours import Schedule
from ivr.menu.model import KEYS
from ivr.spanish import spoken_datetime

SILENCE = "-"


class ScriptError(ValueError):
    """The key script cannot be understood."""


def parse_script(text: str) -> list[str]:
    """``"1 2"``, ``"1,2"`` and ``"12"`` all mean: press 1, then 2. ``-`` is silence."""
    answers: list[str] = []
    for token in text.replace(",", " ").split():
        for char in token:
            if char not in KEYS and char != SILENCE:
                raise ScriptError(
                    f"invalid key {char!r} in --digits: use 0-9, * and #, or - for silence"
                )
            answers.append(char)
    return answers


@dataclass
class Heard:
    kind: str  # "prompt", "datetime" or "key"
    value: str
    text: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "value": self.value}
        if self.text is not None:
            data["text"] = self.text
        return data


@dataclass
class Simulation:
    at: datetime
    heard: list[Heard] = field(default_factory=list)
    outcome: Outcome | None = None
    queue: str | None = None
    vertiente: str | None = None
    area: str | None = None
    reason: str | None = None
    next_open: datetime | None = None
    awaiting_input: str | None = None
    unused_keys: list[str] = field(default_factory=list)

    @property
    def prompts(self) -> list[str]:
        return [h.value for h in self.heard if h.kind == "prompt"]

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "prompts": self.prompts,
            "outcome": self.outcome.value if self.outcome else None,
            "queue": self.queue,
            "vertiente": self.vertiente,
            "area": self.area,
            "reason": self.reason,
            "next_open": self.next_open.isoformat() if self.next_open else None,
            "awaiting_input": self.awaiting_input,
            "unused_keys": self.unused_keys,
            "heard": [h.as_json() for h in self.heard],
        }


def simulate(schedule: Schedule, at: datetime, script: list[str]) -> Simulation:
    """Run the call flow with a fixed clock and the scripted answers."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=schedule.tz)
    flow = CallFlow(schedule, clock=lambda: at)
    result = Simulation(at=at.astimezone(schedule.tz))
    prompts = schedule.menu.prompts
    answers = list(script)

    def hear(items: tuple[AudioItem, ...]) -> None:
        for item in items:
            if isinstance(item, PromptItem):
                text = prompts[item.name].text if item.name in prompts else None
                result.heard.append(Heard("prompt", item.name, text))
            elif isinstance(item, SayDateTime):
                local = item.instant.astimezone(schedule.tz)
                spoken = spoken_datetime(local, schedule.tz)
                result.heard.append(Heard("datetime", local.isoformat(), spoken))

    action: Action | None = flow.start()
    while action is not None:
        hear(action.items)
        if isinstance(action, Route | Hangup):
            break
        if action.collect is None:
            action = flow.next()
            continue
        if not answers:
            result.awaiting_input = action.step
            break
        answer = answers.pop(0)
        result.heard.append(Heard("key", answer))
        action = flow.on_input(NoInput() if answer == SILENCE else Digits(answer))

    state = flow.state
    result.vertiente, result.area = state.vertiente, state.area
    result.unused_keys = answers
    if isinstance(action, Route):
        result.outcome, result.queue = action.outcome, action.queue
    elif isinstance(action, Hangup):
        result.outcome = action.outcome
    elif isinstance(action, Play):
        result.outcome = _stopped_outcome(flow, action)
    if state.reason is not None and (
        result.outcome is Outcome.CLOSED or isinstance(action, Hangup)
    ):
        result.reason = state.reason.value
        result.next_open = state.next_open.astimezone(schedule.tz) if state.next_open else None
    return result


def _stopped_outcome(flow: CallFlow, action: Play) -> Outcome:
    """The outcome to report when the script ended while ``action`` waits for a key."""
    if action.step.startswith("closed:"):
        return Outcome.CLOSED
    last = flow.state.events[-1][0] if flow.state.events else ""
    return Outcome.INVALID if last == "invalid" else Outcome.NO_INPUT


def render_text(result: Simulation, schedule: Schedule) -> str:
    """A transcript for people."""
    line = schedule.menu.line
    when = f"{result.at:%A %Y-%m-%d %H:%M:%S} {schedule.tz.key}"
    lines = [f"Call to {line.number} ({line.name}) at {when}", ""]
    for heard in result.heard:
        if heard.kind == "prompt":
            lines.append(f"  plays  {heard.value:<28} «{heard.text or '(no text)'}»")
        elif heard.kind == "datetime":
            lines.append(f"  says   {'(date and time)':<28} «{heard.text}»")
        else:
            label = "nothing (timeout)" if heard.value == SILENCE else heard.value
            lines.append(f"  caller presses {label}")
    lines.append("")
    outcome = result.outcome.value if result.outcome else "unknown"
    where = [f"outcome: {outcome}"]
    if result.queue:
        where.append(f"queue {result.queue}")
    if result.vertiente:
        where.append(f"vertiente {result.vertiente}")
    if result.area:
        where.append(f"area {result.area}")
    if result.reason:
        where.append(f"reason {result.reason}")
    if result.reason or result.outcome is Outcome.CLOSED:
        nxt = result.next_open.isoformat() if result.next_open else "never"
        where.append(f"next opening {nxt}")
    lines.append(", ".join(where))
    if result.awaiting_input:
        lines.append(f"(the key script ended while the menu waited at {result.awaiting_input})")
    if result.unused_keys:
        lines.append(f"(keys not used, the call had ended: {' '.join(result.unused_keys)})")
    return "\n".join(lines)
