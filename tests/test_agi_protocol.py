"""The sans-IO AGI protocol against the bytes of a real Asterisk 22.10.1.

Every case is fed whole, byte by byte and (with hypothesis) cut at arbitrary points, and
must give the same events: the parser may never depend on how TCP chunked the stream.
The captures are in ``tests/captures/`` (``agi_captures`` loads them).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

import pytest
from agi_captures import (
    AGI_SESSIONS,
    FROM_ASTERISK,
    TO_ASTERISK,
    Capture,
    load_capture,
    unescape,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.agi.protocol import (
    MAX_ENV_LINES,
    MAX_LINE,
    MAX_USAGE_LINES,
    NEED_DATA,
    AgiConnection,
    Closed,
    Environment,
    ErrorReply,
    Event,
    HangupLine,
    LocalProtocolError,
    ProtocolError,
    Reply,
    State,
    Trying,
    decode_value,
)
from ivr.testing import USAGE_GET_DATA, USAGE_STREAM_FILE

# (the command a final reply answers, or None for other events; the event)
Step = tuple[bytes | None, Event]

LOCAL: Final = load_capture("agi-local-session")
SIP: Final = load_capture("agi-sip-session")
EXIT: Final = load_capture("agi-exit-on-hangup")

DEAD: Final = "Command Not Permitted on a dead channel or intercept routine"
USAGE_HEAD: Final = "Invalid command syntax.  Proper usage follows:"
# Not captured: res_agi.c agi_handle_command() sends this when a command has no usage text.
SHORT_520: Final = b"520 Invalid command syntax.  Proper usage not available.\n"
# Not captured: apps/app_stack.c handle_gosub() sends this before running the subroutine
# (``ast_agi_send(agi->fd, chan, "100 result=0 Trying...\n")``); the final reply follows.
TRYING: Final = b"100 result=0 Trying...\n"


def usage_lines(block: bytes) -> tuple[str, ...]:
    """The lines between ``520-...`` and ``520 End of proper usage.``."""
    return tuple(line.decode() for line in block.split(b"\n")[1:-2])


ENV_LOCAL: Final = {
    "network": "yes",
    "network_script": "citizen-line?foo=bar",
    "request": "agi://127.0.0.1:4573/citizen-line?foo=bar",
    "channel": "Local/s@capture-agi-00000000;2",
    "language": "es",
    "type": "Local",
    "uniqueid": "asterisk-lab-1796413114.1",
    "version": "22.10.1",
    "callerid": "5550100",
    "calleridname": "Ciudadano Captura",
    "callingpres": "0",
    "callingani2": "0",
    "callington": "0",
    "callingtns": "0",
    "dnid": "unknown",
    "rdnis": "unknown",
    "context": "capture-agi",
    "extension": "s",
    "priority": "3",
    "enhanced": "0.0",
    "accountcode": "",
    "threadid": "140421655918272",
    "arg_1": "arg1",
    "arg_2": "arg2",
}
ENV_SIP: Final = {
    **ENV_LOCAL,
    "channel": "PJSIP/sipp-00000000",
    "type": "PJSIP",
    "uniqueid": "asterisk-lab-1796413182.6",
    "callerid": "sipp",
    "calleridname": "sipp",
    "dnid": "300",
    "context": "capture-sip",
    "extension": "300",
    "priority": "2",
    "threadid": "140421659502272",
}
ENV_EXIT: Final = {
    **{key: value for key, value in ENV_LOCAL.items() if key != "arg_2"},
    "network_script": "exit-on-hangup?foo=bar",
    "request": "agi://127.0.0.1:4573/exit-on-hangup?foo=bar",
    "channel": "Local/s@capture-agi-exit-00000002;2",
    "uniqueid": "asterisk-lab-1796413176.5",
    "context": "capture-agi-exit",
    "threadid": "140421659502272",
}


def environment(values: dict[str, str]) -> Environment:
    return Environment(values=values, raw={key: value.encode() for key, value in values.items()})


def endpos(result: str, samples: str) -> Reply:
    return Reply(result, extras={"endpos": samples})


SAY_HI: Final = 'say "hi" there'
EXPECTED: Final[dict[str, list[Step]]] = {
    "agi-local-session": [
        (None, environment(ENV_LOCAL)),
        (b"ANSWER\n", Reply("0")),
        (b'STREAM FILE demo-congrats "0123456789*#"\n', endpos("53", "9920")),
        (b'STREAM FILE hello-world ""\n', endpos("0", "8365")),
        (b"GET DATA vm-enter-num-to-call 5000 1\n", Reply("3")),
        (b"GET DATA beep 2000 1\n", Reply("", "timeout")),
        (b"GET DATA beep 3000 4\n", Reply("12", "timeout")),
        (b"WAIT FOR DIGIT 2000\n", Reply("55")),
        (b'SET VARIABLE CAPVAR "say \\"hi\\" there"\n', Reply("1")),
        (b"GET VARIABLE CAPVAR\n", Reply("1", SAY_HI)),
        (b"GET VARIABLE CAP_NEVER_SET\n", Reply("0")),
        (b"GET FULL VARIABLE ${CALLERID(num)}\n", Reply("1", "5550100")),
        (b"CHANNEL STATUS\n", Reply("6")),
        (b'SAY DATETIME 1700000000 ""\n', Reply("0")),
        (b'SAY NUMBER 42 ""\n', Reply("0")),
        (b"EXEC Read X,beep,1,,1,2\n", Reply("0")),
        (b"GET VARIABLE X\n", Reply("1", "9")),
        (b"NOSUCH COMMAND foo\n", ErrorReply(510, "Invalid or unknown command")),
        (b"STREAM FILE\n", ErrorReply(520, USAGE_HEAD, usage_lines(USAGE_STREAM_FILE))),
        (b"GET DATA\n", ErrorReply(520, USAGE_HEAD, usage_lines(USAGE_GET_DATA))),
        (b"EXEC NoSuchApp foo\n", Reply("-2")),
        (b"EXEC Read(X,beep,1,,1,2)\n", Reply("-2")),
        (b'STREAM FILE demo-instruct ""\n', endpos("-1", "12320")),
        (None, HangupLine()),
        (b'STREAM FILE hello-world ""\n', ErrorReply(511, DEAD)),
        (b"WAIT FOR DIGIT 1000\n", ErrorReply(511, DEAD)),
        (b"GET VARIABLE CAPVAR\n", Reply("1", SAY_HI)),
        (None, HangupLine()),  # the second HANGUP, after we half-closed
        (None, Closed(clean=True)),
    ],
    "agi-sip-session": [
        (None, environment(ENV_SIP)),
        (b"ANSWER\n", Reply("0")),
        (b'STREAM FILE hello-world ""\n', endpos("0", "8365")),
        (None, HangupLine()),  # sent on a live channel when the script closes
        (None, Closed(clean=True)),
    ],
    "agi-exit-on-hangup": [
        (None, environment(ENV_EXIT)),
        (b"ANSWER\n", Reply("0")),
        (b'STREAM FILE demo-instruct ""\n', endpos("-1", "12320")),
        (None, HangupLine()),
        (None, HangupLine()),
        (None, Closed(clean=True)),
    ],
}


# --- drivers -------------------------------------------------------------------------


def pull(
    conn: AgiConnection,
    out: list[Step],
    commands: Iterator[bytes] | None = None,
    limit: int | None = None,
) -> None:
    """Every event available now; with ``commands``, send the next one whenever idle.

    ``limit`` bounds ``out``: each event must consume at least a line, so more events
    than bytes fed means the parser is yielding events without consuming input.
    """
    while conn.state not in {State.CLOSED, State.ERROR}:
        assert limit is None or len(out) <= limit, "events without input: the parser loops"
        if commands is not None and conn.state is State.IDLE:
            command = next(commands, None)
            if command is not None:
                assert conn.send(command) == command
        in_flight = conn.in_flight
        event = conn.next_event()
        if event is NEED_DATA:
            return
        final = isinstance(event, Reply | ErrorReply)
        out.append((in_flight if final else None, event))


def feed(
    pieces: Iterable[bytes], *, eof: bool, commands: Sequence[bytes] = ()
) -> tuple[list[Step], AgiConnection]:
    """A fresh connection fed ``pieces`` (none empty), sending ``commands`` greedily."""
    conn = AgiConnection()
    pending = iter(commands)
    out: list[Step] = []
    for piece in pieces:
        assert piece, "an empty piece would mean EOF"
        conn.receive_data(piece)
        pull(conn, out, pending)
    if eof:
        conn.receive_data(b"")
        pull(conn, out, pending)
    assert next(pending, None) is None, "every command was sent"
    return out, conn


def replay(capture: Capture, pieces: Iterable[bytes], *, eof: bool = True) -> list[Step]:
    return feed(pieces, eof=eof, commands=capture.commands)[0]


def replay_as_recorded(capture: Capture) -> list[Step]:
    """Exactly as the capture script did: its writes and Asterisk's reads in wire order."""
    conn = AgiConnection()
    out: list[Step] = []
    for chunk in capture.chunks:
        if chunk.data is None:
            if chunk.direction == FROM_ASTERISK and (chunk.event or "").startswith("EOF"):
                conn.receive_data(b"")
                pull(conn, out)
        elif chunk.direction == TO_ASTERISK:
            for command in re.findall(rb"[^\n]*\n", chunk.data):
                assert conn.send(command) == command
        else:
            conn.receive_data(chunk.data)
            pull(conn, out)
    return out


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({cut for cut in cuts if 0 < cut < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def connected(env: bytes | None = None) -> AgiConnection:
    """A connection past the environment block (the captured one by default)."""
    conn = AgiConnection()
    conn.receive_data(env if env is not None else env_block(LOCAL))
    event = conn.next_event()
    assert isinstance(event, Environment)
    assert conn.state is State.IDLE
    return conn


def events_of(conn: AgiConnection, pieces: Iterable[bytes], *, eof: bool = False) -> list[Event]:
    out: list[Step] = []
    for piece in pieces:
        conn.receive_data(piece)
        pull(conn, out)
    if eof:
        conn.receive_data(b"")
        pull(conn, out)
    return [event for _, event in out]


def env_block(capture: Capture) -> bytes:
    end = capture.received.index(b"\n\n") + 2
    return capture.received[:end]


def whole(data: bytes) -> list[bytes]:
    return [data] if data else []


FEEDINGS: Final[dict[str, Callable[[bytes], list[bytes]]]] = {
    "whole": whole,
    "bytes": byte_by_byte,
}


# --- the captures and their helper ---------------------------------------------------


@pytest.mark.parametrize("name", AGI_SESSIONS)
def test_capture_txt_and_json_agree(name: str) -> None:
    capture = load_capture(name)
    assert b"".join(capture.lines_from(FROM_ASTERISK)) == capture.received
    assert b"".join(capture.lines_from(TO_ASTERISK)) == capture.sent
    json_events = [(c.direction, c.event) for c in capture.chunks if c.event is not None]
    assert json_events == list(capture.socket_events)
    assert all(line.count(b"\n") == 1 for _, line in capture.lines)
    assert b"\r" not in capture.received + capture.sent  # AGI uses bare \n both ways
    assert capture.closed_by_asterisk
    assert [command for command, _ in EXPECTED[name] if command is not None] == capture.commands


def test_unescape_undoes_the_capture_escapes() -> None:
    assert unescape(r"a\\b\n\r\t\x00\xe9\\n") == b"a\\b\n\r\t\x00\xe9\\n"
    assert unescape("señal") == "señal".encode()
    with pytest.raises(ValueError, match="unknown escape"):
        unescape(r"\q")


def test_fake_asterisk_usage_blocks_are_the_captured_bytes() -> None:
    assert USAGE_STREAM_FILE in LOCAL.received
    assert USAGE_GET_DATA in LOCAL.received


# --- environment ----------------------------------------------------------------------


@pytest.mark.parametrize("feeding", FEEDINGS)
@pytest.mark.parametrize(
    ("capture", "values"),
    [(LOCAL, ENV_LOCAL), (SIP, ENV_SIP), (EXIT, ENV_EXIT)],
    ids=AGI_SESSIONS,
)
def test_environment_block(capture: Capture, values: dict[str, str], feeding: str) -> None:
    conn = AgiConnection()
    events = events_of(conn, FEEDINGS[feeding](env_block(capture)))
    assert events == [environment(values)]
    assert conn.state is State.IDLE
    assert conn.next_event() is NEED_DATA


def test_environment_of_the_local_session() -> None:
    env = events_of(AgiConnection(), [env_block(LOCAL)])[0]
    assert isinstance(env, Environment)
    assert len(env.values) == 24  # 24 agi_* lines, then the empty line
    assert env_block(LOCAL).count(b"\n") == 25
    assert env.raw["accountcode"] == b""  # "agi_accountcode: \n": empty, kept
    assert env.values["accountcode"] == ""
    assert env.args == ("arg1", "arg2")
    assert env.get("network_script") == "citizen-line?foo=bar"
    assert env.get("no_such_key") == ""
    assert env.get("no_such_key", "x") == "x"
    assert env.known("callerid") == "5550100"
    assert env.known("calleridname") == "Ciudadano Captura"
    assert env.known("dnid") is None  # Asterisk writes "unknown"
    assert env.known("rdnis") is None
    assert env.known("accountcode") is None
    assert env.known("no_such_key") is None


def test_environment_args_of_the_other_sessions() -> None:
    env = events_of(AgiConnection(), [env_block(EXIT)])[0]
    assert isinstance(env, Environment)
    assert env.args == ("arg1",)
    assert len(env.values) == 23


@pytest.mark.parametrize("feeding", FEEDINGS)
def test_non_utf8_environment_values_survive(feeding: str) -> None:
    block = (
        b"agi_network: yes\n"
        b"agi_calleridname: Jos\xe9 P\xe9rez\n"  # Latin-1, as old PBXs send
        b"agi_callerid: \xff\xfe\x80\x00\n"  # not text at all
        b"agi_dnid: Jos\xc3\xa9 \xff\n"  # UTF-8 then an invalid byte
        b"agi_context: caf\xc3\xa9\n"  # valid UTF-8
        b"agi_extension: a\rb\tc \n"  # CR, TAB and a trailing blank inside a value
        b"\n"
    )
    conn = AgiConnection()
    (env,) = events_of(conn, FEEDINGS[feeding](block))
    assert isinstance(env, Environment)
    assert env.raw == {
        "network": b"yes",
        "calleridname": b"Jos\xe9 P\xe9rez",
        "callerid": b"\xff\xfe\x80\x00",
        "dnid": b"Jos\xc3\xa9 \xff",
        "context": b"caf\xc3\xa9",
        "extension": b"a\rb\tc ",
    }
    # UTF-8 when the bytes are UTF-8, else Latin-1: every byte maps to one character.
    assert env.values == {
        "network": "yes",
        "calleridname": "José Pérez",
        "callerid": "\xff\xfe\x80\x00",
        "dnid": "JosÃ\xa9 ÿ",
        "context": "café",
        "extension": "a\rb\tc ",
    }
    assert all(env.values[key] == decode_value(raw) for key, raw in env.raw.items())


# --- every reply form -------------------------------------------------------------------

# (capture it comes from or None, command, bytes Asterisk sends, EOF after?, events)
REPLIES: Final = [
    pytest.param(LOCAL, b"ANSWER\n", b"200 result=0\n", False, [Reply("0")], id="200"),
    pytest.param(
        LOCAL,
        b'STREAM FILE demo-congrats "0123456789*#"\n',
        b"200 result=53 endpos=9920\n",
        False,
        [endpos("53", "9920")],
        id="200-endpos",
    ),
    pytest.param(
        LOCAL,
        b"GET DATA beep 2000 1\n",
        b"200 result= (timeout)\n",
        False,
        [Reply("", "timeout")],
        id="200-empty-timeout",
    ),
    pytest.param(
        LOCAL,
        b"GET DATA beep 3000 4\n",
        b"200 result=12 (timeout)\n",
        False,
        [Reply("12", "timeout")],
        id="200-digits-timeout",
    ),
    pytest.param(
        LOCAL,
        b"GET VARIABLE CAPVAR\n",
        b'200 result=1 (say "hi" there)\n',
        False,
        [Reply("1", SAY_HI)],
        id="200-data",
    ),
    pytest.param(
        LOCAL,
        b"GET VARIABLE CAP_NEVER_SET\n",
        b"200 result=0\n",
        False,
        [Reply("0", None)],
        id="200-no-data",
    ),
    pytest.param(
        LOCAL, b"EXEC NoSuchApp foo\n", b"200 result=-2\n", False, [Reply("-2")], id="200-minus-2"
    ),
    pytest.param(
        LOCAL,
        b"NOSUCH COMMAND foo\n",
        b"510 Invalid or unknown command\n",
        False,
        [ErrorReply(510, "Invalid or unknown command")],
        id="510",
    ),
    pytest.param(
        LOCAL,
        b"STREAM FILE\n",
        USAGE_STREAM_FILE,
        False,
        [ErrorReply(520, USAGE_HEAD, usage_lines(USAGE_STREAM_FILE))],
        id="520-stream-file",
    ),
    pytest.param(
        LOCAL,
        b"GET DATA\n",
        USAGE_GET_DATA,
        False,
        [ErrorReply(520, USAGE_HEAD, usage_lines(USAGE_GET_DATA))],
        id="520-get-data",
    ),
    pytest.param(
        LOCAL,
        b"WAIT FOR DIGIT 1000\n",
        f"511 {DEAD}\n".encode(),
        False,
        [ErrorReply(511, DEAD)],
        id="511",
    ),
    pytest.param(
        LOCAL,
        b'STREAM FILE demo-instruct ""\n',
        b"200 result=-1 endpos=12320\nHANGUP\n",
        False,
        [endpos("-1", "12320"), HangupLine()],
        id="reply-then-hangup",
    ),
    pytest.param(
        EXIT,
        b'STREAM FILE demo-instruct ""\n',
        b"200 result=-1 endpos=12320\nHANGUP\nHANGUP\n",
        True,
        [endpos("-1", "12320"), HangupLine(), HangupLine(), Closed(clean=True)],
        id="exit-on-hangup",
    ),
    # Not captured; the exact strings are res_agi.c's and app_stack.c's (see SHORT_520, TRYING).
    pytest.param(
        None,
        b"NOOP\n",
        SHORT_520,
        False,
        [ErrorReply(520, "Invalid command syntax.  Proper usage not available.")],
        id="520-single-line",
    ),
    pytest.param(
        None,
        b'EXEC Gosub "sub,s,1"\n',
        TRYING + b"200 result=0\n",
        False,
        [Trying("result=0 Trying..."), Reply("0")],
        id="100-trying",
    ),
    pytest.param(
        None,
        b"NOOP\n",
        b"100 Trying...\n200 result=0\n",
        False,
        [Trying("Trying..."), Reply("0")],
        id="100-trying-bare",
    ),
    pytest.param(
        None,
        b"NOOP\n",
        b"503 result=-2 Memory allocation failure\n",
        False,
        [ErrorReply(503, "result=-2 Memory allocation failure")],
        id="503",
    ),
]


@pytest.mark.parametrize("feeding", FEEDINGS)
@pytest.mark.parametrize(("capture", "command", "reply", "eof", "expected"), REPLIES)
def test_reply_forms(
    *,
    capture: Capture | None,
    command: bytes,
    reply: bytes,
    eof: bool,
    expected: list[Event],
    feeding: str,
) -> None:
    if capture is not None:  # the reply is the real bytes, and answered that command
        assert command in capture.commands
        assert reply in capture.received
    conn = connected()
    conn.send(command)
    assert conn.in_flight == command
    assert events_of(conn, FEEDINGS[feeding](reply), eof=eof) == expected
    if not eof:
        assert conn.state is State.IDLE
        assert conn.in_flight is None
        assert conn.next_event() is NEED_DATA
    assert conn.hung_up == (HangupLine() in expected)


@pytest.mark.parametrize("feeding", FEEDINGS)
@pytest.mark.parametrize(
    "block", [USAGE_STREAM_FILE, USAGE_GET_DATA], ids=["stream-file", "get-data"]
)
def test_usage_lines_are_kept(block: bytes, feeding: str) -> None:
    conn = connected()
    conn.send(b"STREAM FILE\n")
    assert events_of(conn, FEEDINGS[feeding](block)) == [
        ErrorReply(520, USAGE_HEAD, usage_lines(block))
    ]


def test_reply_accessors() -> None:
    assert Reply("53").number == 53
    assert chr(Reply("53").number or 0) == "5"  # STREAM FILE gives the key's ASCII code
    assert Reply("").number is None
    assert Reply("-2").number == -2
    assert Reply("1", SAY_HI).code == 200
    assert Reply("0").extras == {}


def test_reply_data_that_is_not_utf8_is_decoded() -> None:
    conn = connected()
    conn.send(b"GET VARIABLE CALLERID(name)\n")
    assert events_of(conn, [b"200 result=1 (Jos\xe9)\n"]) == [Reply("1", "José")]


def test_reply_data_with_parentheses_and_key_value_text() -> None:
    # GET VARIABLE returns the value raw inside the parentheses: it can hold ")" and "k=v".
    conn = connected()
    conn.send(b"GET VARIABLE X\n")
    events = events_of(conn, [b"200 result=1 (a) endpos=5 (b) endpos=7\n"])
    assert events == [Reply("1", "a) endpos=5 (b", {"endpos": "7"})]


@pytest.mark.parametrize("feeding", FEEDINGS)
def test_a_value_with_a_newline_fails_closed(feeding: str) -> None:
    # GET VARIABLE of "x\n200 result=0" makes Asterisk write "200 result=1 (x\n200 result=0)\n".
    conn = connected()
    conn.send(b"GET VARIABLE X\n")
    for piece in FEEDINGS[feeding](b"200 result=1 (x\n"):
        conn.receive_data(piece)
    with pytest.raises(ProtocolError):
        conn.next_event()


def test_a_value_with_a_newline_never_answers_an_unsent_command() -> None:
    # Whatever the first line gives, the rest of the value is not a reply to anything.
    conn = connected()
    conn.send(b"GET VARIABLE X\n")
    with pytest.raises(ProtocolError):
        events_of(conn, [b"200 result=1 (x\n200 result=0)\n"])
    assert conn.state is State.ERROR


# Not captured: the final replies of the AGI GOSUB command (apps/app_stack.c handle_gosub()),
# free text after the result.
GOSUB_REPLIES: Final[list[tuple[bytes, Event]]] = [
    (b"200 result=0 Gosub complete\n", Reply("0", message="Gosub complete")),
    (
        b"200 result=0 Gosub complete (abnormal exit)\n",
        Reply("0", message="Gosub complete (abnormal exit)"),
    ),
    (b"200 result=-1 Gosub label not found\n", Reply("-1", message="Gosub label not found")),
    (b"200 result=-1 Gosub failed\n", Reply("-1", message="Gosub failed")),
]


@pytest.mark.parametrize("feeding", FEEDINGS)
@pytest.mark.parametrize(("reply", "expected"), GOSUB_REPLIES)
def test_gosub_final_replies(reply: bytes, expected: Event, feeding: str) -> None:
    conn = connected()
    conn.send(b"GOSUB sub s 1\n")
    events = events_of(conn, FEEDINGS[feeding](TRYING + reply))
    assert events == [Trying("result=0 Trying..."), expected]
    assert conn.state is State.IDLE


# --- whole sessions -------------------------------------------------------------------


@pytest.mark.parametrize("name", AGI_SESSIONS)
def test_session_replayed_as_recorded(name: str) -> None:
    assert replay_as_recorded(load_capture(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", AGI_SESSIONS)
def test_session_in_the_original_chunks(name: str) -> None:
    capture = load_capture(name)
    assert replay(capture, capture.received_chunks) == EXPECTED[name]


@pytest.mark.parametrize("name", AGI_SESSIONS)
def test_session_whole(name: str) -> None:
    capture = load_capture(name)
    assert replay(capture, [capture.received]) == EXPECTED[name]


@pytest.mark.parametrize("name", AGI_SESSIONS)
def test_session_byte_by_byte(name: str) -> None:
    capture = load_capture(name)
    assert replay(capture, byte_by_byte(capture.received)) == EXPECTED[name]


@pytest.mark.parametrize("name", AGI_SESSIONS)
def test_session_with_crlf_line_endings(name: str) -> None:
    capture = load_capture(name)
    crlf = capture.received.replace(b"\n", b"\r\n")
    assert replay(capture, [crlf]) == EXPECTED[name]
    assert replay(capture, byte_by_byte(crlf)) == EXPECTED[name]


@pytest.mark.parametrize("feeding", FEEDINGS)
@pytest.mark.parametrize("name", AGI_SESSIONS)
def test_session_with_trailing_data(name: str, feeding: str) -> None:
    capture = load_capture(name)
    # Without the EOF, then one more HANGUP and half a line: the same events, one more
    # HANGUP, then the parser waits; the EOF that follows cuts that line.
    stream = capture.received + b"HANGUP\n200 res"
    out, conn = feed(FEEDINGS[feeding](stream), eof=False, commands=capture.commands)
    assert out == [*EXPECTED[name][:-1], (None, HangupLine())]
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    assert conn.next_event() == Closed(clean=False)


@pytest.mark.parametrize("name", AGI_SESSIONS)
def test_session_with_a_trailing_reply_nobody_asked_for(name: str) -> None:
    capture = load_capture(name)
    conn = AgiConnection()
    out: list[Step] = []
    conn.receive_data(capture.received + b"200 result=0\n")
    with pytest.raises(ProtocolError, match="no command in flight"):
        pull(conn, out, iter(capture.commands))
    assert out == EXPECTED[name][:-1]


def test_no_data_after_eof() -> None:
    conn = AgiConnection()
    conn.receive_data(LOCAL.received)
    conn.receive_data(b"")
    conn.receive_data(b"")  # a second EOF is harmless
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"HANGUP\n")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_session_cut_anywhere(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(AGI_SESSIONS))
    capture = load_capture(name)
    cuts = data.draw(st.lists(st.integers(1, len(capture.received) - 1), max_size=40))
    assert replay(capture, split(capture.received, cuts)) == EXPECTED[name]


# --- HANGUP before the reply ----------------------------------------------------------


@pytest.mark.parametrize("feeding", FEEDINGS)
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"200 result=-1 endpos=4000\n", endpos("-1", "4000")),
        (f"511 {DEAD}\n".encode(), ErrorReply(511, DEAD)),
        (USAGE_GET_DATA, ErrorReply(520, USAGE_HEAD, usage_lines(USAGE_GET_DATA))),
    ],
)
def test_hangup_before_the_reply_keeps_replies_paired(
    reply: bytes, expected: Event, feeding: str
) -> None:
    conn = connected()
    out: list[Step] = []
    first = b'STREAM FILE demo-instruct ""\n'
    conn.send(first)
    for piece in FEEDINGS[feeding](b"HANGUP\n" + reply):
        conn.receive_data(piece)
        pull(conn, out)
    assert out == [(None, HangupLine()), (first, expected)]
    assert conn.hung_up
    # Nothing is off by one afterwards: the next command gets its own reply.
    second = b"GET VARIABLE CAPVAR\n"
    conn.send(second)
    for piece in FEEDINGS[feeding](b'200 result=1 (say "hi" there)\n'):
        conn.receive_data(piece)
        pull(conn, out)
    assert out[2:] == [(second, Reply("1", SAY_HI))]
    assert conn.state is State.IDLE


