"""Project files that people and editors rely on stay in step with the code."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from ivr.cli import main
from ivr.menu.schema import menu_json_schema

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schema_matches_the_model() -> None:
    committed = json.loads((ROOT / "config" / "menu.schema.json").read_text(encoding="utf-8"))
    assert committed == menu_json_schema(), "run: ivr schema > config/menu.schema.json"


def test_schema_command_prints_the_schema() -> None:
    out = io.StringIO()
    assert main(["schema"], out, io.StringIO()) == 0
    schema = json.loads(out.getvalue())
    assert schema["title"] == "Menu of the Línea Aquí citizen line"
    assert set(schema["required"]) == {"line", "queues", "prompts", "vertientes"}
    assert schema["additionalProperties"] is False
    area = schema["$defs"]["Area"]
    assert "qeue" not in area["properties"]
    assert {"digit", "name", "department", "queue", "prompt"} <= set(area["required"])


def test_every_yaml_in_config_carries_the_schema_modeline() -> None:
    files = sorted((ROOT / "config").glob("*.yaml"))
    assert files
    for file in files:
        first = file.read_text(encoding="utf-8").splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match, f"{file} lacks the modeline"
        assert (file.parent / match[1]).resolve() == (
            ROOT / "config" / "menu.schema.json"
        ).resolve()


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme
    assert "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run:", makefile, re.MULTILINE)
    assert re.search(r"^test:", makefile, re.MULTILINE)
