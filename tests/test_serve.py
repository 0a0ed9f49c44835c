"""``ivr serve`` as a process: starts, says what it serves and what is missing, reloads, stops."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import asyncpg
import pytest

from ivr.testing import CallResult, FakeAsterisk, ScriptedCaller

ROOT = Path(__file__).resolve().parent.parent


def read_event(stream: IO[str], wanted: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        event: dict[str, Any] = json.loads(line)
        if event["event"] == wanted:
            return event
    raise AssertionError(f"no {wanted!r} log line")


@contextmanager
def serve(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``ivr serve`` as a process, logs on its stderr; killed if a test leaves it running.

    The metrics endpoint gets a free port unless the test names one."""
    env = {**env}
    env.setdefault("IVR_METRICS_PORT", str(free_port()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr", "serve"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET, as curl would show them; 4xx/5xx are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - test URL
            return int(response.status), response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_healthy_and_ready(base: str) -> None:
    assert http_get(f"{base}/healthz") == (200, "ok\n")
    status, body = http_get(f"{base}/readyz")
    assert status == 200
    assert json.loads(body) == {
        "ready": True,
        "checks": {"fastagi": True, "menu": True, "records": True},
    }


def test_serve_lifecycle(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    env = {
        **os.environ,
        "IVR_AGI_PORT": str(free_port()),
        "IVR_CONFIG": str(config),
        "IVR_LOG_FORMAT": "json",
        "IVR_DATA_DIR": str(tmp_path / "data"),
        "IVR_DATABASE_URL": database_url,
    }
    with serve(env) as proc:
        assert proc.stderr is not None
        serving = read_event(proc.stderr, "serving menu")
        assert serving["line"] == "******5205"  # the line's number is masked like any number
        assert serving["vertientes"] == 3
        ready = read_event(proc.stderr, "records ready")
        assert ready["spool"] == str(tmp_path / "data" / "spool")
        assert "postgresql://" in ready["database"]
        ami_off = read_event(
            proc.stderr,
            "AMI off: set IVR_AMI_SECRET or IVR_AMI_SECRET_FILE"
            " to record queue outcomes and export queue gauges",
        )
        assert ami_off["level"] == "warning"
        listening = read_event(proc.stderr, "FastAGI listening")
        assert listening["port"] == int(env["IVR_AGI_PORT"])
        started = read_event(proc.stderr, "metrics listening")
        metrics_at = started["url"]
        # The start's objects are frozen out of the collector's full passes.
        assert started["frozen_objects"] > 10_000
        assert_healthy_and_ready(metrics_at.removesuffix("/metrics"))
        scraped = http_get(metrics_at)[1]
        assert 'ivr_menu_info{version="2026-12-04.2"} 1.0' in scraped
        assert 'ivr_menu_reloads_total{result="rejected"} 0.0' in scraped

        menu = config / "menu.yaml"
        good = menu.read_text(encoding="utf-8")
        menu.write_text(good.replace("digit: 3\n", "digit: 33\n", 1), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        rejected = read_event(proc.stderr, "menu reload rejected")
        assert "menu.yaml:" in rejected["error"]
        assert "single key 0-9" in rejected["error"]
        read_event(proc.stderr, "keeping the running menu")
        scraped = http_get(metrics_at)[1]
        assert 'ivr_menu_reloads_total{result="rejected"} 1.0' in scraped
        assert "ivr_menu_file_rejected 1.0" in scraped

        menu.write_text(
            good.replace('version: "2026-12-04.2"', 'version: "2026-12-04.3"'), encoding="utf-8"
        )
        proc.send_signal(signal.SIGHUP)
        reloaded = read_event(proc.stderr, "menu reloaded")
        assert reloaded["menu_version"] == "2026-12-04.3"
        scraped = http_get(metrics_at)[1]
        assert 'ivr_menu_info{version="2026-12-04.3"} 1.0' in scraped
        assert 'version="2026-12-04.2"' not in scraped
        assert 'ivr_menu_reloads_total{result="ok"} 1.0' in scraped
        assert "ivr_menu_file_rejected 0.0" in scraped

        # No signal: the watcher notices the file changed.
        menu.write_text(
            good.replace('version: "2026-12-04.2"', 'version: "2026-12-04.4"'), encoding="utf-8"
        )
        watched = read_event(proc.stderr, "menu reloaded")
        assert (watched["menu_version"], watched["trigger"]) == ("2026-12-04.4", "file changed")

        proc.send_signal(signal.SIGTERM)
        read_event(proc.stderr, "recorder closed")
        read_event(proc.stderr, "service stopped")
        assert proc.wait(timeout=10) == 0


def test_serve_starts_the_embedded_postgresql_by_default(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVR_DATABASE")}
    env.update(
        {
            "IVR_CONFIG": str(ROOT / "config"),
            "IVR_DATA_DIR": str(data),
            "IVR_AGI_PORT": str(free_port()),
        }
    )
    with serve(env) as proc:
        assert proc.stderr is not None
        migrated = read_event(proc.stderr, "database migrated", timeout=60)
        assert migrated["applied"][0] == "0001_calls"
        ready = read_event(proc.stderr, "records ready")
        assert ready["database"] == "embedded"
        assert (data / "pgdata" / "PG_VERSION").is_file()
        assert (data / "caller-hash.key").stat().st_mode & 0o777 == 0o600
        proc.send_signal(signal.SIGTERM)
        read_event(proc.stderr, "service stopped")
        assert proc.wait(timeout=30) == 0
        # The last user of the embedded server stops it.
        assert not (data / "pgdata" / "postmaster.pid").exists()


def test_serve_refuses_invalid_settings_with_one_line() -> None:
    env = {**os.environ, "IVR_AGI_PORT": "not-a-port"}
    proc = subprocess.run(
        [sys.executable, "-m", "ivr", "serve"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "IVR_AGI_PORT" in lines[0]


def test_serve_refuses_an_invalid_menu(tmp_path: Path) -> None:
    menu = tmp_path / "menu.yaml"
    menu.write_text("line: {}\n", encoding="utf-8")
    env = {**os.environ, "IVR_CONFIG": str(menu)}
    proc = subprocess.run(
        [sys.executable, "-m", "ivr", "serve"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert f"{menu}:1:1: missing required key 'queues'" in proc.stderr


def test_sigterm_lets_calls_finish_and_hands_slow_ones_to_the_dialplan(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "IVR_AGI_PORT": str(port),
        "IVR_CONFIG": str(ROOT / "config"),
        "IVR_LOG_FORMAT": "json",
        "IVR_DATA_DIR": str(tmp_path / "data"),
        "IVR_DATABASE_URL": database_url,
        "IVR_SHUTDOWN_GRACE": "1.5",
        "IVR_AGI_ALLOW_TIME_OVERRIDE": "true",
    }
    with serve(env) as proc:
        assert proc.stderr is not None
        read_event(proc.stderr, "FastAGI listening")
        # A newcomer's call with the terminal softphone, scripted.
        dialled = subprocess.run(
            [sys.executable, "-m", "ivr", "dial", "--port", str(port), "--digits", "2 1",
             "--at", "2026-12-07T09:00"],
            env=env, capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        assert dialled.returncode == 0, dialled.stderr
        assert "«Para atención ciudadana, marque 1.»" in dialled.stdout
        assert "IVR_OUTCOME=routed" in dialled.stdout
        assert "Queue(atencion-ciudadana)" in dialled.stdout

        async def calls() -> tuple[CallResult, CallResult]:
            quick = FakeAsterisk("127.0.0.1", port, play_seconds=0.05)
            slow = FakeAsterisk("127.0.0.1", port, play_seconds=2.0)
            query = "at=2026-12-07T09:00"
            first = asyncio.create_task(quick.call(ScriptedCaller(["2", "1"]), query=query))
            second = asyncio.create_task(slow.call(ScriptedCaller(["2", "1"]), query=query))
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            return await first, await second

        quick, slow = asyncio.run(calls())
        assert quick.variables["IVR_OUTCOME"] == "routed"
        assert slow.agi_status == "FAILURE"
        stopped = read_event(proc.stderr, "FastAGI stopped")
        assert (stopped["completed"], stopped["ended_by_shutdown"]) == (2, 1)
        read_event(proc.stderr, "service stopped")
        assert proc.wait(timeout=10) == 0

    async def outcomes() -> dict[str, str]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch("SELECT uniqueid, outcome FROM calls")
        finally:
            await conn.close()
        return {row["uniqueid"]: row["outcome"] for row in rows}

    stored = asyncio.run(outcomes())
    assert stored[quick.uniqueid] == "routed"
    assert stored[slow.uniqueid] == "error"
    assert len(stored) == 3  # with the dialled call


@pytest.mark.parametrize(
    ("variable", "what"), [("IVR_AGI_PORT", "FastAGI"), ("IVR_METRICS_PORT", "metrics")]
)
def test_serve_says_when_a_port_is_taken(
    tmp_path: Path, database_url: str, variable: str, what: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "IVR_AGI_PORT": str(free_port()),
            "IVR_CONFIG": str(ROOT / "config"),
            "IVR_LOG_FORMAT": "json",
            "IVR_DATA_DIR": str(tmp_path / "data"),
            "IVR_DATABASE_URL": database_url,
            variable: str(port),
        }
        with serve(env) as proc:
            assert proc.stderr is not None
            refused = read_event(proc.stderr, f"cannot listen for {what}")
            assert refused["port"] == port
            assert "in use" in refused["error"]
            assert proc.wait(timeout=20) == 1
