"""Menu validation: each rule reports a clear message at the right ``file:line:col``.

Broken variants are built from the shipped ``config/menu.yaml`` by replacing one
exact piece of its text (which must occur exactly once). The edited line carries
the comment ``# <-- HERE``, so expected line numbers are found by searching the
edited text, never written by hand. Columns are computed from the edited line.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.menu import loader
from ivr.menu.checks import check_menu
from ivr.menu.loader import ConfigError, LoadedMenu, MenuError, load_menu, load_menu_text
from ivr.menu.model import DAY_SECONDS, Area, TimeRange, parse_digit

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config" / "menu.yaml"
TEXT = SHIPPED.read_text(encoding="utf-8")
HERE = "# <-- HERE"
FILENAME = "menu.yaml"

# Pieces of the shipped menu that the variants edit (each occurs exactly once).
REEMPLACAMIENTO_DIGIT = "        digit: 2\n        name: Reemplacamiento\n"
QROBOT_DIGIT = "        digit: 4\n        name: Qrobot, chatbot de WhatsApp\n"
SERVICIOS_DIGIT = "    digit: 2\n    name: Servicios estatales\n"
REFRENDO_WEEKDAYS = (
    '          - days: mon-fri\n            open: "08:00"\n            close: "20:00"\n'
)
REEMPLACAMIENTO_PERIOD = "        period: {from: 2026-01-05, to: 2027-06-30}\n"
CEA_WINDOW = "            from: 2026-06-01\n            to: 2026-10-31\n"
CLOSURE = "    - from: 2027-03-25\n      to: 2027-03-26\n"
OPENINGS = "  openings: []"
TIMEZONE = "  timezone: America/Mexico_City\n"
OPERATOR_KEY = '    operator: "0"'


# --- helpers -----------------------------------------------------------------


def edit(*replacements: tuple[str, str], text: str = TEXT) -> str:
    """The shipped menu with each ``old`` text (present exactly once) replaced by ``new``."""
    for old, new in replacements:
        assert text.count(old) == 1, f"the shipped menu should contain {old!r} exactly once"
        text = text.replace(old, new)
    return text


def lines_of(text: str, marker: str) -> list[int]:
    """The 1-based numbers of the lines containing ``marker``."""
    return [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]


def line_of(text: str, marker: str = HERE) -> int:
    """The 1-based number of the only line containing ``marker``."""
    found = lines_of(text, marker)
    assert len(found) == 1, f"{marker!r} should mark exactly one line, found {found}"
    return found[0]


def col_of(text: str, line: int, fragment: str) -> int:
    """The 1-based column where ``fragment`` starts on ``line``."""
    content = text.splitlines()[line - 1]
    assert fragment in content, f"{fragment!r} is not on line {line}: {content!r}"
    return content.index(fragment) + 1


def value_col(text: str, line: int) -> int:
    """The column of the value on a ``key: value`` line."""
    return col_of(text, line, ": ") + 2


def key_col(text: str, line: int) -> int:
    """The column of the key on a ``key: value`` line (after any ``- ``)."""
    content = text.splitlines()[line - 1]
    return len(content) - len(content.lstrip(" -")) + 1


def errors_of(text: str) -> list[ConfigError]:
    with pytest.raises(MenuError) as excinfo:
        load_menu_text(text, FILENAME)
    errors = excinfo.value.errors
    assert errors, "MenuError must carry at least one error"
    assert str(excinfo.value) == "\n".join(str(e) for e in errors)
    return errors


def only_error(text: str) -> ConfigError:
    errors = errors_of(text)
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def assert_error(error: ConfigError, line: int, col: int, message: str) -> None:
    assert (error.file, error.line, error.col, error.message) == (FILENAME, line, col, message)


def load(text: str) -> LoadedMenu:
    return load_menu_text(text, FILENAME)


def area(loaded: LoadedMenu, vertiente: str, key: str) -> Area:
    return loaded.menu.vertientes[vertiente].areas[key]


# --- the shipped menu --------------------------------------------------------


def test_shipped_menu_is_valid() -> None:
    loaded = load_menu(ROOT / "config")
    assert loaded.path == SHIPPED
    assert list(loaded.menu.vertientes) == ["programas", "servicios", "emergencias"]
    assert check_menu(loaded.menu) == []


def test_shipped_menu_loads_from_the_file_or_its_folder() -> None:
    assert load_menu(SHIPPED).digest == load_menu(ROOT / "config").digest


def test_the_same_digit_in_different_vertientes_is_fine() -> None:
    menu = load(TEXT).menu
    firsts = [v.areas[next(iter(v.areas))].digit for v in menu.vertientes.values()]
    assert firsts == ["1", "1", "1"]


# --- 1. duplicate digits -----------------------------------------------------


def test_duplicate_area_digit_points_at_the_second() -> None:
    text = edit(
        (REEMPLACAMIENTO_DIGIT, f"        digit: 1 {HERE}\n        name: Reemplacamiento\n")
    )
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "duplicate digit 1 in the submenu of 'programas': already used by area 'paseo-5-febrero'",
    )
    first = line_of(text, "name: Paseo 5 de Febrero") - 1  # the first area's digit line
    assert first < line


def test_duplicate_vertiente_digit_points_at_the_second() -> None:
    text = edit((SERVICIOS_DIGIT, f"    digit: 1 {HERE}\n    name: Servicios estatales\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "duplicate digit 1 in the main menu: already used by vertiente 'programas'",
    )


def test_a_digit_written_as_text_is_the_same_digit() -> None:
    text = edit(
        (REEMPLACAMIENTO_DIGIT, f'        digit: "1" {HERE}\n        name: Reemplacamiento\n')
    )
    error = only_error(text)
    assert (error.line, error.message.split(":")[0]) == (
        line_of(text),
        "duplicate digit 1 in the submenu of 'programas'",
    )


def test_area_keys_must_be_unique_across_vertientes() -> None:
    text = edit(("      cea:\n        digit: 4\n", f"      qrobot: {HERE}\n        digit: 4\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        key_col(text, line),
        "area key 'qrobot' is already used in vertiente 'programas'; "
        "area keys must be unique across the line",
    )


# --- 2. digits that are not a key 0-9, or clash with a global key -----------


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("12", "12"),
        ("a", "'a'"),
        ('"*"', "'*'"),
        ('"#"', "'#'"),
        ("-1", "-1"),
        ("1.0", "1.0"),
        ("04", "'04'"),
        ("true", "True"),
        ('""', "''"),
    ],
)
def test_area_digit_must_be_one_key_0_to_9(written: str, shown: str) -> None:
    text = edit((QROBOT_DIGIT, f"        digit: {written} {HERE}\n        name: Qrobot\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        f"a menu digit must be a single key 0-9, got {shown}",
    )


def test_vertiente_digit_must_be_one_key_0_to_9() -> None:
    text = edit((SERVICIOS_DIGIT, f"    digit: 10 {HERE}\n    name: Servicios estatales\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "a menu digit must be a single key 0-9, got 10",
    )


def test_empty_digit_is_reported_at_its_key() -> None:
    text = edit((QROBOT_DIGIT, f"        digit: {HERE}\n        name: Qrobot\n"))
    error = only_error(text)
    assert error.line == line_of(text)
    assert error.message == "a menu digit must be a single key 0-9, got None"


def test_area_digit_clashing_with_the_operator_key() -> None:
    text = edit((QROBOT_DIGIT, f"        digit: 0 {HERE}\n        name: Qrobot\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "digit 0 clashes with the global 'operator' key (line.keys.operator)",
    )


def test_vertiente_digit_clashing_with_the_operator_key() -> None:
    text = edit((SERVICIOS_DIGIT, f"    digit: 0 {HERE}\n    name: Servicios estatales\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "digit 0 clashes with the global 'operator' key (line.keys.operator)",
    )


def test_digit_clashing_with_a_global_key_set_to_a_digit() -> None:
    text = edit(
        ('    back: "#"', '    back: "9"'),
        (QROBOT_DIGIT, f"        digit: 9 {HERE}\n        name: Qrobot\n"),
    )
    error = only_error(text)
    assert (error.line, error.message) == (
        line_of(text),
        "digit 9 clashes with the global 'back' key (line.keys.back)",
    )


def test_digit_0_is_free_when_there_is_no_operator_key() -> None:
    text = edit(
        (OPERATOR_KEY, "    operator: null"),
        (QROBOT_DIGIT, "        digit: 0\n        name: Qrobot\n"),
    )
    loaded = load(text)
    assert loaded.menu.line.keys.operator is None
    assert area(loaded, "programas", "qrobot").digit == "0"


def test_two_global_roles_on_one_key() -> None:
    text = edit(('    back: "#"', f'    back: "*" {HERE}'))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "key '*' is used for both 'repeat' and 'back'",
    )


def test_global_key_must_be_a_phone_key() -> None:
    text = edit(('    back: "#"', f'    back: "x" {HERE}'))
    line = line_of(text)
    assert_error(
        only_error(text), line, value_col(text, line), "a key must be one of 0-9, * or #, got 'x'"
    )


@given(st.integers(min_value=0, max_value=9))
def test_every_digit_0_to_9_is_accepted_as_number_or_text(digit: int) -> None:
    assert parse_digit(digit) == str(digit)
    assert parse_digit(str(digit)) == str(digit)


@given(st.integers().filter(lambda n: not 0 <= n <= 9))
def test_other_integers_are_not_digits(number: int) -> None:
    with pytest.raises(ValueError, match="a menu digit must be a single key 0-9"):
        parse_digit(number)


# --- 3. close after open; overnight ------------------------------------------


def hours(open_: str, close: str, *extra: str) -> str:
    """Refrendo vehicular's weekday rule rewritten; the close line is marked."""
    lines = ["          - days: mon-fri", f"            open: {open_}", *extra]
    lines.append(f"            close: {close} {HERE}")
    return edit((REFRENDO_WEEKDAYS, "\n".join(lines) + "\n"))


