"""A fake Asterisk at the byte level, for the tests, ``ivr dial`` and the benchmarks.

It does what Asterisk 22's ``res_agi`` does on a FastAGI call, as recorded in the
wire captures (``tests/captures/``): it connects to the service, sends the
environment block, reads one command line at a time, splits it exactly like
``parse_args()`` in ``res_agi.c`` (and ``EXEC`` data like ``ast_app_separate_args()``),
and answers with Asterisk's reply lines, byte for byte. Replies can be cut into
arbitrary chunks to exercise the service's parser over a real socket.

What the caller does is a :class:`Caller`: it hears each file, may press a key during
one (barge-in), answers each wait for a key, and may hang up at any moment.
:class:`ScriptedCaller` does it from a script; ``ivr dial`` asks a person.

What it does not do: play audio, run a dialplan (it reports ``AGISTATUS`` and the
channel variables the dialplan would branch on), or time prompts (a prompt is heard
in ``play_seconds``, 0 by default).

By default a connection that cannot be made, or is reset, raises (``ivr dial`` says
so). With ``report_failures=True`` the fake reports instead what ``res/res_agi.c``
does when the service is down or dies: a connection refused, or not accepted within
``MAX_AGI_CONNECT`` (2 s), ends the call with ``AGISTATUS=FAILURE`` and no other
variable (``launch_netscript``: "Couldn't connect to any host.  FastAGI failed.");
a connection that drops in the middle of a session (the service killed) is the
script going away: ``run_agi`` reads end-of-file, logs "AGI Script ... completed",
and ``AGISTATUS`` is ``SUCCESS`` with whatever variables the service had set by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

__all__ = [
    "CAPTURED_ENVIRONMENT",
    "USAGE_GET_DATA",
    "USAGE_STREAM_FILE",
    "CallResult",
    "Caller",
    "FakeAsterisk",
    "Heard",
    "ScriptedCaller",
    "environment_block",
    "parse_agi_args",
    "separate_app_args",
]

HangupStyle = Literal["after_reply", "before_reply", "exit"]

# The environment of agi-local-session (Asterisk 22.10.1), in Asterisk's order.
CAPTURED_ENVIRONMENT: Final[tuple[tuple[str, bytes], ...]] = (
    ("network", b"yes"),
    ("network_script", b"citizen-line"),
    ("request", b"agi://127.0.0.1:4573/citizen-line"),
    ("channel", b"PJSIP/trunk-00000000"),
    ("language", b"es"),
    ("type", b"PJSIP"),
    ("uniqueid", b"asterisk-lab-1796413114.1"),
    ("version", b"22.10.1"),
    ("callerid", b"5550100"),
    ("calleridname", b"Ciudadano Captura"),
    ("callingpres", b"0"),
    ("callingani2", b"0"),
    ("callington", b"0"),
    ("callingtns", b"0"),
    ("dnid", b"4421015205"),
    ("rdnis", b"unknown"),
    ("context", b"linea-aqui"),
    ("extension", b"4421015205"),
    ("priority", b"4"),
    ("enhanced", b"0.0"),
    ("accountcode", b""),
    ("threadid", b"140421655918272"),
)

# The 520 usage blocks Asterisk 22.10.1 sent (agi-local-session), line for line.
USAGE_STREAM_FILE: Final = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b"Send the given file, allowing playback to be interrupted by the given digits, if any."
    b" Returns <literal>0</literal> if playback completes without a digit being pressed, or"
    b" the ASCII numerical value of the digit if one was pressed, or <literal>-1</literal>"
    b" on error or if the channel was disconnected. If musiconhold is playing before calling"
    b" stream file it will be automatically stopped and will not be restarted after"
    b" completion.\n"
    b"It sets the following channel variables upon completion:\n"
    b"<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.\n"
    b"    <value>SUCCESS</value>\n"
    b"    <value>FAILED</value>\n"
    b"520 End of proper usage.\n"
)
USAGE_GET_DATA: Final = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b"Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
    b"Returns the digits received from the channel at the other end.\n"
    b"520 End of proper usage.\n"
)
INVALID: Final = b"510 Invalid or unknown command\n"
DEAD: Final = b"511 Command Not Permitted on a dead channel or intercept routine\n"
_DEAD_OK: Final = frozenset({"GET VARIABLE", "GET FULL VARIABLE", "VERBOSE", "SET VARIABLE"})
_COMMANDS: Final = (
    "ANSWER",
    "STREAM FILE",
    "GET DATA",
    "WAIT FOR DIGIT",
    "SAY DATETIME",
    "SAY NUMBER",
    "SET VARIABLE",
    "GET VARIABLE",
    "GET FULL VARIABLE",
    "CHANNEL STATUS",
    "EXEC",
    "VERBOSE",
    "HANGUP",
)
_VAR_REF: Final = re.compile(r"\$\{([^{}]+)\}")
_SEQUENCE: Final = itertools.count(1)  # channel numbers, unique in the process as in Asterisk
# Uniqueids are <systemname>-<epoch>.<sequence>; a finer "epoch" keeps two fake
# Asterisks started in the same second (a test and an `ivr dial`) apart.
_EPOCH: Final = time.time_ns() // 1000
_ENDPOS: Final = 8000  # samples "played" per file (1 s at 8 kHz)
AGI_LINE_MAX: Final = 2047  # run_agi() reads commands with fgets(buf, 2048, ...)
ANSWER_WINDOW: Final = 0.5  # seconds: a Read waiting less is not a menu waiting for a caller
MAX_AGI_CONNECT: Final = 2.0  # seconds res_agi waits for a FastAGI connection (2000 ms)


def environment_block(values: Iterable[tuple[str, bytes]], args: Iterable[bytes] = ()) -> bytes:
    """``agi_name: value\\n`` lines, the ``agi_arg_N`` lines, then the empty line."""
    lines = [b"agi_" + name.encode() + b": " + value + b"\n" for name, value in values]
    lines += [f"agi_arg_{n}: ".encode() + arg + b"\n" for n, arg in enumerate(args, 1)]
    return b"".join(lines) + b"\n"


def parse_agi_args(line: str) -> list[str]:
    """Split a command line as ``parse_args()`` in Asterisk's ``res_agi.c`` does."""
    return list(_parse_agi_args(line))


