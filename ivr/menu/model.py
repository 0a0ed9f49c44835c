"""The citizen line's menu as validated, immutable data.

Structural rules (types, formats, unknown keys, time ranges) live here as
pydantic validators; rules that need the whole document (duplicate digits,
references to queues and prompts) live in :mod:`ivr.menu.checks` so that each
error can point at the exact YAML line that causes it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)


class Ref:
    """Marks a string field as a reference to something defined elsewhere."""

    __slots__ = ("kind",)

    def __init__(self, kind: Literal["prompt", "queue", "area"]) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"Ref({self.kind!r})"


class Strict(BaseModel):
    """Base of every menu model: immutable, no unknown keys."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )


# --- scalar types ------------------------------------------------------------

WEEKDAYS: dict[str, int] = {
    "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
    "lun": 0, "mar": 1, "mie": 2, "mié": 2, "jue": 3, "vie": 4, "sab": 5, "sáb": 5, "dom": 6,
}  # fmt: skip
SLUG = r"^[a-z0-9][a-z0-9_-]*$"
PROMPT_NAME = r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$"
PHONE_NUMBER = r"^\+?[0-9]{3,15}$"
KEYS = "0123456789*#"
DAY_SECONDS = 24 * 3600


def _weekday(token: str) -> int:
    name = token.strip().lower()
    if name not in WEEKDAYS:
        raise ValueError(
            f"unknown weekday {token.strip()!r}: use mon, tue, wed, thu, fri, sat, sun "
            "(or lun, mar, mie, jue, vie, sab, dom)"
        )
    return WEEKDAYS[name]