@pytest.mark.parametrize(
    ("open_", "close"),
    [("20:00", "08:00"), ("08:00", "08:00"), ("08:00", "07:59"), ("00:00", "00:00")],
)
def test_close_must_come_after_open(open_: str, close: str) -> None:
    text = hours(f'"{open_}"', f'"{close}"')
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        f"close time {close} is not after open time {open_}; "
        "for a range that ends the next day add 'overnight: true'",
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_overnight_range_is_accepted(where: str) -> None:
    overnight = "            overnight: true"
    if where == "before":
        text = hours('"22:00"', '"06:00"', overnight)
    else:
        text = edit(
            (f'close: "06:00" {HERE}\n', f'close: "06:00"\n{overnight}\n'),
            text=hours('"22:00"', '"06:00"'),
        )
    rule = area(load(text), "programas", "refrendo-vehicular").hours
    assert rule is not None
    assert (rule[0].open, rule[0].close, rule[0].overnight) == (22 * 3600, 6 * 3600, True)
    assert rule[0].end_offset == DAY_SECONDS + 6 * 3600


def test_overnight_range_that_closes_after_it_opens_is_rejected() -> None:
    text = hours('"08:00"', '"20:00"', "            overnight: true")
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "overnight range closes at 20:00, after it opens at 08:00: "
        "drop 'overnight' or close earlier than it opens",
    )


