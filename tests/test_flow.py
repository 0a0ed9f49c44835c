"""The pure call flow, driven step by step on the shipped menu."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from menus import area_menu, hours_yaml, menu_from_yaml

from ivr.flow import (
    ALL_KEYS,
    CallFlow,
    Digits,
    Hangup,
    HungUp,
    NoInput,
    Outcome,
    Play,
    PromptItem,
    Route,
    SayDateTime,
)
from ivr.menu.hours import Reason, Schedule
from ivr.menu.loader import load_menu

MX = ZoneInfo("America/Mexico_City")
MONDAY_9 = datetime(2026, 12, 7, 9, 0, tzinfo=MX)
MONDAY_21 = datetime(2026, 12, 7, 21, 0, tzinfo=MX)


@pytest.fixture(scope="module")
def schedule() -> Schedule:
    return Schedule(load_menu(Path(__file__).resolve().parent.parent / "config").menu)


def start(schedule: Schedule, at: datetime = MONDAY_9) -> tuple[CallFlow, Play]:
    flow = CallFlow(schedule, clock=lambda: at)
    greeting = flow.start()
    assert isinstance(greeting, Play)
    assert greeting.collect is None  # the greeting and the privacy notice are heard in full
    menu = flow.next()
    assert isinstance(menu, Play)
    return flow, menu


def names(action: Play | Route | Hangup | None) -> list[str]:
    assert action is not None
    return [item.name for item in action.items if isinstance(item, PromptItem)]


def test_greeting_notice_and_announcements_come_first(schedule: Schedule) -> None:
    flow = CallFlow(schedule, clock=lambda: MONDAY_9)
    greeting = flow.start()
    # Three areas share the winter announcement: it is played once.
    assert names(greeting) == ["bienvenida", "aviso-privacidad", "aviso-temporada-invernal"]
    assert flow.state.privacy_notice_version == "2023-03"
    assert flow.state.contingencies == [
        "Temporada invernal de enfermedades respiratorias 2026-2027"
    ]


def test_every_menu_plays_and_collects_in_one_action(schedule: Schedule) -> None:
    flow, menu = start(schedule)
    assert menu.step == "main_menu"
    assert menu.collect is not None
    assert menu.collect.keys == ALL_KEYS
    assert menu.collect.timeout == 6
    sub = flow.on_input(Digits("1"))
    assert isinstance(sub, Play)
    assert sub.collect is not None
    assert sub.step == "submenu:programas"


def test_routed_call_state_is_complete(schedule: Schedule) -> None:
    flow, _ = start(schedule)
    flow.on_input(Digits("1"))
    route = flow.on_input(Digits("2"))
    assert isinstance(route, Route)
    assert (route.queue, route.vertiente, route.area, route.tag) == (
        "finanzas-vehicular", "programas", "reemplacamiento", "REEMPLACA",
    )  # fmt: skip
    assert route.outcome is Outcome.ROUTED
    assert flow.finished
    assert flow.state.path == ["1", "2"]
    assert flow.state.outcome is Outcome.ROUTED
    kinds = [kind for kind, _ in flow.state.events]
    assert kinds == ["greeting", "digit", "digit", "hours_check", "routed"]


def test_repeat_replays_the_current_menu_without_counting(schedule: Schedule) -> None:
    flow, _ = start(schedule)
    sub = flow.on_input(Digits("1"))
    again = flow.on_input(Digits("*"))
    assert names(again) == names(sub)
    for _ in range(5):  # many repeats never reach the fallback
        again = flow.on_input(Digits("*"))
    assert isinstance(again, Play)
    assert again.step == "submenu:programas"


def test_back_returns_to_the_main_menu(schedule: Schedule) -> None:
    flow, main_menu = start(schedule)
    flow.on_input(Digits("1"))
    back = flow.on_input(Digits("#"))
    assert isinstance(back, Play)
    assert back.step == "main_menu"
    assert names(back) == names(main_menu)


def test_operator_key_routes_to_the_operator_area(schedule: Schedule) -> None:
    flow, _ = start(schedule)
    route = flow.on_input(Digits("0"))
    assert isinstance(route, Route)
    assert route.queue == "atencion-ciudadana"
    assert route.vertiente == "servicios"


def test_invalid_keys_reprompt_then_fallback(schedule: Schedule) -> None:
    flow, _ = start(schedule)
    first = flow.on_input(Digits("7"))
    assert names(first)[0] == "opcion-invalida"
    assert isinstance(first, Play)
    assert first.step == "main_menu"
    flow.on_input(Digits("8"))
    last = flow.on_input(Digits("9"))
    assert isinstance(last, Route)
    assert last.outcome is Outcome.FALLBACK
    assert names(last) == ["transferencia-general", "transferencia"]


def test_counters_reset_when_the_caller_moves_on(schedule: Schedule) -> None:
    flow, _ = start(schedule)
    flow.on_input(Digits("7"))
    flow.on_input(Digits("7"))  # two invalid at the main menu
    sub = flow.on_input(Digits("1"))
    assert isinstance(sub, Play)
    again = flow.on_input(Digits("9"))  # first invalid in the submenu: no fallback yet
    assert isinstance(again, Play)
    assert names(again)[0] == "opcion-invalida"


def test_closed_area_says_when_it_opens_and_offers_the_way_back(schedule: Schedule) -> None:
    flow, _ = start(schedule, MONDAY_21)
    flow.on_input(Digits("1"))
    closed = flow.on_input(Digits("2"))
    assert isinstance(closed, Play)
    assert closed.step == "closed:reemplacamiento"
    assert closed.collect is not None
    says = [item for item in closed.items if isinstance(item, SayDateTime)]
    assert says == [SayDateTime(datetime(2026, 12, 8, 8, 0, tzinfo=MX))]
    # The vertiente's hours are said before the next opening.
    assert names(closed) == [
        "area-cerrada",
        "horario-oficina",
        "proxima-apertura",
        "volver-al-menu",
    ]
    assert flow.state.reason is Reason.OUTSIDE_HOURS
    assert flow.on_input(Digits("*")) == closed  # repeat plays the message again
    back = flow.on_input(Digits("#"))
    assert isinstance(back, Play)
    assert back.step == "main_menu"


def test_closed_message_then_silence_says_goodbye(schedule: Schedule) -> None:
    flow, _ = start(schedule, MONDAY_21)
    flow.on_input(Digits("1"))
    flow.on_input(Digits("2"))
    end = flow.on_input(NoInput())
    assert isinstance(end, Hangup)
    assert end.outcome is Outcome.CLOSED
    assert names(end) == ["despedida"]


@pytest.mark.parametrize("steps", [[], ["1"], ["1", "9"]])
def test_hangup_at_any_step_is_abandoned_in_menu(schedule: Schedule, steps: list[str]) -> None:
    flow, _ = start(schedule)
    for key in steps:
        flow.on_input(Digits(key))
    expected_step = flow.step
    assert flow.on_input(HungUp()) is None
    assert flow.finished
    assert flow.state.outcome is Outcome.ABANDONED_IN_MENU
    assert flow.state.hangup_step == expected_step
    with pytest.raises(RuntimeError, match="ended"):
        flow.on_input(Digits("1"))


def test_next_without_pending_action_is_an_error(schedule: Schedule) -> None:
    flow, _ = start(schedule)
    with pytest.raises(RuntimeError, match="no action is pending"):
        flow.next()


def test_the_clock_is_read_at_decision_time(schedule: Schedule) -> None:
    now = [datetime(2026, 12, 7, 19, 59, 50, tzinfo=MX)]
    flow = CallFlow(schedule, clock=lambda: now[0])
    flow.start()
    flow.next()
    flow.on_input(Digits("1"))
    now[0] = datetime(2026, 12, 7, 20, 0, 5, tzinfo=MX)  # the caller took 15 s to choose
    closed = flow.on_input(Digits("2"))
    assert isinstance(closed, Play)
    assert closed.step == "closed:reemplacamiento"


def test_operator_key_is_free_for_digits_when_no_operator_area_is_named() -> None:
    menu = menu_from_yaml(
        """
  servicios:
    digit: 2
    name: Servicios
    prompt: opcion-servicios
    menu_prompt: menu-servicios
    areas:
      tramite:
        digit: 0
        name: Trámite
        department: Dependencia
        queue: general
        prompt: opcion-tramite
