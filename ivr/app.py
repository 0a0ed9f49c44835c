"""``ivr serve``: the service's composition and lifecycle.

The service loads and watches the menu, runs the call-records side (the embedded or
configured PostgreSQL, migrations, the write-behind recorder and its spool) and the
FastAGI server that answers calls with :class:`~ivr.engine.CallEngine`. The AMI and
metrics side is not built yet, and the service says so at start.

Shutdown (SIGTERM or SIGINT) follows uvicorn: stop accepting calls, let calls in
progress finish for ``IVR_SHUTDOWN_GRACE`` seconds (a second signal cuts the wait
short), hand the rest back to the dialplan, then flush the call records.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ivr.agi.server import AgiServer
from ivr.engine import CallEngine, EngineSettings
from ivr.logging import configure_logging, get_logger
from ivr.menu.loader import MenuError
from ivr.menu.store import MenuStore
from ivr.records.embedded import DatabaseUnavailableError
from ivr.records.migrate import MigrationError
from ivr.records.service import open_recorder
from ivr.records.spool import SpoolInUseError
from ivr.settings import Settings, SettingsError, load_settings

WATCH_INTERVAL = 2.0
NOT_YET = ("AMI queue events and Prometheus metrics",)


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


def _reload(store: MenuStore, why: str) -> None:
    log = get_logger("ivr.app")
    result = store.reload()
    if not result.ok:
        for error in result.errors:
            log.error("menu reload rejected", trigger=why, error=str(error))
        log.warning("keeping the running menu", menu_version=store.current.loaded.menu.version)
    elif result.changed:
        log.info("menu reloaded", trigger=why, **_summary(store))


async def _watch(store: MenuStore, stop: asyncio.Event) -> None:
    mtime = store.mtime()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=WATCH_INTERVAL)
        except TimeoutError:
            current = store.mtime()
            if current != mtime:
                mtime = current
                _reload(store, "file changed")


def _engine_settings(settings: Settings) -> EngineSettings:
    return EngineSettings(
        prompt_dir=settings.prompt_dir,
        say_format=settings.say_datetime_format,
        reply_timeout=settings.agi_reply_timeout,
        media_timeout=settings.agi_media_timeout,
        allow_time_override=settings.agi_allow_time_override,
    )


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
    signals = _Signals()
    loop.add_signal_handler(signal.SIGTERM, signals)
    loop.add_signal_handler(signal.SIGINT, signals)
    loop.add_signal_handler(signal.SIGHUP, _reload, store, "SIGHUP")

    log.info("service starting", **settings.describe())
    log.info("serving menu", **_summary(store))
    try:
        async with open_recorder(settings) as recorder:
            server = AgiServer(
                CallEngine(store, recorder, _engine_settings(settings)),
                host=settings.agi_host,
                port=settings.agi_port,
                peer_allowed=settings.is_peer_allowed,
                max_calls=settings.agi_max_calls,
                env_timeout=settings.agi_env_timeout,
                reply_timeout=settings.agi_reply_timeout,
            )
            try:
                await server.start()
            except OSError as exc:
                log.error(  # noqa: TRY400 - the message says what to fix
                    "cannot listen for FastAGI",
                    host=settings.agi_host,
                    port=settings.agi_port,
                    error=str(exc),
                )
                return 1
            for missing in NOT_YET:
                log.warning("not built yet", component=missing)
            await _watch(store, signals.stop)
            await server.shutdown(settings.shutdown_grace, signals.force)
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