class ListItemError(ValueError):
    """A problem with one item of a list value; ``index`` lets the loader point at that item."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def _days_of(token: str) -> set[int]:
    token = token.strip().lower()
    if token in {"daily", "all", "mon-sun"}:
        return set(range(7))
    if "-" in token:
        first, _, last = token.partition("-")
        start, end = _weekday(first), _weekday(last)
        span = (end - start) % 7
        return {(start + i) % 7 for i in range(span + 1)}
    return {_weekday(token)}


def parse_days(value: Any) -> tuple[int, ...]:
    """Parse ``mon-fri``, ``sat,sun``, ``daily`` or a list of names into weekday numbers."""
    days: set[int] = set()
    if isinstance(value, str):
        parts = [p for p in value.split(",") if p.strip()]
        for part in parts:
            days |= _days_of(part)
    elif isinstance(value, list | tuple):
        parts = [str(p) for p in value]
        for index, part in enumerate(parts):
            try:
                days |= _days_of(part)
            except ValueError as exc:
                raise ListItemError(str(exc), index) from None
    else:
        # ValueError, not TypeError: pydantic only turns ValueError into a validation error
        raise ValueError(  # noqa: TRY004
            f"days must be text such as 'mon-fri' or a list of weekdays, got {value!r}"
        )
    if not parts:
        raise ValueError("days is empty: name at least one weekday, e.g. 'mon-fri'")
    return tuple(sorted(days))


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_clock(value: Any) -> int:
    """Parse ``HH:MM`` (or ``HH:MM:SS``) into seconds after midnight; ``24:00`` is allowed."""
    if not isinstance(value, str):  # ValueError: see parse_days
        raise ValueError(f"write times as quoted text 'HH:MM', got {value!r}")  # noqa: TRY004
    match = _CLOCK.match(value.strip())
    if not match:
        raise ValueError(f"invalid time {value!r}: expected 'HH:MM', e.g. '08:00'")
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if minutes > 59 or seconds > 59 or hours > 24 or (hours == 24 and (minutes or seconds)):
        raise ValueError(f"invalid time {value!r}: hours 00-23 (or 24:00), minutes 00-59")
    return hours * 3600 + minutes * 60 + seconds


def format_clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def parse_digit(value: Any) -> str:
    text = (
        str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    )
    if len(text) != 1 or text not in "0123456789":
        raise ValueError(f"a menu digit must be a single key 0-9, got {value!r}")
    return text


def parse_key(value: Any) -> str:
    text = (
        str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    )
    if len(text) != 1 or text not in KEYS:
        raise ValueError(f"a key must be one of 0-9, * or #, got {value!r}")
    return text


def parse_timezone(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"time zone must be an IANA name such as 'America/Mexico_City', got {value!r}"
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as 'America/Mexico_City'"
        ) from None
    return value


Weekdays = Annotated[
    tuple[int, ...],
    BeforeValidator(parse_days),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "examples": ["mon-fri", "sat,sun", "daily"]},
                {"type": "array", "items": {"type": "string", "enum": sorted(WEEKDAYS)}},
            ]
        }
    ),
]
ClockTime = Annotated[
    int,
    BeforeValidator(parse_clock),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}(:\d{2})?$"}),
]
Digit = Annotated[
    str,
    BeforeValidator(parse_digit),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 9},
                {"type": "string", "pattern": "^[0-9]$"},
            ]
        }
    ),
]
Key = Annotated[
    str,
    BeforeValidator(parse_key),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9*#]$"}),
]
TimeZoneName = Annotated[str, BeforeValidator(parse_timezone), WithJsonSchema({"type": "string"})]
Slug = Annotated[str, Field(pattern=SLUG, max_length=64)]
PromptName = Annotated[str, Field(pattern=PROMPT_NAME, max_length=120), Ref("prompt")]
QueueName = Annotated[str, Field(pattern=SLUG, max_length=64), Ref("queue")]
AreaKey = Annotated[str, Field(pattern=SLUG, max_length=64), Ref("area")]


# --- hours -------------------------------------------------------------------


class TimeRange(Strict):
    """One opening on a day: ``open`` to ``close``; ``overnight`` lets it end the next day."""

    open: ClockTime = Field(description="Opening time, 'HH:MM' (local time of the line).")
    overnight: bool = Field(
        default=False, description="The range ends the next day (e.g. 22:00 to 06:00)."
    )
    close: ClockTime = Field(description="Closing time, 'HH:MM'; '24:00' means midnight.")

    @field_validator("open")
    @classmethod
    def _open_before_midnight(cls, value: int) -> int:
        if value >= DAY_SECONDS:
            raise ValueError("a range cannot open at 24:00: use '00:00' of the next day")
        return value

    @field_validator("close")
    @classmethod
    def _close_after_open(cls, value: int, info: ValidationInfo) -> int:
        opens = info.data.get("open")
        if opens is None:
            return value
        if info.data.get("overnight"):
            if value > opens:
                raise ValueError(
                    f"overnight range closes at {format_clock(value)}, after it opens at "
                    f"{format_clock(opens)}: drop 'overnight' or close earlier than it opens"
                )
            if value == DAY_SECONDS:
                raise ValueError("an overnight range cannot close at 24:00")
        elif value <= opens:
            raise ValueError(
                f"close time {format_clock(value)} is not after open time {format_clock(opens)}; "
                "for a range that ends the next day add 'overnight: true'"
            )
        return value

    @property
    def end_offset(self) -> int:
        """Seconds after the start day's midnight at which the range closes."""
        return self.close + (DAY_SECONDS if self.overnight else 0)


class HoursRule(TimeRange):
    """Opening hours for some weekdays."""

    days: Weekdays = Field(description="Weekdays, e.g. 'mon-fri', 'sat,sun' or 'daily'.")


ALWAYS: tuple[dict[str, Any], ...] = ({"days": "daily", "open": "00:00", "close": "24:00"},)
WEEKDAY_OFFICE: tuple[dict[str, Any], ...] = (
    {"days": "mon-fri", "open": "08:00", "close": "20:00"},
)


def _hours_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"24/7", "always"}:
            return ALWAYS
        if text in {"closed", "never"}:
            return ()
        raise ValueError(f"hours must be a list of rules, '24/7' or 'closed', got {value!r}")
    return value


WeeklyHours = Annotated[
    tuple[HoursRule, ...],
    BeforeValidator(_hours_shorthand),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "enum": ["24/7", "always", "closed", "never"]},
                {"type": "array", "items": HoursRule.model_json_schema()},
            ]
        }
    ),
]