def test_hangup_before_trying_and_between_trying_and_reply() -> None:
    conn = connected()
    conn.send(b'EXEC Gosub "sub,s,1"\n')
    events = events_of(conn, [b"HANGUP\n" + TRYING + b"HANGUP\n200 result=0\n"])
    assert events == [HangupLine(), Trying("result=0 Trying..."), HangupLine(), Reply("0")]
    assert conn.state is State.IDLE


# --- EOF ------------------------------------------------------------------------------


@pytest.mark.parametrize("feeding", FEEDINGS)
@pytest.mark.parametrize(
    ("command", "received", "clean"),
    [
        pytest.param(None, b"", False, id="before-anything"),
        pytest.param(None, b"agi_network: yes\nagi_channel: x\n", False, id="in-environment"),
        pytest.param(None, b"agi_network: yes\nagi_chan", False, id="in-environment-line"),
        pytest.param(b"ANSWER\n", b"", False, id="command-in-flight"),
        pytest.param(b"ANSWER\n", b"200 res", False, id="in-reply-line"),
        pytest.param(b"ANSWER\n", b"HANGUP\n", False, id="in-flight-after-hangup"),
        pytest.param(b"STREAM FILE\n", USAGE_STREAM_FILE[:-25], False, id="in-520-block"),
        pytest.param(b"STREAM FILE\n", USAGE_STREAM_FILE[:60], False, id="in-520-line"),
        pytest.param(b"NOOP\n", TRYING, False, id="after-100-trying"),
        pytest.param(b"ANSWER\n", b"200 result=0\n", True, id="idle"),
        pytest.param(b"ANSWER\n", b"200 result=0\nHANGUP\n", True, id="idle-after-hangup"),
        pytest.param(b"ANSWER\n", b"200 result=0\nHANG", False, id="idle-in-a-line"),
    ],
)
def test_eof(command: bytes | None, received: bytes, clean: bool, feeding: str) -> None:
    if command is None:
        conn = AgiConnection()
    else:
        conn = connected()
        conn.send(command)
    events = events_of(conn, FEEDINGS[feeding](received), eof=True)
    assert events[-1] == Closed(clean=clean)
    assert conn.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send(b"ANSWER\n")


