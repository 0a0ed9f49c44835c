"""The engine over AGI and ``ivr simulate`` on paper walk the same menu the same way.

Both drive the pure call flow; this property checks that the AGI side (render plan,
Read/GET FULL VARIABLE round trips, the fake Asterisk's key handling) neither drops,
doubles nor reorders anything: for any instant and key script, the caller hears the
same prompts and the call ends in the same place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from engine_line import ROOT, TZ, Clock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.agi.server import AgiServer
from ivr.engine import CallEngine
from ivr.menu.store import MenuStore
from ivr.records.model import Record
from ivr.simulate import SILENCE, simulate
from ivr.testing import FakeAsterisk, ScriptedCaller

# Office hours, evenings, a Saturday, a holiday (16 September) and its eve.
INSTANTS = st.sampled_from(
    [
        datetime(2026, 12, 7, 9, 0, tzinfo=TZ),
        datetime(2026, 12, 7, 19, 59, tzinfo=TZ),
        datetime(2026, 12, 7, 21, 0, tzinfo=TZ),
        datetime(2026, 12, 5, 11, 0, tzinfo=TZ),
        datetime(2026, 9, 16, 10, 0, tzinfo=TZ),
        datetime(2026, 9, 15, 23, 30, tzinfo=TZ),
    ]
)
SCRIPTS = st.lists(st.sampled_from([*"0123456789*#", SILENCE, "1", "2", "2"]), max_size=7)
PADDING = [SILENCE] * 12  # enough silences for any walk to end


class ListSink:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def submit(self, record: Record) -> None:
        self.records.append(record)


class Line:
    """The engine and its server, with records kept in a list (no database needed here)."""

    def __init__(self) -> None:
        self.clock = Clock(datetime(2026, 12, 7, 9, 0, tzinfo=TZ))
        self.store = MenuStore(ROOT / "config")
        self.engine = CallEngine(self.store, ListSink(), clock=self.clock)
        self.server = AgiServer(
            self.engine,
            host="127.0.0.1",
            port=0,
            peer_allowed=lambda _a: True,
            max_calls=10,
            env_timeout=5,
            reply_timeout=5,
        )


@pytest.fixture
async def line() -> AsyncIterator[Line]:
    opened = Line()
    await opened.server.start()
    yield opened
    await opened.server.shutdown(1)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(at=INSTANTS, script=SCRIPTS)
async def test_the_engine_walks_the_menu_as_simulate_does(
    line: Line, at: datetime, script: list[str]
) -> None:
    answers = [*script, *PADDING]
    line.clock.now = at
    on_paper = simulate(line.store.current.schedule, at, list(answers))
    fake = FakeAsterisk("127.0.0.1", line.server.port)
    on_the_line = await fake.call(ScriptedCaller(answers=list(answers)))

    expected_files = [heard.value for heard in on_paper.heard if heard.kind == "prompt"]
    assert on_the_line.files == expected_files
    spoken = [h.value for h in on_the_line.heard if h.kind == "datetime"]
    assert spoken == [
        str(int(datetime.fromisoformat(h.value).timestamp()))
        for h in on_paper.heard
        if h.kind == "datetime"
    ]
    assert on_the_line.variables["IVR_OUTCOME"] == on_paper.outcome
    assert on_the_line.variables.get("IVR_QUEUE") == on_paper.queue
    assert on_the_line.variables.get("IVR_AREA") == on_paper.area
    # Both consumed the same answers: the keys the fake pressed are the ones simulate used.
    pressed = [h.value for h in on_the_line.heard if h.kind == "key"]
    used = [h.value for h in on_paper.heard if h.kind == "key" and h.value != SILENCE]
    assert pressed == used
    assert on_paper.unused_keys  # the padding was enough: the walk ended on its own
