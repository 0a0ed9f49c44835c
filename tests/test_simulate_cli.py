"""``ivr simulate --json`` on the shipped menu: the acceptance cases of the foundation issue."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ivr.cli import main

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"


def run_json(at: str, digits: str) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["simulate", "--config", str(CONFIG), "--at", at, "--digits", digits, "--json"], out, err
    )
    assert code == 0, err.getvalue()
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def test_weekday_inside_hours_routes_to_the_area_queue() -> None:
    result = run_json("2026-12-07T09:00", "1 2")  # Monday
    assert result["outcome"] == "routed"
    assert result["queue"] == "finanzas-vehicular"
    assert (result["vertiente"], result["area"]) == ("programas", "reemplacamiento")
    assert result["reason"] is None
    assert result["next_open"] is None
    assert result["prompts"][:2] == ["bienvenida", "aviso-privacidad"]
    assert result["prompts"][-1] == "transferencia"


@pytest.mark.parametrize(
    ("at", "next_open"),
    [
        ("2026-12-07T07:59", "2026-12-07T08:00:00-06:00"),
        ("2026-12-07T20:00", "2026-12-08T08:00:00-06:00"),
        ("2026-12-11T20:00", "2026-12-14T08:00:00-06:00"),  # Friday evening -> Monday
    ],
)
def test_weekday_outside_hours_is_closed_with_next_opening(at: str, next_open: str) -> None:
    result = run_json(at, "1 2")
    assert result["outcome"] == "closed"
    assert result["reason"] == "outside_hours"
    assert result["next_open"] == next_open
    assert result["queue"] is None
    assert result["area"] == "reemplacamiento"
    assert result["prompts"][-4:] == [
        "area-cerrada",
        "horario-oficina",
        "proxima-apertura",
        "volver-al-menu",
    ]


def test_saturday_is_closed_for_the_weekend() -> None:
    result = run_json("2026-12-05T11:00", "2 1")
    assert result["outcome"] == "closed"
    assert result["reason"] == "weekend"
    assert result["next_open"] == "2026-12-07T08:00:00-06:00"


def test_area_with_saturday_hours_is_open_on_saturday() -> None:
    result = run_json("2026-12-05T11:00", "1 3")
    assert result["outcome"] == "routed"
    assert result["area"] == "refrendo-vehicular"


def test_sixteenth_of_september_is_a_holiday() -> None:
    result = run_json("2026-09-16T10:00", "1 2")  # a Wednesday
    assert result["outcome"] == "closed"
    assert result["reason"] == "holiday"
    assert result["next_open"] == "2026-09-17T08:00:00-06:00"
    assert "dia-inhabil" in result["prompts"]


def test_area_outside_its_service_period_is_neither_announced_nor_accepted() -> None:
    # Paseo 5 de Febrero (digit 1) ended in 2024; digits 2-4 keep their numbers.
    result = run_json("2026-12-07T09:00", "1 1")
    assert "opcion-paseo-5-febrero" not in result["prompts"]
    assert "opcion-reemplacamiento" in result["prompts"]
    assert result["outcome"] == "invalid"
    assert result["area"] is None
    assert result["queue"] is None
    assert "opcion-invalida" in result["prompts"]


def test_area_inside_its_service_period_is_announced() -> None:
    result = run_json("2023-03-06T09:00", "1 1")
    assert "opcion-paseo-5-febrero" in result["prompts"]
    assert result["outcome"] == "routed"
    assert result["queue"] == "obra-publica"


def test_emergency_area_during_its_contingency_window_routes_at_night() -> None:
    result = run_json("2026-08-09T03:00", "3 4")  # Sunday 03:00, rainy season window 24/7
    assert result["outcome"] == "routed"
    assert (result["vertiente"], result["area"], result["queue"]) == ("emergencias", "cea", "cea")
    assert "aviso-lluvias" in result["prompts"]
    assert "opcion-cea" in result["prompts"]


def test_emergency_area_after_its_contingency_window_is_not_offered() -> None:
    result = run_json("2026-11-05T10:00", "3 4")
    assert "aviso-lluvias" not in result["prompts"]
    assert "opcion-cea" not in result["prompts"]
    assert "opcion-atencion-medica" in result["prompts"]  # the winter window is in force
    assert result["outcome"] == "invalid"
    assert result["queue"] is None


def test_emergencies_vertiente_disappears_when_no_window_is_in_force() -> None:
    result = run_json("2026-10-31T23:59:59", "")  # "to: 2026-10-31" covers that whole day
    assert "opcion-emergencias" in result["prompts"]
    result = run_json("2026-04-15T10:00", "3")  # between the windows
    assert "opcion-emergencias" not in result["prompts"]
    assert result["outcome"] == "invalid"


def test_no_keys_leaves_the_caller_at_the_main_menu() -> None:
    result = run_json("2026-12-07T09:00", "")
    assert result["outcome"] == "no_input"
    assert result["awaiting_input"] == "main_menu"


def test_silence_until_retries_run_out_goes_to_the_fallback_queue() -> None:
    result = run_json("2026-12-07T09:00", "- - -")
    assert result["outcome"] == "fallback"
    assert result["queue"] == "atencion-ciudadana"
    assert result["prompts"].count("sin-respuesta") == 2
    assert "transferencia-general" in result["prompts"]


def test_fallback_at_night_explains_and_hangs_up() -> None:
    result = run_json("2026-12-07T23:00", "9 9 9")
    assert result["outcome"] == "invalid"
    assert result["reason"] == "outside_hours"
    assert result["next_open"] == "2026-12-08T08:00:00-06:00"
    assert result["prompts"][-1] == "despedida"


def test_instant_in_utc_is_read_in_the_line_time_zone() -> None:
    local = run_json("2026-12-07T08:00", "1 2")
    utc = run_json("2026-12-07T14:00Z", "1 2")
    assert local["outcome"] == utc["outcome"] == "routed"
    assert utc["at"] == "2026-12-07T08:00:00-06:00"


def test_text_output_and_usage_errors() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["simulate", "--at", "2026-12-07T09:00", "--digits", "1 2"], out, err) == 0
    text = out.getvalue()
    assert "Para reemplacamiento, marque 2." in text
    assert "outcome: routed, queue finanzas-vehicular" in text
    err = io.StringIO()
    assert main(["simulate", "--at", "yesterday"], io.StringIO(), err) == 2
    assert "invalid --at 'yesterday'" in err.getvalue()
    err = io.StringIO()
    assert main(["hours", "--at", "2026-13-01"], io.StringIO(), err) == 2
    assert err.getvalue().startswith("ivr hours: invalid --at '2026-13-01'")
    err = io.StringIO()
    assert main(["simulate", "--digits", "1 x"], io.StringIO(), err) == 2
    assert "invalid key 'x'" in err.getvalue()


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ivr",
            "simulate",
            "--at",
            "2026-12-07T09:00",
            "--digits",
            "2 1",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["queue"] == "atencion-ciudadana"


def test_hours_command_lists_every_area_at_an_instant() -> None:
    out = io.StringIO()
    code = main(
        ["hours", "--config", str(CONFIG), "--at", "2026-09-16T10:00", "--json"], out, io.StringIO()
    )
    assert code == 0
    rows = {row["area"]: row for row in json.loads(out.getvalue())["areas"]}
    assert len(rows) == 9
    assert rows["reemplacamiento"]["reason"] == "holiday"
    assert rows["reemplacamiento"]["holiday"] == "Día de la Independencia"
    assert rows["reemplacamiento"]["next_open"] == "2026-09-17T08:00:00-06:00"
    assert rows["paseo-5-febrero"]["offered"] is False
    assert rows["paseo-5-febrero"]["next_open"] is None
    assert rows["cea"]["open"] is True  # rainy season window, 24/7 on holidays too
    assert rows["atencion-medica"]["reason"] == "no_active_contingency"
    assert rows["atencion-medica"]["next_open"] == "2026-11-01T00:00:00-06:00"
    text = io.StringIO()
    assert (
        main(["hours", "--config", str(CONFIG), "--at", "2026-09-16T10:00"], text, io.StringIO())
        == 0
    )
    assert "holiday (Día de la Independencia)" in text.getvalue()


def test_closed_transcript_speaks_the_next_opening_in_spanish() -> None:
    out = io.StringIO()
    args = ["simulate", "--config", str(CONFIG), "--at", "2026-12-11T20:30", "--digits", "2 1"]
    assert main(args, out, io.StringIO()) == 0
    assert "«lunes 14 de diciembre de 2026 a las 08:00»" in out.getvalue()