# --- limits ---------------------------------------------------------------------------


def test_a_line_of_max_line_bytes_is_fine_one_more_is_not() -> None:
    prefix = b"200 result=1 ("
    data = b"a" * (MAX_LINE - len(prefix) - 1)
    line = prefix + data + b")"
    assert len(line) == MAX_LINE
    conn = connected()
    conn.send(b"GET VARIABLE X\n")
    assert events_of(conn, [line + b"\n"]) == [Reply("1", data.decode())]

    conn = connected()
    conn.send(b"GET VARIABLE X\n")
    with pytest.raises(ProtocolError, match="longer than"):
        events_of(conn, [prefix + data + b"a)\n"])


@pytest.mark.parametrize("where", ["environment", "reply"])
def test_a_long_line_without_newline_is_refused_at_once(where: str) -> None:
    if where == "environment":
        conn = AgiConnection()
        start = b"agi_calleridname: "
    else:
        conn = connected()
        conn.send(b"GET VARIABLE X\n")
        start = b"200 result=1 ("
    conn.receive_data(start)
    assert conn.next_event() is NEED_DATA
    fed = len(start)
    # Byte by byte: the error comes with the byte that takes the buffer past MAX_LINE,
    # so what the parser holds never exceeds MAX_LINE + one read.
    for fed in range(len(start) + 1, MAX_LINE + 1):
        conn.receive_data(b"x")
        assert conn.next_event() is NEED_DATA, fed
    conn.receive_data(b"x")
    with pytest.raises(ProtocolError, match="longer than"):
        conn.next_event()
    assert conn.state is State.ERROR
    with pytest.raises(LocalProtocolError):
        conn.next_event()


