"""Side by side: this engine against raw asyncio, panoramisk FastAGI and pyst2 AGI().

Run: bench/compare            (or .venv/bin/python bench/compare.py [--out FILE])

One load generator (this process, pinned to CPU 1) plays Asterisk over FastAGI and
places the same scripted call (16 AGI commands: greeting, main menu "2", submenu "1",
hours check, routing variables, transfer prompt) against four targets, each pinned
to CPU 0 and restarted for each concurrency level:

- ``floor``: a minimal raw-asyncio handler (bench/targets/raw_asyncio.py);
- ``panoramisk``: panoramisk's FastAGI Application (bench/targets/panoramisk_fastagi.py);
- ``pyst2``: pyst2's stdio AGI, one process per call, forked by a stand-in for
  Asterisk's res_agi (bench/targets/agi_spawner.py, bench/targets/pyst2_agi.py);
- ``engine``: ``ivr serve`` on config/menu.yaml, recording every call into an embedded
  PostgreSQL, JSON logs at info, /metrics scraped every 5 s.

Every command every target sends is checked against the engine's command lines
(captured from it, below): a target that does less work fails the run.

Each level (1, 100, 1,000 calls in flight) has two phases:

1. capacity: calls back to back with no prompt time, so the target's CPU is the limit:
   calls per second, CPU seconds per call (the target's process, or the per-call
   processes for pyst2), peak memory;
2. held: the same number of calls in flight, each prompt "playing" --play seconds and
   the first wave of calls arriving over one call's length, as calls do on a real line:
   per-command turnaround (from the generator writing a reply to receiving the next
   command, loopback included) p50 and p99, and peak memory.

Writes the table to bench/RESULTS.md with the machine and the date; prints figures;
exits non-zero only when a target misbehaves (a wrong command, a call not completed),
never because a target missed a goal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
TARGETS_DIR: Final = ROOT / "bench" / "targets"
SCRIPT: Final = "citizen-line?at=2026-12-07T09:00"  # a Monday morning: the call is routed
CALLER_NAME: Final = "Ciudadano Prueba"
CALL_ID_NAMESPACE: Final = uuid.UUID("5b1f4c2e-9d0a-4c61-8f0e-2f6f1d7a3c90")  # ivr.records.model
TARGET_CPU: Final = 0
LOAD_CPU: Final = 1

# The engine's 16 command lines for this call (captured from `ivr serve`); the first
# carries the call's id, uuid5 of its Uniqueid.
EXPECTED: Final = (
    'SET VARIABLE "IVR_CALL_ID" "{call_id}"',
    "ANSWER",
    'GET FULL VARIABLE "${{CHANNEL(linkedid)}}"',
    'EXEC Read "IVR_KEY,ivr-aqui/bienvenida&ivr-aqui/aviso-privacidad'
    '&ivr-aqui/aviso-temporada-invernal,1,t,1,0.05"',
    'GET FULL VARIABLE "${{IVR_KEY}}|${{READSTATUS}}"',
    'EXEC Read "IVR_KEY,ivr-aqui/menu-principal&ivr-aqui/opcion-programas'
    '&ivr-aqui/opcion-servicios&ivr-aqui/opcion-emergencias,1,t,1,6"',
    'GET FULL VARIABLE "${{IVR_KEY}}|${{READSTATUS}}"',
    'EXEC Read "IVR_KEY,ivr-aqui/menu-servicios&ivr-aqui/opcion-atencion-ciudadana,1,t,1,6"',
    'GET FULL VARIABLE "${{IVR_KEY}}|${{READSTATUS}}"',
    'SET VARIABLE "IVR_OUTCOME" "routed"',
    'SET VARIABLE "IVR_AT" "2026-12-07T09:00:00-06:00"',
    'SET VARIABLE "IVR_QUEUE" "atencion-ciudadana"',
    'SET VARIABLE "IVR_VERTIENTE" "servicios"',
    'SET VARIABLE "IVR_AREA" "atencion-ciudadana"',
    f'SET VARIABLE "CALLERID(name)" "ATN-CIUDADANA: {CALLER_NAME}"',
    'EXEC Playback "ivr-aqui/transferencia"',
)
# Asterisk's replies, by command index ("{uniqueid}" is the call's); the caller lets the
# greeting play, then presses 2 in the main menu and 1 in the submenu.
REPLIES: Final = (
    "200 result=1\n",
    "200 result=0\n",
    "200 result=1 ({uniqueid})\n",
    "200 result=0\n",
    "200 result=1 (|TIMEOUT)\n",
    "200 result=0\n",
    "200 result=1 (2|OK)\n",
    "200 result=0\n",
    "200 result=1 (1|OK)\n",
    *("200 result=1\n",) * 6,
    "200 result=0\n",
)
# IVR_AT is when the routing was decided: the engine's clock (started at the call's
# ?at=) has moved on by the prompts' time.
AT_INDEX: Final = 10
AT_LINE: Final = re.compile(rb'SET VARIABLE "IVR_AT" "2026-12-07T09:\d\d:\d\d(\.\d+)?-06:00"\n')
PROMPTS: Final = frozenset({3, 5, 7, 15})  # the commands that play prompts (the greeting too)
COMMANDS: Final = len(EXPECTED)


# --- /proc ------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``'s waited-for (reaped) children."""
    fields = _stat(pid)
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``'s live threads, in nanoseconds' resolution (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``, its live children and its reaped ones (PostgreSQL's backends)."""
    fields = _stat(pid)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))
    for child in child_pids(pid):
        with contextlib.suppress(OSError, IndexError):
            child_fields = _stat(child)
            total += int(child_fields[11]) + int(child_fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")


def child_pids(pid: int) -> list[int]:
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def pin(cpu: int) -> None:
    if (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# --- the load generator -------------------------------------------------------------


_SEQUENCE: Final = itertools.count(1)
_EPOCH: Final = time.time_ns() // 1000


def environment(port: int, sequence: int) -> tuple[bytes, str]:
    """The environment block of one call (Asterisk 22's fields and order) and its Uniqueid."""
    uniqueid = f"bench-{_EPOCH}.{sequence}"
    lines = [
        "agi_network: yes",
        f"agi_network_script: {SCRIPT}",
        f"agi_request: agi://127.0.0.1:{port}/{SCRIPT}",
        f"agi_channel: PJSIP/trunk-{sequence:08x}",
        "agi_language: es",
        "agi_type: PJSIP",
        f"agi_uniqueid: {uniqueid}",
        "agi_version: 22.10.1",
        "agi_callerid: 4421234567",
        f"agi_calleridname: {CALLER_NAME}",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: 4421015205",
        "agi_rdnis: unknown",
        "agi_context: linea-aqui",
        "agi_extension: 4421015205",
        "agi_priority: 4",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        "agi_threadid: 140421655918272",
    ]
    return ("\n".join(lines) + "\n\n").encode(), uniqueid


def _line(text: str) -> bytes:
    return text.encode() + b"\n"


_EXPECTED_LINES: Final = tuple(_line(line.format(call_id="")) for line in EXPECTED)
_REPLY_LINES: Final = tuple(reply.encode() for reply in REPLIES)


class TargetError(Exception):
    """A target sent something other than the scripted call."""


@dataclass
class Load:
    """What the generator saw in one phase."""

    turnaround: array[float] = field(default_factory=lambda: array("d"))
    calls: int = 0
    errors: list[str] = field(default_factory=list)


class _Call(asyncio.Protocol):
    """One call as Asterisk places it, as protocol callbacks: the generator answers each
    command in the callback that receives it (no task, no stream), so that it costs
    less CPU per command than the targets it drives."""

    def __init__(self, port: int, play: float, load: Load) -> None:
        self.block, uniqueid = environment(port, next(_SEQUENCE))
        self.expected = list(_EXPECTED_LINES)
        call_id = uuid.uuid5(CALL_ID_NAMESPACE, uniqueid)
        self.expected[0] = _line(EXPECTED[0].format(call_id=call_id))
        self.replies = list(_REPLY_LINES)
        self.replies[2] = REPLIES[2].format(uniqueid=uniqueid).encode()
        self.play = play
        self.load = load
        self.index = 0
        self.buffer = b""
        self.sent = 0.0
        self.error: str | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - TCP
        self.transport = transport
        transport.write(self.block)
        self.sent = time.perf_counter()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            line, self.buffer = self.buffer[: end + 1], self.buffer[end + 1 :]
            self._command(line, now)

    def _command(self, line: bytes, now: float) -> None:
        index = self.index
        if index >= COMMANDS:
            self._fail(f"after the last command: {line!r}")
            return
        self.load.turnaround.append(now - self.sent)
        if line != self.expected[index] and not (index == AT_INDEX and AT_LINE.fullmatch(line)):
            self._fail(f"command {index + 1}: got {line!r}, expected {self.expected[index]!r}")
            return
        self.index += 1
        if self.play and index in PROMPTS:
            asyncio.get_running_loop().call_later(self.play, self._reply, self.replies[index])
        else:
            self._reply(self.replies[index])

    def _reply(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)
            self.sent = time.perf_counter()

    def _fail(self, error: str) -> None:
        self.error = self.error or error
        if self.transport is not None:
            self.transport.abort()

    def eof_received(self) -> bool:
        # The script ends the AGI by closing its side (Asterisk then sends HANGUP).
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None and self.index != COMMANDS:
            self.error = f"closed after {self.index} commands ({exc})"
        if not self.done.done():
            self.done.set_result(None)


async def one_call(port: int, play: float, load: Load) -> None:
    """One call; raises :class:`TargetError` if the target did not send the script."""
    call = _Call(port, play, load)
    await asyncio.get_running_loop().create_connection(lambda: call, "127.0.0.1", port)
    async with asyncio.timeout(120):
        await call.done
    if call.error is not None:
        raise TargetError(call.error)
    load.calls += 1


async def place(
    port: int, calls: int, in_flight: int, play: float = 0.0, stagger: float = 0.0
) -> Load:
    """``calls`` calls with ``in_flight`` at a time; the first wave spread over ``stagger`` s."""
    load = Load()
    numbers = iter(range(calls))
    workers = min(in_flight, calls)

    async def worker(index: int) -> None:
        await asyncio.sleep(stagger * index / workers)
        for _ in numbers:
            try:
                await one_call(port, play, load)
            except (TargetError, OSError, asyncio.IncompleteReadError) as exc:
                load.errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(worker(index) for index in range(workers)))
    return load


# --- the targets ----------------------------------------------------------------------


@dataclass
class Target:
    """A running target: its process, where it listens, and how to measure it."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    per_call_processes: bool = False  # pyst2: the work is in the children
    metrics_port: int | None = None
    peak_pss_kib: int = 0

    def cpu(self) -> float:
        if self.per_call_processes:
            return children_cpu_seconds(self.process.pid)
        return thread_cpu_seconds(self.process.pid)

    def memory_kib(self) -> int:
        if self.per_call_processes:
            return self.peak_pss_kib
        return status_kib(self.process.pid, "VmHWM")

    async def sample_memory(self, stop: asyncio.Event) -> None:
        """Peak of the per-call processes' summed PSS, sampled every 0.1 s."""
        while not stop.is_set():
            total = sum(pss_kib(child) for child in child_pids(self.process.pid))
            self.peak_pss_kib = max(self.peak_pss_kib, total)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await stop.wait()


def _pinned() -> None:
    pin(TARGET_CPU)


def start(name: str, work: Path, database_url: str) -> Target:
    port = free_port()
    python = sys.executable
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if name == "floor":
        argv = [python, str(TARGETS_DIR / "raw_asyncio.py"), "--port", str(port)]
        return _spawn(name, argv, env, port, _pinned)
    if name == "panoramisk":
        argv = [python, str(TARGETS_DIR / "panoramisk_fastagi.py"), "--port", str(port)]
        return _spawn(name, [*argv, "--script", SCRIPT], env, port, _pinned)
    if name == "pyst2":
        argv = [python, str(TARGETS_DIR / "agi_spawner.py"), "--port", str(port)]
        argv += ["--script", str(TARGETS_DIR / "pyst2_agi.py"), "--cpu", str(TARGET_CPU)]
        target = _spawn(name, argv, env, port, lambda: pin(LOAD_CPU))
        target.per_call_processes = True
        return target
    metrics_port = free_port()
    env.update(
        IVR_AGI_PORT=str(port),
        IVR_METRICS_PORT=str(metrics_port),
        IVR_AGI_ALLOW_TIME_OVERRIDE="true",
        IVR_AGI_MAX_CALLS="5000",
        IVR_DATABASE_URL=database_url,
        IVR_DATA_DIR=str(work / "engine-data"),
        IVR_LOG_FORMAT="json",
        IVR_LOG_LEVEL="info",
    )
    env.pop("IVR_DATABASE_URL_FILE", None)
    log = (work / "engine.log").open("ab")
    process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
        [python, "-m", "ivr", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        preexec_fn=_pinned,  # noqa: PLW1509
    )
    return Target(name, process, port, metrics_port=metrics_port)


def _spawn(
    name: str, argv: list[str], env: dict[str, str], port: int, preexec: Callable[[], None]
) -> Target:
    process = subprocess.Popen(  # noqa: S603 - our interpreter, our files
        argv,
        cwd=TARGETS_DIR,
        env=env,
        stdout=subprocess.PIPE,
        preexec_fn=preexec,  # noqa: PLW1509
    )
    if process.stdout is None or process.stdout.readline().strip() != b"READY":
        raise SystemExit(f"{name} did not start")
    return Target(name, process, port)


async def wait_ready(target: Target) -> None:
    if target.metrics_port is None:
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if target.process.poll() is not None:
            raise SystemExit(f"{target.name} exited with status {target.process.returncode}")
        with contextlib.suppress(OSError, IndexError, ValueError):
            status, _ = await http_get(target.metrics_port, "/readyz")
            if status == 200:
                return
        await asyncio.sleep(0.2)
    raise SystemExit(f"{target.name} not ready in 60 s")


def stop(target: Target) -> None:
    target.process.send_signal(signal.SIGTERM)
    try:
        target.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        target.process.kill()
        target.process.wait()


async def scrape_every(target: Target, seconds: float, stop_event: asyncio.Event) -> list[int]:
    """GET /metrics every ``seconds`` while the engine runs, as Prometheus would."""
    sizes: list[int] = []
    while not stop_event.is_set() and target.metrics_port is not None:
        with contextlib.suppress(OSError, IndexError, ValueError):
            _, body = await http_get(target.metrics_port, "/metrics")
            sizes.append(len(body))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop_event.wait()
    return sizes


# --- one level, one target ---------------------------------------------------------


@dataclass
class Result:
    target: str
    level: int
    calls_per_second: float
    cpu_per_call: float
    p50_ms: float
    p99_ms: float
    peak_kib: int
    calls: int
    load_cpu_share: float
    database_cpu_per_call: float | None = None


def quantile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Plan:
    play: float
    capacity_calls: dict[int, int]
    pyst2_calls: dict[int, int]

    def calls(self, target: str, level: int) -> int:
        return (self.pyst2_calls if target == "pyst2" else self.capacity_calls)[level]


async def measure(
    name: str, level: int, plan: Plan, work: Path, database: Database
) -> tuple[Result, int]:
    """(figures, calls placed) for one target at one level."""
    target = start(name, work, database.url)
    stop_event = asyncio.Event()
    background: list[asyncio.Task[Any]] = []
    placed = 0
    try:
        await wait_ready(target)
        if target.per_call_processes:
            background.append(asyncio.create_task(target.sample_memory(stop_event)))
        if target.metrics_port is not None:
            background.append(asyncio.create_task(scrape_every(target, 5.0, stop_event)))
        warm = await place(target.port, min(20, plan.calls(name, level)), min(level, 20))
        placed += warm.calls
        _fail_on(name, warm)

        calls = plan.calls(name, level)
        cpu_before, load_before = target.cpu(), os.times()
        db_before = database.cpu()
        started = time.perf_counter()
        capacity = await place(target.port, calls, level)
        elapsed = time.perf_counter() - started
        placed += capacity.calls
        _fail_on(name, capacity)
        if target.per_call_processes:
            await asyncio.sleep(0.2)  # the last scripts are reaped: their CPU is counted
        cpu = target.cpu() - cpu_before
        load_after = os.times()
        load_cpu = (load_after.user + load_after.system) - (load_before.user + load_before.system)
        db_cpu = database.cpu() - db_before if name == "engine" else None

        # Held: a call lasts about len(PROMPTS) * play; the first wave arrives over it.
        call_length = len(PROMPTS) * plan.play
        held = await place(target.port, max(level, 2), level, plan.play, stagger=call_length)
        placed += held.calls
        _fail_on(name, held)
        result = Result(
            target=name,
            level=level,
            calls_per_second=calls / elapsed,
            cpu_per_call=cpu / calls,
            p50_ms=quantile(held.turnaround, 0.50) * 1000,
            p99_ms=quantile(held.turnaround, 0.99) * 1000,
            peak_kib=target.memory_kib(),
            calls=calls,
            load_cpu_share=load_cpu / elapsed,
            database_cpu_per_call=None if db_cpu is None else db_cpu / calls,
        )
    finally:
        stop_event.set()
        for task in background:
            await task
        stop(target)
    return result, placed


def _fail_on(name: str, load: Load) -> None:
    if load.errors:
        raise SystemExit(f"{name}: {len(load.errors)} calls failed; first: {load.errors[0]}")


# --- PostgreSQL -------------------------------------------------------------------------


@dataclass
class Database:
    url: str
    postmaster: int | None

    def cpu(self) -> float:
        return tree_cpu_seconds(self.postmaster) if self.postmaster else 0.0

    async def count_calls(self) -> int:
        import asyncpg  # noqa: PLC0415 - only this step needs it

        conn = await asyncpg.connect(self.url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM calls"))
        finally:
            await conn.close()


@contextlib.contextmanager
def embedded_database(work: Path) -> Iterator[Database]:
    """A throw-away embedded PostgreSQL (on the CPU of the process that starts it)."""
    sys.path.insert(0, str(ROOT))
    from ivr.records.embedded import start_embedded  # noqa: PLC0415

    handle = start_embedded(work / "pgdata")
    try:
        pid_file = work / "pgdata" / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        yield Database(str(handle.get_uri()), postmaster)
    finally:
        handle.cleanup()


# --- the report ---------------------------------------------------------------------------


TARGET_LABELS: Final = {
    "floor": "raw asyncio (floor)",
    "panoramisk": "panoramisk FastAGI",
    "pyst2": "pyst2 AGI(), process per call",
    "engine": "this engine, all on",
}


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = memory_total_kib()
    versions = ", ".join(
        f"{package} {metadata.version(package)}"
        for package in ("panoramisk", "pyst2", "asyncpg", "prometheus-client", "structlog")
    )
    return (
        f"{model}, {os.cpu_count()} CPUs, {memory / 1024 / 1024:.0f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}; {versions}"
    )


def memory_total_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}×" if floor else "n/a"


def table(results: list[Result]) -> list[str]:
    lines = [
        "| calls in flight | target | calls/s | vs floor | p50 turnaround | p99 turnaround "
        "| p99 vs floor | CPU per call | vs floor | peak memory | vs floor |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in sorted({r.level for r in results}):
        row = [r for r in results if r.level == level]
        floor = next(r for r in row if r.target == "floor")
        lines.extend(
            f"| {level:,} | {TARGET_LABELS[r.target]} | {r.calls_per_second:,.0f} "
            f"| {ratio(r.calls_per_second, floor.calls_per_second)} "
            f"| {r.p50_ms:.2f} ms | {r.p99_ms:.2f} ms | {ratio(r.p99_ms, floor.p99_ms)} "
            f"| {r.cpu_per_call * 1000:.2f} ms | {ratio(r.cpu_per_call, floor.cpu_per_call)} "
            f"| {r.peak_kib / 1024:,.1f} MiB | {ratio(r.peak_kib, floor.peak_kib)} |"
            for r in row
        )
    return lines


def goals(results: list[Result]) -> list[str]:
    def get(target: str, level: int) -> Result:
        return next(r for r in results if r.target == target and r.level == level)

    lines = []
    levels = sorted({r.level for r in results})
    for level in levels:
        engine, floor, pyst2 = get("engine", level), get("floor", level), get("pyst2", level)
        share = engine.calls_per_second / floor.calls_per_second
        times = engine.calls_per_second / pyst2.calls_per_second
        lines.append(
            f"- {level:,} in flight: the engine takes {share:.0%} of the floor's calls/s "
            f"(goal ≥ 50%: {'met' if share >= 0.5 else 'missed'}) and "
            f"{times:.1f}× pyst2's (goal ≥ 20×: {'met' if times >= 20 else 'missed'})."
        )
    top = get("engine", levels[-1])
    lines.append(
        f"- p99 turnaround per command with {levels[-1]:,} calls held: {top.p99_ms:.2f} ms "
        f"(goal < 5 ms: {'met' if top.p99_ms < 5 else 'missed'})."
    )
    return lines


def report(results: list[Result], args: argparse.Namespace, extra: list[str]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    loads = ", ".join(
        f"{TARGET_LABELS[r.target]} @{r.level:,}: {r.load_cpu_share:.0%}"
        for r in results
        if r.load_cpu_share > 0.9
    )
    engine_db = [r for r in results if r.database_cpu_per_call is not None]
    return "\n".join(
        [
            "# bench/compare: results",
            "",
            f"Date: {now}. Machine: {machine()}.",
            "",
            f"Command: `{' '.join(args.argv)}` (prompt time in the held phase: {args.play:g} s; "
            f"capacity calls per level: {args.capacity}; pyst2: {args.pyst2}).",
            "",
            "Each target runs pinned to CPU 0 (pyst2's per-call processes too), the load "
            "generator on CPU 1; every target sent the engine's exact 16 command lines for "
            "every call. Calls/s and CPU per call come from the capacity phase (no prompt "
            "time), turnaround from the held phase (prompts playing, calls arriving over "
            "one call's length); peak memory is the target's peak RSS (VmHWM), or for pyst2 "
            "the peak sum of its per-call processes' PSS. How to read it: bench/README.md.",
            "",
            *table(results),
            "",
            "Goals for this engine (issue 7):",
            "",
            *goals(results),
            "",
            "The engine's PostgreSQL (a separate server, not in the table): "
            + "; ".join(
                f"{r.level:,} in flight: {r.database_cpu_per_call * 1000:.2f} ms CPU per call"
                for r in engine_db
                if r.database_cpu_per_call is not None
            )
            + ".",
            "",
            "Load generator saturated (≥ 90% of its CPU, so that target's calls/s is a "
            f"lower bound): {loads or 'never'}.",
            *extra,
            "",
        ]
    )


async def run(args: argparse.Namespace) -> int:
    levels: list[int] = args.levels
    plan = Plan(
        play=args.play,
        capacity_calls=dict(zip(levels, args.capacity, strict=True)),
        pyst2_calls=dict(zip(levels, args.pyst2, strict=True)),
    )
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch:
        work = Path(scratch)
        with embedded_database(work) as database:
            # After PostgreSQL started, so that it is not pinned: it runs where the
            # kernel finds room, as a database server on the same machine would.
            pin(LOAD_CPU)
            engine_calls = 0
            for level in levels:
                for name in args.targets:
                    began = time.perf_counter()
                    result, placed = await measure(name, level, plan, work, database)
                    if name == "engine":
                        engine_calls += placed
                    results.append(result)
                    print(
                        f"{level:>5,} in flight  {TARGET_LABELS[name]:<31} "
                        f"{result.calls_per_second:8,.0f} calls/s  "
                        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                        f"CPU {result.cpu_per_call * 1000:6.2f} ms/call  "
                        f"peak {result.peak_kib / 1024:8,.1f} MiB  "
                        f"({time.perf_counter() - began:.0f} s)",
                        flush=True,
                    )
            extra: list[str] = []
            if "engine" in args.targets:
                rows = await database.count_calls()
                extra = [
                    "",
                    f"Records: the engine was placed {engine_calls:,} calls and PostgreSQL holds "
                    f"{rows:,} call rows.",
                ]
                print(extra[-1])
                if rows != engine_calls:
                    print("error: records and calls differ", file=sys.stderr)
                    return 1
    if set(args.targets) == set(TARGET_LABELS):
        text = report(results, args, extra)
        args.out.write_text(text)
        print()
        print(text)
        print(f"written to {args.out}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument(
        "--capacity",
        type=int,
        nargs="+",
        default=[300, 2000, 4000],
        help="calls in the capacity phase, per level",
    )
    parser.add_argument(
        "--pyst2",
        type=int,
        nargs="+",
        default=[30, 200, 1000],
        help="calls in pyst2's capacity phase, per level (a process each)",
    )
    parser.add_argument("--play", type=float, default=1.0, help="seconds per prompt when held")
    parser.add_argument("--targets", nargs="+", default=list(TARGET_LABELS), choices=TARGET_LABELS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    args.argv = ["bench/compare", *sys.argv[1:]]
    if not len(args.levels) == len(args.capacity) == len(args.pyst2):
        parser.error("--levels, --capacity and --pyst2 need one value per level")
    if any(p < level for p, level in zip(args.pyst2, args.levels, strict=True)):
        parser.error("--pyst2 needs at least as many calls as calls in flight")
    print(f"machine: {machine()}")
    print(json.dumps({"levels": args.levels, "targets": args.targets}))
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
