"""How dates and times read in Mexican Spanish, for transcripts of what callers hear.

On a call the date and time are spoken by Asterisk (SAY DATETIME with its
Spanish core sounds); this text is what ``ivr simulate`` shows in its place.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

WEEKDAYS_ES = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
MONTHS_ES = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio",
    "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip


def spoken_datetime(instant: datetime, tz: ZoneInfo) -> str:
    """``martes 8 de diciembre de 2026 a las 08:00`` (24-hour clock, local time).

    It follows the prompt "Le atenderemos a partir del", hence no article.
    """
    local = instant.astimezone(tz)
    article = "a la" if local.hour == 1 else "a las"
    return (
        f"{WEEKDAYS_ES[local.weekday()]} {local.day} de {MONTHS_ES[local.month - 1]} "
        f"de {local.year} {article} {local:%H:%M}"
    )