def test_a_long_line_in_big_reads_is_refused_within_one_read() -> None:
    conn = connected()
    conn.send(b"GET VARIABLE X\n")
    for _ in range(MAX_LINE // 1000):  # up to MAX_LINE bytes: the line may still end
        conn.receive_data(b"y" * 1000)
        assert conn.next_event() is NEED_DATA
    conn.receive_data(b"y" * 1000)  # past MAX_LINE within this read: refused now
    with pytest.raises(ProtocolError, match="longer than"):
        conn.next_event()


def env_lines(count: int) -> bytes:
    return b"".join(b"agi_key_%d: value\n" % n for n in range(count)) + b"\n"


def test_environment_line_limit() -> None:
    env = events_of(AgiConnection(), [env_lines(MAX_ENV_LINES)])[0]
    assert isinstance(env, Environment)
    assert len(env.values) == MAX_ENV_LINES
    with pytest.raises(ProtocolError, match="environment longer"):
        events_of(AgiConnection(), [env_lines(MAX_ENV_LINES + 1)])


def test_environment_line_limit_counts_lines_not_keys() -> None:
    block = b"agi_network: yes\n" * (MAX_ENV_LINES + 1) + b"\n"
    with pytest.raises(ProtocolError):
        events_of(AgiConnection(), [block])


def usage_block(count: int) -> bytes:
    lines = b"".join(b"usage line %d\n" % n for n in range(count))
    return b"520-Invalid command syntax.  Proper usage follows:\n" + lines + b"520 End\n"


def test_usage_block_line_limit() -> None:
    conn = connected()
    conn.send(b"STREAM FILE\n")
    (reply,) = events_of(conn, [usage_block(MAX_USAGE_LINES)])
    assert isinstance(reply, ErrorReply)
    assert len(reply.usage) == MAX_USAGE_LINES

    conn = connected()
    conn.send(b"STREAM FILE\n")
    with pytest.raises(ProtocolError, match="usage block longer"):
        events_of(conn, [usage_block(MAX_USAGE_LINES + 1)])


@pytest.mark.parametrize("feeding", FEEDINGS)
@pytest.mark.parametrize("count", [0, 1, 5, MAX_USAGE_LINES])
def test_a_usage_block_is_one_reply_whatever_its_length(count: int, feeding: str) -> None:
    conn = connected()
    conn.send(b"STREAM FILE\n")
    (reply,) = events_of(conn, FEEDINGS[feeding](usage_block(count)))
    assert isinstance(reply, ErrorReply)
    assert (reply.code, reply.message) == (520, USAGE_HEAD)
    conn.send(b"ANSWER\n")  # the block is over: the next reply is the next command's
    assert events_of(conn, [b"200 result=0\n"]) == [Reply("0")]


# --- what we may send -----------------------------------------------------------------


def test_send_before_the_environment() -> None:
    conn = AgiConnection()
    with pytest.raises(LocalProtocolError):
        conn.send(b"ANSWER\n")
    conn.receive_data(b"agi_network: yes\n")
    assert conn.next_event() is NEED_DATA
    with pytest.raises(LocalProtocolError):
        conn.send(b"ANSWER\n")


def test_one_command_in_flight() -> None:
    conn = connected()
    conn.send(b"ANSWER\n")
    with pytest.raises(LocalProtocolError):
        conn.send(b"ANSWER\n")
    conn.receive_data(TRYING)
    assert conn.next_event() == Trying("result=0 Trying...")
    with pytest.raises(LocalProtocolError):  # still in flight after 100 Trying
        conn.send(b"ANSWER\n")
    conn.receive_data(b"HANGUP\n")
    assert conn.next_event() == HangupLine()
    with pytest.raises(LocalProtocolError):  # and after HANGUP
        conn.send(b"ANSWER\n")
    assert conn.in_flight == b"ANSWER\n"


@pytest.mark.parametrize(
    "command",
    [
        b"ANSWER",
        b"ANSWER\nANSWER\n",
        b"\nANSWER\n",
        b"ANSWER\r\n",
        b"SET VARIABLE X a\rb\n",
        b"SET VARIABLE X a\x00b\n",
        b"",
    ],
)
def test_malformed_commands_are_refused(command: bytes) -> None:
    conn = connected()
    with pytest.raises(LocalProtocolError):
        conn.send(command)
    assert conn.state is State.IDLE  # a refused command leaves nothing in flight
    assert conn.in_flight is None
    assert conn.send(b"ANSWER\n") == b"ANSWER\n"


@pytest.mark.parametrize(
    "unsolicited", [b"200 result=0\n", b"510 Invalid or unknown command\n", TRYING, USAGE_GET_DATA]
)
def test_a_reply_with_no_command_in_flight(unsolicited: bytes) -> None:
    conn = connected()
    with pytest.raises(ProtocolError, match="no command in flight"):
        events_of(conn, [unsolicited])
    assert conn.state is State.ERROR


@pytest.mark.parametrize(
    "garbage",
    [
        b"hello\n",
        b"\n",
        b"200\n",
        b"2000 result=1\n",
        b"201-continued\n",
        b"hangup\n",
    ],
)
def test_not_agi_after_the_environment(garbage: bytes) -> None:
    conn = connected()
    conn.send(b"ANSWER\n")
    with pytest.raises(ProtocolError):
        events_of(conn, [garbage])


@pytest.mark.parametrize("garbage", [b"\n", b"network: yes\n", b"agi_network yes\n", b"HANGUP\n"])
def test_not_an_environment(garbage: bytes) -> None:
    with pytest.raises(ProtocolError):
        events_of(AgiConnection(), [garbage])


# --- hypothesis: never crashes, never desynchronises ----------------------------------

VALID_LINES: Final = [
    *LOCAL.lines_from(FROM_ASTERISK),
    TRYING,
    SHORT_520,
    b"HANGUP\n",
    b"HANGUP\r\n",
    b"\n",
]


def drive_garbage(pieces: Sequence[bytes], *, eof: bool) -> None:
    """Feed anything; the only exception allowed out of the parser is ProtocolError."""
    conn = AgiConnection()
    budget = sum(map(len, pieces)) + 2  # each event consumes a line: at most one per byte
    out: list[Step] = []
    try:
        for piece in pieces:
            conn.receive_data(piece)
            pull(conn, out, itertools.repeat(b"NOOP\n"), budget)
        if eof:
            conn.receive_data(b"")
            pull(conn, out, limit=budget)
            assert isinstance(out[-1][1], Closed)
    except ProtocolError:
        assert conn.state is State.ERROR
        return
    assert len(out) <= budget


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(1, 299), max_size=10), st.booleans())
def test_random_bytes_only_raise_protocol_error(stream: bytes, cuts: list[int], eof: bool) -> None:
    drive_garbage([p for p in split(stream, cuts) if p], eof=eof)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(VALID_LINES), st.binary(max_size=20)), max_size=40),
    st.booleans(),
    st.data(),
)
def test_valid_lines_mixed_with_garbage_only_raise_protocol_error(
    parts: list[bytes], eof: bool, data: st.DataObject
) -> None:
    stream = env_block(LOCAL) + b"".join(parts) if data.draw(st.booleans()) else b"".join(parts)
    cuts = data.draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=20))
    drive_garbage([p for p in split(stream, cuts) if p], eof=eof)


