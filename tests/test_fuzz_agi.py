"""Byte-level fuzzing of the FastAGI parsers over real asyncio streams, and their bounds.

``tests/test_agi_protocol.py`` fuzzes the sans-IO :class:`~ivr.agi.protocol.AgiConnection`
on its own. This file drives what the server really runs: an
:class:`~ivr.agi.session.AgiSession` on a socket, with the peer's bytes cut into
arbitrary writes, and a running :class:`~ivr.agi.server.AgiServer`. What it proves:

* whatever a peer sends, the session raises only what it documents: ``ProtocolError``
  (not AGI), ``ChannelGoneError`` (closed, or 511), ``CommandError`` (510, 520, ...),
  and the server survives every such peer and keeps serving;
* any valid reply sequence built from the captured grammar (``HANGUP`` lines before and
  after, ``100 Trying``, multi-line ``520``, invalid UTF-8, CRLF) parses to the same
  replies whether written whole or in pieces;
* memory stays bounded: megabytes without a newline are cut off at ``MAX_LINE``, and
  floods of valid lines (``HANGUP``, environment lines, usage lines) hold nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.agi.protocol import (
    MAX_ENV_LINES,
    MAX_LINE,
    MAX_USAGE_LINES,
    NEED_DATA,
    AgiConnection,
    Closed,
    Environment,
    ProtocolError,
    Reply,
    decode_value,
)
from ivr.agi.server import AgiServer
from ivr.agi.session import AgiSession, ChannelGoneError, CommandError
from ivr.testing import (
    CAPTURED_ENVIRONMENT,
    USAGE_GET_DATA,
    USAGE_STREAM_FILE,
    FakeAsterisk,
    ScriptedCaller,
    environment_block,
)

T = TypeVar("T")
ENV: Final = environment_block(CAPTURED_ENVIRONMENT)
HANG_GUARD: Final = 10.0  # seconds: only a hang ever waits this long
MEMORY_BOUND: Final = 1 << 20  # bytes of Python memory a hostile peer may cost us
FUZZ: Final = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run one example on a fresh event loop (hypothesis calls tests synchronously)."""

    async def main() -> T:
        return await make()

    return asyncio.run(main())


@dataclass
class Peer:
    """Asterisk's end of the socket, written by hand."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def write(self, pieces: Iterable[bytes]) -> None:
        """Each piece its own write, with a turn of the loop between them."""
        with contextlib.suppress(ConnectionError):
            for piece in pieces:
                self.writer.write(piece)
                await self.writer.drain()
                await asyncio.sleep(0)

    def eof(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            self.writer.write_eof()


@asynccontextmanager
async def connected(reply_timeout: float = HANG_GUARD) -> AsyncIterator[tuple[AgiSession, Peer]]:
    """An :class:`AgiSession` on one end of a real socket, the test's peer on the other."""
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    peer_reader, peer_writer = await asyncio.open_connection(sock=theirs)
    session = AgiSession(reader, writer, reply_timeout=reply_timeout)
    try:
        yield session, Peer(peer_reader, peer_writer)
    finally:
        await session.close()
        peer_writer.transport.abort()
        await asyncio.sleep(0)


