"""Rules that need the whole menu: unique digits, key clashes and references.

They run on the plain data parsed from the YAML file rather than on the
validated model, so they are reported together with structural errors: a typo
elsewhere in the file does not hide a duplicate digit. A value that is itself
invalid (a digit ``12``, a queue name with spaces) is skipped here; its
structural error already says what is wrong with it.

Each problem is reported with the path of the YAML value (or key) that causes
it, so the loader can turn it into ``file:line:col``.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from ivr.menu.model import GlobalKeys, Menu, Ref, parse_digit, parse_key

PathKey = tuple[str | int, ...]
Problem = tuple[PathKey, str, bool]  # (path, message, points at the key rather than the value)


# --- walking plain data along the model's types --------------------------------


def _ref_kind(annotation: Any) -> str | None:
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, Ref):
                return meta.kind
        return _ref_kind(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in {typing.Union, types.UnionType}:
        for arg in typing.get_args(annotation):
            kind = _ref_kind(arg)
            if kind:
                return kind
    return None


def _arms(annotation: Any) -> list[Any]:
    """The types an annotation accepts: ``Annotated`` and unions unwrapped, None dropped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _arms(typing.get_args(annotation)[0])
    if origin in {typing.Union, types.UnionType}:
        return [arm for arg in typing.get_args(annotation) for arm in _arms(arg)]
    if annotation is type(None):
        return []
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def model_keys(model: type[BaseModel]) -> dict[str, Any]:
    """The YAML keys a model accepts, each with its full annotation (metadata included)."""
    return {
        info.alias or name: info.rebuild_annotation() for name, info in model.model_fields.items()
    }


def _step(annotation: Any, item: str | int) -> Any | None:
    for arm in _arms(annotation):
        if _is_model(arm):
            keys = model_keys(arm)
            if isinstance(item, str) and item in keys:
                return keys[item]
        elif typing.get_origin(arm) is dict and isinstance(item, str):
            return typing.get_args(arm)[1]
        elif typing.get_origin(arm) in {tuple, list} and isinstance(item, int):
            return typing.get_args(arm)[0]
    return None


def model_at(path: PathKey, root: type[BaseModel] = Menu) -> type[BaseModel] | None:
    """The model describing the mapping at ``path`` of a menu document, if there is one."""
    annotation: Any = root
    for item in path:
        annotation = _step(annotation, item)
        if annotation is None:
            return None
    return next((arm for arm in _arms(annotation) if _is_model(arm)), None)


def iter_refs(
    value: Any, annotation: Any = Menu, path: PathKey = ()
) -> Iterator[tuple[str, PathKey, str]]:
    """Yield ``(kind, path, name)`` for every prompt, queue and area reference in menu data.

    ``value`` is plain data as parsed from YAML (or dumped from a model).
    """
    kind = _ref_kind(annotation)
    if kind:
        if isinstance(value, str | int) and not isinstance(value, bool):
            yield kind, path, str(value)
        return
    for arm in _arms(annotation):
        origin = typing.get_origin(arm)
        if _is_model(arm) and isinstance(value, dict):
            for key, child_annotation in model_keys(arm).items():
                if key in value:
                    yield from iter_refs(value[key], child_annotation, (*path, key))
            return
        if origin is dict and isinstance(value, dict):
            for key, child in value.items():
                yield from iter_refs(child, typing.get_args(arm)[1], (*path, key))
            return
        if origin in {tuple, list} and isinstance(value, list | tuple):
            for i, child in enumerate(value):
                yield from iter_refs(child, typing.get_args(arm)[0], (*path, i))
            return


# --- the rules -------------------------------------------------------------------

_DEFINED_IN = {"prompt": "prompts", "queue": "queues", "area": "vertientes/*/areas"}