def test_closing_at_24_00_is_midnight() -> None:
    rule = area(load(hours('"08:00"', '"24:00"')), "programas", "refrendo-vehicular").hours
    assert rule is not None
    assert rule[0].close == DAY_SECONDS


def test_opening_at_24_00_is_rejected() -> None:
    opening = f'            open: "24:00" {HERE}\n'
    text = edit(
        (REFRENDO_WEEKDAYS, REFRENDO_WEEKDAYS.replace('            open: "08:00"\n', opening))
    )
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "a range cannot open at 24:00: use '00:00' of the next day",
    )


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ('"25:00"', "invalid time '25:00': hours 00-23 (or 24:00), minutes 00-59"),
        ('"8:60"', "invalid time '8:60': hours 00-23 (or 24:00), minutes 00-59"),
        ('"8h"', "invalid time '8h': expected 'HH:MM', e.g. '08:00'"),
        ("800", "write times as quoted text 'HH:MM', got 800"),
    ],
)
def test_invalid_times(written: str, message: str) -> None:
    text = hours('"08:00"', written)
    line = line_of(text)
    assert_error(only_error(text), line, value_col(text, line), message)


def test_unquoted_times_are_text_not_sexagesimal_numbers() -> None:
    # YAML 1.1 would read 8:00 as the integer 480; the loader keeps it as text.
    rule = area(load(hours("8:00", "20:00")), "programas", "refrendo-vehicular").hours
    assert rule is not None
    assert (rule[0].open, rule[0].close) == (8 * 3600, 20 * 3600)


def test_ranges_in_contingencies_and_dated_openings_are_checked_too() -> None:
    opening = (
        '  openings: [{date: 2027-02-01, name: Jornada, hours: [{open: "14:00", close: "09:00"}]}]'
    )
    text = edit((OPENINGS, opening + f" {HERE}"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        col_of(text, line, '"09:00"'),
        "close time 09:00 is not after open time 14:00; "
        "for a range that ends the next day add 'overnight: true'",
    )


@given(
    st.integers(min_value=0, max_value=DAY_SECONDS - 60).map(lambda s: s - s % 60),
    st.integers(min_value=0, max_value=DAY_SECONDS).map(lambda s: s - s % 60),
    st.booleans(),
)
def test_time_range_rule(opens: int, closes: int, overnight: bool) -> None:
    """A range is valid iff it closes after it opens, or at or before it with 'overnight'."""

    def clock(seconds: int) -> str:
        return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"

    data = {"open": clock(opens), "close": clock(closes), "overnight": overnight}
    valid = closes <= opens and closes < DAY_SECONDS if overnight else closes > opens
    if valid:
        assert TimeRange.model_validate(data).end_offset > opens
    else:
        with pytest.raises(ValueError, match="close"):
            TimeRange.model_validate(data)


# --- 4. periods ending before they start -------------------------------------


def test_area_period_ending_before_it_starts() -> None:
    text = edit(
        (REEMPLACAMIENTO_PERIOD, f"        period: {{from: 2027-01-05, to: 2026-06-30}} {HERE}\n")
    )
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        col_of(text, line, "2026-06-30"),
        "period ends on 2026-06-30 before it starts on 2027-01-05",
    )


