"""Soak: the real service under steady mixed traffic, with a menu reload every minute.

Run: .venv/bin/python bench/soak.py --minutes 30 --rate 20

Starts ``python -m ivr serve`` as a process on a copy of ``config/`` in a temporary
directory, with its embedded PostgreSQL there too (or the database of ``--database-url``),
and places calls with the fake Asterisk (``ivr.testing.FakeAsterisk``) at a steady
arrival rate: routed calls, calls at closed hours, invalid keys, silences, and hang-ups
at a random step, each prompt taking a small play time so that calls overlap. Every
``--reload-every`` seconds it writes a changed menu (a new version) and sends SIGHUP,
then checks on ``/metrics`` that the new version is in force. Every ``--sample-every``
seconds it reads the service's RSS (``VmRSS``) and the embedded PostgreSQL's PSS
(postmaster and backends).

At the end it stops the service with SIGTERM (so every record is flushed), reads the
``calls`` table, and prints the memory table, the growth after warm-up, the errors, the
calls placed by kind and the records against the calls. Errors are: a call whose
result is not what its caller's script expects (on the AGI side and on its row), a
call that failed to connect or timed out, an ``AGISTATUS=FAILURE``, a service log line
at level error or critical (or one that is not JSON), a reload that did not take, a
refused connection, a service that did not stop cleanly. The last line is
``SOAK_SUMMARY <json>`` for machines. Exit status 1 if there are errors or the
records differ from the calls placed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final
from uuid import UUID

import asyncpg

from ivr.records.embedded import start_embedded
from ivr.records.model import call_id_for
from ivr.testing import CallResult, FakeAsterisk, HangupStyle, Heard

ROOT: Final = Path(__file__).resolve().parent.parent
SUMMARY_PREFIX: Final = "SOAK_SUMMARY "
# A call lasts a few seconds; one still running after this failed (a generous bound, for
# a machine busy with other work).
CALL_TIMEOUT: Final = 60.0
SETTLE_TIMEOUT: Final = 180.0

# Instants the calls claim to happen at (?at=, local time of the line), chosen against
# config/menu.yaml: Monday 7 Dec 2026 is a working day inside the winter contingency.
OPEN: Final = "2026-12-07T09:00"
NIGHT: Final = "2026-12-07T21:00"
LATE: Final = "2026-12-07T23:00"
SATURDAY: Final = "2026-12-05T10:00"
CHRISTMAS: Final = "2026-12-25T10:00"  # an official rest day


@dataclass(frozen=True)
class Script:
    """What a caller does (one answer per menu, ``-`` is silence) and what must happen."""

    kind: str
    at: str
    answers: str
    outcome: str
    queue: str | None


SCRIPTS: Final[tuple[Script, ...]] = (
    Script("routed", OPEN, "2 1", "routed", "atencion-ciudadana"),
    Script("routed", OPEN, "1 2", "routed", "finanzas-vehicular"),
    Script("routed", OPEN, "1 3", "routed", "finanzas-vehicular"),
    Script("routed", OPEN, "1 4", "routed", "qrobot"),
    Script("routed", OPEN, "3 1", "routed", "salud-medica"),
    Script("routed", OPEN, "3 2", "routed", "salud-resultados"),
    Script("routed", OPEN, "3 3", "routed", "salud-psicologica"),
    Script("routed", OPEN, "0", "routed", "atencion-ciudadana"),
    Script("routed", OPEN, "* 2 1", "routed", "atencion-ciudadana"),
    Script("routed", OPEN, "1 # 2 1", "routed", "atencion-ciudadana"),
    Script("routed", SATURDAY, "1 3", "routed", "finanzas-vehicular"),
    Script("routed", NIGHT, "3 1", "routed", "salud-medica"),
    Script("closed", NIGHT, "2 1", "closed", None),
    Script("closed", NIGHT, "1 3", "closed", None),
    Script("closed", SATURDAY, "1 2", "closed", None),
    Script("closed", CHRISTMAS, "2 1", "closed", None),
    Script("closed", LATE, "3 2", "closed", None),
    Script("invalid", OPEN, "9 9 9", "fallback", "atencion-ciudadana"),
    Script("invalid", OPEN, "2 9 9 9", "fallback", "atencion-ciudadana"),
    Script("invalid", OPEN, "1 1 1 1", "fallback", "atencion-ciudadana"),
    Script("invalid", OPEN, "9 2 1", "routed", "atencion-ciudadana"),
    Script("silence", OPEN, "", "fallback", "atencion-ciudadana"),
    Script("silence", OPEN, "2 - - -", "fallback", "atencion-ciudadana"),
    Script("silence", OPEN, "- 2 1", "routed", "atencion-ciudadana"),
    Script("silence", OPEN, "- - 1 4", "routed", "qrobot"),
)
KIND_WEIGHTS: Final = {"routed": 40, "closed": 20, "invalid": 15, "silence": 10, "hangup": 15}
HANGUP_STYLES: Final[tuple[HangupStyle, ...]] = ("after_reply", "before_reply", "exit")
NAMES: Final = ("María Hernández", "José Pérez", "Ana Gómez", "Luis Ramírez", "unknown", "")


class SoakCaller:
    """A caller (``ivr.testing.Caller``) following a :class:`Script`.

    ``barge`` presses each menu's key while the menu's first prompt plays instead of
    after it. ``hangup_at`` hangs up at that chance to hang up (1 = during ANSWER; each
    file heard and each wait for a key is one more); ``chances`` counts them.
    """

    def __init__(self, answers: str, *, barge: bool, hangup_at: int | None) -> None:
        self.answers = answers.split()
        self.barge = barge
        self.hangup_at = hangup_at
        self.chances = 0

    def during(self, heard: Heard) -> str | None:
        name = heard.value.rsplit("/", 1)[-1]
        if self.barge and heard.kind == "file" and name.startswith("menu-") and self.answers:
            key = self.answers.pop(0)
            return None if key == "-" else key
        return None

    def answer(self, timeout: float) -> str | None:
        if not self.answers:
            return None
        key = self.answers.pop(0)
        return None if key == "-" else key

    def hangs_up(self, heard: Heard | None, command: str) -> bool:
        self.chances += 1
        return self.hangup_at is not None and self.chances >= self.hangup_at


@dataclass
class PlacedCall:
    number: int
    kind: str
    script: Script
    uniqueid: str = ""
    hangup_expected: bool = False
    agi_status: str = ""
    hung_up: bool = False
    ivr_outcome: str | None = None
    ivr_queue: str | None = None
    failure: str | None = None  # the exception, if the call itself failed

    def expected_row(self) -> tuple[str, str | None]:
        """(outcome, queue) the call's row must hold."""
        if self.hung_up:
            # Hung up after the closed-hours decision: the decision stands. Anywhere
            # else, the queue never got the caller.
            if self.ivr_outcome == "closed":
                return "closed", None
            return "abandoned_in_menu", self.ivr_queue  # the queue, if it was decided
        return self.script.outcome, self.script.queue


