"""``ivr serve``: the service's composition and lifecycle.

The service loads and watches the menu, runs the call-records side (the embedded or
configured PostgreSQL, migrations, the write-behind recorder and its spool) and the
FastAGI server that answers calls with :class:`~ivr.engine.CallEngine`, the AMI queue
monitor (queue outcomes on the call records, live queue gauges) when an AMI secret is
set, and the HTTP endpoint with ``/metrics``, ``/healthz`` and ``/readyz``.

Shutdown (SIGTERM or SIGINT) follows uvicorn: stop accepting calls, let calls in
progress finish for ``IVR_SHUTDOWN_GRACE`` seconds (a second signal cuts the wait
short), hand the rest back to the dialplan, then flush the call records.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ivr.agi.server import AgiServer
from ivr.ami.client import AmiConfig
from ivr.ami.monitor import QueueMonitor
from ivr.engine import CallEngine, EngineSettings
from ivr.health import HealthServer
from ivr.logging import configure_logging, get_logger
from ivr.menu.loader import MenuError
from ivr.menu.store import MenuStore
from ivr.metrics import Metrics
from ivr.records.calllog import Sink
from ivr.records.embedded import DatabaseUnavailableError
from ivr.records.migrate import MigrationError
from ivr.records.service import open_recorder
from ivr.records.spool import SpoolInUseError
from ivr.settings import Settings, SettingsError, load_settings

WATCH_INTERVAL = 2.0


def _summary(store: MenuStore) -> dict[str, object]:
    live = store.current
    menu = live.loaded.menu
    now = datetime.now(live.schedule.tz)
    open_now = sorted(
        key for key, option in live.schedule.options.items() if live.schedule.is_open(option, now)
    )
    return {
        "menu": str(live.loaded.path),
        "menu_version": menu.version,
        "line": menu.line.number,
        "name": menu.line.name,
        "vertientes": len(menu.vertientes),
        "areas": len(live.schedule.options),
        "open_now": open_now,
    }


def _queue_names(store: MenuStore) -> list[str]:
    return list(store.current.loaded.menu.queues)


def _serving(store: MenuStore, metrics: Metrics) -> None:
    """The metrics' view of the menu now served: its version, areas and queues."""
    menu = store.current.loaded.menu
    metrics.prepare(
        [(v_key, a_key) for v_key, v in menu.vertientes.items() for a_key in v.areas],
        menu.queues,
    )
    metrics.menu_loaded_now(menu.version)


def _reload(store: MenuStore, metrics: Metrics, why: str) -> None:
    log = get_logger("ivr.app")
    result = store.reload()
    if not result.ok:
        metrics.menu_reloaded(ok=False)
        for error in result.errors:
            log.error("menu reload rejected", trigger=why, error=str(error))
        log.warning("keeping the running menu", menu_version=store.current.loaded.menu.version)
    else:
        metrics.menu_reloaded(ok=True, changed=result.changed)
    if result.ok and result.changed:
        _serving(store, metrics)
        log.info("menu reloaded", trigger=why, **_summary(store))


async def _watch(store: MenuStore, metrics: Metrics, stop: asyncio.Event) -> None:
    mtime = store.mtime()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=WATCH_INTERVAL)
        except TimeoutError:
            current = store.mtime()
            if current != mtime:
                mtime = current
                _reload(store, metrics, "file changed")


def _monitor(
    settings: Settings, store: MenuStore, sink: Sink, metrics: Metrics
) -> QueueMonitor | None:
    secret = settings.ami_password()
    if secret is None:
        get_logger("ivr.app").warning(
            "AMI off: set IVR_AMI_SECRET or IVR_AMI_SECRET_FILE to record queue outcomes"
            " and export queue gauges"
        )
        return None
    config = AmiConfig(
        host=settings.ami_host, port=settings.ami_port, username=settings.ami_user, secret=secret
    )
    return QueueMonitor(config, sink=sink, metrics=metrics, queues=lambda: _queue_names(store))


def _engine_settings(settings: Settings) -> EngineSettings:
    return EngineSettings(
        prompt_dir=settings.prompt_dir,
        say_format=settings.say_datetime_format,
        reply_timeout=settings.agi_reply_timeout,
        media_timeout=settings.agi_media_timeout,
        allow_time_override=settings.agi_allow_time_override,
    )