def test_one_day_period_is_fine() -> None:
    text = edit((REEMPLACAMIENTO_PERIOD, "        period: {from: 2027-01-05, to: 2027-01-05}\n"))
    period = area(load(text), "programas", "reemplacamiento").period
    assert period is not None
    assert date(2027, 1, 5) in period


def test_contingency_ending_before_it_starts() -> None:
    text = edit((CEA_WINDOW, f"            from: 2026-06-01\n            to: 2026-05-31 {HERE}\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "contingency ends (to: 2026-05-31) before it starts (from: 2026-06-01)",
    )


def test_contingency_of_one_whole_day_is_fine() -> None:
    text = edit((CEA_WINDOW, "            from: 2026-06-01\n            to: 2026-06-01\n"))
    window = area(load(text), "emergencias", "cea").contingencies[0]
    assert (window.ends - window.starts).days == 1


@pytest.mark.parametrize(
    ("starts", "ends", "message"),
    [
        (
            "2026-06-01T10:00",
            "2026-06-01T09:30",
            "contingency ends (to: 2026-06-01T09:30) before it starts (from: 2026-06-01T10:00)",
        ),
        (
            "2026-06-01T10:00",
            "2026-06-01T10:00",
            "contingency ends (to: 2026-06-01T10:00) when it starts (from: 2026-06-01T10:00)",
        ),
        (
            "2026-06-01T10:00-06:00",
            "2026-06-02",
            "give both 'from' and 'to' with a UTC offset, or neither",
        ),
    ],
)
def test_contingency_instants(starts: str, ends: str, message: str) -> None:
    text = edit((CEA_WINDOW, f"            from: {starts}\n            to: {ends} {HERE}\n"))
    line = line_of(text)
    assert_error(only_error(text), line, value_col(text, line), message)


def test_vertiente_contingency_is_checked_too() -> None:
    window = "    contingencies:\n      - {name: Lluvias, from: 2026-06-02, to: 2026-06-01}"
    text = edit(
        ("    requires_contingency: true\n", f"    requires_contingency: true\n{window} {HERE}\n")
    )
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        col_of(text, line, "2026-06-01"),
        "contingency ends (to: 2026-06-01) before it starts (from: 2026-06-02)",
    )


def test_calendar_closure_ending_before_it_starts() -> None:
    text = edit((CLOSURE, f"    - from: 2027-03-25\n      to: 2027-03-24 {HERE}\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "closure ends on 2027-03-24 before it starts on 2027-03-25",
    )


def test_impossible_date() -> None:
    text = edit((CLOSURE, f"    - from: 2027-02-30 {HERE}\n      to: 2027-03-26\n"))
    error = only_error(text)
    assert (error.line, error.col) == (line_of(text), value_col(text, line_of(text)))
    assert "valid date" in error.message
    assert error.message.endswith("got '2027-02-30'")


# --- 5. time zone ------------------------------------------------------------


@pytest.mark.parametrize("zone", ["America/Queretaro_City", "Mexico City", "../etc/passwd"])
def test_unknown_time_zone(zone: str) -> None:
    text = edit((TIMEZONE, f"  timezone: {zone} {HERE}\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        f"unknown time zone {zone!r}: use an IANA name such as 'America/Mexico_City'",
    )


def test_other_real_time_zone_is_accepted() -> None:
    assert (
        load(edit((TIMEZONE, "  timezone: America/Cancun\n"))).menu.line.timezone
        == "America/Cancun"
    )


# --- 6. weekdays -------------------------------------------------------------

WEEKDAY_HELP = "use mon, tue, wed, thu, fri, sat, sun (or lun, mar, mie, jue, vie, sab, dom)"


def days(written: str) -> str:
    return edit((REFRENDO_WEEKDAYS, REFRENDO_WEEKDAYS.replace("mon-fri", written)))


@pytest.mark.parametrize(
    ("written", "bad"),
    [("mon-fryday", "fryday"), ("sat,sunday", "sunday"), ("mon, thurs", "thurs")],
)
def test_unknown_weekday_in_text(written: str, bad: str) -> None:
    text = days(f"{written} {HERE}")
    line = line_of(text)
    assert_error(
        only_error(text), line, value_col(text, line), f"unknown weekday {bad!r}: {WEEKDAY_HELP}"
    )


def test_unknown_weekday_in_a_flow_list_points_at_the_item() -> None:
    text = days(f"[mon, thurs] {HERE}")
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        col_of(text, line, "thurs"),
        f"unknown weekday 'thurs': {WEEKDAY_HELP}",
    )


def test_unknown_weekday_in_a_block_list_points_at_the_item() -> None:
    text = days(f"\n              - mon\n              - thurs {HERE}\n              - fri")
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        col_of(text, line, "thurs"),
        f"unknown weekday 'thurs': {WEEKDAY_HELP}",
    )


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("''", "days is empty: name at least one weekday, e.g. 'mon-fri'"),
        ("[]", "days is empty: name at least one weekday, e.g. 'mon-fri'"),
        ("5", "days must be text such as 'mon-fri' or a list of weekdays, got 5"),
    ],
)
def test_days_of_the_wrong_shape(written: str, message: str) -> None:
    text = days(f"{written} {HERE}")
    line = line_of(text)
    assert_error(only_error(text), line, value_col(text, line), message)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("mon-fri", (0, 1, 2, 3, 4)),
        ("lun-vie", (0, 1, 2, 3, 4)),
        ("fri-mon", (0, 4, 5, 6)),
        ("sat,sun", (5, 6)),
        ("[mon-wed, fri]", (0, 1, 2, 4)),
        ("daily", tuple(range(7))),
        ("Mié", (2,)),
    ],
)
def test_weekday_spellings(written: str, expected: tuple[int, ...]) -> None:
    rule = area(load(days(written)), "programas", "refrendo-vehicular").hours
    assert rule is not None
    assert rule[0].days == expected


