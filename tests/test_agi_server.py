"""The FastAGI server and session over real sockets: allow-list, capacity, timeouts, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from engine_line import open_line
from structlog.testing import capture_logs

from ivr.agi.protocol import LocalProtocolError
from ivr.agi.server import AgiServer, Handler
from ivr.agi.session import AgiSession, AgiTimeoutError, ChannelGoneError
from ivr.settings import load_settings
from ivr.testing import CAPTURED_ENVIRONMENT, FakeAsterisk, ScriptedCaller, environment_block

ENV = environment_block(CAPTURED_ENVIRONMENT)


async def test_a_peer_outside_the_allow_list_is_refused_and_counted(
    database_url: str, tmp_path: Path
) -> None:
    settings = load_settings({"IVR_AGI_ALLOWED_PEERS": "10.0.0.0/8"})
    line = await open_line(database_url, tmp_path, peer_allowed=settings.is_peer_allowed)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", line.server.port)
        writer.write(ENV)
        try:
            data = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:
            data = b""
        writer.close()
        assert data == b""  # not a byte, not even "failure"
        assert line.server.stats.refused_peers == 1
        assert line.server.stats.peers_refused == {"127.0.0.1": 1}
        assert line.server.stats.accepted == 0
    finally:
        await line.finish()


async def test_calls_beyond_the_cap_go_back_to_the_dialplan(
    database_url: str, tmp_path: Path
) -> None:
    line = await open_line(database_url, tmp_path, max_calls=1)
    try:
        slow = asyncio.create_task(
            line.fake(play_seconds=0.2).call(ScriptedCaller(answers=["2", "1"]))
        )
        await asyncio.sleep(0.1)
        refused = await line.fake().call(ScriptedCaller(answers=["2", "1"]))
        assert refused.agi_status == "FAILURE"
        assert refused.commands == ["failure"]
        assert (await slow).variables["IVR_OUTCOME"] == "routed"
        assert line.server.stats.refused_busy == 1
    finally:
        await line.finish()


async def test_shutdown_lets_calls_finish_then_hands_the_rest_to_the_dialplan(
    database_url: str, tmp_path: Path
) -> None:
    line = await open_line(database_url, tmp_path)
    quick = asyncio.create_task(
        line.fake(play_seconds=0.02).call(ScriptedCaller(answers=["2", "1"]))
    )
    slow = asyncio.create_task(line.fake(play_seconds=1.0).call(ScriptedCaller(answers=["2", "1"])))
    await asyncio.sleep(0.1)
    await line.server.shutdown(grace=0.8)
    done_quick, done_slow = await quick, await slow
    assert done_quick.variables["IVR_OUTCOME"] == "routed"
    assert done_slow.agi_status == "FAILURE"  # the dialplan's fallback takes the caller
    assert line.server.stats.ended_by_shutdown == 1
    row = await line.call_row(done_slow.uniqueid)
    assert row["outcome"] == "error"
    assert row["events"][-1][1]["cause"] == "shutdown"
    assert (await line.call_row(done_quick.uniqueid))["outcome"] == "routed"


async def test_no_new_calls_are_accepted_once_shutdown_starts(
    database_url: str, tmp_path: Path
) -> None:
    line = await open_line(database_url, tmp_path)
    await line.server.shutdown(grace=0)
    with pytest.raises(OSError, match=r"Connect call failed|refused"):
        await line.fake().call(ScriptedCaller())
    await line.finish()


@dataclass
class Pair:
    session: AgiSession  # our side
    asterisk: asyncio.StreamWriter  # what "Asterisk" writes
    asterisk_reads: asyncio.StreamReader


@asynccontextmanager
async def pair() -> AsyncIterator[Pair]:
    """A session over a real socket, with the test playing Asterisk by hand."""
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    peer_reader, peer_writer = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = await accepted
    session = AgiSession(reader, writer, reply_timeout=0.3)
    try:
        yield Pair(session, peer_writer, peer_reader)
    finally:
        await session.close()
        peer_writer.close()
        with contextlib.suppress(OSError):
            await peer_writer.wait_closed()
        server.close()
        await server.wait_closed()


async def test_one_command_in_flight_is_enforced() -> None:
    async with pair() as p:
        p.asterisk.write(ENV)
        await p.session.read_environment(1)
        first = asyncio.create_task(p.session.command(b"ANSWER\n"))
        await asyncio.sleep(0.01)
        with pytest.raises(LocalProtocolError, match="in flight"):
            await p.session.command(b"HANGUP\n")
        p.asterisk.write(b"200 result=0\n")
        assert (await first).result == "0"
        assert await p.asterisk_reads.readline() == b"ANSWER\n"


async def test_every_wait_has_a_timeout() -> None:
    async with pair() as p:
        with pytest.raises(AgiTimeoutError):
            await p.session.read_environment(0.2)
        p.asterisk.write(ENV)
        await p.session.read_environment(1)
        with pytest.raises(AgiTimeoutError):
            await p.session.command(b"ANSWER\n")  # reply_timeout=0.3, Asterisk never answers


async def test_the_deadline_follows_each_command_with_one_timer() -> None:
    """The session keeps one timer: a long wait armed first must not hide a later short
    one, a timer armed early must not cut a later command short, and a cancellation from
    outside stays a cancellation, not a timeout."""
    async with pair() as p:
        p.asterisk.write(ENV)
        await p.session.read_environment(1)
        # A command with a long deadline, answered at once: its timer stays armed.
        answer = asyncio.create_task(p.session.command(b"ANSWER\n", timeout=60))
        p.asterisk.write(b"200 result=0\n")
        assert (await answer).result == "0"
        # A later command with a short deadline still times out on time.
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(AgiTimeoutError):
            await p.session.command(b"WAIT FOR DIGIT 1\n", timeout=0.2)
        assert loop.time() - started < 30  # not the 60 s left over from the first
    async with pair() as p:
        p.asterisk.write(ENV)
        await p.session.read_environment(1)
        # The timer armed by the first command (0.2 s) fires while the second (3 s) is
        # in flight: it re-arms instead of cutting the second short.
        first = asyncio.create_task(p.session.command(b"ANSWER\n", timeout=0.2))
        p.asterisk.write(b"200 result=0\n")
        await first
        second = asyncio.create_task(p.session.command(b"ANSWER\n", timeout=3))
        await asyncio.sleep(0.5)
        assert not second.done()
        p.asterisk.write(b"200 result=0\n")
        assert (await second).result == "0"
        # Cancelled from outside: CancelledError, and the next command works.
        third = asyncio.create_task(p.session.command(b"ANSWER\n"))
        await asyncio.sleep(0.01)
        third.cancel()
        with pytest.raises(asyncio.CancelledError):
            await third


async def test_a_connection_closed_mid_reply_fails_the_command() -> None:
    async with pair() as p:
        p.asterisk.write(ENV + b"200 resu")
        await p.session.read_environment(1)
        pending = asyncio.create_task(p.session.command(b"ANSWER\n"))
        await asyncio.sleep(0.01)
        p.asterisk.close()
        with pytest.raises(ChannelGoneError):
            await pending


def bare_server(handler: Handler) -> AgiServer:
    """A server on a free loopback port with ``handler`` and short limits."""
    return AgiServer(
        handler,
        host="127.0.0.1",
        port=0,
        peer_allowed=lambda _a: True,
        max_calls=5,
        env_timeout=1,
        reply_timeout=1,
    )


async def test_garbage_before_the_environment_drops_the_session() -> None:
    handled: list[object] = []

    async def handler(session: AgiSession, env: object) -> None:
        handled.append(env)

    server = bare_server(handler)
    await server.start()
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.2)
    await server.shutdown(1)
    writer.close()
    await writer.wait_closed()
    assert handled == []
    assert server.stats.bad_sessions == 1


async def test_a_failing_handler_hands_the_call_back_to_the_dialplan() -> None:
    async def handler(session: AgiSession, env: object) -> None:
        del env
        await session.command(b"ANSWER\n")
        raise RuntimeError("a bug")

    server = bare_server(handler)
    await server.start()
    try:
        result = await FakeAsterisk("127.0.0.1", server.port).call(ScriptedCaller())
    finally:
        await server.shutdown(1)
    assert result.commands == ["ANSWER", "failure"]
    assert result.agi_status == "FAILURE"
    assert server.stats.handler_errors == 1


async def test_refused_peers_are_logged_on_a_log_scale(database_url: str, tmp_path: Path) -> None:
    line = await open_line(database_url, tmp_path, peer_allowed=lambda _address: False)
    try:
        with capture_logs() as logs:
            for _ in range(9):
                _, writer = await asyncio.open_connection("127.0.0.1", line.server.port)
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            await asyncio.sleep(0.1)
        warnings = [
            entry["attempts"]
            for entry in logs
            if entry["event"].startswith("FastAGI connection refused")
        ]
        assert warnings == [1, 2, 4, 8]
        assert line.server.stats.refused_peers == 9
    finally:
        await line.finish()


async def test_the_fake_reads_a_long_line_as_asterisk_does() -> None:
    # run_agi() reads 2,047 bytes per command: the rest of a longer line is a second
    # command. That is why ivr.agi.commands refuses to build one.
    async def handler(session: AgiSession, env: object) -> None:
        del env
        await session.command(b'VERBOSE "' + b"a" * 2100 + b'" 1\n')

    server = bare_server(handler)
    await server.start()
    try:
        result = await FakeAsterisk("127.0.0.1", server.port).call(ScriptedCaller())
    finally:
        await server.shutdown(1)
    first, rest, last = result.commands
    assert (len(first), len(rest)) == (2047, 2112 - 2047)
    # The second reply answers nothing we sent: the session refuses to pair it with the
    # next command, and the call is handed back.
    assert last == "failure"
    assert server.stats.handler_errors == 1
