"""End to end over TCP: the fake Asterisk calls the running engine; records land in PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import structlog
from agi_captures import load_capture
from engine_line import MONDAY_9, MONDAY_21, TZ, Line, open_line
from structlog.testing import capture_logs

from ivr.logging import configure_logging
from ivr.testing import USAGE_GET_DATA, USAGE_STREAM_FILE, CallResult, Heard, ScriptedCaller

GREETING = ["bienvenida", "aviso-privacidad", "aviso-temporada-invernal"]
MAIN = ["menu-principal", "opcion-programas", "opcion-servicios", "opcion-emergencias"]
SERVICIOS = ["menu-servicios", "opcion-atencion-ciudadana"]


@pytest.fixture
async def line(database_url: str, tmp_path: Path) -> AsyncIterator[Line]:
    opened = await open_line(database_url, tmp_path)
    yield opened
    await opened.finish()


async def call(line: Line, caller: ScriptedCaller, **options: object) -> CallResult:
    return await line.fake(**options).call(caller)


async def test_routed_call_sets_variables_and_leaves_a_complete_record(line: Line) -> None:
    result = await call(line, ScriptedCaller(answers=["2", "1"]))

    assert result.agi_status == "SUCCESS"
    assert result.files == [*GREETING, *MAIN, *SERVICIOS, "transferencia"]
    variables = result.variables
    assert variables["IVR_OUTCOME"] == "routed"
    assert variables["IVR_QUEUE"] == "atencion-ciudadana"
    assert variables["IVR_VERTIENTE"] == "servicios"
    assert variables["IVR_AREA"] == "atencion-ciudadana"
    assert variables["CALLERID(name)"] == "ATN-CIUDADANA: Ciudadano Prueba"
    assert variables["IVR_AT"] == MONDAY_9.isoformat(timespec="seconds")

    row = await line.call_row(result.uniqueid)
    assert str(row["call_id"]) == variables["IVR_CALL_ID"]
    assert row["outcome"] == "routed"
    assert (row["vertiente"], row["area"], row["queue"]) == (
        "servicios",
        "atencion-ciudadana",
        "atencion-ciudadana",
    )
    assert row["path"] == "2 1"
    assert row["caller_number"] == "4421234567"
    assert row["caller_name"] == "Ciudadano Prueba"
    assert row["caller_hash"] is not None
    assert row["channel"].startswith("PJSIP/trunk-")
    assert row["linkedid"] == result.uniqueid  # an inbound channel starts its own call
    assert row["line_number"] == "4421015205"
    assert row["privacy_notice_version"] == "2023-03"
    assert row["menu_version"] == line.store.current.loaded.menu.version
    assert row["started_at"] <= row["answered_at"] <= row["ended_at"]
    assert row["hangup_step"] is None
    kinds = [kind for kind, _ in row["events"]]
    assert kinds == ["greeting", "digit", "digit", "hours_check", "routed"]


async def test_closed_hours_speak_the_next_opening_and_say_goodbye(line: Line) -> None:
    line.clock.now = MONDAY_21
    result = await call(line, ScriptedCaller(answers=["2", "1", "-"]))

    closing = ["area-cerrada", "horario-oficina", "proxima-apertura"]
    assert result.files == [*GREETING, *MAIN, *SERVICIOS, *closing, "volver-al-menu", "despedida"]
    spoken = [heard for heard in result.heard if heard.kind == "datetime"]
    assert spoken == [
        Heard("datetime", str(int(datetime(2026, 12, 8, 8, 0, tzinfo=TZ).timestamp())))
    ]
    say = next(command for command in result.commands if command.startswith("SAY DATETIME"))
    assert say.endswith('"America/Mexico_City"')
    assert result.variables["IVR_OUTCOME"] == "closed"
    assert "IVR_QUEUE" not in result.variables

    row = await line.call_row(result.uniqueid)
    assert (row["outcome"], row["area"], row["queue"]) == ("closed", "atencion-ciudadana", None)


async def test_closed_message_offers_the_way_back_to_the_menu(line: Line) -> None:
    line.clock.now = MONDAY_21
    result = await call(line, ScriptedCaller(answers=["2", "1", "#", "-", "-", "-"]))
    # Back from the closed message: the main menu again, then the silences' fallback.
    after_closed = result.files[result.files.index("volver-al-menu") + 1 :]
    assert after_closed[:4] == MAIN
    assert result.variables["IVR_OUTCOME"] in {"fallback", "no_input"}


async def test_invalid_keys_get_the_retries_then_the_fallback(line: Line) -> None:
    result = await call(line, ScriptedCaller(answers=["9", "9", "9"]))
    assert result.files.count("opcion-invalida") == 2
    assert result.files[-2:] == ["transferencia-general", "transferencia"]
    assert result.variables["IVR_OUTCOME"] == "fallback"
    assert result.variables["IVR_QUEUE"] == "atencion-ciudadana"
    row = await line.call_row(result.uniqueid)
    assert row["outcome"] == "fallback"
    assert [kind for kind, _ in row["events"]].count("invalid") == 3


async def test_no_input_gets_the_retries_then_the_fallback(line: Line) -> None:
    result = await call(line, ScriptedCaller(answers=[]))
    assert result.files.count("sin-respuesta") == 2
    assert result.variables["IVR_OUTCOME"] == "fallback"
    row = await line.call_row(result.uniqueid)
    assert [kind for kind, _ in row["events"]].count("no_input") == 3


async def test_repeat_back_and_operator_keys(line: Line) -> None:
    result = await call(line, ScriptedCaller(answers=["2", "*", "#", "0"]))
    files = result.files
    assert files == [*GREETING, *MAIN, *SERVICIOS, *SERVICIOS, *MAIN, "transferencia"]
    assert result.variables["IVR_OUTCOME"] == "routed"
    assert result.variables["IVR_AREA"] == "atencion-ciudadana"


async def test_a_key_during_the_greeting_answers_the_main_menu(line: Line) -> None:
    caller = ScriptedCaller(answers=["1"], press_during={"aviso-privacidad": "2"})
    result = await call(line, caller)
    assert result.files == ["bienvenida", "aviso-privacidad", *SERVICIOS, "transferencia"]
    assert result.variables["IVR_AREA"] == "atencion-ciudadana"


async def test_a_key_during_a_closed_message_is_taken(line: Line) -> None:
    line.clock.now = MONDAY_21
    caller = ScriptedCaller(answers=["2", "1"], press_during={"datetime": "#"})
    result = await call(line, caller)
    heard = result.files[result.files.index("proxima-apertura") + 1 :]
    assert heard[:4] == MAIN  # '#' during the date went back to the main menu


HANGUP_STEPS = [
    (MONDAY_9, [], "ANSWER", "start"),  # the caller hangs up before the service answers
    (MONDAY_9, [], "bienvenida", "greeting"),
    (MONDAY_9, [], "menu-principal", "main_menu"),
    (MONDAY_9, ["2"], "menu-servicios", "submenu:servicios"),
    (MONDAY_21, ["2", "1"], "datetime", "closed:atencion-ciudadana"),
    (MONDAY_9, ["2", "1"], "transferencia", "route:atencion-ciudadana"),
]


@pytest.mark.parametrize("style", ["after_reply", "before_reply", "exit"])
@pytest.mark.parametrize(("at", "answers", "hangup_on", "step"), HANGUP_STEPS)
async def test_hangup_at_each_step_is_recorded_with_the_step(  # noqa: PLR0917 - parametrized
    line: Line, style: str, at: datetime, answers: list[str], hangup_on: str, step: str
) -> None:
    line.clock.now = at
    result = await call(
        line, ScriptedCaller(answers=list(answers), hangup_on=hangup_on), hangup_style=style
    )
    assert result.agi_status == "HANGUP"
    # The engine stops at the HANGUP: no command after the one that saw it.
    index = next(i for i, c in enumerate(result.commands) if _is_hangup_command(c, hangup_on))
    assert len(result.commands) == index + 1
    row = await line.call_row(result.uniqueid)
    assert row["outcome"] == "abandoned_in_menu"
    assert row["hangup_step"] == step
    assert row["events"][-1][0] == "hangup"


def _is_hangup_command(command: str, hangup_on: str) -> bool:
    if hangup_on == "ANSWER":
        return command == "ANSWER"
    if hangup_on == "datetime":
        return command.startswith("SAY DATETIME")
    return hangup_on in command


async def test_a_multi_line_520_hands_the_call_back_to_the_dialplan(line: Line) -> None:
    line.clock.now = MONDAY_21
    result = await call(
        line,
        ScriptedCaller(answers=["2", "1"]),
        faults={"SAY DATETIME": USAGE_STREAM_FILE},
    )
    assert result.agi_status == "FAILURE"  # the dialplan queues to the general queue
    row = await line.call_row(result.uniqueid)
    assert row["outcome"] == "error"
    assert row["events"][-1][0] == "error"


async def test_the_session_stays_in_step_after_a_520(line: Line) -> None:
    # A 520 on the first prompt is consumed whole: the next call on the same server works.
    first = await call(
        line, ScriptedCaller(), faults={'GET FULL VARIABLE "${CHANNEL': USAGE_GET_DATA}
    )
    assert first.agi_status == "FAILURE"
    second = await call(line, ScriptedCaller(answers=["2", "1"]), chunk=1)
    assert second.variables["IVR_OUTCOME"] == "routed"


async def test_caller_name_cannot_inject_commands(line: Line) -> None:
    hostile = b'x" EXEC System "rm -rf /\\'
    fake = line.fake()
    result = await fake.call(ScriptedCaller(answers=["2", "1"]), caller_name=hostile)
    assert result.variables["CALLERID(name)"] == 'ATN-CIUDADANA: x" EXEC System "rm -rf /\\'
    assert not any(command.startswith("EXEC System") for command in result.commands)
    assert all(
        command.split()[0] in {"ANSWER", "GET", "EXEC", "SET"} for command in result.commands
    )
    # Only our applications ran: the greeting, two menus and the transfer message.
    apps = [command.split()[1] for command in result.commands if command.startswith("EXEC")]
    assert apps == ["Read", "Read", "Read", "Playback"]


async def test_hostile_key_data_is_reduced_to_one_key(line: Line) -> None:
    class Hostile(ScriptedCaller):
        def answer(self, timeout: float) -> str | None:
            return '2" EXEC System "x\\' if not self.answers else super().answer(timeout)

    result = await call(line, Hostile(answers=[]))
    # The first character of what Read returned is the key; nothing is echoed to Asterisk.
    assert not any("System" in command for command in result.commands)
    row = await line.call_row(result.uniqueid)
    assert row["path"].split()[0] == "2"


async def test_latin1_caller_name_is_kept_readable(line: Line) -> None:
    result = await line.fake().call(
        ScriptedCaller(answers=["2", "1"]), caller_name=b"Jos\xe9 P\xe9rez"
    )
    row = await line.call_row(result.uniqueid)
    assert row["caller_name"] == "José Pérez"
    assert result.variables["CALLERID(name)"] == "ATN-CIUDADANA: José Pérez"


async def test_unknown_script_is_handed_back_to_the_dialplan(line: Line) -> None:
    result = await line.fake(script="other-script").call(ScriptedCaller())
    assert result.agi_status == "FAILURE"
    assert result.commands == ["failure"]


async def test_logs_carry_the_call_context_and_no_caller_data(line: Line) -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    try:
        result = await call(line, ScriptedCaller(answers=["2", "1"]))
    finally:
        structlog.reset_defaults()
    entries = [json.loads(text) for text in stream.getvalue().splitlines()]
    ended = next(entry for entry in entries if entry["event"] == "call ended")
    assert ended["outcome"] == "routed"
    assert ended["call_id"] == result.variables["IVR_CALL_ID"]
    assert ended["uniqueid"] == result.uniqueid
    assert ended["caller"] == "******4567"
    assert ended["seconds"] == 0  # the line's clock is frozen in these tests
    assert "4421234567" not in stream.getvalue()
    assert "Ciudadano Prueba" not in stream.getvalue()


async def test_calls_in_progress_keep_their_menu_when_a_bad_edit_lands(line: Line) -> None:
    good = line.menu_path.read_text(encoding="utf-8")
    gate = asyncio.Event()

    class Slow(ScriptedCaller):
        def answer(self, timeout: float) -> str | None:
            return super().answer(timeout)

    async def slow_call() -> CallResult:
        fake = line.fake(play_seconds=0.05)
        return await fake.call(Slow(answers=["2", "1"]))

    task = asyncio.create_task(slow_call())
    await asyncio.sleep(0.1)  # the call is in the greeting
    line.menu_path.write_text(good.replace("digit: 3\n", "digit: 33\n", 1), encoding="utf-8")
    rejected = line.store.reload()
    assert not rejected.ok
    assert "menu.yaml:" in str(rejected.errors[0])
    edited = good.replace('version: "2026-12-04.2"', 'version: "2026-12-04.3"')
    edited = edited.replace("    menu_prompt: menu-servicios", "    menu_prompt: menu-programas", 1)
    line.menu_path.write_text(edited, encoding="utf-8")
    assert line.store.reload().changed
    gate.set()
    first = await task
    second = await line.fake().call(ScriptedCaller(answers=["2", "1"]))
    # The call in progress finished on the menu it started with; the next one has the edit.
    assert "menu-servicios" in first.files
    assert "menu-servicios" not in second.files
    assert first.variables["IVR_OUTCOME"] == second.variables["IVR_OUTCOME"] == "routed"


@pytest.mark.parametrize("name", ["agi-local-session", "agi-sip-session"])
async def test_the_environment_of_a_real_asterisk_call(line: Line, name: str) -> None:
    # The exact environment block Asterisk 22 sent in the capture, script URL and args included.
    block = load_capture(name).received.split(b"\n\n", 1)[0].split(b"\n")
    pairs = [raw.split(b": ", 1) if b": " in raw else [raw.rstrip(b":"), b""] for raw in block]
    values = [(key.decode()[4:], value) for key, value in pairs if not key.startswith(b"agi_arg_")]
    args = [value for key, value in pairs if key.startswith(b"agi_arg_")]
    result = await line.fake().call(ScriptedCaller(answers=["2", "1"]), env=values, args=args)
    assert result.variables["IVR_OUTCOME"] == "routed"
    row = await line.call_row(dict(values)["uniqueid"].decode())
    assert row["channel"] == dict(values)["channel"].decode()
    assert row["caller_number"] == dict(values)["callerid"].decode()
    assert row["caller_name"] == dict(values)["calleridname"].decode()


async def test_an_error_after_the_decision_leaves_the_decision_to_the_dialplan(line: Line) -> None:
    result = await call(
        line,
        ScriptedCaller(answers=["2", "1"]),
        faults={'EXEC Playback "ivr-aqui/transferencia': b"510 Invalid or unknown command\n"},
    )
    # The variables were set before the transfer message failed: no "failure", the
    # dialplan queues the caller where the menu sent them.
    assert result.agi_status == "SUCCESS"
    assert "failure" not in result.commands
    assert result.variables["IVR_QUEUE"] == "atencion-ciudadana"
    row = await line.call_row(result.uniqueid)
    assert row["outcome"] == "routed"


async def test_missing_prompts_never_trap_a_caller(line: Line) -> None:
    # A PBX without the menu's audio: the greeting and main menu cannot play. Each
    # menu counts as silence, so the caller reaches the fallback queue, not a dead end.
    result = await call(line, ScriptedCaller(), missing={"bienvenida", "menu-principal"})
    assert result.agi_status == "SUCCESS"
    assert result.variables["IVR_OUTCOME"] == "fallback"
    assert result.variables["IVR_QUEUE"] == "atencion-ciudadana"
    row = await line.call_row(result.uniqueid)
    assert row["outcome"] == "fallback"


async def test_the_time_override_is_ignored_unless_allowed(line: Line) -> None:
    # The line's engine runs with the default IVR_AGI_ALLOW_TIME_OVERRIDE=false.
    with capture_logs() as logs:
        result = await line.fake().call(
            ScriptedCaller(answers=["2", "1"]), query="at=2026-12-07T21:00"
        )
    assert result.variables["IVR_OUTCOME"] == "routed"  # 09:00, not the 21:00 asked for
    assert result.variables["IVR_AT"] == MONDAY_9.isoformat(timespec="seconds")
    assert any("IVR_AGI_ALLOW_TIME_OVERRIDE" in entry["event"] for entry in logs)
