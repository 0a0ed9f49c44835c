"""How a flow action is played over AGI: a pure plan of operations.

Asterisk drops digits pressed *between* two AGI commands, so the plan keeps the
caller's answer inside one command wherever it can, and plays our prompts only
through applications that survive a missing sound file:

* a run of prompts that may be interrupted is one
  ``EXEC Read IVR_KEY,a&b&c,1,t,1,<timeout>``: Read plays the files with barge-in,
  then waits ``timeout`` seconds for a key; the key and ``READSTATUS`` come back in one
  ``GET FULL VARIABLE`` afterwards (a variable, so nothing is lost in between). The
  run that ends a menu waits the menu's timeout; an earlier run (the greeting, the
  start of a closed-hours message) waits :data:`PASS_THROUGH` and carries on;
* a spoken date (``SAY DATETIME``, from Asterisk's Spanish core sounds) takes every
  key as an escape digit, so a key there ends the menu at once and is the answer;
* messages that expect nothing (the transfer and goodbye messages) are one
  ``EXEC Playback a&b``, without barge-in.

Read and Playback carry on when a file is missing (Read reports ``READSTATUS=ERROR``,
Playback logs it), whereas a ``STREAM FILE`` of a missing file answers ``-1`` like a
hangup. Nothing slow runs between these commands: the engine has decided the whole
plan before it sends the first one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ivr.agi.commands import ALL_KEYS, sound_file
from ivr.flow import AudioItem, Collect, PromptItem, SayDateTime

__all__ = [
    "ALL_KEYS",
    "KEY_VARIABLE",
    "PASS_THROUGH",
    "Op",
    "PlayFiles",
    "ReadKey",
    "Say",
    "WaitKey",
    "plan",
]

KEY_VARIABLE: Final = "IVR_KEY"
PASS_THROUGH: Final = 0.05
"""Seconds an interruptible run of prompts that does not end a menu waits for a key."""


@dataclass(frozen=True, slots=True)
class ReadKey:
    """Play ``files`` with barge-in, then wait ``timeout`` seconds for one key.

    ``final``: the run ends a menu, so no key is the caller's silence."""

    files: tuple[str, ...]
    timeout: float
    final: bool


@dataclass(frozen=True, slots=True)
class PlayFiles:
    """Play ``files`` to the end; keys do not interrupt."""

    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Say:
    epoch: int
    escape: str


@dataclass(frozen=True, slots=True)
class WaitKey:
    timeout: float


Op = ReadKey | PlayFiles | Say | WaitKey


def sound_path(prompt_dir: str, name: str) -> str:
    """``<prompt_dir>/<name>``, checked to be a plain file name (no ``&``, ``,`` or blank,
    which Read and Playback would take as a separator)."""
    folder = prompt_dir.strip("/")
    return sound_file(f"{folder}/{name}" if folder else name)


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
    interruptible = barge_in or collect is not None
    runs: list[tuple[str, ...] | SayDateTime] = []
    for item in items:
        if isinstance(item, PromptItem):
            path = sound_path(prompt_dir, item.name)
            if runs and isinstance(runs[-1], tuple):
                runs[-1] = (*runs[-1], path)
            else:
                runs.append((path,))
        else:
            runs.append(item)
    ops: list[Op] = []
    for index, run in enumerate(runs):
        last = index == len(runs) - 1
        if isinstance(run, SayDateTime):
            ops.append(Say(int(run.instant.timestamp()), ALL_KEYS if interruptible else ""))
        elif not interruptible:
            ops.append(PlayFiles(run))
        elif last and collect is not None:
            ops.append(ReadKey(run, collect.timeout, final=True))
        else:
            ops.append(ReadKey(run, PASS_THROUGH, final=False))
    if collect is not None and not (ops and isinstance(ops[-1], ReadKey) and ops[-1].final):
        ops.append(WaitKey(collect.timeout))
    return tuple(ops)