# A value: any bytes but a newline, and no CR at the end (a CR before the newline is
# taken as a CRLF ending, so a value ending in CR is ambiguous by design).
TEXT: Final = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").rstrip(b"\r"))
ENV_KEY: Final = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
CAPTURED_FINALS: Final[list[tuple[bytes, Event]]] = [
    (b"200 result=0\n", Reply("0")),
    (b"200 result=53 endpos=9920\n", endpos("53", "9920")),
    (b"200 result= (timeout)\n", Reply("", "timeout")),
    (b"200 result=12 (timeout)\n", Reply("12", "timeout")),
    (b'200 result=1 (say "hi" there)\n', Reply("1", SAY_HI)),
    (b"200 result=-2\n", Reply("-2")),
    (b"200 result=-1 endpos=12320\n", endpos("-1", "12320")),
    (b"510 Invalid or unknown command\n", ErrorReply(510, "Invalid or unknown command")),
    (f"511 {DEAD}\n".encode(), ErrorReply(511, DEAD)),
    (USAGE_STREAM_FILE, ErrorReply(520, USAGE_HEAD, usage_lines(USAGE_STREAM_FILE))),
    (USAGE_GET_DATA, ErrorReply(520, USAGE_HEAD, usage_lines(USAGE_GET_DATA))),
    (SHORT_520, ErrorReply(520, "Invalid command syntax.  Proper usage not available.")),
]


