from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.spanish import spoken_datetime

MX = ZoneInfo("America/Mexico_City")


@pytest.mark.parametrize(
    ("instant", "spoken"),
    [
        (datetime(2026, 12, 8, 14, 0, tzinfo=UTC), "martes 8 de diciembre de 2026 a las 08:00"),
        (datetime(2026, 9, 17, 8, 0, tzinfo=MX), "jueves 17 de septiembre de 2026 a las 08:00"),
        (datetime(2027, 1, 2, 1, 30, tzinfo=MX), "sábado 2 de enero de 2027 a la 01:30"),
        (datetime(2026, 11, 4, 22, 0, tzinfo=MX), "miércoles 4 de noviembre de 2026 a las 22:00"),
    ],
)
def test_spoken_datetime_in_mexican_spanish(instant: datetime, spoken: str) -> None:
    assert spoken_datetime(instant, MX) == spoken