# --- 7. references to undefined queues, prompts and areas --------------------


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "        queue: qrobot\n",
            "        queue: qrobots",
            "queue 'qrobots' is not defined (define it under 'queues'); did you mean 'qrobot'?",
        ),
        (
            "        prompt: opcion-qrobot\n",
            "        prompt: opcion-qrobo",
            "prompt 'opcion-qrobo' is not defined (define it under 'prompts')"
            "; did you mean 'opcion-qrobot'?",
        ),
        (
            "            announcement: aviso-lluvias\n",
            "            announcement: aviso-lluvia",
            "prompt 'aviso-lluvia' is not defined (define it under 'prompts')"
            "; did you mean 'aviso-lluvias'?",
        ),
        (
            "    transfer: transferencia\n",
            "    transfer: transferencias",
            "prompt 'transferencias' is not defined (define it under 'prompts')"
            "; did you mean 'transferencia'?",
        ),
        (
            "  greeting: bienvenida\n",
            "  greeting: bienvenido",
            "prompt 'bienvenido' is not defined (define it under 'prompts')"
            "; did you mean 'bienvenida'?",
        ),
        (
            "    prompt: aviso-privacidad\n",
            "    prompt: aviso",
            "prompt 'aviso' is not defined (define it under 'prompts')",
        ),
        (
            "        hours_prompt: horario-refrendo\n",
            "        hours_prompt: horario-refrendos",
            "prompt 'horario-refrendos' is not defined (define it under 'prompts')"
            "; did you mean 'horario-refrendo'?",
        ),
        (
            "    invalid_prompt: opcion-invalida\n",
            "    invalid_prompt: invalida",
            "prompt 'invalida' is not defined (define it under 'prompts')",
        ),
        (
            "    menu_prompt: menu-servicios\n",
            "    menu_prompt: menu-servicio",
            "prompt 'menu-servicio' is not defined (define it under 'prompts')"
            "; did you mean 'menu-servicios'?",
        ),
        (
            "    prompt: transferencia-general\n",
            "    prompt: transferencia-gral",
            "prompt 'transferencia-gral' is not defined (define it under 'prompts')"
            "; did you mean 'transferencia-general'?",
        ),
        (
            "    area: atencion-ciudadana\n",
            "    area: atencion-ciudadano",
            "area 'atencion-ciudadano' is not defined (define it under 'vertientes/*/areas')"
            "; did you mean 'atencion-ciudadana'?",
        ),
        (
            "  operator: atencion-ciudadana   # where the operator key goes\n",
            "  operator: mesa-general",
            "area 'mesa-general' is not defined (define it under 'vertientes/*/areas')",
        ),
    ],
)
def test_reference_to_something_undefined(old: str, new: str, message: str) -> None:
    text = edit((old, f"{new} {HERE}\n"))
    line = line_of(text)
    assert_error(only_error(text), line, value_col(text, line), message)


