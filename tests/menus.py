"""Build small menus from inline YAML for tests.

Every menu goes through the real loader (:func:`ivr.menu.loader.load_menu_text`),
so the YAML a test writes is validated exactly as ``config/menu.yaml`` is. The
helpers only fill in the boilerplate every menu needs (the ``line`` section, its
prompts, the queues and prompts the test's own YAML names), so a test shows
just the hours, calendar and windows it is about.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from ivr.menu.loader import load_menu_text
from ivr.menu.model import Menu

MEXICO = "America/Mexico_City"

# The area built by area_menu(), and its vertiente.
AREA = "tramite"
VERTIENTE = "servicios"

# Prompts the line section itself needs.
LINE_PROMPTS: tuple[str, ...] = (
    "saludo",
    "aviso",
    "invalida",
    "silencio",
    "menu",
    "cerrada",
    "inhabil",
    "proxima",
    "sin-proxima",
    "volver",
    "transferencia",
    "despedida",
)

_LINE = """\
line:
  number: "4420000000"
  name: Línea de prueba
  timezone: {timezone}
  greeting: saludo
  privacy_notice: {{prompt: aviso, version: "1"}}
  input: {{invalid_prompt: invalida, no_input_prompt: silencio}}
  prompts:
    main_menu: menu
    closed: cerrada
    holiday: inhabil
    next_opening: proxima
    no_next_opening: sin-proxima
    back_to_menu: volver
    transfer: transferencia
    goodbye: despedida
  fallback: {{prompt: transferencia}}
"""

_PROMPT_KEYS = frozenset({"prompt", "menu_prompt", "hours_prompt", "announcement"})
_QUEUE_KEYS = frozenset({"queue"})


def _block(text: str, indent: int) -> str:
    """Dedent a YAML fragment and indent it to sit ``indent`` spaces deep."""
    body = textwrap.dedent(text).strip("\n")
    return textwrap.indent(body, " " * indent) + "\n" if body else ""


def _names(data: Any, keys: frozenset[str]) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in keys and isinstance(value, str):
                yield value
            else:
                yield from _names(value, keys)
    elif isinstance(data, list):
        for item in data:
            yield from _names(item, keys)


def _mapping(names: Iterable[str], value: str) -> str:
    unique = sorted(set(names))
    if not unique:
        return " {}\n"
    return "\n" + "".join(f"  {name}: {value}\n" for name in unique)


def menu_yaml(
    vertientes_yaml: str,
    calendar_yaml: str = "",
    *,
    timezone: str = MEXICO,
    extra_prompts: Iterable[str] = (),
    extra_queues: Iterable[str] = (),
) -> str:
    """The full menu document around ``vertientes_yaml`` (the body of ``vertientes:``).

    Every prompt (``prompt``, ``menu_prompt``, ``announcement``) and queue
    (``queue``) named in the vertientes is defined, so that the menu loads.
    ``calendar_yaml`` is the body of ``calendar:`` (omitted when empty).
    """
    body = _block(vertientes_yaml, 2)
    parsed = yaml.safe_load("vertientes:\n" + body) or {}
    prompts = [*LINE_PROMPTS, *_names(parsed, _PROMPT_KEYS), *extra_prompts]
    queues = [*_names(parsed, _QUEUE_KEYS), *extra_queues]
    calendar = _block(calendar_yaml, 2)
    return (
        'version: "test"\n'
        + _LINE.format(timezone=timezone)
        + (f"calendar:\n{calendar}" if calendar else "")
        + "queues:"
        + _mapping(queues, "{}")
        + "prompts:"
        + _mapping(prompts, "Texto de prueba.")
        + "vertientes:\n"
        + body
    )


def menu_from_yaml(
    vertientes_yaml: str,
    calendar_yaml: str = "",
    *,
    timezone: str = MEXICO,
    extra_prompts: Iterable[str] = (),
    extra_queues: Iterable[str] = (),
) -> Menu:
    """Load the menu :func:`menu_yaml` builds; raises MenuError when it is invalid."""
    text = menu_yaml(
        vertientes_yaml,
        calendar_yaml,
        timezone=timezone,
        extra_prompts=extra_prompts,
        extra_queues=extra_queues,
    )
    return load_menu_text(text, "test-menu.yaml").menu


def area_menu(
    area: str = "",
    *,
    vertiente: str = "",
    calendar: str = "",
    timezone: str = MEXICO,
) -> Menu:
    """A line with one vertiente (:data:`VERTIENTE`) holding one area (:data:`AREA`).

    ``area`` and ``vertiente`` are extra YAML keys for the area and its
    vertiente (``hours``, ``period``, ``requires_contingency``,
    ``contingencies``...), written as if at the top level; ``calendar`` is the
    body of the ``calendar:`` section.
    """
    head = _block(
        f"""
        {VERTIENTE}:
          digit: 1
          name: Servicios
          prompt: opcion-servicios
          menu_prompt: menu-servicios
        """,
        0,
    )
    area_head = _block(
        f"""
        areas:
          {AREA}:
            digit: 1
            name: Trámite
            department: Dependencia
            queue: mesa
            prompt: opcion-tramite
        """,
        2,
    )
    vertientes = head + _block(vertiente, 2) + area_head + _block(area, 6)
    return menu_from_yaml(vertientes, calendar, timezone=timezone)


def hours_yaml(rules: Iterable[dict[str, Any]]) -> str:
    """``hours:`` YAML for a list of rules given as dicts (days, open, close, overnight)."""
    rules = list(rules)
    if not rules:
        return "hours: closed\n"
    lines = ["hours:"]
    for rule in rules:
        fields = [f"days: {rule['days']}", f'open: "{rule["open"]}"', f'close: "{rule["close"]}"']
        if rule.get("overnight"):
            fields.append("overnight: true")
        lines.append("  - {" + ", ".join(fields) + "}")
    return "\n".join(lines) + "\n"