@asynccontextmanager
async def background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run the peer's side meanwhile; cancel what is left of it at the end (a peer
    blocked writing to a session that gave up must not hang the test)."""
    task = asyncio.create_task(work)
    try:
        async with asyncio.timeout(HANG_GUARD):
            yield
    finally:
        task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
    if results and isinstance(results[0], Exception):
        raise results[0]


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


# --- the grammar of what Asterisk 22 sends (tests/captures/agi-*) ------------------------

# A value: any bytes but a newline, and no CR at the end (that would read as CRLF).
TEXT: Final = st.binary(max_size=24).map(lambda b: b.replace(b"\n", b"").rstrip(b"\r"))
INVALID_UTF8: Final = st.sampled_from([b"\xff", b"\xc3", b"Mu\xf1oz", b"\xed\xa0\x80", b"\x80abc"])
VALUE: Final = st.one_of(TEXT, INVALID_UTF8)
ENV_KEY: Final = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
TRYING: Final = b"100 result=0 Trying...\n"
INVALID: Final = "Invalid or unknown command"
DEAD: Final = b"511 Command Not Permitted on a dead channel or intercept routine\n"


@dataclass(frozen=True)
class Expected:
    """What ``session.command`` gives for one reply: a Reply, or the error's code,
    message and usage lines (511 is ``ChannelGoneError``, others ``CommandError``)."""

    reply: Reply | None = None
    code: int = 200
    message: str = ""
    usage: tuple[str, ...] = ()


@st.composite
def ok_replies(draw: st.DrawFn) -> tuple[bytes, Expected]:
    """``200 result=<r> [(data)] [key=value ...] [message]``."""
    result = draw(st.from_regex(r"-?[0-9]{0,5}", fullmatch=True))
    data = draw(st.none() | VALUE)
    extras = draw(
        st.dictionaries(
            st.from_regex(r"[A-Za-z_]{1,8}", fullmatch=True),
            st.from_regex(r"[0-9A-Za-z]{0,6}", fullmatch=True),
            max_size=3,
        )
    )
    words = draw(st.lists(st.from_regex(r"[A-Za-z.]{1,8}", fullmatch=True), max_size=3))
    line = b"200 result=" + result.encode()
    if data is not None:
        line += b" (" + data + b")"
    line += b"".join(f" {key}={value}".encode() for key, value in extras.items())
    line += b"".join(b" " + word.encode() for word in words)
    reply = Reply(result, None if data is None else decode_value(data), extras, " ".join(words))
    return line + b"\n", Expected(reply=reply)


@st.composite
def error_replies(draw: st.DrawFn) -> tuple[bytes, Expected]:
    """510, 511, 503..., and 520 on one line or as a ``520-`` usage block."""
    kind = draw(st.sampled_from(["captured", "single", "usage"]))
    if kind == "captured":
        return draw(
            st.sampled_from(
                [
                    (b"510 Invalid or unknown command\n", Expected(None, 510, INVALID)),
                    (DEAD, Expected(None, 511, DEAD[4:-1].decode())),
                    (USAGE_STREAM_FILE, _usage_expected(USAGE_STREAM_FILE)),
                    (USAGE_GET_DATA, _usage_expected(USAGE_GET_DATA)),
                ]
            )
        )  # fmt: skip
    text = draw(VALUE)
    if kind == "single":
        code = draw(st.sampled_from([503, 510, 511, 520]))
        return b"%d %s\n" % (code, text), Expected(None, code, decode_value(text))
    usage = draw(st.lists(VALUE.filter(lambda u: not u.startswith(b"520 ")), max_size=6))
    block = (
        b"520-" + text + b"\n" + b"".join(u + b"\n" for u in usage) + b"520 End of proper usage.\n"
    )
    return block, Expected(None, 520, decode_value(text), tuple(map(decode_value, usage)))


def _usage_expected(block: bytes) -> Expected:
    lines = block.split(b"\n")[:-1]
    return Expected(None, 520, lines[0][4:].decode(), tuple(line.decode() for line in lines[1:-1]))


FINALS: Final = st.one_of(ok_replies(), error_replies())


@dataclass(frozen=True)
class Script:
    env: bytes
    values: dict[str, str]
    replies: list[bytes]  # all Asterisk writes after each command (prelude, final, trailers)
    expected: list[Expected]
    hangup_before: list[bool]  # a HANGUP came before that command's final reply


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    crlf = draw(st.booleans())

    def ending(raw: bytes) -> bytes:
        return raw.replace(b"\n", b"\r\n") if crlf else raw

    values = draw(st.dictionaries(ENV_KEY, VALUE, min_size=1, max_size=10))
    env = ending(b"".join(b"agi_%s: %s\n" % (k.encode(), v) for k, v in values.items()) + b"\n")
    replies: list[bytes] = []
    expected: list[Expected] = []
    before: list[bool] = []
    for _ in range(draw(st.integers(1, 6))):
        prelude = draw(st.lists(st.sampled_from([b"HANGUP\n", TRYING]), max_size=3))
        final, outcome = draw(FINALS)
        trailers = b"HANGUP\n" * draw(st.integers(0, 2))
        replies.append(ending(b"".join(prelude) + final + trailers))
        expected.append(outcome)
        before.append(b"HANGUP\n" in prelude)
    return Script(env, {k: decode_value(v) for k, v in values.items()}, replies, expected, before)


async def outcome_of(session: AgiSession, command: bytes) -> Expected:
    """What one command gave, in the shape of :class:`Expected`."""
    try:
        return Expected(reply=await session.command(command))
    except CommandError as exc:
        return Expected(None, exc.reply.code, exc.reply.message, exc.reply.usage)
    except ChannelGoneError as exc:
        return Expected(None, 511, str(exc))


# --- round trip: the same replies, whole or in pieces -------------------------------


@FUZZ
@given(scripts(), st.data())
def test_valid_replies_parse_the_same_whole_or_in_chunks(
    script: Script, data: st.DataObject
) -> None:
    """Every reply built from the captured grammar comes out of ``session.command`` as
    built, with the environment and each reply written whole or cut at arbitrary
    points over a real socket; a ``HANGUP`` before a reply is remembered, never taken
    for it."""
    cuts = [
        data.draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=8))
        for raw in [script.env, *script.replies]
    ]
    whole = run(lambda: converse(script, [[] for _ in cuts]))
    pieces = run(lambda: converse(script, cuts))
    assert whole == pieces == (script.values, script.expected, script.hangup_before)


async def converse(
    script: Script, cuts: list[list[int]]
) -> tuple[dict[str, str], list[Expected], list[bool]]:
    async with connected() as (session, peer):

        async def asterisk() -> None:
            await peer.write(split(script.env, cuts[0]))
            for reply, at in zip(script.replies, cuts[1:], strict=True):
                await peer.reader.readline()
                await peer.write(split(reply, at))

        async with background(asterisk()):
            env = await session.read_environment(HANG_GUARD)
            got: list[Expected] = []
            hung_up: list[bool] = []
            for number in range(len(script.replies)):
                got.append(await outcome_of(session, b"NOOP %d\n" % number))
                hung_up.append(session.hung_up)
    # The session's hung_up is sticky: compare it with "some HANGUP came before".
    for index, flag in enumerate(hung_up):
        assert flag or not any(script.hangup_before[: index + 1])
    return dict(env.values), got, script.hangup_before


# --- anything at all: only the documented exceptions ---------------------------------

LINES: Final = [
    b"HANGUP\n", b"HANGUP\r\n", TRYING, b"200 result=0\n", b"200 result=1 (\xff\xfe)\n",
    b"200 result=0 (unclosed\n", b"510 Invalid or unknown command\n", DEAD,
    b"520-Invalid command syntax.  Proper usage follows:\n", b"520 End of proper usage.\n",
    b"\n", b"\r\n", b"agi_request: x\n", b"failure\n", b"200-odd\n", b"999 x\n",
]  # fmt: skip
NOISE: Final = st.lists(
    st.one_of(
        st.sampled_from(LINES),
        st.binary(max_size=40),
        INVALID_UTF8,
        st.integers(MAX_LINE - 2, MAX_LINE + 2).map(lambda n: b"7" * n),  # at the line limit
    ),
    max_size=25,
).map(b"".join)


@FUZZ
@given(
    st.one_of(NOISE, st.sampled_from([ENV, ENV[:-1], ENV[:100]]), NOISE.map(lambda n: ENV + n)),
    st.lists(st.integers(1, 4000), max_size=8),
)
def test_any_environment_bytes_give_an_environment_or_a_documented_error(
    stream: bytes, cuts: list[int]
) -> None:
    """Arbitrary bytes, then EOF, into ``read_environment`` over a socket: it returns the
    environment or raises ``ProtocolError`` / ``ChannelGoneError``, never anything else
    and never a hang; and it agrees with the sans-IO parser fed the same bytes whole."""

    async def attempt() -> str:
        async with connected() as (session, peer):

            async def asterisk() -> None:
                await peer.write(split(stream, cuts))
                peer.eof()

            async with background(asterisk()):
                try:
                    env = await session.read_environment(HANG_GUARD)
                except ProtocolError:
                    return "protocol-error"
                except ChannelGoneError:
                    return "closed"
                return repr(sorted(env.values.items()))

    assert run(attempt) == sans_io_environment(stream)


def sans_io_environment(stream: bytes) -> str:
    conn = AgiConnection()
    conn.receive_data(stream)
    conn.receive_data(b"")
    try:
        event = conn.next_event()
    except ProtocolError:
        return "protocol-error"
    if isinstance(event, Closed):
        return "closed"
    assert isinstance(event, Environment)
    return repr(sorted(event.values.items()))


@FUZZ
@given(st.lists(NOISE, min_size=1, max_size=4), st.lists(st.integers(1, 3000), max_size=10))
def test_any_reply_bytes_raise_only_documented_errors(noise: list[bytes], cuts: list[int]) -> None:
    """After a valid environment, any bytes in answer to our commands (invalid UTF-8,
    stray and multi-line 520s, HANGUP anywhere, over-long lines), then EOF: each command
    returns a Reply or raises ``CommandError``, until ``ProtocolError`` or
    ``ChannelGoneError`` ends the session. No other exception, no hang."""
    stream = b"".join(noise)

    async def attempt() -> list[str]:
        async with connected() as (session, peer):
            peer.writer.write(ENV)
            await session.read_environment(HANG_GUARD)

            async def asterisk() -> None:
                await peer.reader.readline()
                await peer.write(split(stream, cuts))
                peer.eof()

            seen: list[str] = []
            async with background(asterisk()):
                for number in itertools.count():
                    try:
                        await session.command(b"NOOP %d\n" % number)
                    except CommandError as exc:
                        seen.append(f"error {exc.reply.code}")
                        continue
                    except (ProtocolError, ChannelGoneError) as exc:
                        seen.append(type(exc).__name__)
                        break
                    seen.append("reply")
                    assert number <= len(stream)  # every reply consumed at least one line
            return seen

    seen = run(attempt)
    assert seen[-1] in {"ProtocolError", "ChannelGoneError"}


# --- bounded memory ---------------------------------------------------------------------


def hostile_sender(sock: socket.socket, blob: bytes, sent: list[int]) -> threading.Thread:
    """A thread that pushes ``blob`` into ``sock`` until the other side gives up."""

    def push() -> None:
        view = memoryview(blob)  # no copies: the test's memory stays the parser's
        try:
            while sent[0] < len(blob):
                sent[0] += sock.send(view[sent[0] : sent[0] + 65536])
        except OSError:
            pass

    thread = threading.Thread(target=push, daemon=True)
    thread.start()
    return thread


async def flood(
    blob: bytes, prefix: bytes, act: Callable[[AgiSession], Awaitable[Any]]
) -> tuple[BaseException | Any, int, int]:
    """Run ``act`` on a session whose peer writes ``prefix`` then ``blob`` as fast as it
    can; return what ``act`` gave or raised, the peak memory traced meanwhile, and how
    many bytes of ``blob`` the peer managed to send."""
    ours, theirs = socket.socketpair()
    theirs.sendall(prefix)
    reader, writer = await asyncio.open_connection(sock=ours)
    session = AgiSession(reader, writer, reply_timeout=HANG_GUARD)
    sent = [0]
    tracemalloc.start()
    try:
        thread = hostile_sender(theirs, blob, sent)
        try:
            outcome: BaseException | Any = await act(session)
        except (ProtocolError, ChannelGoneError, CommandError) as exc:
            outcome = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await session.close()
        theirs.close()
    await asyncio.to_thread(thread.join, HANG_GUARD)
    return outcome, peak, sent[0]


BLOB: Final = b"a" * (16 << 20)  # made before tracemalloc starts: not counted


async def test_megabytes_without_a_newline_are_cut_off_at_the_line_limit() -> None:
    """A peer that sends 16 MiB with no newline, as environment or as a reply, gets
    ``ProtocolError`` once a line passes ``MAX_LINE``: the session's memory stays under
    1 MiB, and most of the flood is never even read."""
    for prefix, act in (
        (b"", lambda s: s.read_environment(HANG_GUARD)),
        (ENV, _then_command),
        (ENV + b"200 result=1 (", _then_command),
    ):
        outcome, peak, sent = await flood(BLOB, prefix, act)
        assert isinstance(outcome, ProtocolError), outcome
        assert f"longer than {MAX_LINE}" in str(outcome)
        assert peak < MEMORY_BOUND, f"{peak} bytes traced"
        assert sent < len(BLOB)


async def _then_command(session: AgiSession) -> Reply:
    await session.read_environment(HANG_GUARD)
    return await session.command(b"ANSWER\n")


async def test_floods_of_valid_lines_hold_no_memory() -> None:
    """Megabytes of ``HANGUP`` lines, or of ``100 Trying`` lines, before a reply:
    each line is read and dropped (the reply still pairs with its command); endless
    environment lines or usage lines stop at ``MAX_ENV_LINES`` / ``MAX_USAGE_LINES``.
    Memory stays under 1 MiB in every case."""
    cases = [
        (b"HANGUP\n" * (1 << 18), b"200 result=7\n", Reply("7")),
        (TRYING * (1 << 16), b"200 result=8\n", Reply("8")),
    ]
    for lines, final, expected in cases:
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=ours)
        session = AgiSession(reader, writer, reply_timeout=HANG_GUARD)
        payload = ENV + lines + final  # built before tracing starts
        sender = hostile_sender(theirs, payload, [0])
        tracemalloc.start()
        try:
            got = await _then_command(session)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await session.close()
            theirs.close()
        await asyncio.to_thread(sender.join, HANG_GUARD)
        assert got == expected
        assert session.hung_up == (lines.startswith(b"HANGUP"))
        assert peak < MEMORY_BOUND, f"{peak} bytes traced"

    env_flood = b"agi_x: " + b"y" * 100 + b"\n"
    outcome, peak, _ = await flood(
        env_flood * (1 << 17), b"", lambda s: s.read_environment(HANG_GUARD)
    )
    assert isinstance(outcome, ProtocolError)
    assert f"longer than {MAX_ENV_LINES} lines" in str(outcome)
    assert peak < 3 * MEMORY_BOUND  # at most MAX_ENV_LINES small values are kept

    usage = b"520-Invalid command syntax.  Proper usage follows:\n" + b"usage line\n" * (1 << 18)
    outcome, peak, _ = await flood(usage, ENV, _then_command)
    assert isinstance(outcome, ProtocolError)
    assert f"longer than {MAX_USAGE_LINES} lines" in str(outcome)
    assert peak < MEMORY_BOUND


@FUZZ
@given(NOISE, st.lists(st.integers(1, 5000), max_size=8))
def test_the_sans_io_buffer_never_holds_more_than_a_line(stream: bytes, cuts: list[int]) -> None:
    """Whatever is pushed in, in whatever pieces, once ``next_event`` says NEED_DATA the
    unread bytes are at most one line (``MAX_LINE``). When it raises ``ProtocolError``
    they are at most a line plus the last piece (the session reads ``READ_SIZE`` at a
    time), and from then on input is dropped, not kept."""
    conn = AgiConnection()
    piece = b""
    try:
        for piece in split(ENV + stream, cuts):
            conn.receive_data(piece)
            while conn.next_event() is not NEED_DATA:
                if conn.state.value == "idle":
                    conn.send(b"NOOP\n")
            assert len(conn._buffer) <= MAX_LINE  # the parser's own buffer, read directly
    except ProtocolError:
        assert conn.state.value == "error"
        held = len(conn._buffer)
        assert held <= MAX_LINE + len(piece)
        conn.receive_data(BLOB[: 1 << 20])
        assert len(conn._buffer) == held


# --- the server survives every such peer ----------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(NOISE, NOISE.map(lambda n: ENV + n)), min_size=1, max_size=6))
def test_the_server_survives_fuzzing_peers_and_keeps_serving(peers: list[bytes]) -> None:
    """A running server gets several peers at once, each sending fuzz (some after a valid
    environment) and closing. No exception escapes a connection's task (the loop's
    exception handler stays silent), every connection is accounted for exactly once, no
    handshake or call is left behind, and a real call is served afterwards."""

    async def attempt() -> None:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context))

        async def handler(session: AgiSession, env: Environment) -> None:
            del env
            with contextlib.suppress(CommandError):
                await session.command(b"ANSWER\n")
            await session.command(b'SET VARIABLE IVR_OUTCOME "routed"\n')

        server = AgiServer(
            handler, host="127.0.0.1", port=0, peer_allowed=lambda _a: True,
            max_calls=3, env_timeout=HANG_GUARD, reply_timeout=HANG_GUARD,
        )  # fmt: skip
        await server.start()

        async def fuzzer(stream: bytes) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            with contextlib.suppress(ConnectionError):
                writer.write(stream)
                await writer.drain()
                writer.write_eof()
                await reader.read()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

        try:
            async with asyncio.timeout(HANG_GUARD):
                await asyncio.gather(*(fuzzer(stream) for stream in peers))
                while server.active_calls or server.pending_handshakes:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            result = await FakeAsterisk("127.0.0.1", server.port).call(ScriptedCaller())
        finally:
            await server.shutdown(1)
        stats = server.stats
        assert errors == []
        assert result.variables.get("IVR_OUTCOME") == "routed"
        assert stats.accepted + stats.bad_sessions + stats.refused_busy == len(peers) + 1
        assert stats.env_timeouts == stats.refused_handshakes == 0

    run(attempt)
