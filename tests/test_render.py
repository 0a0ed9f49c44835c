"""How flow actions become AGI operations (ivr.agi.render): pure, so tested directly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ivr.agi.render import (
    ALL_KEYS,
    PASS_THROUGH,
    PlayFiles,
    ReadKey,
    Say,
    WaitKey,
    plan,
    sound_path,
)
from ivr.flow import AudioItem, Collect, PromptItem, SayDateTime

WHEN = datetime(2026, 12, 8, 14, 0, tzinfo=UTC)
COLLECT = Collect(keys=frozenset(ALL_KEYS), timeout=6.0)


def prompts(*names: str) -> tuple[PromptItem, ...]:
    return tuple(PromptItem(name) for name in names)


def test_a_menu_is_one_read_that_waits_the_menus_timeout() -> None:
    ops = plan(prompts("menu", "uno", "dos"), COLLECT, prompt_dir="ivr-aqui", barge_in=True)
    assert ops == (ReadKey(("ivr-aqui/menu", "ivr-aqui/uno", "ivr-aqui/dos"), 6.0, final=True),)


def test_the_greeting_is_one_read_that_only_blinks() -> None:
    ops = plan(prompts("hola", "aviso"), None, prompt_dir="ivr-aqui", barge_in=True)
    assert ops == (ReadKey(("ivr-aqui/hola", "ivr-aqui/aviso"), PASS_THROUGH, final=False),)


def test_a_closed_message_reads_says_the_date_then_waits_in_a_read() -> None:
    items: tuple[AudioItem, ...] = (
        *prompts("cerrada", "horario", "a-partir"),
        SayDateTime(WHEN),
        *prompts("volver"),
    )
    ops = plan(items, COLLECT, prompt_dir="", barge_in=True)
    assert ops == (
        ReadKey(("cerrada", "horario", "a-partir"), PASS_THROUGH, final=False),
        Say(int(WHEN.timestamp()), ALL_KEYS),
        ReadKey(("volver",), 6.0, final=True),
    )


def test_a_menu_ending_in_a_date_waits_for_the_key_after_it() -> None:
    ops = plan((*prompts("a-partir"), SayDateTime(WHEN)), COLLECT, prompt_dir="", barge_in=True)
    assert ops == (
        ReadKey(("a-partir",), PASS_THROUGH, final=False),
        Say(int(WHEN.timestamp()), ALL_KEYS),
        WaitKey(6.0),
    )


def test_messages_that_expect_nothing_play_without_barge_in() -> None:
    items: tuple[AudioItem, ...] = (
        *prompts("cerrada"),
        SayDateTime(WHEN),
        *prompts("adios", "gracias"),
    )
    ops = plan(items, None, prompt_dir="ivr-aqui/", barge_in=False)
    assert ops == (
        PlayFiles(("ivr-aqui/cerrada",)),
        Say(int(WHEN.timestamp()), ""),
        PlayFiles(("ivr-aqui/adios", "ivr-aqui/gracias")),
    )


@pytest.mark.parametrize("name", ["a&b", "a,b", "a b", 'a"b', ""])
def test_a_file_name_that_would_split_a_read_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid sound file name"):
        sound_path("ivr-aqui" if name else "", name)
