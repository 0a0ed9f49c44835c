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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ivr.menu.checks import check_data, model_at, model_keys
from ivr.menu.model import PHONE_NUMBER, PROMPT_NAME, SLUG, ListItemError, Menu

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
                    self.error(
                        _mark(key_node), "merge keys ('<<') are not supported: repeat the keys"
                    )
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
        # the composer only yields the three node kinds above
        raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover


# Constructs that, left open, make the parser complain far below where they start.
_OPENED_BY = {
    "while parsing a flow sequence": ("the list opened here with '['", "']'"),
    "while parsing a flow mapping": ("the mapping opened here with '{'", "'}'"),
    "while scanning a quoted scalar": ("the quoted text opened here", "quote"),
}
_SYNTAX_HINTS = {
    "expected <block end>": "check the indentation of this line",
    "mapping values are not allowed here": (
        "quote a value that contains ': ', or check the indentation"
    ),
    "that cannot start any token": (
        "indent with spaces, not tabs, and quote values starting with @ or `"
    ),
}


def _syntax_error(exc: yaml.MarkedYAMLError, filename: str) -> ConfigError:
    problem = exc.problem or "invalid YAML"
    where, context = exc.problem_mark, exc.context_mark
    opened = _OPENED_BY.get(exc.context or "")
    if opened and where and context and context.line != where.line:
        # Point at the opening bracket or quote, and say where the parser gave up.
        what, closer = opened
        return ConfigError(
            filename,
            context.line + 1,
            context.column + 1,
            f"YAML syntax: in {what}: {problem} at line {where.line + 1}, "
            f"column {where.column + 1} (is the closing {closer} missing?)",
        )
    mark = where or context
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    hint = next((h for needle, h in _SYNTAX_HINTS.items() if needle in problem), None)
    detail = f" ({exc.context})" if exc.context and not hint else ""
    return ConfigError(
        filename, line, col, f"YAML syntax: {problem}{detail}" + (f"; {hint}" if hint else "")
    )


def _compose(text: str, fast: bool = True) -> yaml.Node | None:
    """Compose the node tree; libyaml when present (7x faster), pure Python for errors.

    Both give the same nodes and marks (a test checks it on the shipped menu);
    problems are re-read with the pure parser so their wording is always the same.
    """
    c_loader = getattr(yaml, "CSafeLoader", None) if fast else None
    if c_loader is not None:
        try:
            node: yaml.Node | None = yaml.compose(text, Loader=c_loader)
        except yaml.YAMLError:
            pass
        else:
            return node
    return yaml.compose(text, Loader=yaml.SafeLoader)


def parse_yaml(text: str, filename: str) -> tuple[Any, Positions]:
    """Parse YAML text into plain data plus positions; raise MenuError on YAML-level problems.

    Those (syntax, duplicate keys) are reported before any menu rule: validating
    what is left after dropping a duplicate would only add misleading errors.
    """
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        raise MenuError([_syntax_error(exc, filename)]) from None
    except yaml.YAMLError as exc:
        raise MenuError([ConfigError(filename, 1, 1, f"YAML syntax: {exc}")]) from None
    if node is None:
        raise MenuError([ConfigError(filename, 1, 1, "the file is empty")])
    builder = _Builder(filename)
    data = builder.build(node, ())
    if builder.errors:
        raise MenuError(builder.errors)
    return data, builder.positions


def _data_path(data: Any, loc: tuple[str | int, ...]) -> PathKey:
    """Follow a pydantic error location through the data, skipping union/validator tags."""
    path: list[str | int] = []
    current = data
    for item in loc:
        in_dict = isinstance(current, dict) and isinstance(item, str) and item in current
        in_list = isinstance(current, list) and isinstance(item, int) and 0 <= item < len(current)
        if in_dict or in_list:
            current = current[item]
            path.append(item)
        elif (
            isinstance(current, dict | list)
            and isinstance(item, str)
            and not item.startswith(("function-", "tagged-union"))
        ):
            # the key pydantic complains about does not exist (missing), or is '[key]'
            path.append(item)
            break
    return tuple(path)


def _dotted(path: PathKey) -> str:
    """``('calendar', 'closures', 0)`` as ``calendar.closures[0]``."""
    text = ""
    for item in path:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else item)
    return text


def _allowed_keys(parent: PathKey) -> list[str]:
    model = model_at(parent)
    return list(model_keys(model)) if model else []


def _unknown_key_hint(key: str, parent: PathKey) -> str | None:
    """The key probably meant, among those allowed in the same mapping."""
    close = difflib.get_close_matches(key, _allowed_keys(parent), n=1)
    return close[0] if close else None


# What a pattern means, for people who do not read regular expressions.
_PATTERN_HELP = {
    SLUG: ("name", "use lowercase letters, digits, '-' and '_', e.g. 'obra-publica'"),
    PROMPT_NAME: (
        "prompt name",
        "use lowercase letters, digits, '-' and '_' ('/' between folders), e.g. 'opcion-cea'",
    ),
    PHONE_NUMBER: ("phone number", "write 3 to 15 digits, optionally after '+', e.g. '4421015205'"),
}


