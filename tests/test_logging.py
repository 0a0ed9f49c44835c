"""Structured logging and masking of personal data (ivr.logging)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from ivr.logging import (
    REDACTED,
    StdlibForwardingHandler,
    configure_logging,
    get_logger,
    mask_personal_data,
)

NUMBER = "4421015205"
MASKED = "******5205"
UNIQUEID = "1796413234.10"


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    structlog.reset_defaults()
    for handler in list(root.handlers):
        if isinstance(handler, StdlibForwardingHandler):
            root.removeHandler(handler)
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def configure_json(level: str = "info") -> io.StringIO:
    stream = io.StringIO()
    configure_logging("json", level, stream=stream)
    return stream


def test_json_lines_have_level_timestamp_and_event() -> None:
    stream = configure_json()
    get_logger("ivr.test").info("menu loaded", options=7)
    (line,) = json_lines(stream)
    assert line["event"] == "menu loaded"
    assert line["level"] == "info"
    assert line["options"] == 7
    assert line["logger_name"] == "ivr.test"
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)


def test_level_filters_and_accepts_any_case() -> None:
    stream = configure_json("WARNING")
    log = get_logger()
    log.info("dropped")
    log.warning("kept")
    log.error("also kept")
    assert [(line["level"], line["event"]) for line in json_lines(stream)] == [
        ("warning", "kept"),
        ("error", "also kept"),
    ]


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level 'verbose'"):
        configure_logging("json", "verbose", stream=io.StringIO())


def test_caller_number_is_masked_everywhere() -> None:
    stream = configure_json()
    get_logger().info(
        f"incoming call from {NUMBER} on PJSIP/{NUMBER}-00000001",
        caller=NUMBER,
        caller_id=f"+52{NUMBER}",
        details={"note": f"callback to {NUMBER}", "ANI": NUMBER, "digits": [f"x{NUMBER}"]},
        uniqueid=UNIQUEID,
    )
    text = stream.getvalue()
    assert NUMBER not in text
    (line,) = json_lines(stream)
    assert line["event"] == f"incoming call from {MASKED} on PJSIP/{MASKED}-00000001"
    assert line["caller"] == MASKED
    assert line["caller_id"] == "+********5205"
    assert line["details"] == {
        "note": f"callback to {MASKED}",
        "ANI": MASKED,
        "digits": [f"x{MASKED}"],
    }
    assert line["uniqueid"] == UNIQUEID


def test_identifiers_survive_and_short_numbers_are_kept() -> None:
    stream = configure_json()
    get_logger().info(
        "route 2026-12-04 08:00 option 3",
        uniqueid=UNIQUEID,
        linkedid="1796413230.2",
        agi_uniqueid=UNIQUEID,
        call_id="1796413234.10-a",
        duration_ms=1234567,
        queue="tramites",
    )
    (line,) = json_lines(stream)
    assert line["event"] == "route 2026-12-04 08:00 option 3"
    assert line["uniqueid"] == UNIQUEID
    assert line["linkedid"] == "1796413230.2"
    assert line["agi_uniqueid"] == UNIQUEID
    assert line["call_id"] == "1796413234.10-a"
    assert line["duration_ms"] == 1234567
    assert line["queue"] == "tramites"


def test_uniqueid_in_free_text_is_masked_like_any_long_number() -> None:
    stream = configure_json()
    get_logger().info(f"call {UNIQUEID} ended", note=UNIQUEID)
    (line,) = json_lines(stream)
    assert line["event"] == "call ******3234.10 ended"
    assert line["note"] == "******3234.10"


def test_caller_id_name_is_redacted() -> None:
    stream = configure_json()
    get_logger().info(
        "caller id",
        callerid_name="María López",
        AGI_CALLERIDNAME="Juan Pérez",
        caller_name="unknown",
        calleridname="",
        callerid=f'"María López" <{NUMBER}>',
    )
    (line,) = json_lines(stream)
    assert line["callerid_name"] == REDACTED
    assert line["AGI_CALLERIDNAME"] == REDACTED
    assert line["caller_name"] == "unknown"
    assert line["calleridname"] == ""
    assert line["callerid"] == f'"{REDACTED}" <{MASKED}>'
    assert "María" not in stream.getvalue()


def test_numeric_caller_values_are_masked() -> None:
    stream = configure_json()
    get_logger().info("numeric", number=int(NUMBER), from_number=None)
    (line,) = json_lines(stream)
    assert line["number"] == MASKED
    assert line["from_number"] is None


def test_bound_and_context_values_are_masked() -> None:
    stream = configure_json()
    structlog.contextvars.bind_contextvars(connectedlinenum=NUMBER, uniqueid=UNIQUEID)
    try:
        get_logger().bind(calleridnum=f"52{NUMBER}").info("bridged")
    finally:
        structlog.contextvars.clear_contextvars()
    (line,) = json_lines(stream)
    assert line["connectedlinenum"] == MASKED
    assert line["calleridnum"] == "********5205"
    assert line["uniqueid"] == UNIQUEID


def dial(number: str) -> None:
    raise RuntimeError(f"dial failed for {number}")


def test_exception_text_is_masked() -> None:
    stream = configure_json()
    log = get_logger()
    try:
        dial(NUMBER)
    except RuntimeError:
        log.exception("call failed")
    (line,) = json_lines(stream)
    assert line["level"] == "error"
    assert "Traceback (most recent call last)" in line["exception"]
    assert f"RuntimeError: dial failed for {MASKED}" in line["exception"]
    assert NUMBER not in stream.getvalue()


def test_console_format_masks_too() -> None:
    stream = io.StringIO()
    configure_logging("console", "debug", stream=stream)
    get_logger("ivr.agi").debug(f"call from {NUMBER}", caller=NUMBER, uniqueid=UNIQUEID)
    text = stream.getvalue()
    assert NUMBER not in text
    assert f"call from {MASKED}" in text
    assert f"caller={MASKED}" in text
    assert f"uniqueid={UNIQUEID}" in text
    assert "\x1b[" not in text  # a StringIO is not a terminal: no colours


def test_reconfiguring_switches_stream_and_format() -> None:
    first = configure_json()
    log = get_logger("ivr.test")
    log.info("one")
    second = io.StringIO()
    configure_logging("console", "info", stream=second)
    log.info("two")
    assert [line["event"] for line in json_lines(first)] == ["one"]
    assert "two" in second.getvalue()
    assert not second.getvalue().lstrip().startswith("{")


def test_stdlib_records_are_forwarded_and_masked() -> None:
    stream = configure_json()
    logging.getLogger("asyncpg.pool").warning("connection lost for %s", NUMBER)
    logging.getLogger("asyncpg.pool").debug("below the level")
    (line,) = json_lines(stream)
    assert line["event"] == f"connection lost for {MASKED}"
    assert line["level"] == "warning"
    assert line["logger_name"] == "asyncpg.pool"


def test_processor_on_a_plain_event_dict() -> None:
    event = {"event": f"from +52{NUMBER}", "Caller": NUMBER, "timestamp": "1796413234"}
    assert mask_personal_data(None, "info", event) == {
        "event": "from +********5205",
        "Caller": MASKED,
        "timestamp": "1796413234",
    }
