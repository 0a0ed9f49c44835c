"""``ivr dial``: a terminal softphone that calls the running service as Asterisk would.

It opens a FastAGI connection to the service (``IVR_AGI_HOST``/``IVR_AGI_PORT``), sends
the environment block of a real Asterisk 22 call and answers every command with
Asterisk's bytes (:mod:`ivr.testing`). What the caller would hear is printed with the
prompt's Spanish text from the local menu file; keys are read from the terminal when
a menu waits (Enter alone is silence until the menu's timeout, ``q`` hangs up), or
taken from ``--digits``. At the end it shows where the call went, as the dialplan
would see it.
"""

from __future__ import annotations

import asyncio
import select
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from ivr.menu.model import KEYS
from ivr.spanish import spoken_datetime
from ivr.testing import CallResult, FakeAsterisk, Heard, ScriptedCaller

__all__ = ["DialError", "TerminalCaller", "Transcript", "dial", "where_it_went"]

HANGUP_KEY = "q"


class DialError(Exception):
    """The call could not be placed (no service listening, or it closed on us)."""


@dataclass
class Transcript:
    """Prints what the caller hears, as it is heard."""

    out: TextIO
    prompts: Mapping[str, str]
    tz: ZoneInfo

    def __call__(self, heard: Heard) -> None:
        if heard.kind == "key":
            print(f"  caller presses {heard.value}", file=self.out)
        elif heard.kind == "datetime":
            local = datetime.fromtimestamp(int(heard.value), UTC).astimezone(self.tz)
            print(
                f"  says   (date and time)          «{spoken_datetime(local, self.tz)}»",
                file=self.out,
            )
        else:
            name = heard.value.rsplit("/", 1)[-1]
            text = self.prompts.get(name, "(no text for this prompt)")
            print(f"  plays  {name:<24} «{text}»", file=self.out)
        self.out.flush()


@dataclass
class TerminalCaller:
    """A person at the keyboard: one key and Enter when a menu waits for a key."""

    stdin: TextIO
    out: TextIO
    hung_up: bool = field(default=False)

    def during(self, heard: Heard) -> str | None:
        del heard
        return None

    def answer(self, timeout: float) -> str | None:
        while True:
            print(
                f"  > your key (0-9 * #), Enter for silence, {HANGUP_KEY} to hang up "
                f"[{timeout:g} s]: ",
                end="",
                file=self.out,
                flush=True,
            )
            if self.stdin.isatty():
                ready, _, _ = select.select([self.stdin], [], [], timeout)
                if not ready:
                    print("(silence)", file=self.out)
                    return None
            line = self.stdin.readline()
            text = line.strip()
            if not line or text.lower() == HANGUP_KEY:
                self.hung_up = True
                return None
            if not text:
                return None
            if len(text) == 1 and text in KEYS:
                return text
            print(f"  (a phone has no key {text!r})", file=self.out)

    def hangs_up(self, heard: Heard | None, command: str) -> bool:
        del heard, command
        return self.hung_up


def where_it_went(result: CallResult) -> list[str]:
    """The end of the call in words, as the dialplan sees it."""
    variables = result.variables
    outcome = variables.get("IVR_OUTCOME")
    lines = [f"AGISTATUS={result.agi_status}" + (f"  IVR_OUTCOME={outcome}" if outcome else "")]
    if result.agi_status == "FAILURE":
        lines.append("the dialplan routes the call to the general queue (AGISTATUS=FAILURE)")
    elif result.agi_status == "HANGUP":
        lines.append("the caller hung up in the menu")
    elif outcome in {"routed", "fallback"}:
        lines.append(
            f"the dialplan queues the call: Queue({variables.get('IVR_QUEUE')}) for "
            f"{variables.get('IVR_VERTIENTE')} / {variables.get('IVR_AREA')}; "
            f"the operator's phone shows «{variables.get('CALLERID(name)', '')}»"
        )
    else:
        lines.append("the dialplan hangs up after the goodbye")
    if "IVR_CALL_ID" in variables:
        lines.append(f"call id {variables['IVR_CALL_ID']} (service time {variables.get('IVR_AT')})")
    return lines


async def dial(  # noqa: PLR0913 - the command's options
    host: str,
    port: int,
    *,
    caller: ScriptedCaller | TerminalCaller,
    transcript: Transcript,
    at: str | None = None,
    caller_number: str = "4420000000",
    caller_name: str = "Ciudadano Prueba",
) -> CallResult:
    fake = FakeAsterisk(host, port, on_heard=transcript, timeout=3600)
    try:
        return await fake.call(
            caller,
            caller_number=caller_number.encode(),
            caller_name=caller_name.encode(),
            query=f"at={at}" if at else "",
        )
    except OSError as exc:
        raise DialError(
            f"no FastAGI service at {host}:{port} ({exc.strerror or exc}); start it with "
            "`make run` (or `ivr serve`)"
        ) from None


def run_dial(  # noqa: PLR0913
    host: str,
    port: int,
    *,
    script: list[str] | None,
    at: str | None,
    prompts: Mapping[str, str],
    tz: ZoneInfo,
    out: TextIO,
    stdin: TextIO | None = None,
) -> CallResult:
    transcript = Transcript(out, prompts, tz)
    caller: ScriptedCaller | TerminalCaller
    if script is None:
        caller = TerminalCaller(stdin or sys.stdin, out)
    else:
        caller = ScriptedCaller(answers=list(script))
    return asyncio.run(dial(host, port, caller=caller, transcript=transcript, at=at))