def test_a_queue_name_that_is_not_a_valid_name_is_reported_once() -> None:
    text = edit(("        queue: qrobot\n", f"        queue: Q robot {HERE}\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "invalid name 'Q robot': use lowercase letters, digits, '-' and '_', e.g. 'obra-publica'",
    )


def test_an_invalid_queue_key_is_reported_at_the_key() -> None:
    text = edit(("  qrobot:\n    description:", f"  Qrobot: {HERE}\n    description:"))
    errors = errors_of(text)
    line = line_of(text)
    assert_error(
        errors[0],
        line,
        key_col(text, line),
        "invalid name 'Qrobot': use lowercase letters, digits, '-' and '_', e.g. 'obra-publica'",
    )
    # and the area that used the old name now refers to an undefined queue
    assert [e.message for e in errors[1:]] == [
        "queue 'qrobot' is not defined (define it under 'queues'); did you mean 'Qrobot'?"
    ]


# --- 8. empty vertiente ------------------------------------------------------


def test_vertiente_without_areas() -> None:
    start = TEXT.index("    areas:\n      paseo-5-febrero:")
    end = TEXT.index("\n  servicios:")
    text = TEXT[:start] + f"    areas: {{}} {HERE}\n" + TEXT[end:]
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "vertiente 'programas' has no areas: add at least one",
    )


def test_vertiente_areas_must_be_a_mapping() -> None:
    start = TEXT.index("    areas:\n      paseo-5-febrero:")
    end = TEXT.index("\n  servicios:")
    text = TEXT[:start] + f"    areas: [] {HERE}\n" + TEXT[end:]
    line = line_of(text)
    assert_error(
        only_error(text), line, value_col(text, line), "expected a mapping of keys, got a list"
    )


# --- 9. unknown keys ---------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "        queue: qrobot\n",
            "        qeue: qrobot",
            "unknown key 'qeue'; did you mean 'queue'?",
        ),
        (
            "    menu_prompt: menu-servicios\n",
            "    menu_prompt: menu-servicios\n    horas: 24/7",
            "unknown key 'horas'; did you mean 'hours'?",
        ),
        (
            "        tag: QROBOT\n",
            "        tag: QROBOT\n        nombre: Qrobot",
            "unknown key 'nombre'; did you mean 'name'?",
        ),
        (
            "  timezone: America/Mexico_City\n",
            "  timezone: America/Mexico_City\n  time_zone: America/Mexico_City",
            "unknown key 'time_zone'; did you mean 'timezone'?",
        ),
        (
            "            announcement: aviso-lluvias\n",
            "            anouncement: aviso-lluvias",
            "unknown key 'anouncement'; did you mean 'announcement'?",
        ),
        (
            "queues:\n",
            "queuez:",
            "unknown key 'queuez'; did you mean 'queues'?",
        ),
    ],
)
def test_unknown_key_with_a_hint(old: str, new: str, message: str) -> None:
    text = edit((old, f"{new} {HERE}\n"))
    line = line_of(text)
    # The typo also leaves a required key missing: the hint covers it, one error only.
    assert_error(only_error(text), line, key_col(text, line), message)


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    text = edit(
        (
            "    menu_prompt: menu-servicios\n",
            f"    menu_prompt: menu-servicios\n    colour: red {HERE}\n",
        )
    )
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        key_col(text, line),
        "unknown key 'colour'; expected one of: digit, name, prompt, menu_prompt, hours_prompt, "
        "enabled, hours, requires_contingency, contingencies, areas",
    )


def test_hints_only_suggest_keys_allowed_in_that_place() -> None:
    # 'period' is an area key: on a vertiente it must not be "did you mean 'period'?"
    period = f"    period: {{from: 2026-01-01, to: 2026-02-01}} {HERE}\n"
    text = edit(("    menu_prompt: menu-servicios\n", "    menu_prompt: menu-servicios\n" + period))
    error = only_error(text)
    assert error.line == line_of(text)
    assert error.message.startswith("unknown key 'period'; expected one of: digit, name")


# --- YAML-level problems -----------------------------------------------------


def test_duplicate_key_is_reported_at_the_second_occurrence() -> None:
    text = edit(("        tag: QROBOT\n", f"        tag: QROBOT\n        tag: QR {HERE}\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        key_col(text, line),
        f"duplicate key 'tag' (first defined at line {line - 1})",
    )


def test_duplicate_area_is_reported_once_without_follow_on_errors() -> None:
    # A second 'atencion-medica' in the same vertiente: its whole mapping is dropped,
    # and that must not produce errors about what it contained.
    text = edit(
        ("      cea:\n        digit: 4\n", f"      atencion-medica: {HERE}\n        digit: 4\n")
    )
    first, second = lines_of(text, "      atencion-medica:")
    assert second == line_of(text)
    line = second
    error = only_error(text)
    assert (error.line, error.col) == (line, key_col(text, line))
    assert error.message == f"duplicate key 'atencion-medica' (first defined at line {first})"


def test_yaml_syntax_error_at_a_bad_indentation() -> None:
    text = edit(("        tag: QROBOT\n", f"       tag: QROBOT {HERE}\n"))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        key_col(text, line),
        "YAML syntax: expected <block end>, but found '<block mapping start>'; "
        "check the indentation of this line",
    )