@dataclass
class Sample:
    t: float
    service_kib: int | None
    pg_kib: int | None
    in_flight: int
    placed: int


@dataclass
class ServiceLog:
    """Reads the service's JSON log lines from its stderr, in a thread."""

    path: Path
    errors: list[str] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)
    levels: Counter[str] = field(default_factory=Counter)
    reloaded: list[str] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: threading.Condition = field(default_factory=threading.Condition)

    def follow(self, stream: IO[str]) -> None:
        with self.path.open("w", encoding="utf-8") as copy:
            for line in stream:
                copy.write(line)
                self._take(line.rstrip("\n"))

    def _take(self, line: str) -> None:
        if not line.strip():
            return
        try:
            event: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            self.errors.append(f"service printed a non-JSON line: {line[:300]}")
            return
        level = str(event.get("level", "?"))
        name = str(event.get("event", ""))
        self.levels[level] += 1
        if level in {"error", "critical", "exception", "fatal"}:
            self.errors.append(f"service logged {level}: {line[:500]}")
        elif level == "warning":
            self.warnings[name] += 1
        with self.seen:
            if name == "menu reloaded":
                self.reloaded.append(str(event.get("menu_version")))
            self.events[name] = event
            self.seen.notify_all()

    def wait_for(self, name: str, proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.seen:
            while name not in self.events:
                if proc.poll() is not None:
                    raise RuntimeError(f"the service exited ({proc.returncode}) before {name!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no {name!r} log line within {timeout:g} s")
                self.seen.wait(min(left, 0.5))
            return self.events[name]


# --- process memory ---------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process, KiB; None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match[1]) if match else None


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
    return int(match[1]) if match else 0


def pg_pss_kib(pgdata: Path | None) -> int | None:
    """PSS of the embedded PostgreSQL (postmaster and its children), KiB.

    PSS, not RSS: the backends share the buffer pool, which RSS would count once per
    process."""
    if pgdata is None:
        return None
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return _pss_kib(postmaster) + sum(_pss_kib(child) for child in _children(postmaster))


# --- the run ------------------------------------------------------------------------------


@dataclass
class Options:
    minutes: float
    rate: float
    reload_every: float
    sample_every: float
    warmup_minutes: float
    seed: int
    play: tuple[float, float]
    database_url: str | None
    summary_json: Path | None
    keep: bool


@dataclass
class Run:
    options: Options
    work: Path
    port: int = 0
    metrics_url: str = ""
    proc: subprocess.Popen[str] | None = None
    log: ServiceLog | None = None
    log_reader: threading.Thread | None = None
    pgdata: Path | None = None
    calls: list[PlacedCall] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    reloads: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    in_flight: int = 0
    started: float = 0.0
    db_rows: dict[UUID, tuple[str | None, str | None]] = field(default_factory=dict)
    db_total_rows: int = 0
    service_exit: int | None = None
    settle_seconds: float | None = None
    started_at: str = ""
    stopped_stats: dict[str, Any] = field(default_factory=dict)
    recorder_stats: dict[str, Any] = field(default_factory=dict)
    chances: dict[tuple[int, bool], int] = field(default_factory=dict)

    @property
    def service(self) -> subprocess.Popen[str]:
        if self.proc is None:
            raise RuntimeError("the service is not started")
        return self.proc

    @property
    def service_log(self) -> ServiceLog:
        if self.log is None:
            raise RuntimeError("the service is not started")
        return self.log


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own service
        return str(response.read().decode("utf-8"))


def start_service(run: Run, database_url: str | None) -> None:
    config = run.work / "config"
    shutil.copytree(ROOT / "config", config)
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVR_")}
    env.update(
        {
            "IVR_CONFIG": str(config),
            "IVR_DATA_DIR": str(run.work / "data"),
            "IVR_AGI_PORT": str(run.port),
            "IVR_METRICS_PORT": str(free_port()),
            "IVR_LOG_FORMAT": "json",
            "IVR_LOG_LEVEL": "info",
            "IVR_AGI_ALLOW_TIME_OVERRIDE": "true",
        }
    )
    if database_url is not None:
        env["IVR_DATABASE_URL"] = database_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr", "serve"],
        env=env,
        cwd=run.work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    run.proc = proc
    run.log = ServiceLog(run.work / "service.log")
    stream = proc.stderr
    if stream is None:
        raise RuntimeError("no stderr pipe")
    run.log_reader = threading.Thread(target=run.log.follow, args=(stream,), daemon=True)
    run.log_reader.start()
    run.log.wait_for("FastAGI listening", proc, timeout=180)
    run.metrics_url = str(run.log.wait_for("metrics listening", proc, timeout=30)["url"])


@dataclass(frozen=True)
class Draws:
    """A call's random choices besides its script."""

    hangup: float  # where a hang-up call hangs up, as a fraction of its chances
    barge: bool
    style: HangupStyle
    play: float


def pick_call(
    rng: random.Random, number: int, play: tuple[float, float]
) -> tuple[PlacedCall, Draws]:
    """The next call: kind, script, hang-up draw, barge-in, hang-up style (all seeded)."""
    kinds = list(KIND_WEIGHTS)
    kind = rng.choices(kinds, weights=[KIND_WEIGHTS[k] for k in kinds])[0]
    pool = SCRIPTS if kind == "hangup" else tuple(s for s in SCRIPTS if s.kind == kind)
    script = rng.choice(pool)
    draw = rng.random()
    barge = rng.random() < 0.3
    style = rng.choice(HANGUP_STYLES)
    return PlacedCall(number, kind, script), Draws(draw, barge, style, rng.uniform(*play))


async def place_call(run: Run, call: PlacedCall, draws: Draws) -> None:
    draw, barge, style, play = draws.hangup, draws.barge, draws.style, draws.play
    script_index = SCRIPTS.index(call.script)
    hangup_at: int | None = None
    if call.kind == "hangup":
        # Any step the call has: the chances its script gives, once a complete call of
        # that script has counted them (6 until then: a call has at least that many).
        chances = run.chances.get((script_index, barge), 6)
        hangup_at = 1 + math.floor(draw * chances)
        call.hangup_expected = True
    caller = SoakCaller(call.script.answers, barge=barge, hangup_at=hangup_at)
    asterisk = FakeAsterisk(
        "127.0.0.1", run.port, hangup_style=style, play_seconds=play, timeout=CALL_TIMEOUT
    )
    number = f"442{(call.number * 7919) % 10_000_000:07d}".encode()
    name = NAMES[call.number % len(NAMES)].encode()
    env = asterisk.environment(number, name, query=f"at={call.script.at}")
    # Known before the call, so that a call that fails still finds (or misses) its row.
    call.uniqueid = dict(env)["uniqueid"].decode()
    run.in_flight += 1
    try:
        result: CallResult = await asterisk.call(caller, env=env)
    except (OSError, TimeoutError, ConnectionError) as exc:
        call.failure = f"{type(exc).__name__}: {exc}"
        return
    finally:
        run.in_flight -= 1
    call.agi_status = result.agi_status
    call.hung_up = result.hung_up
    call.ivr_outcome = result.variables.get("IVR_OUTCOME")
    call.ivr_queue = result.variables.get("IVR_QUEUE")
    if hangup_at is None and not result.hung_up:
        run.chances.setdefault((script_index, barge), caller.chances)


def check_call(call: PlacedCall) -> str | None:
    """Why the call's AGI side is not what its script expects, or None."""
    if call.failure is not None:
        return f"call {call.number} ({call.kind}) failed: {call.failure}"
    what = f"call {call.number} ({call.kind}, {call.script.at} {call.script.answers!r})"
    if call.agi_status == "FAILURE":
        return f"{what}: AGISTATUS=FAILURE"
    if call.hangup_expected:
        if not call.hung_up or call.agi_status != "HANGUP":
            return f"{what}: expected a hang-up, got {call.agi_status} {call.ivr_outcome}"
        return None
    if call.hung_up or call.agi_status != "SUCCESS":
        return f"{what}: AGISTATUS={call.agi_status}, hung up={call.hung_up}"
    got = (call.ivr_outcome, call.ivr_queue)
    if got != (call.script.outcome, call.script.queue):
        wanted = (call.script.outcome, call.script.queue)
        return f"{what}: IVR_OUTCOME/IVR_QUEUE {got}, expected {wanted}"
    return None


def write_menu(config: Path, original: str, base_version: str, number: int) -> str:
    """A changed menu.yaml (new version, alternating description), written atomically."""
    version = f"{base_version}.soak-{number:04d}"
    text = original.replace(f'version: "{base_version}"', f'version: "{version}"', 1)
    if number % 2:
        text = text.replace(
            "description: Soporte del chatbot Qrobot",
            "description: Soporte del chatbot Qrobot (WhatsApp)",
            1,
        )
    menu = config / "menu.yaml"
    scratch = config / ".menu.yaml.new"
    scratch.write_text(text, encoding="utf-8")
    scratch.replace(menu)
    return version


async def reloader(run: Run, stop: asyncio.Event) -> None:
    config = run.work / "config"
    original = (config / "menu.yaml").read_text(encoding="utf-8")
    match = re.search(r'^version: "([^"]+)"', original, re.MULTILINE)
    if match is None:
        run.errors.append("config/menu.yaml has no quoted version: cannot reload")
        return
    base = match[1]
    every = run.options.reload_every
    number = 0
    while True:
        number += 1
        due = run.started + every * (number - 0.5)  # mid-interval: 30 s, 90 s, ...
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, due - time.monotonic()))
        if stop.is_set():
            return
        version = write_menu(config, original, base, number)
        sent = time.monotonic()
        run.service.send_signal(signal.SIGHUP)
        wanted = f'ivr_menu_info{{version="{version}"}} 1.0'
        took: float | None = None
        while time.monotonic() - sent < 30:
            try:
                scraped = await asyncio.to_thread(http_get, run.metrics_url)
            except OSError:
                scraped = ""
            # Both: the metric says which menu serves, the log line that it was reloaded.
            if wanted in scraped and version in run.service_log.reloaded:
                took = time.monotonic() - sent
                break
            await asyncio.sleep(0.2)
        run.reloads.append(
            {"t": round(sent - run.started, 1), "version": version, "took_seconds": took}
        )
        if took is None:
            run.errors.append(
                f"reload to {version} did not show on /metrics and in the log within 30 s"
            )


