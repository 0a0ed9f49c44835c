"""Rules that need the whole menu: unique digits, key clashes and references.

Each problem is reported with the path of the YAML value (or key) that causes
it, so the loader can turn it into ``file:line:col``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from ivr.menu.model import Menu, Ref

PathKey = tuple[str | int, ...]
Problem = tuple[PathKey, str, bool]  # (path, message, points at the key rather than the value)


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


def iter_refs(value: Any, path: PathKey = ()) -> Iterator[tuple[str, PathKey, str]]:
    """Yield ``(kind, path, name)`` for every prompt, queue and area reference in a model."""
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            child = getattr(value, name)
            key = info.alias or name
            kind = _ref_kind(info.rebuild_annotation())
            if kind and isinstance(child, str):
                yield kind, (*path, key), child
            else:
                yield from iter_refs(child, (*path, key))
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from iter_refs(child, (*path, key))
    elif isinstance(value, tuple | list):
        for i, child in enumerate(value):
            yield from iter_refs(child, (*path, i))


_DEFINED_IN = {"prompt": "prompts", "queue": "queues", "area": "vertientes/*/areas"}


def check_menu(menu: Menu) -> list[Problem]:
    problems: list[Problem] = []
    keys = menu.line.keys
    global_keys = {"repeat": keys.repeat, "back": keys.back, "operator": keys.operator}

    seen_keys: dict[str, str] = {}
    for role, key in global_keys.items():
        if key is None:
            continue
        if key in seen_keys:
            problems.append(
                (
                    ("line", "keys", role),
                    f"key {key!r} is used for both {seen_keys[key]!r} and {role!r}",
                    False,
                )
            )
        seen_keys[key] = role

    def digit_clash(path: PathKey, digit: str) -> None:
        if digit in seen_keys:
            role = seen_keys[digit]
            problems.append(
                (path, f"digit {digit} clashes with the global {role!r} key (line.keys.{role})", False)
            )

    vertiente_digits: dict[str, str] = {}
    area_keys: dict[str, str] = {}
    for vkey, vertiente in menu.vertientes.items():
        vpath: PathKey = ("vertientes", vkey)
        digit_clash((*vpath, "digit"), vertiente.digit)
        if vertiente.digit in vertiente_digits:
            other = vertiente_digits[vertiente.digit]
            problems.append(
                (
                    (*vpath, "digit"),
                    f"duplicate digit {vertiente.digit} in the main menu: already used by "
                    f"vertiente {other!r}",
                    False,
                )
            )
        else:
            vertiente_digits[vertiente.digit] = vkey
        if not vertiente.areas:
            problems.append(
                ((*vpath, "areas"), f"vertiente {vkey!r} has no areas: add at least one", False)
            )
        area_digits: dict[str, str] = {}
        for akey, area in vertiente.areas.items():
            apath: PathKey = (*vpath, "areas", akey)
            digit_clash((*apath, "digit"), area.digit)
            if area.digit in area_digits:
                problems.append(
                    (
                        (*apath, "digit"),
                        f"duplicate digit {area.digit} in the submenu of {vkey!r}: already used by "
                        f"area {area_digits[area.digit]!r}",
                        False,
                    )
                )
            else:
                area_digits[area.digit] = akey
            if akey in area_keys:
                problems.append(
                    (
                        apath,
                        f"area key {akey!r} is already used in vertiente {area_keys[akey]!r}; "
                        "area keys must be unique across the line",
                        True,
                    )
                )
            else:
                area_keys[akey] = vkey

    defined = {"prompt": set(menu.prompts), "queue": set(menu.queues), "area": set(area_keys)}
    for kind, path, name in iter_refs(menu):
        if name not in defined[kind]:
            problems.append(
                (path, f"{kind} {name!r} is not defined (define it under '{_DEFINED_IN[kind]}')", False)
            )
    return problems