@functools.lru_cache(maxsize=8192)  # calls repeat the same commands: keeps the fake cheap
def _parse_agi_args(line: str) -> tuple[str, ...]:
    argv: list[list[str]] = []
    quoted = escaped = False
    whitespace = True
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                argv.append([])
                whitespace = False
            continue
        if char in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            argv.append([])
            whitespace = False
        argv[-1].append(char)
        escaped = False
    return tuple("".join(chars) for chars in argv)


def separate_app_args(data: str) -> list[str]:
    """Split application data on commas as ``ast_app_separate_args()`` does."""
    if not data:
        return []  # argc 0, as in app.c
    args: list[str] = []
    current: list[str] = []
    paren = bracket = 0
    quote = False
    index = 0
    while index < len(data):
        char = data[index]
        if char == "(":
            paren += 1
        elif char == ")" and paren:
            paren -= 1
        elif char == "[":
            bracket += 1
        elif char == "]" and bracket:
            bracket -= 1
        if char == '"':
            quote = not quote
        elif char == "\\":
            index += 1
            if index < len(data):
                current.append(data[index])
        elif char == "," and not (paren or quote or bracket):
            args.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    args.append("".join(current))
    return args


@dataclass(frozen=True)
class Heard:
    """What the caller heard: a file, or a date and time (``kind`` ``"datetime"``)."""

    kind: Literal["file", "datetime", "key"]
    value: str


class Caller(Protocol):
    """The person on the line."""

    def during(self, heard: Heard) -> str | None:
        """A key pressed while ``heard`` plays (barge-in), or None."""

    def answer(self, timeout: float) -> str | None:
        """The key pressed after the prompts when a key is awaited; None is silence."""

    def hangs_up(self, heard: Heard | None, command: str) -> bool:
        """Whether the caller hangs up during this command (``heard`` if it plays)."""


@dataclass
class ScriptedCaller:
    """Answers from a script: keys (``"1"``), ``"-"`` for silence; runs out = silence.

    ``press_during`` maps a file (or ``"datetime"``) to a key pressed while it plays;
    ``hangup_on`` is a file name, ``"datetime"`` or a command name (``"ANSWER"``,
    ``"EXEC"``) during which the caller hangs up (``hangup_after`` of those first).
    """

    answers: list[str] = field(default_factory=list)
    press_during: dict[str, str] = field(default_factory=dict)
    hangup_on: str | None = None
    hangup_after: int = 0

    def during(self, heard: Heard) -> str | None:
        for name in (heard.value.rsplit("/", 1)[-1], heard.value, heard.kind):
            if name in self.press_during:
                return self.press_during.pop(name)
        return None

    def answer(self, timeout: float) -> str | None:
        if not self.answers:
            return None
        key = self.answers.pop(0)
        return None if key == "-" else key

    def hangs_up(self, heard: Heard | None, command: str) -> bool:
        if self.hangup_on is None:
            return False
        names = {command}
        if heard is not None:
            names |= {heard.value, heard.value.rsplit("/", 1)[-1], heard.kind}
        if self.hangup_on not in names:
            return False
        if self.hangup_after > 0:
            self.hangup_after -= 1
            return False
        return True