async def sampler(run: Run, stop: asyncio.Event) -> None:
    while True:
        run.samples.append(
            Sample(
                t=time.monotonic() - run.started,
                service_kib=rss_kib(run.service.pid),
                pg_kib=pg_pss_kib(run.pgdata),
                in_flight=run.in_flight,
                placed=len(run.calls),
            )
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), run.options.sample_every)
        if stop.is_set():
            return


async def drive(run: Run) -> None:
    options = run.options
    rng = random.Random(options.seed)  # noqa: S311 - seeded traffic, not secrets
    total = round(options.minutes * 60 * options.rate)
    stop = asyncio.Event()
    run.started = time.monotonic()
    run.started_at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    background = [
        asyncio.create_task(sampler(run, stop)),
        asyncio.create_task(reloader(run, stop)),
    ]
    tasks: set[asyncio.Task[None]] = set()
    try:
        for number in range(total):
            due = run.started + number / options.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            call, draws = pick_call(rng, number, options.play)
            run.calls.append(call)
            task = asyncio.create_task(place_call(run, call, draws))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=120)
            for task in late:
                task.cancel()
            if late:
                run.errors.append(f"{len(late)} calls still running 120 s after the last one")
                await asyncio.wait(late)
    finally:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
        # One last sample after the traffic.
        run.samples.append(
            Sample(
                time.monotonic() - run.started,
                rss_kib(run.service.pid),
                pg_pss_kib(run.pgdata),
                run.in_flight,
                len(run.calls),
            )
        )


