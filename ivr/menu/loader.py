"""Load ``menu.yaml`` into a :class:`~ivr.menu.model.Menu`, with ``file:line:col`` errors.

PyYAML's composer gives every node its position. We build plain Python data
from the node tree ourselves, which lets us record where each key and value
sits, reject duplicate keys (PyYAML would silently keep the last one) and
resolve scalars by YAML 1.2 core rules: ``8:00`` stays text instead of
becoming the sexagesimal integer 480, and ``no`` stays text unless a boolean
is expected.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ivr.menu.checks import check_menu
from ivr.menu.model import Menu

MENU_FILENAME = "menu.yaml"

PathKey = tuple[str | int, ...]

_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9][0-9_]*\.[0-9_]*)([eE][-+]?[0-9]+)?$")
_NULL = {"", "~", "null", "Null", "NULL"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


@dataclass(frozen=True, order=True)
class ConfigError:
    """One problem in a configuration file, printed as ``file:line:col: message``."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class MenuError(Exception):
    """The menu file could not be loaded; ``errors`` holds every problem found."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = sorted(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass(frozen=True)
class Position:
    line: int
    col: int


@dataclass
class Positions:
    """Where each value (and each mapping key) of the document sits."""

    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)

    def of_value(self, path: PathKey) -> Position:
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, Position(1, 1))

    def of_key(self, path: PathKey) -> Position:
        return self.keys.get(path) or self.of_value(path)


@dataclass(frozen=True)
class LoadedMenu:
    """A validated menu with where it came from."""

    menu: Menu
    path: Path
    digest: str
    positions: Positions = field(repr=False, compare=False)


def resolve_menu_path(path: Path) -> Path:
    """A directory stands for the ``menu.yaml`` inside it."""
    return path / MENU_FILENAME if path.is_dir() else path


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(node: yaml.ScalarNode) -> Any:
    text: str = node.value
    if node.style in {"'", '"', "|", ">"}:
        return text
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text.replace("_", ""))
    if _FLOAT.match(text):
        return float(text.replace("_", ""))
    return text


class _Builder:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.positions = Positions()
        self.errors: list[ConfigError] = []

    def error(self, pos: Position, message: str) -> None:
        self.errors.append(ConfigError(self.filename, pos.line, pos.col, message))

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.positions.values[path] = _mark(node)
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            first_seen: dict[str, Position] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.error(_mark(key_node), "mapping keys must be plain text")
                    continue
                key = str(key_node.value)
                if key == "<<":
                    self.error(_mark(key_node), "merge keys ('<<') are not supported: repeat the keys")
                    continue
                if key in first_seen:
                    first = first_seen[key]
                    self.error(
                        _mark(key_node),
                        f"duplicate key {key!r} (first defined at line {first.line})",
                    )
                    continue
                first_seen[key] = _mark(key_node)
                self.positions.keys[(*path, key)] = _mark(key_node)
                result[key] = self.build(value_node, (*path, key))
            return result
        raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover - composer only yields the three


def parse_yaml(text: str, filename: str) -> tuple[Any, Positions]:
    """Parse YAML text into plain data plus positions; raise MenuError on syntax errors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        raise MenuError([ConfigError(filename, line, col, f"YAML syntax: {problem}{context}")]) from None
    except yaml.YAMLError as exc:
        raise MenuError([ConfigError(filename, 1, 1, f"YAML syntax: {exc}")]) from None
    if node is None:
        raise MenuError([ConfigError(filename, 1, 1, "the file is empty")])
    builder = _Builder(filename)
    data = builder.build(node, ())
    if builder.errors:
        raise MenuError(builder.errors)
    return data, builder.positions


def _vocabulary(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every key name the menu format knows, for 'did you mean' hints."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for sub in _models_in(info.annotation):
            names |= _vocabulary(sub, seen)
    return names


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _models_in(arg)
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and origin is not annotation:
        yield from _models_in(origin)


_VOCABULARY = _vocabulary(Menu)


def _data_path(data: Any, loc: tuple[str | int, ...]) -> PathKey:
    """Follow a pydantic error location through the data, skipping union/validator tags."""
    path: list[str | int] = []
    current = data
    for item in loc:
        if isinstance(current, dict) and isinstance(item, str) and item in current:
            current = current[item]
            path.append(item)
        elif isinstance(current, list) and isinstance(item, int) and 0 <= item < len(current):
            current = current[item]
            path.append(item)
        elif isinstance(current, dict | list):
            # the key pydantic complains about does not exist (missing) or is a tag
            if isinstance(item, str) and not item.startswith(("function-", "tagged-union")):
                path.append(item)
                break
    return tuple(path)


def _message(err: Any) -> str:
    kind = err["type"]
    loc = err["loc"]
    last = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(str(last), _VOCABULARY, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"unknown key {last!r}{suggestion}"
    if kind == "missing":
        return f"missing required key {last!r}"
    msg: str = err["msg"]
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, str | int | float | bool) and not isinstance(value, dict):
        return f"{msg}, got {value!r}"
    return msg


def errors_from_validation(
    exc: ValidationError, data: Any, positions: Positions, filename: str
) -> list[ConfigError]:
    errors: list[ConfigError] = []
    for err in exc.errors():
        path = _data_path(data, err["loc"])
        if err["type"] == "extra_forbidden":
            pos = positions.of_key(path)
        elif err["type"] == "missing":
            pos = positions.of_value(path[:-1])
        else:
            pos = positions.of_value(path)
        errors.append(ConfigError(filename, pos.line, pos.col, _message(err)))
    return errors


def load_menu_text(text: str, filename: str) -> LoadedMenu:
    data, positions = parse_yaml(text, filename)
    if not isinstance(data, dict):
        raise MenuError([ConfigError(filename, 1, 1, "the menu file must be a mapping of keys")])
    try:
        menu = Menu.model_validate(data)
    except ValidationError as exc:
        raise MenuError(errors_from_validation(exc, data, positions, filename)) from None
    problems = [
        ConfigError(filename, pos.line, pos.col, message)
        for path, message, on_key in check_menu(menu)
        for pos in [positions.of_key(path) if on_key else positions.of_value(path)]
    ]
    if problems:
        raise MenuError(problems)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return LoadedMenu(menu=menu, path=Path(filename), digest=digest, positions=positions)


def load_menu(path: Path) -> LoadedMenu:
    """Load and validate the menu at ``path`` (a file, or a directory holding menu.yaml)."""
    file = resolve_menu_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MenuError([ConfigError(str(file), 1, 1, "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise MenuError([ConfigError(str(file), 1, 1, f"not UTF-8 text: {exc.reason}")]) from None
    except OSError as exc:
        raise MenuError([ConfigError(str(file), 1, 1, f"cannot read: {exc.strerror}")]) from None
    return load_menu_text(text, str(file))