def test_yaml_syntax_error_for_an_unclosed_list_points_at_the_bracket() -> None:
    text = edit(("        tag: QROBOT\n", f"        tag: [QROBOT {HERE}\n"))
    line = line_of(text)
    error = only_error(text)
    assert (error.line, error.col) == (line, col_of(text, line, "["))
    assert error.message.startswith("YAML syntax: in the list opened here with '[': ")
    assert error.message.endswith("(is the closing ']' missing?)")


def test_yaml_syntax_error_for_an_unclosed_quote_points_at_the_quote() -> None:
    # A small document: in the shipped menu the next '"' would close the quote.
    text = 'version: "1\nline:\n  name: x\n'
    error = only_error(text)
    assert (error.line, error.col) == (1, len('version: "'))
    assert error.message == (
        "YAML syntax: in the quoted text opened here: found unexpected end of stream "
        "at line 4, column 1 (is the closing quote missing?)"
    )


def test_yaml_syntax_error_for_a_tab() -> None:
    text = edit(("        tag: QROBOT\n", f"        tag: QROBOT\n\tenabled: true {HERE}\n"))
    error = only_error(text)
    assert (error.line, error.col) == (line_of(text), 1)
    assert "indent with spaces, not tabs" in error.message


def test_value_with_colon_space_must_be_quoted() -> None:
    text = edit(("        tag: QROBOT\n", f"        tag: QROBOT: chatbot {HERE}\n"))
    error = only_error(text)
    assert error.line == line_of(text)
    assert error.message.startswith("YAML syntax: mapping values are not allowed here")


def test_merge_keys_are_refused() -> None:
    text = edit(("        tag: QROBOT\n", f"        <<: {{tag: QROBOT}} {HERE}\n"))
    error = only_error(text)
    assert (error.line, error.message) == (
        line_of(text),
        "merge keys ('<<') are not supported: repeat the keys",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "the menu file must be a mapping of keys"),
        ("just text\n", "the menu file must be a mapping of keys"),
    ],
)
def test_documents_that_are_not_a_menu(text: str, message: str) -> None:
    assert_error(only_error(text), 1, 1, message)


# --- missing keys, several errors, files -------------------------------------


def test_missing_required_key_points_at_the_mapping_that_lacks_it() -> None:
    text = edit(
        (
            "      cea:\n        digit: 4\n        name: Comisión Estatal de Aguas\n"
            "        department: Comisión Estatal de Aguas\n",
            f"      cea: {HERE}\n        digit: 4\n        name: Comisión Estatal de Aguas\n",
        )
    )
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        key_col(text, line),
        "missing required key 'department' in vertientes.emergencias.areas.cea",
    )


def test_missing_key_in_a_list_item_points_at_the_item() -> None:
    text = edit(
        (
            CLOSURE + "      name: Jueves y Viernes Santo\n",
            f"    - from: 2027-03-25 {HERE}\n      to: 2027-03-26\n",
        )
    )
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        key_col(text, line),
        "missing required key 'name' in calendar.closures[0]",
    )


def test_missing_top_level_key() -> None:
    start = TEXT.index("\nqueues:\n")
    end = TEXT.index("\nvertientes:\n")
    text = TEXT[:start] + TEXT[end:]
    # The top level starts at its first key; the area queues are not also reported.
    first_key = next(
        n for n, line in enumerate(text.splitlines(), 1) if line.startswith("version:")
    )
    assert_error(only_error(text), first_key, 1, "missing required key 'queues' at the top level")


def test_several_errors_of_every_kind_are_all_reported_in_line_order() -> None:
    text = edit(
        (TIMEZONE, "  timezone: America/Queretaro_City # E1\n"),
        (REFRENDO_WEEKDAYS, REFRENDO_WEEKDAYS.replace("mon-fri", "mon-fryday # E2")),
        (REEMPLACAMIENTO_DIGIT, "        digit: 1 # E3\n        name: Reemplacamiento\n"),
        ("        queue: qrobot\n", "        qeue: qrobot # E4\n"),
        (
            "            announcement: aviso-lluvias\n",
            "            announcement: aviso-lluvia # E5\n",
        ),
    )
    errors = errors_of(text)
    assert [e.line for e in errors] == [line_of(text, f"# E{n}") for n in (1, 3, 2, 4, 5)]
    assert errors == sorted(errors, key=lambda e: (e.line, e.col))
    messages = [e.message for e in errors]
    assert messages[0].startswith("unknown time zone 'America/Queretaro_City'")
    assert messages[1].startswith("duplicate digit 1 in the submenu of 'programas'")
    assert messages[2].startswith("unknown weekday 'fryday'")
    assert messages[3] == "unknown key 'qeue'; did you mean 'queue'?"
    assert messages[4] == (
        "prompt 'aviso-lluvia' is not defined (define it under 'prompts')"
        "; did you mean 'aviso-lluvias'?"
    )


