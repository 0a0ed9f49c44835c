"""How a flow action is played over AGI: a pure plan of operations.

Asterisk drops digits pressed *between* two AGI commands, so the plan keeps the
caller's answer inside one command wherever it can:

* a prompt run that ends a menu (and so waits for the answer) is one
  ``EXEC Read(IVR_KEY,a&b&c,1,t,1,<timeout>)``: Read plays the files with barge-in,
  then waits for the key; the key and ``READSTATUS`` come back in one
  ``GET FULL VARIABLE`` afterwards (a variable, so nothing is lost in between);
* earlier items of the same menu are played one command each with every key as an
  escape digit (``STREAM FILE``, ``SAY DATETIME``): a key pressed there ends the menu
  at once and is taken as the answer (barge-in);
* messages that expect nothing (the transfer and goodbye messages) are played
  without escape digits.

Nothing slow runs between these commands: the engine has already decided the whole
plan before it sends the first one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ivr.agi.commands import ALL_KEYS
from ivr.flow import AudioItem, Collect, PromptItem

__all__ = ["ALL_KEYS", "KEY_VARIABLE", "Op", "ReadKey", "Say", "Stream", "WaitKey", "plan"]

KEY_VARIABLE: Final = "IVR_KEY"


@dataclass(frozen=True, slots=True)
class Stream:
    file: str
    escape: str


@dataclass(frozen=True, slots=True)
class Say:
    epoch: int
    escape: str


@dataclass(frozen=True, slots=True)
class ReadKey:
    """Play ``files`` with barge-in, then wait ``timeout`` seconds for one key."""

    files: tuple[str, ...]
    timeout: float


@dataclass(frozen=True, slots=True)
class WaitKey:
    timeout: float


Op = Stream | Say | ReadKey | WaitKey


def sound_path(prompt_dir: str, name: str) -> str:
    return f"{prompt_dir.strip('/')}/{name}" if prompt_dir.strip("/") else name


def plan(
    items: tuple[AudioItem, ...],
    collect: Collect | None,
    *,
    prompt_dir: str,
    barge_in: bool,
) -> tuple[Op, ...]:
    """The commands that play ``items`` and, with ``collect``, take the caller's key.

    ``barge_in`` lets a key interrupt the items when nothing is collected (the
    greeting); with ``collect`` every item is interruptible.
    """
    escape = ALL_KEYS if (barge_in or collect is not None) else ""
    ops: list[Op] = []
    tail: list[str] = []
    if collect is not None:
        # The trailing run of prompts is played by the collecting Read itself.
        index = len(items)
        while index > 0 and isinstance(items[index - 1], PromptItem):
            index -= 1
        tail = [
            sound_path(prompt_dir, item.name)
            for item in items[index:]
            if isinstance(item, PromptItem)
        ]
        items = items[:index]
    for item in items:
        if isinstance(item, PromptItem):
            ops.append(Stream(sound_path(prompt_dir, item.name), escape))
        else:
            ops.append(Say(int(item.instant.timestamp()), escape))
    if collect is not None:
        ops.append(ReadKey(tuple(tail), collect.timeout) if tail else WaitKey(collect.timeout))
    return tuple(ops)