"""
    )
    assert menu.line.operator is None
    assert menu.line.keys.operator == "0"
    schedule = Schedule(menu)
    flow, _ = start(schedule)
    flow.on_input(Digits("2"))
    route = flow.on_input(Digits("0"))
    assert isinstance(route, Route)
    assert route.area == "tramite"


def test_empty_digits_count_as_silence(schedule: Schedule) -> None:
    flow, _ = start(schedule)
    again = flow.on_input(Digits(""))
    assert names(again)[0] == "sin-respuesta"
    assert flow.state.path == []


def test_an_area_says_its_own_hours_when_it_has_them(schedule: Schedule) -> None:
    flow, _ = start(schedule, MONDAY_21)
    flow.on_input(Digits("1"))
    closed = flow.on_input(Digits("3"))  # refrendo vehicular, with Saturday hours
    assert names(closed)[:2] == ["area-cerrada", "horario-refrendo"]


def test_no_hours_prompt_no_hours_said() -> None:
    menu = area_menu(vertiente=hours_yaml([{"days": "mon-fri", "open": "08:00", "close": "09:00"}]))
    flow = CallFlow(Schedule(menu), clock=lambda: MONDAY_21)
    flow.start()
    flow.next()
    flow.on_input(Digits("1"))  # the vertiente
    closed = flow.on_input(Digits("1"))  # its area, closed at 21:00
    assert isinstance(closed, Play)
    assert names(closed) == ["cerrada", "proxima", "volver"]


def test_endless_repeats_end_in_the_fallback(schedule: Schedule) -> None:
    now = [MONDAY_9]
    flow = CallFlow(schedule, clock=lambda: now[0])
    flow.start()
    flow.next()
    limit = schedule.menu.line.input.max_menu_seconds
    action: Play | Route | Hangup | None = None
    for _ in range(limit // 60):  # one "repeat" a minute: never invalid, never silent
        now[0] += timedelta(seconds=60)
        action = flow.on_input(Digits("*"))
        assert isinstance(action, Play)
    now[0] += timedelta(seconds=60)
    action = flow.on_input(Digits("*"))
    assert isinstance(action, Route)
    assert action.outcome is Outcome.FALLBACK
    assert action.queue == "atencion-ciudadana"
    assert ("menu_time_limit", {"step": "main_menu"}) in flow.state.events


def test_a_choice_that_routes_is_kept_past_the_time_limit(schedule: Schedule) -> None:
    now = [MONDAY_9]
    flow = CallFlow(schedule, clock=lambda: now[0])
    flow.start()
    flow.next()
    flow.on_input(Digits("2"))
    now[0] += timedelta(seconds=schedule.menu.line.input.max_menu_seconds + 1)
    action = flow.on_input(Digits("1"))  # atención ciudadana, chosen at last
    assert isinstance(action, Route)
    assert (action.outcome, action.area) == (Outcome.ROUTED, "atencion-ciudadana")