@st.composite
def data_replies(draw: st.DrawFn) -> tuple[bytes, Event]:
    result = draw(st.sampled_from(["", "0", "1", "-1", "-2", "49", "1234"]))
    data = draw(st.none() | TEXT)
    extras = draw(
        st.dictionaries(
            st.from_regex(r"[A-Za-z_]{1,8}", fullmatch=True),
            st.from_regex(r"[0-9]{0,6}", fullmatch=True),
            max_size=2,
        )
    )
    line = b"200 result=" + result.encode()
    if data is not None:
        line += b" (" + data + b")"
    line += b"".join(f" {key}={value}".encode() for key, value in extras.items())
    event = Reply(result, None if data is None else decode_value(data), extras)
    return line + b"\n", event


@st.composite
def error_replies(draw: st.DrawFn) -> tuple[bytes, Event]:
    code = draw(st.integers(300, 599))
    text = draw(TEXT)
    if code != 520 or not draw(st.booleans()):
        return b"%d %s\n" % (code, text), ErrorReply(code, decode_value(text))
    usage = draw(st.lists(TEXT.filter(lambda line: not line.startswith(b"520 ")), max_size=4))
    block = b"520-" + text + b"\n" + b"".join(line + b"\n" for line in usage) + b"520 End\n"
    return block, ErrorReply(520, decode_value(text), tuple(map(decode_value, usage)))