def _got(value: Any) -> str:
    if value is None:
        return ", got an empty value"
    if isinstance(value, dict):
        return ", got a mapping"
    if isinstance(value, list):
        return ", got a list"
    return f", got {value!r}"


def _message(err: Any, path: PathKey) -> str:
    kind = err["type"]
    loc = err["loc"]
    last = loc[-1] if loc else ""
    value = err.get("input")
    if kind == "extra_forbidden":
        hint = _unknown_key_hint(str(last), path[:-1])
        if hint:
            return f"unknown key {last!r}; did you mean {hint!r}?"
        allowed = _allowed_keys(path[:-1])
        expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {last!r}{expected}"
    if kind == "missing":
        parent = _dotted(path[:-1])
        return f"missing required key {last!r}" + (
            f" in {parent}" if parent else " at the top level"
        )
    if kind == "string_pattern_mismatch" and err["ctx"]["pattern"] in _PATTERN_HELP:
        noun, help_text = _PATTERN_HELP[err["ctx"]["pattern"]]
        return f"invalid {noun} {value!r}: {help_text}"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"expected a mapping of keys{_got(value)}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"expected true or false{_got(value)}"
    msg: str = err["msg"]
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    if isinstance(value, dict | list) and kind.endswith("_type"):
        return f"{msg}{_got(value)}"
    if isinstance(value, str | int | float | bool | None):
        return f"{msg}{_got(value)}"
    return msg


def _validation_errors(
    exc: ValidationError, data: Any, positions: Positions, filename: str
) -> list[tuple[PathKey, ConfigError]]:
    """Each pydantic error as (data path, positioned error), with redundant ones dropped."""
    found: list[tuple[str, PathKey, Any]] = [
        (err["type"], _data_path(data, err["loc"]), err) for err in exc.errors()
    ]
    # A typo such as 'qeue' for 'queue' also makes 'queue' missing: the hint says it all.
    meant = {
        (path[:-1], hint)
        for kind, path, _ in found
        if kind == "extra_forbidden" and path
        for hint in [_unknown_key_hint(str(path[-1]), path[:-1])]
        if hint
    }
    errors: list[tuple[PathKey, ConfigError]] = []
    for kind, path, err in found:
        if kind == "missing" and (path[:-1], path[-1] if path else None) in meant:
            continue
        if kind == "extra_forbidden":
            pos = positions.of_key(path)
        elif kind == "missing":
            pos = positions.of_key(path[:-1])  # the key that owns the incomplete mapping
        elif err["loc"] and err["loc"][-1] == "[key]":
            pos = positions.of_key(path[:-1])  # a mapping key that is not a valid name
        else:
            pos = positions.of_value(_item_path(err, path, positions))
        errors.append((path, ConfigError(filename, pos.line, pos.col, _message(err, path))))
    return errors


def _item_path(err: Any, path: PathKey, positions: Positions) -> PathKey:
    """The path of the bad item when a validator names one (weekday lists), else ``path``."""
    item = err.get("ctx", {}).get("error")
    if isinstance(item, ListItemError) and (*path, item.index) in positions.values:
        return (*path, item.index)
    return path


def load_menu_text(text: str, filename: str) -> LoadedMenu:
    """Validate menu text; raise MenuError listing every problem, in line order."""
    data, positions = parse_yaml(text, filename)
    if not isinstance(data, dict):
        raise MenuError([ConfigError(filename, 1, 1, "the menu file must be a mapping of keys")])
    errors: list[ConfigError] = []
    menu: Menu | None = None
    invalid: set[PathKey] = set()
    try:
        menu = Menu.model_validate(data)
    except ValidationError as exc:
        for path, error in _validation_errors(exc, data, positions, filename):
            invalid.add(path)
            errors.append(error)
    # Whole-document rules run even when the structure is wrong, so that one
    # `ivr check` lists everything; a value already reported is not reported twice.
    for path, message, on_key in check_data(data):
        if path in invalid:
            continue
        pos = positions.of_key(path) if on_key else positions.of_value(path)
        errors.append(ConfigError(filename, pos.line, pos.col, message))
    if errors or menu is None:
        raise MenuError(errors)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return LoadedMenu(menu=menu, path=Path(filename), digest=digest, positions=positions)


def load_menu(path: Path) -> LoadedMenu:
    """Load and validate the menu at ``path`` (a file, or a directory holding menu.yaml)."""
    file = resolve_menu_path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise MenuError([ConfigError(str(file), 1, 1, "file not found")]) from None
    except OSError as exc:
        raise MenuError([ConfigError(str(file), 1, 1, f"cannot read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Point at the first bad byte: often an editor saved the file as Latin-1.
        line = raw.count(b"\n", 0, exc.start) + 1
        col = len(raw[raw.rfind(b"\n", 0, exc.start) + 1 : exc.start].decode("utf-8")) + 1
        message = f"not UTF-8 text ({exc.reason}): save the file as UTF-8"
        raise MenuError([ConfigError(str(file), line, col, message)]) from None
    return load_menu_text(text, str(file))
