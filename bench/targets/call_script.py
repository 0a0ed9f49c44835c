"""The scripted call every baseline target sends, as a sans-I/O generator.

It sends exactly the 16 AGI command lines the engine sends for the benchmark's call
(greeting, main menu "2", submenu "1", hours check, routing variables, transfer
prompt), so the load generator can check that every target did the same work. The
generator yields a command line and is sent back the data of the reply (the text in
parentheses of ``200 result=1 (data)``, or ``""``). Each baseline drives it with its own
I/O: raw asyncio streams, panoramisk's ``send_command`` or pyst2's ``execute``.

The menu is the one path of ``config/menu.yaml`` the benchmark walks, written out by
hand: a baseline has no menu engine, which is the point of the comparison.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Mapping
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

TZ: Final = ZoneInfo("America/Mexico_City")
# The engine's record-id namespace (ivr.records.model), so ids match theirs.
CALL_ID_NAMESPACE: Final = uuid.UUID("5b1f4c2e-9d0a-4c61-8f0e-2f6f1d7a3c90")
HOLIDAYS: Final = frozenset({date(2026, 12, 25), date(2027, 1, 1)})
KEY_QUERY: Final = 'GET FULL VARIABLE "${IVR_KEY}|${READSTATUS}"'
GREETING: Final = (
    'EXEC Read "IVR_KEY,ivr-aqui/bienvenida&ivr-aqui/aviso-privacidad'
    '&ivr-aqui/aviso-temporada-invernal,1,t,1,0.05"'
)
MAIN_MENU: Final = (
    'EXEC Read "IVR_KEY,ivr-aqui/menu-principal&ivr-aqui/opcion-programas'
    '&ivr-aqui/opcion-servicios&ivr-aqui/opcion-emergencias,1,t,1,6"'
)
# digit -> (vertiente, its submenu's Read, {digit: (area, queue, caller-id tag)})
VERTIENTES: Final = {
    "2": (
        "servicios",
        'EXEC Read "IVR_KEY,ivr-aqui/menu-servicios&ivr-aqui/opcion-atencion-ciudadana,1,t,1,6"',
        {"1": ("atencion-ciudadana", "atencion-ciudadana", "ATN-CIUDADANA")},
    ),
}


def is_open(at: datetime) -> bool:
    """08:00-20:00 Monday to Friday in Querétaro, holidays closed."""
    local = at.astimezone(TZ)
    return local.weekday() < 5 and 8 <= local.hour < 20 and local.date() not in HOLIDAYS


def call_time(env: Mapping[str, str]) -> datetime:
    """The ``?at=`` of the network script (the benchmark's fixed Monday), else now."""
    script = env.get("agi_network_script", "")
    _, _, query = script.partition("?at=")
    if query:
        return datetime.fromisoformat(query).replace(tzinfo=TZ)
    return datetime.now(TZ)


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scripted_call(env: Mapping[str, str]) -> Generator[str, str, None]:
    """Yields command lines; is sent each reply's data."""
    call_id = uuid.uuid5(CALL_ID_NAMESPACE, env.get("agi_uniqueid", ""))
    yield f'SET VARIABLE "IVR_CALL_ID" "{call_id}"'
    yield "ANSWER"
    yield 'GET FULL VARIABLE "${CHANNEL(linkedid)}"'
    yield GREETING
    key = (yield KEY_QUERY).partition("|")[0]
    if not key:
        yield MAIN_MENU
        key = (yield KEY_QUERY).partition("|")[0]
    vertiente, submenu, areas = VERTIENTES[key]
    yield submenu
    area, queue, tag = areas[(yield KEY_QUERY).partition("|")[0]]
    at = call_time(env)
    outcome = "routed" if is_open(at) else "closed"
    yield f'SET VARIABLE "IVR_OUTCOME" "{outcome}"'
    yield f'SET VARIABLE "IVR_AT" "{at.isoformat()}"'
    yield f'SET VARIABLE "IVR_QUEUE" "{queue}"'
    yield f'SET VARIABLE "IVR_VERTIENTE" "{vertiente}"'
    yield f'SET VARIABLE "IVR_AREA" "{area}"'
    caller = f"{tag}: {env.get('agi_calleridname', '')}"[:40]
    yield f'SET VARIABLE "CALLERID(name)" {quote(caller)}'
    yield 'EXEC Playback "ivr-aqui/transferencia"'
