"""The JSON Schema of ``menu.yaml``, for editors (yaml-language-server) and ``ivr schema``."""

from __future__ import annotations

from typing import Any

from ivr.menu.model import Menu


def menu_json_schema() -> dict[str, Any]:
    schema = Menu.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Menu of the Línea Aquí citizen line"
    return schema
