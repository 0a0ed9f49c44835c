"""``ivr serve``: the service's composition and lifecycle.

Today the service loads and watches the menu and runs the call-records side (the
embedded or configured PostgreSQL, migrations, the write-behind recorder and its
spool). The FastAGI call engine and the AMI/metrics side are not built yet, and the
service says so at start instead of pretending to answer calls.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ivr.logging import configure_logging, get_logger
from ivr.menu.loader import MenuError
from ivr.menu.store import MenuStore
from ivr.records.embedded import DatabaseUnavailableError
from ivr.records.migrate import MigrationError
from ivr.records.service import open_recorder
from ivr.records.spool import SpoolInUseError
from ivr.settings import Settings, SettingsError, load_settings

WATCH_INTERVAL = 2.0
NOT_YET = (
    "FastAGI call engine (no port is opened, no call can be answered yet)",
    "AMI queue events and Prometheus metrics",
)


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


async def _main(settings: Settings, store: MenuStore) -> int:
    log = get_logger("ivr.app")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload, store, "SIGHUP")

    log.info("service starting", **settings.describe())
    log.info("serving menu", **_summary(store))
    try:
        async with open_recorder(settings):
            for missing in NOT_YET:
                log.warning("not built yet", component=missing)
            await _watch(store, stop)
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
