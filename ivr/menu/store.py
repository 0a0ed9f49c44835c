"""The live menu: loaded once, swapped atomically on reload, never replaced by a bad file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivr.menu.hours import Schedule
from ivr.menu.loader import ConfigError, LoadedMenu, MenuError, load_menu, resolve_menu_path


@dataclass(frozen=True)
class Live:
    """A loaded menu with its hours engine: what one call uses from start to end."""

    loaded: LoadedMenu
    schedule: Schedule


@dataclass(frozen=True)
class ReloadResult:
    changed: bool
    errors: tuple[ConfigError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


class MenuStore:
    """Holds the current menu. Calls take ``store.current`` once and keep it to the end."""

    def __init__(self, path: Path) -> None:
        self.path = resolve_menu_path(path)
        self._current = self._load()

    def _load(self) -> Live:
        loaded = load_menu(self.path)
        return Live(loaded=loaded, schedule=Schedule(loaded.menu))

    @property
    def current(self) -> Live:
        return self._current

    def mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def reload(self) -> ReloadResult:
        """Load the file again; keep the running menu when the new one has errors."""
        try:
            fresh = self._load()
        except MenuError as exc:
            return ReloadResult(changed=False, errors=tuple(exc.errors))
        if fresh.loaded.digest == self._current.loaded.digest:
            return ReloadResult(changed=False)
        self._current = fresh
        return ReloadResult(changed=True)