class Period(Strict):
    """A service period: whole days, both ends included."""

    starts: date = Field(alias="from", description="First day of service (YYYY-MM-DD).")
    ends: date = Field(alias="to", description="Last day of service, included (YYYY-MM-DD).")

    @field_validator("ends")
    @classmethod
    def _ends_after_start(cls, value: date, info: ValidationInfo) -> date:
        starts = info.data.get("starts")
        if starts is not None and value < starts:
            raise ValueError(f"period ends on {value} before it starts on {starts}")
        return value

    def __contains__(self, day: date) -> bool:
        return self.starts <= day <= self.ends


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _window_start(value: Any) -> Any:
    if isinstance(value, str) and _DATE_ONLY.match(value.strip()):
        return value.strip() + "T00:00:00"
    return value


def _window_end(value: Any) -> Any:
    """A date alone as the end of a window covers that whole day."""
    if isinstance(value, str) and _DATE_ONLY.match(value.strip()):
        day = date.fromisoformat(value.strip()) + timedelta(days=1)
        return day.isoformat() + "T00:00:00"
    return value


def _show_instant(value: datetime) -> str:
    """An instant as an admin would write it: a plain date when it is local midnight."""
    if value.tzinfo is None and value.time() == datetime.min.time():
        return value.date().isoformat()
    return value.isoformat(timespec="minutes" if not value.second else "seconds")