def settle(run: Run) -> None:
    """Wait until the recorder has nothing queued or spooled, so that SIGTERM only
    flushes: records go to the database while the service runs, not at its stop."""
    started = time.monotonic()
    calm = 0
    while time.monotonic() - started < SETTLE_TIMEOUT:
        try:
            scraped = http_get(run.metrics_url)
        except OSError:
            scraped = ""
        idle = "ivr_records_queue_depth 0.0" in scraped
        idle = idle and "ivr_records_spool_bytes 0.0" in scraped
        calm = calm + 1 if idle else 0
        if calm >= 2:
            run.settle_seconds = round(time.monotonic() - started, 1)
            return
        time.sleep(0.5)
    run.errors.append(f"the records did not settle within {SETTLE_TIMEOUT:g} s of the last call")


def stop_service(run: Run) -> None:
    """SIGTERM and wait: the service flushes its records before it exits."""
    proc, log = run.service, run.service_log
    proc.send_signal(signal.SIGTERM)
    try:
        run.service_exit = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        run.errors.append("the service did not stop within 90 s of SIGTERM")
        return
    if run.log_reader is not None:
        run.log_reader.join(timeout=10)  # the last lines, up to EOF
    if run.service_exit != 0:
        run.errors.append(f"the service exited with status {run.service_exit}")
    run.stopped_stats = log.events.get("FastAGI stopped", {})
    run.recorder_stats = log.events.get("recorder closed", {})