def test_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(MenuError) as excinfo:
        load_menu(missing)
    assert excinfo.value.errors == [ConfigError(str(missing), 1, 1, "file not found")]


def test_folder_without_menu_yaml(tmp_path: Path) -> None:
    with pytest.raises(MenuError) as excinfo:
        load_menu(tmp_path)
    assert excinfo.value.errors == [
        ConfigError(str(tmp_path / "menu.yaml"), 1, 1, "file not found")
    ]


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "menu.yaml"
    path.write_bytes(TEXT.encode("latin-1", errors="replace"))
    with pytest.raises(MenuError) as excinfo:
        load_menu(path)
    [error] = excinfo.value.errors
    # the first character that Latin-1 and UTF-8 write differently
    line = next(n for n, text in enumerate(TEXT.splitlines(), 1) if not text.isascii())
    col = next(i for i, char in enumerate(TEXT.splitlines()[line - 1], 1) if not char.isascii())
    assert (error.line, error.col) == (line, col)
    assert error.message == ("not UTF-8 text (invalid continuation byte): save the file as UTF-8")


def test_errors_name_the_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "menu.yaml"
    path.write_text(edit((TIMEZONE, "  timezone: Nowhere/City\n")), encoding="utf-8")
    with pytest.raises(MenuError) as excinfo:
        load_menu(tmp_path)
    assert [e.file for e in excinfo.value.errors] == [str(path)]


# --- scalars: YAML 1.2 rules -------------------------------------------------


@pytest.mark.parametrize(
    ("written", "enabled"), [("no", False), ("false", False), ("yes", True), ("off", False)]
)
def test_enabled_yes_no_words(written: str, enabled: bool) -> None:
    text = edit(("        tag: QROBOT\n", f"        tag: QROBOT\n        enabled: {written}\n"))
    assert area(load(text), "programas", "qrobot").enabled is enabled


def test_enabled_must_be_true_or_false() -> None:
    text = edit(("        tag: QROBOT\n", f"        tag: QROBOT\n        enabled: maybe {HERE}\n"))
    line = line_of(text)
    assert_error(
        only_error(text), line, value_col(text, line), "expected true or false, got 'maybe'"
    )


def test_no_as_text_stays_text() -> None:
    text = edit(("        name: Qrobot, chatbot de WhatsApp\n", "        name: no\n"))
    assert area(load(text), "programas", "qrobot").name == "no"


def test_unquoted_number_stays_digits() -> None:
    text = edit(('  number: "4421015205"', "  number: 4421015205"))
    assert load(text).menu.line.number == "4421015205"


def test_phone_number_pattern_is_explained() -> None:
    text = edit(('  number: "4421015205"', f'  number: "442-101-5205" {HERE}'))
    line = line_of(text)
    assert_error(
        only_error(text),
        line,
        value_col(text, line),
        "invalid phone number '442-101-5205': write 3 to 15 digits, optionally after '+', "
        "e.g. '4421015205'",
    )


def test_prompt_without_text() -> None:
    text = edit(
        (
            "  despedida: Gracias por llamar al Centro de Llamadas Aquí. Hasta luego.",
            f"  despedida: {HERE}",
        )
    )
    error = only_error(text)
    assert (error.line, error.message) == (
        line_of(text),
        "the prompt has no text: write what the caller hears after its name",
    )


def test_libyaml_fast_path_gives_the_same_data_and_positions_as_pure_python() -> None:
    text = (ROOT / "config" / "menu.yaml").read_text(encoding="utf-8")
    text += "\nextra: {ñandú: \"á\", lista: [ü, 'ö'], bloque: x}\n"
    builders = []
    for fast in (True, False):
        node = loader._compose(text, fast=fast)
        assert node is not None
        builder = loader._Builder("menu.yaml")
        builders.append((builder.build(node, ()), builder.positions))
    (fast_data, fast_pos), (pure_data, pure_pos) = builders
    assert fast_data == pure_data
    assert fast_pos == pure_pos
    last_line = text.splitlines()[-1]
    assert fast_pos.of_key(("extra", "lista")).col == last_line.index("lista") + 1
