"""The HTTP endpoint (/metrics, /healthz, /readyz) and the metrics it serves."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from ivr.agi.server import ServerStats
from ivr.health import HealthServer
from ivr.metrics import Metrics, QueueGauges, step_kind
from ivr.records.recorder import RecorderStats


async def get(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


async def test_readyz_names_the_failing_check_with_503() -> None:
    checks = {"menu": True, "fastagi": True, "records": True}
    server = HealthServer(CollectorRegistry(), lambda: checks, host="127.0.0.1", port=0)
    await server.start()
    try:
        port = server.bound_port
        status, _, body = await get(port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, json.loads(body)["ready"]) == (200, True)
        checks["records"] = False  # the database is down and the spool's disk refuses
        status, headers, body = await get(port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 503
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body) == {
            "ready": False,
            "checks": {"fastagi": True, "menu": True, "records": False},
        }
        # Liveness does not depend on readiness.
        assert (await get(port, b"GET /healthz HTTP/1.1\r\n\r\n"))[0] == 200
    finally:
        await server.close()


async def test_bad_requests_get_clear_statuses() -> None:
    server = HealthServer(CollectorRegistry(), dict, host="127.0.0.1", port=0)
    await server.start()
    try:
        port = server.bound_port
        assert (await get(port, b"POST /metrics HTTP/1.1\r\n\r\n"))[0] == 405
        assert (await get(port, b"GET /nothing HTTP/1.1\r\n\r\n"))[0] == 404
        assert (await get(port, b"nonsense\r\n\r\n"))[0] == 400
        assert (await get(port, b"GET /" + b"x" * 9000 + b" HTTP/1.1\r\n\r\n"))[0] == 431
        status, headers, body = await get(port, b"HEAD /healthz HTTP/1.1\r\n\r\n")
        assert (status, headers["Content-Length"], body) == (200, "3", b"")
    finally:
        await server.close()


@dataclass
class FakeServer:
    active_calls: int = 5
    stats: ServerStats = field(
        default_factory=lambda: ServerStats(refused_peers=3, refused_busy=1, completed=7)
    )


@dataclass
class FakeRecorder:
    queue_depth: int = 12
    stats: RecorderStats = field(
        default_factory=lambda: RecorderStats(written=40, write_errors=2, database_up=True)
    )

    def spool_bytes(self) -> int:
        return 4096


def test_metrics_read_live_state_at_scrape_time() -> None:
    metrics = Metrics(CollectorRegistry())
    server, recorder = FakeServer(), FakeRecorder()
    metrics.watch_server(server)
    metrics.watch_recorder(recorder)
    metrics.watch_queues(lambda: {"cea": QueueGauges(2, 75.0, 4, 1, 2)})
    value = metrics.registry.get_sample_value
    assert value("ivr_calls_active") == 5.0
    server.active_calls = 9
    assert value("ivr_calls_active") == 9.0  # read when scraped, not copied
    assert value("ivr_agi_refused_total", {"reason": "peer"}) == 3.0
    assert value("ivr_agi_sessions_total", {"result": "completed"}) == 7.0
    assert value("ivr_records_queue_depth") == 12.0
    assert value("ivr_records_spool_bytes") == 4096.0
    assert value("ivr_records_write_errors_total") == 2.0
    assert value("ivr_records_database_up") == 1.0
    assert value("ivr_queue_longest_wait_seconds", {"queue": "cea"}) == 75.0
    assert value("ivr_queue_members", {"queue": "cea", "state": "paused"}) == 2.0


def test_menu_version_series_is_replaced_on_reload() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.menu_loaded_now("v1", at=100.0)
    metrics.menu_loaded_now("v2", at=200.0)
    value = metrics.registry.get_sample_value
    assert value("ivr_menu_info", {"version": "v1"}) is None
    assert value("ivr_menu_info", {"version": "v2"}) == 1.0
    assert value("ivr_menu_loaded_timestamp_seconds") == 200.0


def test_labels_stay_bounded() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.prepare([("servicios", "atencion-ciudadana")], ["atencion-ciudadana"])
    metrics.queue_call_ended("someone-elses-queue", "answered", 3.0)
    metrics.queue_call_ended("atencion-ciudadana", "strange", None)
    metrics.step_took("submenu:programas", 4.0)
    metrics.call_ended(None, None, "abandoned_in_menu")
    value = metrics.registry.get_sample_value
    assert value("ivr_queue_calls_total", {"queue": "other", "result": "answered"}) == 1.0
    assert (
        value("ivr_queue_calls_total", {"queue": "atencion-ciudadana", "result": "unknown"}) == 1.0
    )
    assert value("ivr_menu_step_seconds_count", {"step": "submenu"}) == 1.0
    assert (
        value(
            "ivr_calls_total", {"vertiente": "none", "area": "none", "outcome": "abandoned_in_menu"}
        )
        == 1.0
    )
    assert step_kind("route:cea") == "route"
