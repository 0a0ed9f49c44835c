"""``ivr check [PATH]``: 0 with a summary, 1 with ``file:line:col: message`` lines, 2 on misuse.

The files in ``tests/bad_menus/`` are broken copies of ``valid_base.yaml``. Each
line that must be reported carries a trailing comment ``# ERROR: text``; the
test below runs ``ivr check`` on every file and requires exactly those lines,
each message containing its text. To add a case, add a file.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent
BAD_MENUS = Path(__file__).resolve().parent / "bad_menus"
VALID_BASE = BAD_MENUS / "valid_base.yaml"
BROKEN = sorted(p for p in BAD_MENUS.glob("*.yaml") if p != VALID_BASE)

# A trailing "# ERROR: text" after YAML content (full-line comments do not count).
MARKER = re.compile(r"^\s*[^#\s].*\s#\s*ERROR:\s*(?P<text>.*\S)\s*$")
ERROR_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


def check(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", *args], out, err)
    return code, out.getvalue(), err.getvalue()


def expected_errors(path: Path) -> list[tuple[int, str]]:
    """(line, text) for every '# ERROR: text' marker in the file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        (number, match["text"])
        for number, line in enumerate(lines, start=1)
        if (match := MARKER.match(line))
    ]


def reported_errors(err: str, path: Path) -> list[tuple[int, int, str]]:
    """(line, col, message) of each error line; checks the file name and the count line."""
    *lines, count = err.splitlines()
    errors = []
    for line in lines:
        match = ERROR_LINE.match(line)
        assert match, f"not a file:line:col: message line: {line!r}"
        assert match["file"] == str(path)
        errors.append((int(match["line"]), int(match["col"]), match["message"]))
    plural = "s" if len(errors) != 1 else ""
    assert count == f"{path}: {len(errors)} error{plural}"
    return errors


# --- valid menus -------------------------------------------------------------


def test_check_the_shipped_config_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = check("config")
    assert (code, err) == (EXIT_OK, "")
    assert out.startswith(f"{Path('config') / 'menu.yaml'}: OK: line 4421015205 ")
    assert "3 vertientes, 9 areas, 8 queues" in out
    assert out.count("\n") == 1


def test_check_the_shipped_file_by_absolute_path() -> None:
    path = ROOT / "config" / "menu.yaml"
    code, out, err = check(str(path))
    assert (code, err) == (EXIT_OK, "")
    assert out.startswith(f"{path}: OK: ")


def test_check_defaults_to_the_config_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    code, out, _ = check()
    assert code == EXIT_OK
    assert out.startswith(f"{Path('config') / 'menu.yaml'}: OK: ")


def test_check_honours_ivr_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_CONFIG", str(BAD_MENUS / "unknown_timezone.yaml"))
    code, _, err = check()
    assert code == EXIT_INVALID
    assert "unknown time zone 'America/Queretaro_City'" in err


def test_the_base_of_the_bad_menus_is_valid() -> None:
    code, out, err = check(str(VALID_BASE))
    assert (code, err) == (EXIT_OK, "")
    assert "2 vertientes, 3 areas" in out
    assert expected_errors(VALID_BASE) == []


# --- broken menus: exit 1, every error with its line -------------------------


def test_there_is_a_bad_menu_for_every_rule() -> None:
    names = {p.stem for p in BROKEN}
    assert {
        "duplicate_area_digit",
        "duplicate_vertiente_digit",
        "digit_not_a_key",
        "digit_clashes_operator_key",
        "close_not_after_open",
        "period_ends_before_start",
        "unknown_timezone",
        "unknown_weekday",
        "undefined_references",
        "empty_vertiente",
        "unknown_keys",
        "duplicate_key",
        "missing_key",
        "yaml_bad_indentation",
        "yaml_unclosed_list",
        "several_errors",
    } <= names


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_bad_menu_reports_exactly_its_marked_lines(path: Path) -> None:
    expected = expected_errors(path)
    assert expected, f"{path.name} marks no '# ERROR:' line"
    code, out, err = check(str(path))
    assert (code, out) == (EXIT_INVALID, "")
    reported = reported_errors(err, path)
    assert [line for line, _, _ in reported] == [line for line, _ in expected], err
    for (line, _, message), (_, text) in zip(reported, expected, strict=True):
        assert text in message, f"line {line}: {message!r} should contain {text!r}"