@dataclass
class CallResult:
    """How the call left the AGI, as the dialplan would see it."""

    agi_status: str = "SUCCESS"
    variables: dict[str, str] = field(default_factory=dict)
    heard: list[Heard] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    turnaround: list[float] = field(default_factory=list)
    caller_name: str = ""
    uniqueid: str = ""
    hung_up: bool = False
    connected: bool = True  # False: the FastAGI connection could not be made

    @property
    def files(self) -> list[str]:
        return [h.value.rsplit("/", 1)[-1] for h in self.heard if h.kind == "file"]


class FakeAsterisk:
    """Places FastAGI calls against a service, like Asterisk's ``AGI(agi://...)``."""

    def __init__(  # noqa: PLR0913 - the knobs a test turns, all keyword-only
        self,
        host: str,
        port: int,
        *,
        script: str = "citizen-line",
        chunk: int | None = None,
        hangup_style: HangupStyle = "after_reply",
        play_seconds: float = 0.0,
        faults: Mapping[str, bytes] | None = None,
        missing: Iterable[str] = (),
        timeout: float = 30.0,
        on_heard: Callable[[Heard], None] | None = None,
        report_failures: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.script = script
        self.chunk = chunk
        self.hangup_style = hangup_style
        self.play_seconds = play_seconds
        self.faults = dict(faults or {})
        self.missing = frozenset(missing)  # sound files (base names) this PBX lacks
        self.timeout = timeout
        self.on_heard = on_heard
        self.report_failures = report_failures

    def environment(
        self, caller_number: bytes, caller_name: bytes, query: str = ""
    ) -> list[tuple[str, bytes]]:
        sequence = next(_SEQUENCE)
        script = self.script + (f"?{query}" if query else "")
        values = dict(CAPTURED_ENVIRONMENT)
        values.update(
            network_script=script.encode(),
            request=f"agi://{self.host}:{self.port}/{script}".encode(),
            channel=f"PJSIP/trunk-{sequence:08x}".encode(),
            uniqueid=f"asterisk-lab-{_EPOCH}.{sequence}".encode(),
            callerid=caller_number,
            calleridname=caller_name,
        )
        return list(values.items())

    async def call(  # noqa: PLR0913 - keyword-only call details
        self,
        caller: Caller,
        *,
        caller_number: bytes = b"4421234567",
        caller_name: bytes = b"Ciudadano Prueba",
        query: str = "",
        args: Iterable[bytes] = (),
        env: list[tuple[str, bytes]] | None = None,
    ) -> CallResult:
        """One call, from connection to the end of the AGI."""
        values = env if env is not None else self.environment(caller_number, caller_name, query)
        if self.report_failures:
            try:
                async with asyncio.timeout(MAX_AGI_CONNECT):
                    reader, writer = await asyncio.open_connection(self.host, self.port)
            except (OSError, TimeoutError):
                return _not_connected(values, caller_number, caller_name)
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        channel = _Channel(
            self,
            caller,
            reader,
            writer,
            name=caller_name.decode("utf-8", "replace"),
            number=caller_number.decode("utf-8", "replace"),
        )
        channel.result.uniqueid = dict(values).get("uniqueid", b"").decode("utf-8", "replace")
        # An inbound channel is the first of its call: its linkedid is its own uniqueid.
        channel.variables["CHANNEL(linkedid)"] = channel.result.uniqueid
        try:
            try:
                await channel.send(environment_block(values, args))
            except ConnectionError:
                if not self.report_failures:
                    raise
                # launch_netscript: the first line could not be sent, "FastAGI failed".
                channel.result.agi_status = "FAILURE"
                return channel.result
            async with asyncio.timeout(self.timeout):
                await channel.run()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return channel.result


class _Channel:
    """One call's side of ``res_agi``: read a command, run it, reply."""

    def __init__(  # noqa: PLR0913
        self,
        asterisk: FakeAsterisk,
        caller: Caller,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        name: str,
        number: str,
    ) -> None:
        self.asterisk = asterisk
        self.caller = caller
        self.reader = reader
        self.writer = writer
        self.result = CallResult(caller_name=name)
        self.variables = self.result.variables  # what the dialplan sees afterwards
        self.variables.update(
            {
                "CALLERID(num)": number,
                "CALLERID(name)": name,
            }
        )
        self.dead = False
        self.exit_now = False
        self._rest = b""

    async def send(self, data: bytes) -> None:
        size = self.asterisk.chunk
        if not size:
            self.writer.write(data)
        else:
            for start in range(0, len(data), size):
                self.writer.write(data[start : start + size])
                await self.writer.drain()
        await self.writer.drain()

    async def _command_line(self) -> bytes:
        """The next command as run_agi() reads it: fgets() into 2,048 bytes, so a longer
        line is cut there and its rest is read as the next command."""
        if not self._rest:
            self._rest = await self.reader.readline()
            if not self._rest.endswith(b"\n"):
                return b""  # EOF, maybe in the middle of a line: the script is gone
        line, self._rest = self._rest[:AGI_LINE_MAX], self._rest[AGI_LINE_MAX:]
        return line

    async def run(self) -> None:
        if not self.asterisk.report_failures:
            await self._run()
            return
        try:
            await self._run()
        except ConnectionError:
            # The service's socket was reset (its process killed): res_agi ignores the
            # failed write of the reply, fgets() gives up, "AGI Script ... completed",
            # AGISTATUS=SUCCESS with the variables set so far. (A plain close reads
            # as end-of-file, the same way a finished session ends.)
            return

    async def _run(self) -> None:
        sent_at = time.perf_counter()
        while True:
            line = await self._command_line()
            if not line:
                # The script closed its side: Asterisk sends HANGUP and closes (captures).
                with contextlib.suppress(ConnectionError):
                    await self.send(b"HANGUP\n")
                return
            self.result.turnaround.append(time.perf_counter() - sent_at)
            text = line.removesuffix(b"\n").decode("utf-8", "replace")
            self.result.commands.append(text)
            if text.lower().startswith("failure"):
                self.result.agi_status = "FAILURE"
                return
            reply = await self.execute(text)
            await self.send(reply)
            sent_at = time.perf_counter()
            if self.exit_now:
                return

    def _hear(self, heard: Heard) -> None:
        self.result.heard.append(heard)
        if self.asterisk.on_heard is not None:
            self.asterisk.on_heard(heard)

    async def _play(self, heard: Heard, escape: str, command: str) -> tuple[int, bool]:
        """(key code or 0, hung up) for one file or date played with ``escape`` digits."""
        self._hear(heard)
        if self.caller.hangs_up(heard, command):
            return -1, True
        if self.asterisk.play_seconds:
            await asyncio.sleep(self.asterisk.play_seconds)
        key = self.caller.during(heard)
        if key is not None and key in escape:
            self._hear(Heard("key", key))
            return ord(key), False
        return 0, False

    def _hangup(self, reply: bytes) -> bytes:
        """The caller hung up during the command whose reply is ``reply``."""
        self.dead = True
        self.result.hung_up = True
        self.result.agi_status = "HANGUP"
        style = self.asterisk.hangup_style
        if style == "before_reply":
            return b"HANGUP\n" + reply
        if style == "exit":
            self.exit_now = True
            return reply + b"HANGUP\nHANGUP\n"
        return reply + b"HANGUP\n"

    async def execute(self, line: str) -> bytes:
        argv = parse_agi_args(line)
        name = _command_name(argv)
        for prefix, fault in self.asterisk.faults.items():
            if line.startswith(prefix):
                return fault
        if name is None:
            return INVALID
        if self.dead and name not in _DEAD_OK:
            return DEAD
        args = argv[len(name.split()) :]
        if name == "ANSWER":
            if self.caller.hangs_up(None, "ANSWER"):
                return self._hangup(b"200 result=-1\n")
            return b"200 result=0\n"
        if name == "STREAM FILE":
            if len(args) < 2:
                return USAGE_STREAM_FILE
            if self._lacks(args[0]):
                return b"200 result=-1 endpos=0\n"
            code, gone = await self._play(Heard("file", args[0]), args[1], name)
            if gone:
                return self._hangup(b"200 result=-1 endpos=%d\n" % (_ENDPOS // 2))
            return b"200 result=%d endpos=%d\n" % (code, _ENDPOS)
        if name == "SAY DATETIME":
            if len(args) < 2:
                return INVALID
            code, gone = await self._play(Heard("datetime", args[0]), args[1], name)
            return self._hangup(b"200 result=-1\n") if gone else b"200 result=%d\n" % code
        if name == "WAIT FOR DIGIT":
            key = self.caller.answer(float(args[0]) / 1000 if args else 0)
            if self.caller.hangs_up(None, name):
                return self._hangup(b"200 result=-1\n")
            if key is not None:
                self._hear(Heard("key", key))
            return b"200 result=%d\n" % (ord(key) if key else 0)
        if name == "GET DATA":
            return USAGE_GET_DATA if not args else INVALID
        if name == "SET VARIABLE":
            if len(args) < 2:
                return INVALID
            self.variables[args[0]] = args[1]
            return b"200 result=1\n"
        if name == "GET VARIABLE":
            value = self.variables.get(args[0]) if args else None
            return b"200 result=0\n" if value is None else _with_data(1, value)
        if name == "GET FULL VARIABLE":
            expression = args[0] if args else ""
            value = _VAR_REF.sub(lambda m: self.variables.get(m[1], ""), expression)
            return _with_data(1, value)
        if name == "CHANNEL STATUS":
            return b"200 result=6\n"
        if name in {"VERBOSE", "SAY NUMBER"}:
            return b"200 result=1\n" if name == "VERBOSE" else b"200 result=0\n"
        if name == "HANGUP":
            return self._hangup(b"200 result=1\n")
        return await self._exec(args)

    async def _exec(self, args: list[str]) -> bytes:
        if not args:
            return INVALID
        app = args[0].lower()
        data = separate_app_args(args[1]) if len(args) > 1 else []
        if app == "read":
            return await self._read(data)
        if app == "playback":
            return await self._playback(data)
        return b"200 result=-2\n"  # no such application

    def _lacks(self, file: str) -> bool:
        return file.rsplit("/", 1)[-1] in self.asterisk.missing

    async def _playback(self, data: list[str]) -> bytes:
        for file in data[0].split("&") if data else []:
            if self._lacks(file):
                # app_playback logs "Playback failed" and carries on (PLAYBACKSTATUS=FAILED)
                self.variables["PLAYBACKSTATUS"] = "FAILED"
                continue
            _, gone = await self._play(Heard("file", file), "", "EXEC")
            if gone:
                return self._hangup(b"200 result=-1\n")
        return b"200 result=0\n"

    async def _read(self, data: list[str]) -> bytes:
        variable = data[0] if data else ""
        files = data[1].split("&") if len(data) > 1 and data[1] else []
        options = data[3] if len(data) > 3 else ""
        timeout = float(data[5]) if len(data) > 5 and data[5] else 6.0
        key: str | None = None
        if any(self._lacks(file) for file in files):
            # ast_app_getdata() gives up at the first file it cannot open.
            self.variables.update({variable: "", "READSTATUS": "ERROR"})
            return b"200 result=0\n"
        for file in files:
            code, gone = await self._play(Heard("file", file), "0123456789*#", "EXEC")
            if gone:
                self.variables.update({variable: "", "READSTATUS": "HANGUP"})
                return self._hangup(b"200 result=0\n")
            if code:
                key = chr(code)
                break
        # A person answers a menu, not the blink a Read waits after the greeting.
        if key is None and timeout >= ANSWER_WINDOW:
            key = self.caller.answer(timeout)
            if self.caller.hangs_up(None, "EXEC"):
                self.variables.update({variable: "", "READSTATUS": "HANGUP"})
                return self._hangup(b"200 result=0\n")
            if key is not None:
                self._hear(Heard("key", key))
        if key == "#" and "t" not in options:
            key = ""  # '#' is Read's terminator unless the 't' option clears it
        self.variables[variable] = key or ""
        self.variables["READSTATUS"] = "TIMEOUT" if key is None else "OK"
        return b"200 result=0\n"


def _not_connected(
    values: list[tuple[str, bytes]], caller_number: bytes, caller_name: bytes
) -> CallResult:
    """The call as the dialplan sees it after a FastAGI connect failure: only AGISTATUS."""
    uniqueid = dict(values).get("uniqueid", b"").decode("utf-8", "replace")
    name = caller_name.decode("utf-8", "replace")
    return CallResult(
        agi_status="FAILURE",
        variables={
            "CALLERID(num)": caller_number.decode("utf-8", "replace"),
            "CALLERID(name)": name,
            "CHANNEL(linkedid)": uniqueid,
        },
        caller_name=name,
        uniqueid=uniqueid,
        connected=False,
    )


def _command_name(argv: list[str]) -> str | None:
    words = [word.upper() for word in argv]
    for name in sorted(_COMMANDS, key=lambda n: -len(n.split())):
        parts = name.split()
        if words[: len(parts)] == parts:
            return name
    return None


def _with_data(result: int, value: str) -> bytes:
    return f"200 result={result} ({value})\n".encode()
