"""``ivr serve`` as a real process, and what the resilience tests do around it.

:class:`Service` starts ``python -m ivr serve`` with a given environment, reads its
JSON log lines on stderr in a thread (so a busy service never blocks on a full pipe),
scrapes its ``/metrics``, and is always killed when the test leaves
:func:`running_service`. :func:`place_calls` drives concurrent calls with the fake
Asterisk; :func:`dialplan_branch` says where ``dialplan/extensions.conf`` sends a call
after ``AGI()``, by reading the committed file rather than restating it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from ivr.records.model import CallEvent, CallRecord, Record, call_id_for, from_json
from ivr.records.spool import REJECTED, SEGMENT_SUFFIX
from ivr.testing import CallResult, FakeAsterisk, ScriptedCaller

ROOT: Final = Path(__file__).resolve().parent.parent
EXTENSIONS: Final = ROOT / "dialplan" / "extensions.conf"
HASH_SECRET: Final = "resilience-tests-shared-key"  # noqa: S105 - a test key
MONDAY_0900: Final = "2026-12-07T09:00"  # every área open
MONDAY_2100: Final = "2026-12-07T21:00"  # every área closed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of one ``ivr serve``: free ports, JSON logs, ``?at=`` allowed."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVR_")}
    env.update(
        {
            "IVR_CONFIG": str(ROOT / "config"),
            "IVR_AGI_PORT": str(free_port()),
            "IVR_METRICS_PORT": str(free_port()),
            "IVR_LOG_FORMAT": "json",
            "IVR_DATA_DIR": str(data_dir),
            "IVR_DATABASE_URL": database_url,
            "IVR_AGI_ALLOW_TIME_OVERRIDE": "true",
            "IVR_CALLER_HASH_SECRET": HASH_SECRET,
            "IVR_SHUTDOWN_GRACE": "5",
        }
    )
    env.update(extra)
    return env


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.1)


class Service:
    """One ``ivr serve`` process and its log lines."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.agi_port = int(env["IVR_AGI_PORT"])
        self.metrics_url = f"http://127.0.0.1:{env['IVR_METRICS_PORT']}/metrics"
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ivr", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read_logs, daemon=True)
        self._reader.start()

    def _read_logs(self) -> None:
        stream = self.proc.stderr
        if stream is None:  # pragma: no cover - always piped
            return
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": line.rstrip("\n"), "raw": True}
            if not isinstance(event, dict):
                event = {"event": str(event), "raw": True}
            with self._lock:
                self.events.append(event)

    def logged(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [event for event in self.events if event.get("event") == name]

    async def wait_for(self, name: str, within: float = 30.0) -> dict[str, Any]:
        """The first log line ``name``; fails if the process exits or time runs out."""

        async def seen() -> bool:
            if self.logged(name):
                return True
            if self.proc.poll() is not None:
                tail = [event.get("event") for event in self.events[-15:]]
                raise AssertionError(f"ivr serve exited ({self.proc.returncode}): {tail}")
            return False

        await until(seen, within, f"log line {name!r}")
        return self.logged(name)[0]

    async def ready(self) -> None:
        await self.wait_for("FastAGI listening", within=60)
        await self.wait_for("metrics listening", within=30)

    async def metrics(self) -> dict[str, float]:
        """Every sample of /metrics, keyed ``name`` or ``name{a="x",b="y"}`` (sorted)."""
        text = await asyncio.to_thread(_get, self.metrics_url)
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as an OOM killer or a power cut of the process."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    async def stop(self, within: float = 60.0) -> int:
        """SIGTERM and the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, within)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - test URL
        return str(response.read().decode("utf-8"))


@contextlib.asynccontextmanager
async def running_service(env: dict[str, str]) -> AsyncIterator[Service]:
    """A started ``ivr serve`` (FastAGI and metrics listening); killed on the way out."""
    service = Service(env)
    try:
        await service.ready()
        yield service
    finally:
        await asyncio.to_thread(service.close)


# --- calls --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One scripted call and the outcome the service must decide for it."""

    answers: tuple[str, ...]
    at: str
    outcome: str
    area: str | None = None
    hangup_on: str | None = None
    hangup_after: int = 0

    @property
    def agi_status(self) -> str:
        """What Asterisk sets after the AGI: HANGUP when the caller hung up in it."""
        return "HANGUP" if self.hangup_on else "SUCCESS"

    def caller(self) -> ScriptedCaller:
        return ScriptedCaller(
            answers=list(self.answers), hangup_on=self.hangup_on, hangup_after=self.hangup_after
        )


# A mix of every way a call ends (outcomes checked against `ivr simulate`).
MIX: Final = (
    Plan(("2", "1"), MONDAY_0900, "routed", "atencion-ciudadana"),
    Plan(("1", "2"), MONDAY_0900, "routed", "reemplacamiento"),
    Plan(("3", "1"), MONDAY_0900, "routed", "atencion-medica"),
    Plan(("2", "1"), MONDAY_2100, "closed", "atencion-ciudadana"),
    Plan(("-", "-", "-"), MONDAY_0900, "fallback", "atencion-ciudadana"),
    Plan(("9", "9", "9"), MONDAY_0900, "fallback", "atencion-ciudadana"),
    Plan(("1",), MONDAY_0900, "abandoned_in_menu", hangup_on="EXEC", hangup_after=2),
)


@dataclass
class Placed:
    plan: Plan
    result: CallResult

    @property
    def call_id(self) -> UUID:
        return call_id_for(self.result.uniqueid)


@dataclass
class Load:
    """Counters the test's fault injection waits on."""

    launched: int = 0
    finished: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def reached(self, what: Callable[[Load], bool]) -> None:
        while not what(self):
            self.changed.clear()
            await self.changed.wait()


async def place_calls(
    port: int,
    plans: Sequence[Plan],
    *,
    concurrency: int,
    play_seconds: float = 0.0,
    gate: Callable[[int], Awaitable[None]] | None = None,
    load: Load | None = None,
) -> list[Placed]:
    """Place ``plans`` (at most ``concurrency`` at once), in order, as Asterisk would."""
    fake = FakeAsterisk("127.0.0.1", port, play_seconds=play_seconds, report_failures=True)
    slots = asyncio.Semaphore(concurrency)
    load = load or Load()

    async def one(index: int, plan: Plan) -> Placed:
        if gate is not None:
            await gate(index)
        async with slots:
            load.launched += 1
            load.changed.set()
            try:
                result = await fake.call(plan.caller(), query=f"at={plan.at}")
            finally:
                load.finished += 1
                load.changed.set()
        return Placed(plan, result)

    return list(await asyncio.gather(*(one(i, plan) for i, plan in enumerate(plans))))


# --- the dialplan ----------------------------------------------------------------------------

_GOTOIF: Final = re.compile(r'GotoIf\(\$\["\$\{(\w+)\}" = "([^"]*)"\]\?([\w-]+)(?:,\d+)?\)')
_GOTO: Final = re.compile(r"^Goto\(([\w-]+),\d+\)$")


def _route_lines(conf: Path = EXTENSIONS) -> list[str]:
    """The applications of ``exten => route`` in [linea-aqui-flow], in priority order."""
    lines: list[str] = []
    context = ""
    for raw in conf.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            context = line.strip("[]")
            continue
        if context != "linea-aqui-flow" or not line:
            continue
        if line.startswith("exten => "):
            name, _, rest = line.removeprefix("exten => ").partition(",")
            if name != "route":
                if lines:
                    break
                continue
            lines.append(rest.partition(",")[2])
        elif line.startswith("same => ") and lines:
            priority, _, app = line.removeprefix("same => ").partition(",")
            label = re.search(r"\(\w+\)", priority)  # n(outcome) labels this priority
            lines.append(f"{label[0]}{app}" if label else app)
    return lines


def dialplan_branch(result: CallResult) -> tuple[str, str]:
    """(extension, "route,<priority> <application>") where ``[linea-aqui-flow] route``
    sends ``result``.

    A small interpreter of the committed ``route`` priorities: ``GotoIf`` on AGISTATUS
    and IVR_OUTCOME, the ``(outcome)`` label, and the unconditional ``Goto``s."""
    variables = {"AGISTATUS": result.agi_status, **result.variables}
    lines = _route_lines()
    index = 0
    while index < len(lines):
        app = lines[index]
        label = re.match(r"^\((\w+)\)", app)
        body = app[label.end() :] if label else app
        if (match := _GOTOIF.search(body)) is not None:
            variable, wanted, target = match.groups()
            if variables.get(variable, "") == wanted:
                labels = [re.match(r"^\((\w+)\)", line) for line in lines]
                local = [i for i, m in enumerate(labels) if m is not None and m[1] == target]
                if local:
                    index = local[0]
                    continue
                return target, f"route,{index + 1} {body}"
        elif (goto := _GOTO.match(body)) is not None:
            return goto[1], f"route,{index + 1} {body}"
        index += 1
    raise AssertionError("the route extension ended without sending the call anywhere")


# --- what is stored ---------------------------------------------------------------------------


async def stored_calls(url: str) -> dict[UUID, dict[str, Any]]:
    """Every row of ``calls`` by call id, with its trail summary (events, max seq)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT c.*, coalesce(e.events, 0) AS events, e.max_seq"
            " FROM calls c LEFT JOIN (SELECT call_id, count(*) AS events, max(seq) AS max_seq"
            "   FROM call_events GROUP BY call_id) e USING (call_id)"
        )
    finally:
        await conn.close()
    return {row["call_id"]: dict(row) for row in rows}


async def count_rows(url: str) -> tuple[int, int]:
    """(rows in calls, rows in call_events); (-1, -1) while the database is down."""
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return -1, -1
    try:
        calls = await conn.fetchval("SELECT count(*) FROM calls")
        events = await conn.fetchval("SELECT count(*) FROM call_events")
    finally:
        await conn.close()
    return int(calls), int(events)


def spooled_records(spool: Path) -> list[Record]:
    """The complete records in the spool's segments, as a replay would read them."""
    records: list[Record] = []
    if not spool.is_dir():
        return records
    for path in sorted(spool.glob(f"*{SEGMENT_SUFFIX}")):
        if not path.stem.isdigit():
            continue
        lines = path.read_bytes().splitlines(keepends=True)
        records.extend(from_json(raw) for raw in lines if raw.endswith(b"\n") and raw.strip())
    return records


def segments(spool: Path) -> list[Path]:
    return [p for p in spool.glob(f"*{SEGMENT_SUFFIX}") if p.stem.isdigit()]


def rejected_lines(spool: Path) -> list[str]:
    path = spool / REJECTED
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def final_snapshots(records: Sequence[Record]) -> dict[UUID, CallRecord]:
    """The highest-revision snapshot of each call among ``records``."""
    best: dict[UUID, CallRecord] = {}
    for record in records:
        if isinstance(record, CallRecord) and (
            record.call_id not in best or record.rev > best[record.call_id].rev
        ):
            best[record.call_id] = record
    return best


def events_by_call(records: Sequence[Record]) -> dict[UUID, set[int]]:
    seqs: dict[UUID, set[int]] = {}
    for record in records:
        if isinstance(record, CallEvent):
            seqs.setdefault(record.call_id, set()).add(record.seq)
    return seqs