async def _listen(what: str, start: Callable[[], Awaitable[None]], host: str, port: int) -> bool:
    """Bind a listener; False (and a log line saying what to fix) when the port is taken."""
    try:
        await start()
    except OSError as exc:
        get_logger("ivr.app").error(
            f"cannot listen for {what}", host=host, port=port, error=str(exc)
        )
        return False
    return True


class _Signals:
    """SIGTERM/SIGINT: the first asks to stop, the second to stop waiting for calls."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.force = asyncio.Event()

    def __call__(self) -> None:
        if self.stop.is_set():
            self.force.set()
        self.stop.set()


async def _main(settings: Settings, store: MenuStore) -> int:
    log = get_logger("ivr.app")
    loop = asyncio.get_running_loop()
    metrics = Metrics()
    signals = _Signals()
    loop.add_signal_handler(signal.SIGTERM, signals)
    loop.add_signal_handler(signal.SIGINT, signals)
    loop.add_signal_handler(signal.SIGHUP, _reload, store, metrics, "SIGHUP")

    log.info("service starting", **settings.describe())
    log.info("serving menu", **_summary(store))
    _serving(store, metrics)
    try:
        async with open_recorder(settings) as recorder:
            metrics.watch_recorder(recorder)
            monitor = _monitor(settings, store, recorder, metrics)
            server = AgiServer(
                CallEngine(
                    store,
                    recorder,
                    _engine_settings(settings),
                    metrics=metrics,
                    on_routed=monitor.routed if monitor is not None else None,
                ),
                host=settings.agi_host,
                port=settings.agi_port,
                peer_allowed=settings.is_peer_allowed,
                max_calls=settings.agi_max_calls,
                env_timeout=settings.agi_env_timeout,
                reply_timeout=settings.agi_reply_timeout,
                on_turnaround=metrics.command_turnaround,
            )
            metrics.watch_server(server)
            health = HealthServer(
                metrics.registry,
                lambda: {
                    "menu": store.current is not None,
                    "fastagi": server.listening,
                    "records": recorder.ready,
                },
                host=settings.metrics_host,
                port=settings.metrics_port,
            )
            if not await _listen(
                "metrics", health.start, settings.metrics_host, settings.metrics_port
            ):
                return 1
            if not await _listen("FastAGI", server.start, settings.agi_host, settings.agi_port):
                await health.close()
                return 1
            # Everything loaded at start (modules, the menu, settings: some 60,000
            # objects) lives as long as the service. Out of the collector's sight, a full
            # collection scans only the calls' objects instead of stalling every call in
            # progress for 10-20 ms.
            gc.collect()
            gc.freeze()
            log.info(
                "metrics listening",
                url=f"http://{settings.metrics_host}:{health.bound_port}/metrics",
                frozen_objects=gc.get_freeze_count(),
            )
            ami_task = None
            if monitor is not None:
                metrics.watch_queues(monitor.gauges)
                ami_task = asyncio.create_task(monitor.run(signals.stop), name="ivr-ami")
            await _watch(store, metrics, signals.stop)
            await server.shutdown(settings.shutdown_grace, signals.force)
            if ami_task is not None:
                await asyncio.gather(ami_task, return_exceptions=True)
            await health.close()
    except (DatabaseUnavailableError, MigrationError, SpoolInUseError) as exc:
        # The message says what to fix; a traceback would only hide it.
        log.error("cannot start the call records", error=str(exc))  # noqa: TRY400
        return 1
    log.info("service stopped")
    return 0


def run_service(config: Path | None, err: TextIO) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"ivr serve: {exc}", file=err)
        return 2
    if config is not None:
        settings = settings.model_copy(update={"config": config})
    configure_logging(settings.log_format, settings.log_level)
    try:
        store = MenuStore(settings.config)
    except MenuError as exc:
        for error in exc.errors:
            print(error, file=err)
        print("ivr serve: the menu is invalid; fix it (ivr check) and start again", file=err)
        return 1
    return asyncio.run(_main(settings, store))
