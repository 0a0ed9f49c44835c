"""``ivr dial``: the terminal softphone against a running engine, and without one."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_line import ROOT, TZ, Line, open_line

from ivr.cli import main
from ivr.dial import DialError, TerminalCaller, Transcript, dial, where_it_went
from ivr.menu.loader import load_menu


@pytest.fixture
async def line(database_url: str, tmp_path: Path) -> AsyncIterator[Line]:
    opened = await open_line(database_url, tmp_path)
    yield opened
    await opened.finish()


def transcript(out: io.StringIO) -> Transcript:
    menu = load_menu(ROOT / "config").menu
    return Transcript(out, {name: p.text for name, p in menu.prompts.items()}, TZ)


async def test_keys_typed_at_the_terminal_walk_the_menu(line: Line) -> None:
    out = io.StringIO()
    caller = TerminalCaller(io.StringIO("2\n1\n"), out)
    result = await dial("127.0.0.1", line.server.port, caller=caller, transcript=transcript(out))
    text = out.getvalue()
    assert "plays  bienvenida" in text
    assert "«Para servicios estatales, marque 2.»" in text
    assert text.count("> your key") == 2
    assert result.variables["IVR_OUTCOME"] == "routed"
    assert where_it_went(result)[1].startswith(
        "the dialplan queues the call: Queue(atencion-ciudadana)"
    )


async def test_q_hangs_up_and_enter_is_silence(line: Line) -> None:
    out = io.StringIO()
    caller = TerminalCaller(io.StringIO("\nx\nq\n"), out)
    result = await dial("127.0.0.1", line.server.port, caller=caller, transcript=transcript(out))
    assert result.agi_status == "HANGUP"
    assert "sin-respuesta" in out.getvalue()  # the silence got the no-input prompt
    assert "(a phone has no key 'x')" in out.getvalue()
    assert where_it_went(result)[1] == "the caller hung up in the menu"
    row = await line.call_row(result.uniqueid)
    assert (row["outcome"], row["hangup_step"]) == ("abandoned_in_menu", "main_menu")


async def test_no_service_is_a_clear_error() -> None:
    out = io.StringIO()
    with pytest.raises(DialError, match=r"no FastAGI service at 127\.0\.0\.1:9 .*make run"):
        await dial(
            "127.0.0.1",
            9,
            caller=TerminalCaller(io.StringIO(""), out),
            transcript=transcript(out),
        )


def test_the_command_exits_1_without_a_service() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["dial", "--port", "9", "--digits", "1"], out, err) == 1
    assert "no FastAGI service at 127.0.0.1:9" in err.getvalue()


def test_bad_digits_are_a_usage_error() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["dial", "--digits", "1x"], out, err) == 2
    assert "invalid key 'x'" in err.getvalue()