FINALS: Final = st.one_of(
    st.sampled_from([*CAPTURED_FINALS, *GOSUB_REPLIES]), data_replies(), error_replies()
)
PRELUDE: Final = st.lists(st.sampled_from(["hangup", "trying"]), max_size=3)


@st.composite
def sessions(draw: st.DrawFn) -> tuple[bytes, list[bytes], list[Step], bool]:
    """A valid session: its bytes, our commands, the events a correct parser yields."""
    crlf = draw(st.booleans())

    def line(raw: bytes) -> bytes:  # raw ends in "\n"; every line of it gets the ending
        return raw.replace(b"\n", b"\r\n") if crlf else raw

    values = draw(st.dictionaries(ENV_KEY, TEXT, min_size=1, max_size=12))
    stream = b"".join(line(b"agi_%s: %s\n" % (k.encode(), v)) for k, v in values.items())
    stream += line(b"\n")
    expected: list[Step] = [
        (None, Environment({k: decode_value(v) for k, v in values.items()}, dict(values)))
    ]
    commands: list[bytes] = []
    for number in range(draw(st.integers(0, 8))):
        command = b"NOOP %d\n" % number
        commands.append(command)
        for item in draw(PRELUDE):
            if item == "hangup":
                stream += line(b"HANGUP\n")
                expected.append((None, HangupLine()))
            else:
                stream += line(TRYING)
                expected.append((None, Trying("result=0 Trying...")))
        reply, event = draw(FINALS)
        stream += line(reply)
        expected.append((command, event))
        for _ in range(draw(st.integers(0, 2))):
            stream += line(b"HANGUP\n")
            expected.append((None, HangupLine()))
    eof = draw(st.booleans())
    if eof:
        expected.append((None, Closed(clean=True)))
    return stream, commands, expected, eof


@settings(max_examples=150, deadline=None)
@given(sessions(), st.data())
def test_valid_sessions_never_desynchronise(
    session: tuple[bytes, list[bytes], list[Step], bool], data: st.DataObject
) -> None:
    stream, commands, expected, eof = session
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=30))
    out, conn = feed(split(stream, cuts), eof=eof, commands=commands)
    assert out == expected
    if not eof:
        assert conn.state is State.IDLE
        assert conn.next_event() is NEED_DATA