def test_bad_menu_columns_point_at_the_value() -> None:
    path = BAD_MENUS / "duplicate_area_digit.yaml"
    _, _, err = check(str(path))
    [(line, col, _)] = reported_errors(err, path)
    content = path.read_text(encoding="utf-8").splitlines()[line - 1]
    assert content[col - 1 :].startswith("1 ")  # the second 'digit: 1'


def test_bad_menu_columns_point_at_the_key() -> None:
    path = BAD_MENUS / "unknown_keys.yaml"
    _, _, err = check(str(path))
    lines = path.read_text(encoding="utf-8").splitlines()
    keys = [lines[line - 1][col - 1 :].split(":")[0] for line, col, _ in reported_errors(err, path)]
    assert keys == ["horas", "colour", "qeue"]


def test_several_errors_are_in_line_order() -> None:
    path = BAD_MENUS / "several_errors.yaml"
    _, _, err = check(str(path))
    reported = reported_errors(err, path)
    assert len(reported) == 5
    assert reported == sorted(reported)


def test_check_a_broken_copy_of_the_shipped_menu(tmp_path: Path) -> None:
    text = (ROOT / "config" / "menu.yaml").read_text(encoding="utf-8")
    old = "        queue: qrobot\n"
    assert text.count(old) == 1
    text = text.replace(old, "        qeue: qrobot\n")
    (tmp_path / "menu.yaml").write_text(text, encoding="utf-8")
    line = text.splitlines().index("        qeue: qrobot") + 1
    code, _, err = check(str(tmp_path))
    assert code == EXIT_INVALID
    path = tmp_path / "menu.yaml"
    assert err.splitlines() == [
        f"{path}:{line}:9: unknown key 'qeue'; did you mean 'queue'?",
        f"{path}: 1 error",
    ]


def test_check_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    code, out, err = check(str(path))
    assert (code, out) == (EXIT_INVALID, "")
    assert err.splitlines() == [f"{path}:1:1: file not found", f"{path}: 1 error"]


def test_check_a_folder_without_menu_yaml(tmp_path: Path) -> None:
    code, _, err = check(str(tmp_path))
    assert code == EXIT_INVALID
    assert err.splitlines()[0] == f"{tmp_path / 'menu.yaml'}:1:1: file not found"


# --- usage errors: exit 2 ----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["check", "--bogus"], "unrecognized arguments: --bogus"),
        (["check", "a", "b"], "unrecognized arguments: b"),
        (["chek"], "invalid choice: 'chek'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(argv, io.StringIO(), io.StringIO())
    assert excinfo.value.code == EXIT_USAGE
    assert complaint in capsys.readouterr().err


# --- the real command --------------------------------------------------------


def run_ivr(*args: str, command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "IVR_CONFIG"}
    return subprocess.run(
        [*(command or [sys.executable, "-m", "ivr"]), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_m_ivr_check_config() -> None:
    result = run_ivr("check", "config/")
    assert (result.returncode, result.stderr) == (EXIT_OK, "")
    assert ": OK: line 4421015205 " in result.stdout


def test_python_m_ivr_check_a_bad_menu() -> None:
    path = BAD_MENUS / "duplicate_vertiente_digit.yaml"
    [(line, _)] = expected_errors(path)
    result = run_ivr("check", str(path))
    assert (result.returncode, result.stdout) == (EXIT_INVALID, "")
    assert result.stderr.startswith(f"{path}:{line}:")


def test_python_m_ivr_usage_error() -> None:
    result = run_ivr("check", "--bogus")
    assert result.returncode == EXIT_USAGE
    assert "unrecognized arguments: --bogus" in result.stderr


def test_console_script_ivr_check_config() -> None:
    script = Path(sys.executable).parent / "ivr"
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable} (package not installed)")
    result = run_ivr("check", "config/", command=[str(script)])
    assert (result.returncode, result.stderr) == (EXIT_OK, "")
    assert ": OK: " in result.stdout