async def read_rows(run: Run, url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT call_id, outcome, queue FROM calls")
    finally:
        await conn.close()
    run.db_total_rows = len(rows)
    run.db_rows = {row["call_id"]: (row["outcome"], row["queue"]) for row in rows}


def check_records(run: Run) -> tuple[int, int, int]:
    """(calls with their row, rows of calls not placed, rows not as expected)."""
    placed = {call_id_for(c.uniqueid): c for c in run.calls if c.uniqueid}
    found = wrong = 0
    for call_id, call in placed.items():
        row = run.db_rows.get(call_id)
        if row is None:
            continue
        found += 1
        if call.failure is None and row != call.expected_row():
            wrong += 1
            if wrong <= 20:
                run.errors.append(
                    f"call {call.number} ({call.kind} {call.script.answers!r} at"
                    f" {call.script.at}, hung up={call.hung_up}): row {row},"
                    f" expected {call.expected_row()}"
                )
    extra = len(set(run.db_rows) - set(placed))
    missing = len(run.calls) - found
    if missing:
        run.errors.append(f"{missing} calls placed have no row in calls")
    return found, extra, wrong


# --- the report ---------------------------------------------------------------------------


def mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def growth(samples: list[Sample], warmup_s: float, attr: str) -> dict[str, float] | None:
    """Least-squares slope (KiB/min), max-min and last-first (KiB) after the warm-up."""
    points = [(s.t, getattr(s, attr)) for s in samples if s.t >= warmup_s]
    points = [(t, v) for t, v in points if v is not None]
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / var if var else 0.0
    values = [v for _, v in points]
    return {
        "slope_kib_per_min": round(slope * 60, 1),
        "max_minus_min_kib": max(values) - min(values),
        "last_minus_first_kib": values[-1] - values[0],
        "first_kib": values[0],
        "last_kib": values[-1],
        "max_kib": max(values),
        "samples": n,
    }


def memory_table(run: Run) -> list[str]:
    lines = [
        "minute  placed  in-flight(max)  service RSS MiB (min/max/end)  PostgreSQL PSS MiB (end)"
    ]
    minutes = max(1, math.ceil(run.options.minutes))  # the samples after it: in the last row
    for minute in range(minutes):
        bucket = [s for s in run.samples if minute * 60 <= s.t < (minute + 1) * 60]
        if minute == minutes - 1:
            bucket += [s for s in run.samples if s.t >= minutes * 60]
        if not bucket:
            continue
        rss = [s.service_kib for s in bucket if s.service_kib is not None]
        end = bucket[-1]
        lines.append(
            f"{minute + 1:>6}  {end.placed:>6}  {max(s.in_flight for s in bucket):>14}  "
            f"{mib(min(rss) if rss else None):>10} / {mib(max(rss) if rss else None):>6} /"
            f" {mib(end.service_kib):>6}     {mib(end.pg_kib):>10}"
        )
    return lines


def report(run: Run, found: int, extra: int, wrong: int, argv: list[str]) -> dict[str, Any]:
    options = run.options
    log = run.service_log
    warmup_s = options.warmup_minutes * 60
    service_growth = growth(run.samples, warmup_s, "service_kib")
    pg_growth = growth(run.samples, warmup_s, "pg_kib")
    by_kind = Counter(c.kind for c in run.calls)
    hung_up = sum(1 for c in run.calls if c.hung_up)
    outcomes = Counter(outcome for outcome, _ in run.db_rows.values())
    refused = int(run.stopped_stats.get("refused_busy", 0)) + int(
        run.stopped_stats.get("refused_peers", 0)
    )
    if refused:
        run.errors.append(f"the service refused {refused} connections")
    errors = run.errors + log.errors
    took = [r["took_seconds"] for r in run.reloads if r["took_seconds"] is not None]
    summary: dict[str, Any] = {
        "command": argv,
        "started_at": run.started_at,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "minutes": options.minutes,
        "rate": options.rate,
        "seed": options.seed,
        "calls": len(run.calls),
        "calls_by_kind": dict(sorted(by_kind.items())),
        "hung_up": hung_up,
        "records": found,
        "rows_total": run.db_total_rows,
        "rows_not_placed": extra,
        "rows_wrong": wrong,
        "outcomes": dict(sorted((str(k), v) for k, v in outcomes.items())),
        "reloads": len(run.reloads),
        "reloads_took": len(took),
        "reload_seconds_max": round(max(took), 2) if took else None,
        "menu_versions_seen_in_log": len(set(log.reloaded)),
        "errors": len(errors),
        "error_examples": errors[:20],
        "service_log_levels": dict(log.levels),
        "service_warnings": dict(log.warnings),
        "service_exit": run.service_exit,
        "recorder": {k: run.recorder_stats.get(k) for k in ("written", "spooled", "rejected")},
        "settle_seconds": run.settle_seconds,
        "warmup_minutes": options.warmup_minutes,
        "service_rss_growth": service_growth,
        "pg_pss_growth": pg_growth,
        "samples": [
            [round(s.t, 1), s.service_kib, s.pg_kib, s.in_flight, s.placed] for s in run.samples
        ],
    }
    out = print
    out("")
    out(f"soak: {shlex.join(argv)}")
    out(f"started: {run.started_at} UTC, ran {time.monotonic() - run.started:.0f} s to the report")
    out(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}"
    )
    out(
        f"traffic: {options.minutes:g} min at {options.rate:g} calls/s, seed {options.seed},"
        f" play {options.play[0]:g}-{options.play[1]:g} s per prompt,"
        f" reload every {options.reload_every:g} s"
    )
    out("")
    out("memory (service = `ivr serve` VmRSS; PostgreSQL = postmaster + backends PSS)")
    for line in memory_table(run):
        out("  " + line)
    out("")
    for label, data in (("service RSS", service_growth), ("PostgreSQL PSS", pg_growth)):
        if data is None:
            out(f"{label} after warm-up: not enough samples")
            continue
        out(
            f"{label} after {options.warmup_minutes:g} min warm-up: slope"
            f" {data['slope_kib_per_min']:+.1f} KiB/min, max-min {data['max_minus_min_kib']} KiB,"
            f" last-first {data['last_minus_first_kib']:+d} KiB"
            f" ({mib(data['first_kib'])} -> {mib(data['last_kib'])} MiB, {data['samples']} samples)"
        )
    out("")
    out(
        f"calls placed: {len(run.calls)}  by kind: "
        + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items()))
    )
    out(
        f"calls that hung up: {hung_up}; outcomes on the rows: "
        + ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items())
    )
    out(
        f"records in PostgreSQL: {found} of {len(run.calls)} calls placed"
        f" ({'EQUAL' if found == len(run.calls) and not extra else 'DIFFERENT'});"
        f" rows in calls {run.db_total_rows}, not placed by the soak {extra},"
        f" not as expected {wrong}"
    )
    out(
        f"recorder: queue and spool empty {run.settle_seconds} s after the last call;"
        f" at stop {summary['recorder']}"
    )
    out(
        f"reloads: {len(run.reloads)}, took effect {len(took)}"
        + (f", slowest {max(took):.2f} s" if took else "")
    )
    out(f"service log lines by level: {dict(log.levels)}; warnings: {dict(log.warnings)}")
    out(f"errors: {len(errors)}")
    for example in errors[:20]:
        out(f"  - {example}")
    out("")
    out(SUMMARY_PREFIX + json.dumps({k: v for k, v in summary.items() if k != "samples"}))
    if options.summary_json is not None:
        options.summary_json.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the traffic")
    parser.add_argument("--rate", type=float, default=20.0, help="calls placed per second")
    parser.add_argument("--reload-every", type=float, default=60.0, help="seconds between reloads")
    parser.add_argument(
        "--sample-every", type=float, default=5.0, help="seconds between RSS samples"
    )
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        default=None,
        help="growth is measured after this (default 2, or a quarter of a shorter run)",
    )
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument(
        "--play",
        default="0.05,0.25",
        help="seconds each prompt plays, drawn per call from this range (min,max)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("IVR_SOAK_DATABASE_URL"),
        help="a PostgreSQL of its own for the service (default: the embedded one, in a temp dir)",
    )
    parser.add_argument("--summary-json", type=Path, help="also write the summary here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    low, _, high = str(args.play).partition(",")
    warmup = args.warmup_minutes
    if warmup is None:
        warmup = 2.0 if args.minutes >= 8 else args.minutes / 4
    return Options(
        minutes=args.minutes,
        rate=args.rate,
        reload_every=args.reload_every,
        sample_every=args.sample_every,
        warmup_minutes=warmup,
        seed=args.seed,
        play=(float(low), float(high or low)),
        database_url=args.database_url,
        summary_json=args.summary_json,
        keep=args.keep,
    )


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM (a test's timeout) unwinds like Ctrl-C, so the finally blocks run."""

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    options = parse_args(args)
    command = [sys.executable, str(Path(__file__)), *args]
    work = Path(tempfile.mkdtemp(prefix="ivr-soak-"))
    run = Run(options, work, port=free_port())
    handle: Any = None
    with terminate_on_sigterm():
        try:
            if options.database_url is None:
                # The soak holds the embedded server too, so that it outlives the service
                # and the rows can be read after the service stopped; the service joins it.
                run.pgdata = work / "data" / "pgdata"
                handle = start_embedded(run.pgdata)
                url = str(handle.get_uri())
            else:
                url = options.database_url
            print(f"soak: starting the service in {work}", flush=True)
            start_service(run, options.database_url)
            print(
                f"soak: placing {round(options.minutes * 60 * options.rate)} calls over"
                f" {options.minutes:g} min",
                flush=True,
            )
            asyncio.run(drive(run))
            settle(run)
            stop_service(run)
            asyncio.run(read_rows(run, url))
            run.errors.extend(e for c in run.calls if (e := check_call(c)) is not None)
            found, extra, wrong = check_records(run)
            summary = report(run, found, extra, wrong, command)
        finally:
            if run.proc is not None and run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
            if handle is not None:
                handle.cleanup()
            if not options.keep:
                shutil.rmtree(work, ignore_errors=True)
            else:
                print(f"soak: kept {work}")
    ok = summary["errors"] == 0 and summary["records"] == summary["calls"]
    return 0 if ok and summary["rows_not_placed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