def _valid(parse: Callable[[Any], str], value: Any) -> str | None:
    try:
        return parse(value)
    except ValueError:
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _global_keys(root: dict[str, Any], problems: list[Problem]) -> dict[str, str]:
    """The keys with a global role (repeat, back, operator), by key."""
    roles: dict[str, str] = {}
    line = _mapping(root.get("line"))
    keys = line.get("keys", {})
    if not isinstance(keys, dict):  # the structural error says so
        return roles
    for role, info in GlobalKeys.model_fields.items():
        if role == "operator" and not line.get("operator"):
            continue  # the operator key does nothing until line.operator names an area
        key = _valid(parse_key, keys.get(role, info.default))
        if key is None:
            continue
        if key in roles:
            message = f"key {key!r} is used for both {roles[key]!r} and {role!r}"
            problems.append((("line", "keys", role), message, False))
        else:
            roles[key] = role
    return roles


class _Digits:
    """Digits of one menu: each must be unique and free of the global keys."""

    def __init__(self, global_keys: dict[str, str], problems: list[Problem], where: str) -> None:
        self.global_keys = global_keys
        self.problems = problems
        self.where = where
        self.owners: dict[str, str] = {}

    def add(self, path: PathKey, raw: Any, owner: str) -> None:
        digit = _valid(parse_digit, raw)
        if digit is None:  # not a digit: the structural error says so
            return
        if digit in self.global_keys:
            role = self.global_keys[digit]
            message = f"digit {digit} clashes with the global {role!r} key (line.keys.{role})"
            self.problems.append((path, message, False))
        if digit in self.owners:
            message = (
                f"duplicate digit {digit} in {self.where}: already used by {self.owners[digit]}"
            )
            self.problems.append((path, message, False))
        else:
            self.owners[digit] = owner


def _areas(
    root: dict[str, Any], global_keys: dict[str, str], problems: list[Problem]
) -> dict[str, str] | None:
    """Check the digits of every menu; return the vertiente of each area (None if unknown)."""
    vertientes = root.get("vertientes")
    all_known = isinstance(vertientes, dict)
    main_menu = _Digits(global_keys, problems, "the main menu")
    area_vertiente: dict[str, str] = {}
    for vkey, vertiente in _mapping(vertientes).items():
        if not isinstance(vertiente, dict):
            all_known = False
            continue
        vpath: PathKey = ("vertientes", vkey)
        main_menu.add((*vpath, "digit"), vertiente.get("digit"), f"vertiente {vkey!r}")
        areas = vertiente.get("areas")
        if not isinstance(areas, dict):
            all_known = False
            continue
        if not areas:
            message = f"vertiente {vkey!r} has no areas: add at least one"
            problems.append(((*vpath, "areas"), message, False))
        submenu = _Digits(global_keys, problems, f"the submenu of {vkey!r}")
        for akey, area in areas.items():
            apath: PathKey = (*vpath, "areas", akey)
            if akey in area_vertiente:
                message = (
                    f"area key {akey!r} is already used in vertiente {area_vertiente[akey]!r}; "
                    "area keys must be unique across the line"
                )
                problems.append((apath, message, True))
            else:
                area_vertiente[akey] = vkey
            submenu.add((*apath, "digit"), _mapping(area).get("digit"), f"area {akey!r}")
    return area_vertiente if all_known else None


def check_data(data: Any) -> list[Problem]:
    """Check the whole-document rules on plain menu data; invalid parts are skipped."""
    root = _mapping(data)
    problems: list[Problem] = []
    global_keys = _global_keys(root, problems)
    areas = _areas(root, global_keys, problems)
    prompts, queues = root.get("prompts"), root.get("queues")
    defined: dict[str, set[str] | None] = {
        "prompt": set(prompts) if isinstance(prompts, dict) else None,
        "queue": set(queues) if isinstance(queues, dict) else None,
        "area": set(areas) if areas is not None else None,
    }
    for kind, path, name in iter_refs(root):
        names = defined[kind]
        if names is not None and name not in names:
            message = f"{kind} {name!r} is not defined (define it under '{_DEFINED_IN[kind]}')"
            close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.75)
            if close:
                message += f"; did you mean {close[0]!r}?"
            problems.append((path, message, False))
    return problems


def check_menu(menu: Menu) -> list[Problem]:
    """Check the whole-document rules on a validated menu."""
    return check_data(menu.model_dump(by_alias=True))