class Contingency(Strict):
    """A contingency window decreed by an authority: extra (often 24/7) service."""

    name: str = Field(min_length=1, description="What the contingency is, for admins and reports.")
    starts: Annotated[datetime, BeforeValidator(_window_start)] = Field(
        alias="from",
        description="Start instant; without an offset it is local time of the line. "
        "A date alone starts at 00:00.",
    )
    ends: Annotated[datetime, BeforeValidator(_window_end)] = Field(
        alias="to",
        description="End instant, excluded; a date alone means the end of that day.",
    )
    hours: WeeklyHours = Field(
        default=ALWAYS,  # validated into HoursRule by pydantic
        validate_default=True,
        description="Hours of service while the window is in force; default 24/7.",
    )
    holidays_close: bool = Field(
        default=False, description="Whether official rest days and closures stop this service."
    )
    announcement: PromptName | None = Field(
        default=None, description="Prompt played at the start of every call while in force."
    )

    @field_validator("ends", mode="wrap")
    @classmethod
    def _ends_after_start(
        cls, raw: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> datetime:
        # Wrapped so the message can quote 'to' as written: a date alone is
        # stored as the next midnight, which would read as a different day.
        value: datetime = handler(raw)
        starts = info.data.get("starts")
        if starts is not None:
            if (starts.tzinfo is None) != (value.tzinfo is None):
                raise ValueError("give both 'from' and 'to' with a UTC offset, or neither")
            if value <= starts:
                date_only = isinstance(raw, str) and _DATE_ONLY.match(raw.strip()) is not None
                written = raw.strip() if isinstance(raw, str) else _show_instant(value)
                relation = "when" if value == starts and not date_only else "before"
                raise ValueError(
                    f"contingency ends (to: {written}) {relation} it starts "
                    f"(from: {_show_instant(starts)})"
                )
        return value


# --- the menu ----------------------------------------------------------------


class Area(Strict):
    """An área usuaria: a department or program with a fixed digit in its vertiente's submenu."""

    digit: Digit = Field(description="The digit the coordination assigned; it never shifts.")
    name: str = Field(min_length=1)
    department: str = Field(min_length=1, description="Responsible department (dependencia).")
    queue: QueueName = Field(description="Operator queue (a key under 'queues').")
    prompt: PromptName = Field(
        description="Option announcement, e.g. 'Para Reemplacamiento, marque 2'."
    )
    tag: str | None = Field(
        default=None,
        max_length=15,
        description="Short topic shown on the operator's phone; defaults to the area key.",
    )
    enabled: bool = True
    hours: WeeklyHours | None = Field(
        default=None, description="Overrides the vertiente's hours when given."
    )
    hours_prompt: PromptName | None = Field(
        default=None,
        description="The area's own hours, said when it is closed; "
        "overrides the vertiente's hours_prompt.",
    )
    period: Period | None = Field(
        default=None, description="Service period outside which the option is not offered."
    )
    requires_contingency: bool | None = Field(
        default=None,
        description="Offered only while one of its contingencies is in force; "
        "inherits the vertiente's setting when omitted.",
    )
    contingencies: tuple[Contingency, ...] = ()


class Vertiente(Strict):
    """One of the line's three vertientes, with its submenu of areas."""

    digit: Digit
    name: str = Field(min_length=1)
    prompt: PromptName = Field(description="Option announcement in the main menu.")
    menu_prompt: PromptName = Field(description="Introduction of the submenu.")
    hours_prompt: PromptName | None = Field(
        default=None,
        description="The hours of its areas, said when one is closed, e.g. 'Le atendemos "
        "de lunes a viernes, de 8 de la mañana a 8 de la noche.' Keep it in step with 'hours'.",
    )
    enabled: bool = True
    hours: WeeklyHours = Field(
        default=WEEKDAY_OFFICE,  # validated into HoursRule by pydantic
        validate_default=True,
        description="Default hours of its areas; Monday to Friday 08:00-20:00 when omitted.",
    )
    requires_contingency: bool = Field(
        default=False,
        description="Areas are offered only while a contingency is in force "
        "(Situaciones emergentes).",
    )
    contingencies: tuple[Contingency, ...] = Field(
        default=(), description="Contingency windows that apply to every area of the vertiente."
    )
    areas: dict[Slug, Area]


class PrivacyNotice(Strict):
    prompt: PromptName
    version: str = Field(min_length=1, description="Version of the notice, stored on every call.")


class GlobalKeys(Strict):
    repeat: Key = "*"
    back: Key = "#"
    operator: Key | None = Field(
        default="0",
        description="Straight to an operator; active only when line.operator names an area.",
    )


class InputPolicy(Strict):
    timeout: float = Field(default=6.0, ge=1, le=30, description="Seconds to wait for a key.")
    max_invalid: int = Field(default=3, ge=1, le=9, description="Invalid keys before the fallback.")
    max_no_input: int = Field(default=3, ge=1, le=9, description="Silences before the fallback.")
    max_menu_seconds: int = Field(
        default=600,
        ge=60,
        le=3600,
        description="Longest time a caller may spend in the menus (repeating, going back) "
        "before the fallback takes them; guards against endless loops.",
    )
    invalid_prompt: PromptName
    no_input_prompt: PromptName


class LinePrompts(Strict):
    main_menu: PromptName = Field(description="Introduction of the main menu.")
    closed: PromptName = Field(description="The chosen option is closed now.")
    holiday: PromptName = Field(description="Closed because today is a rest day.")
    next_opening: PromptName = Field(description="Introduces the next opening's date and time.")
    no_next_opening: PromptName = Field(description="The option will not open again.")
    back_to_menu: PromptName = Field(description="Offers the back key to return to the main menu.")
    transfer: PromptName = Field(description="Played before handing the call to the queue.")
    goodbye: PromptName


class Fallback(Strict):
    area: AreaKey | None = Field(
        default=None, description="Area whose queue takes callers who ran out of retries."
    )
    prompt: PromptName


class Line(Strict):
    number: str = Field(pattern=PHONE_NUMBER, description="Public number callers dial.")
    name: str = Field(min_length=1)
    timezone: TimeZoneName = "America/Mexico_City"
    language: Literal["es"] = "es"
    greeting: PromptName
    privacy_notice: PrivacyNotice
    keys: GlobalKeys = GlobalKeys()
    input: InputPolicy
    prompts: LinePrompts
    operator: AreaKey | None = Field(
        default=None, description="Area reached with the operator key; none disables the key."
    )
    fallback: Fallback

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DatedClosure(Strict):
    starts: date = Field(alias="from")
    ends: date | None = Field(default=None, alias="to", description="Last day; default 'from'.")
    name: str = Field(min_length=1)

    @field_validator("ends")
    @classmethod
    def _ends_after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        starts = info.data.get("starts")
        if value is not None and starts is not None and value < starts:
            raise ValueError(f"closure ends on {value} before it starts on {starts}")
        return value


class DatedOpening(Strict):
    day: date = Field(alias="date")
    name: str = Field(min_length=1)
    hours: tuple[TimeRange, ...] | None = Field(
        default=None,
        description="Hours for that day; without them each area keeps its usual weekday hours.",
    )


class Calendar(Strict):
    official_holidays: bool = Field(
        default=True,
        description="Close on Mexico's official rest days (Ley Federal del Trabajo, art. 74), "
        "computed by the 'holidays' package.",
    )
    closures: tuple[DatedClosure, ...] = ()
    openings: tuple[DatedOpening, ...] = ()


QueueStrategy = Literal[
    "ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear", "wrandom"
]

# The member states Asterisk's joinempty / leavewhenempty weigh (app_queue.c,
# parse_empty_options()), in the order it documents them (queues.conf.sample).
MemberState = Literal[
    "paused", "penalty", "inuse", "ringing", "unavailable", "invalid", "unknown", "wrapup"
]
MEMBER_STATES: tuple[str, ...] = get_args(MemberState)


def _member_states(value: Any) -> Any:
    if isinstance(value, str):
        # ValueError, not TypeError: see parse_days
        raise ValueError(  # noqa: TRY004
            f"write a list of member states, e.g. [unavailable, invalid] (or [] for none), "
            f"got {value!r}"
        )
    if isinstance(value, list | tuple):
        seen: set[str] = set()
        for index, item in enumerate(value):
            if isinstance(item, str) and item in seen:
                raise ListItemError(f"member state {item!r} is listed twice", index)
            seen.add(str(item))
    return value


MemberStates = Annotated[
    tuple[MemberState, ...],
    BeforeValidator(_member_states),
    WithJsonSchema({"type": "array", "uniqueItems": True, "items": {"enum": list(MEMBER_STATES)}}),
]


def _yes_no(value: Any) -> Any:
    """YAML ``true``/``false`` as Asterisk's ``yes``/``no``; text is taken lower-cased."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value.strip().lower() if isinstance(value, str) else value


AnnouncePosition = Annotated[
    Literal["no", "yes", "limit", "more"],
    BeforeValidator(_yes_no),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"enum": ["no", "yes", "limit", "more"]}]}),
]
AnnounceHoldtime = Annotated[
    Literal["no", "yes", "once"],
    BeforeValidator(_yes_no),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"enum": ["no", "yes", "once"]}]}),
]


class Announcements(Strict):
    """Asterisk's own announcements of a waiting caller's place in line and expected wait.

    They use Asterisk's stock recordings (``queue-thereare`` ...) in the channel's
    language, so the PBX needs the Spanish core sounds for them.
    """

    every: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="Seconds between announcements; 0 = never (queues.conf announce-frequency).",
    )
    position: AnnouncePosition = Field(
        default="no",
        description="Say the caller's place in line: no, yes, 'limit' (only within "
        "position_limit) or 'more' (beyond it, 'more than N callers') (announce-position).",
    )
    position_limit: int = Field(
        default=5,
        ge=1,
        le=100,
        description="The N of 'limit' and 'more' (announce-position-limit).",
    )
    holdtime: AnnounceHoldtime = Field(
        default="no",
        description="Say the expected wait: no, yes or 'once' (announce-holdtime).",
    )

    @model_validator(mode="after")
    def _something_to_say(self) -> Announcements:
        says = self.position != "no" or self.holdtime != "no"
        if self.every and not says:
            raise ValueError(
                f"announcements every {self.every} s say nothing: set position or holdtime, "
                "or 'every: 0' to turn them off"
            )
        if says and not self.every:
            raise ValueError(
                "position or holdtime is on but 'every' is 0, so Asterisk never says them: "
                "give 'every' in seconds (e.g. 90), or turn both off"
            )
        return self


class PeriodicAnnounce(Strict):
    """A message of the line played to callers while they wait in the queue."""

    prompt: PromptName = Field(
        description="A prompt under 'prompts'; Asterisk plays it from the prompt folder "
        "(IVR_PROMPT_DIR, e.g. ivr-aqui/espera-en-linea) (periodic-announce)."
    )
    every: int = Field(
        default=60,
        ge=10,
        le=3600,
        description="Seconds between two plays (periodic-announce-frequency).",
    )


class QueueSettings(Strict):
    """How Asterisk runs an operator queue: rendered into queues.conf by ``ivr render``.

    How long a caller waits at most is not a queue setting: it is the dialplan's
    AQUI_QUEUE_TIMEOUT (extensions.conf), after which the caller may keep waiting.
    """

    strategy: QueueStrategy = Field(
        default="leastrecent",
        description="Which free operator rings first; 'leastrecent' (the one idle longest) "
        "evens the workload. A change to or from 'linear' needs an Asterisk restart.",
    )
    ring_seconds: int = Field(
        default=20,
        ge=5,
        le=600,
        description="Seconds an operator's phone rings before the next one is tried "
        "(queues.conf timeout).",
    )
    retry_seconds: int = Field(
        default=5,
        ge=1,
        le=300,
        description="Pause in seconds before ringing operators again (queues.conf retry; "
        "Asterisk turns 0 into 5).",
    )
    wrapup_seconds: int = Field(
        default=10,
        ge=0,
        le=3600,
        description="Seconds after a call before the operator rings again (wrapuptime).",
    )
    max_callers: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Callers waiting at most; the next one gets FULL and the dialplan offers "
        "to call back (maxlen; Asterisk's 0, unlimited, is not allowed).",
    )
    announce: Announcements = Field(
        default=Announcements(),
        description="Place-in-line and expected-wait announcements; off by default.",
    )
    periodic_announce: PeriodicAnnounce | None = Field(
        default=None,
        description="A reassurance message played while waiting; none when omitted or null.",
    )
    refuse_callers_when: MemberStates = Field(
        default=("paused", "unavailable", "invalid"),
        description="A new caller is refused (JOINEMPTY: the dialplan overflows an area's "
        "caller to the general queue) when every operator of the queue is in one of these "
        "states, or nobody is logged in. [] = always let callers in. Rendered as joinempty.",
    )
    release_callers_when: MemberStates = Field(
        default=("unavailable", "invalid"),
        description="Callers already waiting are let go (LEAVEEMPTY, same overflow) when every "
        "operator is in one of these states, or nobody is logged in. [] = never. "
        "Rendered as leavewhenempty.",
    )


def _queue_json_schema(schema: dict[str, Any]) -> None:
    """A queue's keys default to queue_defaults, not to the built-in values: say so."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop:
            del prop["default"]


class Queue(QueueSettings):
    """An operator queue of Asterisk (a section of queues.conf), named by areas.

    Every setting it leaves out comes from 'queue_defaults'; a block it gives
    ('announce', 'periodic_announce') replaces the default block as a whole.
    """

    model_config = ConfigDict(json_schema_extra=_queue_json_schema)

    description: str | None = Field(
        default=None, description="Who answers; written as a comment in queues.conf."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_timeout(cls, value: Any) -> Any:
        if isinstance(value, dict) and "timeout" in value:
            raise ValueError(
                "a queue has no 'timeout' any more: the longest wait is AQUI_QUEUE_TIMEOUT in "
                "extensions.conf; how long an operator's phone rings is 'ring_seconds'"
            )
        return value

    def settings(self, defaults: QueueSettings) -> QueueSettings:
        """This queue's settings: ``defaults`` with what the queue sets itself."""
        own = {
            name: getattr(self, name)
            for name in self.model_fields_set
            if name in QueueSettings.model_fields
        }
        return defaults.model_copy(update=own)


class Prompt(Strict):
    text: str = Field(min_length=1, description="What the caller hears, in Mexican Spanish.")


def _prompt_shorthand(value: Any) -> Any:
    if value is None:
        raise ValueError("the prompt has no text: write what the caller hears after its name")
    return {"text": value} if isinstance(value, str) else value


PromptEntry = Annotated[
    Prompt,
    BeforeValidator(_prompt_shorthand),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "description": "The text the caller hears."},
                Prompt.model_json_schema(),
            ]
        }
    ),
]


class Menu(Strict):
    """The whole line: the root of ``menu.yaml``."""

    version: str = Field(default="1", description="Free label bumped by admins on each edit.")
    line: Line
    calendar: Calendar = Calendar()
    queue_defaults: QueueSettings = Field(
        default=QueueSettings(),
        description="Settings of every queue that does not set its own.",
    )
    queues: dict[Slug, Queue]
    prompts: dict[Annotated[str, Field(pattern=PROMPT_NAME, max_length=120)], PromptEntry]
    vertientes: dict[Slug, Vertiente]

    def queue_settings(self, name: str) -> QueueSettings:
        """The settings of queue ``name``: its own, else ``queue_defaults``."""
        return self.queues[name].settings(self.queue_defaults)
