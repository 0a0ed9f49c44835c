"""``ivr render`` and ``ivr check --asterisk-dir``: the Asterisk configuration of the menu.

- the queue settings of the menu (queue_defaults, per-queue overrides) validate with
  clear messages at the right line, and merge as documented;
- the rendered queues.conf reads in pyst2's ``asterisk.config`` with every value the menu
  implies, and asterisklint finds nothing in it (nor in the rendered extensions.conf),
  while it does find mistakes planted in copies;
- ``refuse_callers_when`` / ``release_callers_when`` become joinempty / leavewhenempty,
  whose ``yes`` mean opposite things;
- the committed dialplan/queues.conf is what ``ivr render`` writes for config/menu.yaml;
- the cross-check reads queues.conf with its includes, ignores templates, and reports
  missing and extra queues; the commands end to end.
"""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

import asterisk.config
import pytest

from ivr.asterisk_conf import (
    EXTENSIONS_CONF,
    MANAGER_CONF,
    QUEUES_CONF,
    README_TXT,
    Finding,
    RenderError,
    conf_comment,
    conf_value,
    cross_check,
    defined_queues,
    general_queue,
    joinempty_value,
    leavewhenempty_value,
    read_conf,
    read_conf_text,
    render_all,
    render_extensions,
    render_queues,
)
from ivr.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, main
from ivr.menu.loader import ConfigError, LoadedMenu, MenuError, load_menu, load_menu_text
from ivr.menu.model import MEMBER_STATES, Menu, QueueSettings

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
DIALPLAN = ROOT / "dialplan"
SHIPPED = CONFIG / "menu.yaml"
TEXT = SHIPPED.read_text(encoding="utf-8")
HERE = "# <-- HERE"

QUEUE_DEFAULTS_ANNOUNCE = (
    '  announce:                      # Asterisk\'s own "you are caller number N" messages\n'
    "    every: 0                     # seconds between them; 0 = never\n"
    "    position: no                 # no | yes | limit | more\n"
    "    holdtime: no                 # no | yes | once\n"
)
CEA_QUEUE = "  cea:\n    description: Comisión Estatal de Aguas\n"
PERIODIC_PROMPT = '    prompt: espera-en-linea      # a prompt under "prompts:"\n'
REFUSE = "  refuse_callers_when: [paused, unavailable, invalid]\n"


# --- helpers -----------------------------------------------------------------------------


def edit(*replacements: tuple[str, str], text: str = TEXT) -> str:
    for old, new in replacements:
        assert text.count(old) == 1, f"the shipped menu should contain {old!r} exactly once"
        text = text.replace(old, new)
    return text


def load(text: str = TEXT) -> LoadedMenu:
    return load_menu_text(text, "menu.yaml")


def errors_of(text: str) -> list[ConfigError]:
    with pytest.raises(MenuError) as caught:
        load(text)
    return caught.value.errors


def line_of(text: str, marker: str = HERE) -> int:
    found = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert len(found) == 1, found
    return found[0]


def shipped() -> LoadedMenu:
    return load_menu(CONFIG)


def pyst2_sections(path: Path) -> dict[str, dict[str, str]]:
    """What pyst2's parser reads: each section's settings (a repeated key keeps the last)."""
    with warnings.catch_warnings():
        # pyst2's Config.load() leaves its file to the garbage collector (ResourceWarning).
        warnings.simplefilter("ignore", ResourceWarning)
        config = asterisk.config.Config(str(path))
    sections: dict[str, dict[str, str]] = {}
    for category in config.categories:
        assert category.name not in sections, f"[{category.name}] twice"
        sections[category.name] = {item.name: item.value.strip() for item in category.items}
    return sections


_LINT_CONF = """\
import sys
from asterisklint import FileConfigParser
from asterisklint.defines import MessageDefManager
parser = FileConfigParser()
parser.include(sys.argv[1])
for _ in parser:
    pass
sys.exit(1 if any(not m[0].muted for m in MessageDefManager.raised.values()) else 0)
"""
_LINT_DIALPLAN = (
    "import os, sys; from asterisklint.main import main; sys.exit(main(sys.argv[1:], os.environ))"
)
_FINDING = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+) (?P<code>[A-Z][A-Z0-9_]+): ", re.MULTILINE)


def _lint(script: str, *args: str) -> tuple[int, list[tuple[int, str]], str]:
    environment = {name: value for name, value in os.environ.items() if name != "ALINT_IGNORE"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    return done.returncode, [(int(m["line"]), m["code"]) for m in _FINDING.finditer(output)], output


def lint_conf(path: Path) -> tuple[int, list[tuple[int, str]], str]:
    """asterisklint's generic .conf reader (the one under dialplan-check) on any .conf file."""
    return _lint(_LINT_CONF, str(path))


def lint_dialplan(path: Path) -> tuple[int, list[tuple[int, str]], str]:
    return _lint(_LINT_DIALPLAN, "dialplan-check", str(path))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder ``ivr render`` writes for the shipped menu."""
    out = tmp_path_factory.mktemp("rendered")
    code = main(
        ["render", "--out", str(out), "--config", str(CONFIG)], io.StringIO(), io.StringIO()
    )
    assert code == EXIT_OK
    return out


# --- the menu's queue settings -----------------------------------------------------------


def test_the_built_in_defaults_are_those_documented_for_the_line() -> None:
    defaults = QueueSettings()
    assert defaults.strategy == "leastrecent"
    assert (defaults.ring_seconds, defaults.retry_seconds) == (20, 5)
    assert (defaults.wrapup_seconds, defaults.max_callers) == (10, 20)
    assert (defaults.announce.every, defaults.announce.position) == (0, "no")
    assert defaults.announce.holdtime == "no"
    assert defaults.periodic_announce is None  # a prompt the menu may not define: none
    assert defaults.refuse_callers_when == ("paused", "unavailable", "invalid")
    assert defaults.release_callers_when == ("unavailable", "invalid")


def test_a_queue_takes_queue_defaults_and_overrides_what_it_sets() -> None:
    menu = shipped().menu
    general = menu.queue_settings("atencion-ciudadana")
    cea = menu.queue_settings("cea")
    assert (general.max_callers, cea.max_callers) == (50, 20)
    assert general.periodic_announce is not None
    assert general.periodic_announce.prompt == "espera-en-linea"
    assert general.model_dump(exclude={"max_callers"}) == cea.model_dump(exclude={"max_callers"})


def test_a_block_given_by_a_queue_replaces_the_default_block_whole() -> None:
    text = edit(
        (
            CEA_QUEUE,
            CEA_QUEUE + "    announce: {every: 90, position: limit}\n"
            "    periodic_announce: null\n    refuse_callers_when: []\n",
        ),
        (
            QUEUE_DEFAULTS_ANNOUNCE,
            "  announce: {every: 120, holdtime: once, position: no}\n",
        ),
    )
    menu = load(text).menu
    cea = menu.queue_settings("cea")
    assert (cea.announce.every, cea.announce.position) == (90, "limit")
    assert cea.announce.holdtime == "no"  # the block's own default, not queue_defaults' "once"
    assert cea.periodic_announce is None
    assert cea.refuse_callers_when == ()
    assert menu.queue_settings("qrobot").announce.holdtime == "once"


def test_the_old_timeout_key_is_refused_with_what_to_use_instead() -> None:
    text = edit((CEA_QUEUE, f"  cea:  {HERE}\n    description: x\n    timeout: 600\n"))
    [error] = errors_of(text)
    assert error.line == line_of(text) + 1
    assert "AQUI_QUEUE_TIMEOUT" in error.message
    assert "ring_seconds" in error.message


def test_a_periodic_prompt_must_be_a_prompt_of_the_menu() -> None:
    text = edit((PERIODIC_PROMPT, f"    prompt: espera-en-linae  {HERE}\n"))
    [error] = errors_of(text)
    assert (error.line, error.col) == (line_of(text), 13)
    assert error.message == (
        "prompt 'espera-en-linae' is not defined (define it under 'prompts'); "
        "did you mean 'espera-en-linea'?"
    )


def test_an_unknown_member_state_is_reported_at_the_item() -> None:
    text = edit((REFUSE, f"  refuse_callers_when: [paused, unavailabe, invalid]  {HERE}\n"))
    [error] = errors_of(text)
    content = text.splitlines()[line_of(text) - 1]
    assert (error.line, error.col) == (line_of(text), content.index("unavailabe") + 1)
    assert "'unavailable'" in error.message


def test_a_member_state_listed_twice_is_reported_at_the_second() -> None:
    text = edit((REFUSE, f"  refuse_callers_when: [paused, invalid, paused]  {HERE}\n"))
    [error] = errors_of(text)
    content = text.splitlines()[line_of(text) - 1]
    assert (error.line, error.col) == (line_of(text), content.rindex("paused") + 1)
    assert error.message == "member state 'paused' is listed twice"


def test_member_states_must_be_a_list() -> None:
    text = edit((REFUSE, f"  refuse_callers_when: paused,invalid  {HERE}\n"))
    [error] = errors_of(text)
    assert error.line == line_of(text)
    assert "write a list of member states" in error.message


@pytest.mark.parametrize(
    ("announce", "message"),
    [
        ("{every: 60}", "announcements every 60 s say nothing"),
        ("{every: 0, position: yes}", "'every' is 0, so Asterisk never says them"),
        ("{every: 30, position: perhaps}", "Input should be 'no', 'yes', 'limit' or 'more'"),
        ("{every: 30, holdtime: always}", "Input should be 'no', 'yes' or 'once'"),
    ],
)
def test_announcements_that_would_do_nothing_or_are_unknown_are_refused(
    announce: str, message: str
) -> None:
    text = edit((QUEUE_DEFAULTS_ANNOUNCE, f"  announce: {announce}  {HERE}\n"))
    [error] = errors_of(text)
    assert error.line == line_of(text)
    assert message in error.message


@pytest.mark.parametrize(("written", "value"), [("true", "yes"), ("false", "no"), ("YES", "yes")])
def test_yaml_booleans_and_any_case_read_as_asterisk_yes_no(written: str, value: str) -> None:
    text = edit((QUEUE_DEFAULTS_ANNOUNCE, f"  announce: {{every: 90, holdtime: {written}}}\n"))
    if value == "no":
        text = text.replace("holdtime: false}", "holdtime: false, position: more}")
    menu = load(text).menu
    assert menu.queue_defaults.announce.holdtime == value


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_callers", 0), ("retry_seconds", 0), ("ring_seconds", 2), ("wrapup_seconds", -1)],
)
def test_values_asterisk_would_misread_are_refused(key: str, value: int) -> None:
    """maxlen=0 is unlimited (FULL never comes), retry=0 becomes 5 in app_queue.c."""
    text = edit((CEA_QUEUE, CEA_QUEUE + f"    {key}: {value}  {HERE}\n"))
    [error] = errors_of(text)
    assert error.line == line_of(text)


# --- joinempty / leavewhenempty ----------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "joinempty", "leavewhenempty"),
    [
        ((), "yes", "no"),  # no state: join always / never leave; "yes" means opposite things
        (("invalid", "unavailable"), "unavailable,invalid", "unavailable,invalid"),
        (("paused", "unavailable", "invalid"), "paused,unavailable,invalid", None),
        (("wrapup", "inuse"), "inuse,wrapup", "inuse,wrapup"),
        (tuple(reversed(MEMBER_STATES)), ",".join(MEMBER_STATES), ",".join(MEMBER_STATES)),
    ],
)
def test_member_states_map_to_joinempty_and_leavewhenempty(
    states: tuple[str, ...], joinempty: str, leavewhenempty: str | None
) -> None:
    assert joinempty_value(states) == joinempty
    assert leavewhenempty_value(states) == (leavewhenempty or joinempty)


def test_the_states_are_exactly_those_app_queue_knows() -> None:
    # apps/app_queue.c parse_empty_options() and queues.conf.sample, "Queue Empty Options"
    assert set(MEMBER_STATES) == {
        "paused", "penalty", "inuse", "ringing", "unavailable", "invalid", "unknown", "wrapup"
    }  # fmt: skip


# --- escaping ----------------------------------------------------------------------------


def test_a_semicolon_in_a_value_is_escaped() -> None:
    assert conf_value("uno;dos") == "uno\\;dos"
    read = read_conf_text(f"[q]\nannounce={conf_value('uno;dos')} ; a comment\n", "q.conf")
    assert read.sections[0].items == (("announce", "uno;dos"),)


@pytest.mark.parametrize("text", ["a\nb", "a\rb", "a\0b"])
def test_a_line_break_in_a_value_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        conf_value(text)


def test_free_text_cannot_break_out_of_its_comment(tmp_path: Path) -> None:
    text = edit(
        (
            CEA_QUEUE,
            "  cea:\n    description: |\n      Aguas; de verdad\n      [intruso]\n      maxlen=0\n",
        ),
        ('version: "2026-12-04.2"', 'version: "uno\\n[otro]"'),
    )
    loaded = load(text)
    description = loaded.menu.queues["cea"].description
    assert description is not None
    assert "\n" in description
    path = tmp_path / QUEUES_CONF
    path.write_text(render_queues(loaded.menu), encoding="utf-8")
    sections = pyst2_sections(path)
    assert set(sections) == {"general", *loaded.menu.queues}
    assert sections["cea"]["maxlen"] == "20"
    assert "; Aguas; de verdad [intruso] maxlen=0" in path.read_text(encoding="utf-8")
    assert lint_conf(path)[0] == 0


# --- the rendered queues.conf ------------------------------------------------------------


def test_render_writes_the_install_folder(rendered: Path) -> None:
    names = sorted(path.name for path in rendered.iterdir())
    assert names == sorted([QUEUES_CONF, EXTENSIONS_CONF, MANAGER_CONF, README_TXT])
    assert stat.S_IMODE((rendered / QUEUES_CONF).stat().st_mode) == 0o644
    assert stat.S_IMODE((rendered / MANAGER_CONF).stat().st_mode) == 0o640


def test_pyst2_reads_every_menu_queue_with_its_settings(rendered: Path) -> None:
    menu = shipped().menu
    sections = pyst2_sections(rendered / QUEUES_CONF)
    assert list(sections) == ["general", *menu.queues]
    assert sections["general"]["persistentmembers"] == "yes"
    for name in menu.queues:
        settings = menu.queue_settings(name)
        expected = {
            "strategy": settings.strategy,
            "timeout": str(settings.ring_seconds),
            "retry": str(settings.retry_seconds),
            "wrapuptime": str(settings.wrapup_seconds),
            "maxlen": str(settings.max_callers),
            "joinempty": "paused,unavailable,invalid",
            "leavewhenempty": "unavailable,invalid",
            "announce-frequency": "0",
            "announce-position": "no",
            "announce-holdtime": "no",
            "periodic-announce": "ivr-aqui/espera-en-linea",
            "periodic-announce-frequency": "60",
            "timeoutpriority": "app",
            "ringinuse": "no",
        }
        got = sections[name]
        assert {key: got.get(key) for key in expected} == expected, name
        assert "member" not in got, "members are examples, left as comments"
    assert sections["atencion-ciudadana"]["maxlen"] == "50"


def test_every_rendered_value_is_one_asterisk_accepts(rendered: Path) -> None:
    """Values as app_queue.c queue_set_param() parses them (Asterisk 22)."""
    yes_no = {"yes", "no"}
    allowed: dict[str, set[str] | None] = {
        "musicclass": None,
        "strategy": {
            "ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered",
            "linear", "wrandom",
        },
        "timeoutpriority": {"app", "conf"},
        "ringinuse": yes_no,
        "reportholdtime": yes_no,
        "setinterfacevar": yes_no,
        "autopause": {"yes", "no", "all"},
        "announce-position": {"yes", "no", "limit", "more"},
        "announce-holdtime": {"yes", "no", "once"},
        "periodic-announce": None,
    }  # fmt: skip
    numbers = {
        "timeout", "retry", "wrapuptime", "maxlen", "announce-frequency",
        "announce-position-limit", "periodic-announce-frequency", "servicelevel",
    }  # fmt: skip
    for name, settings in pyst2_sections(rendered / QUEUES_CONF).items():
        if name == "general":
            continue
        for key, value in settings.items():
            if key in numbers:
                assert value.isdigit(), (name, key, value)
            elif key in {"joinempty", "leavewhenempty"}:
                assert set(value.split(",")) <= set(MEMBER_STATES) | {"yes", "no"}
            else:
                assert key in allowed, f"[{name}] {key} is not a setting this test knows"
                choices = allowed[key]
                assert choices is None or value in choices, (name, key, value)
        assert int(settings["retry"]) > 0, "app_queue turns retry<=0 into 5"
        assert int(settings["maxlen"]) > 0, "maxlen=0 is unlimited: FULL must be reachable"


def test_overrides_and_a_prompt_folder_are_rendered(tmp_path: Path) -> None:
    text = edit(
        (
            CEA_QUEUE,
            CEA_QUEUE + "    strategy: ringall\n    announce: {every: 90, position: more, "
            "position_limit: 3, holdtime: once}\n    periodic_announce: null\n"
            "    release_callers_when: []\n",
        )
    )
    path = tmp_path / QUEUES_CONF
    path.write_text(render_queues(load(text).menu, prompt_dir="sonidos/aqui/"), "utf-8")
    sections = pyst2_sections(path)
    cea = sections["cea"]
    assert cea["strategy"] == "ringall"
    assert (cea["announce-frequency"], cea["announce-position"]) == ("90", "more")
    assert (cea["announce-position-limit"], cea["announce-holdtime"]) == ("3", "once")
    assert "periodic-announce" not in cea
    assert cea["periodic-announce-frequency"] == "0"
    assert cea["leavewhenempty"] == "no"
    assert sections["qrobot"]["periodic-announce"] == "sonidos/aqui/espera-en-linea"
    assert "announce-position-limit" not in sections["qrobot"]
    assert lint_conf(path)[0] == 0


def test_a_queue_named_general_cannot_be_rendered() -> None:
    menu = load(edit((CEA_QUEUE, CEA_QUEUE + "  general: {}\n"))).menu
    with pytest.raises(RenderError, match="'general' cannot be used"):
        render_queues(menu)


@pytest.mark.parametrize("folder", ["a b", "ivr;aqui", "x&y"])
def test_a_prompt_folder_that_would_break_the_file_is_refused(folder: str) -> None:
    with pytest.raises(RenderError, match="invalid prompt folder"):
        render_queues(shipped().menu, prompt_dir=folder)


def test_the_committed_queues_conf_is_what_render_writes() -> None:
    """dialplan/queues.conf never drifts from config/menu.yaml: only the version may differ,
    so that bumping the menu's version alone does not force a new render."""
    version = re.compile(r"\(menu version [^)]*\)")
    committed = (DIALPLAN / QUEUES_CONF).read_text(encoding="utf-8")
    fresh = render_queues(shipped().menu, "ivr-aqui", "menu.yaml")
    assert version.search(fresh)
    assert version.sub("(menu version X)", committed) == version.sub("(menu version X)", fresh), (
        "run: ivr render --out build/asterisk && cp build/asterisk/queues.conf dialplan/"
    )


# --- asterisklint ------------------------------------------------------------------------


def test_asterisklint_finds_nothing_in_the_rendered_files(rendered: Path) -> None:
    code, findings, output = lint_conf(rendered / QUEUES_CONF)
    assert (code, findings, output.strip()) == (0, [], "")
    code, findings, output = lint_dialplan(rendered / EXTENSIONS_CONF)
    assert (code, findings, output.strip()) == (0, [], "")


@pytest.mark.parametrize(
    ("original", "broken", "expected"),
    [
        pytest.param("[cea]", "[cea](linea-aqui-defaults)", "E_CONF_BAD_LINE", id="template-use"),
        pytest.param("maxlen=20\n", "maxlen 20\n", "E_CONF_BAD_LINE", id="no-equals"),
        pytest.param("retry=5\n", "retry = 5\n", "W_WSH_VARSET", id="spaces-around-equals"),
        pytest.param("wrapuptime=10\n", "wrapuptime=10 \n", "W_WSH_EOL", id="trailing-space"),
    ],
)
def test_the_queues_lint_finds_a_planted_mistake(
    rendered: Path, tmp_path: Path, original: str, broken: str, expected: str
) -> None:
    text = (rendered / QUEUES_CONF).read_text(encoding="utf-8")
    assert original in text
    copy = tmp_path / QUEUES_CONF
    copy.write_text(text.replace(original, broken, 1), encoding="utf-8")
    code, findings, output = lint_conf(copy)
    assert code == 1, output
    assert (text[: text.index(original)].count("\n") + 1, expected) in findings, output


def test_the_dialplan_lint_finds_a_planted_mistake_in_the_rendered_copy(
    rendered: Path, tmp_path: Path
) -> None:
    text = (rendered / EXTENSIONS_CONF).read_text(encoding="utf-8")
    copy = tmp_path / EXTENSIONS_CONF
    copy.write_text(text.replace("Hangup(16)", "Hangpu(16)", 1), encoding="utf-8")
    code, findings, output = lint_dialplan(copy)
    assert code == 1, output
    assert any(finding == "E_APP_MISSING" for _, finding in findings), output


# --- the rest of the rendered folder -----------------------------------------------------


def test_the_dialplan_files_are_copied_unchanged_under_a_header(rendered: Path) -> None:
    for name in (EXTENSIONS_CONF, MANAGER_CONF):
        copy = (rendered / name).read_text(encoding="utf-8")
        original = (DIALPLAN / name).read_text(encoding="utf-8")
        assert copy.endswith(original), name
        header = copy[: -len(original)]
        assert header.startswith(f'; {name} - copied unchanged by "ivr render"'), header
        assert all(line.startswith(";") for line in header.splitlines()), header
    assert pyst2_sections(rendered / EXTENSIONS_CONF)["globals"]["AQUI_GENERAL_QUEUE"]


def test_the_readme_gives_the_includes_of_the_citizen_line(rendered: Path) -> None:
    readme = (rendered / README_TXT).read_text(encoding="utf-8")
    for line in (
        '#include "linea-aqui/extensions.conf"',
        '#include "linea-aqui/queues.conf"',
        '#include "linea-aqui/manager.conf"',
        "install -d /etc/asterisk/linea-aqui",
        "ivr check --asterisk-dir /etc/asterisk",
    ):
        assert line in readme, line


def test_the_general_queue_of_the_dialplan_must_be_a_menu_queue() -> None:
    text = (DIALPLAN / EXTENSIONS_CONF).read_text(encoding="utf-8")
    assert general_queue(text) == "atencion-ciudadana"
    menu = load(
        edit(
            ("  atencion-ciudadana:\n    description:", "  mesa-general:\n    description:"),
            ("        queue: atencion-ciudadana\n", "        queue: mesa-general\n"),
        )
    ).menu
    with pytest.raises(RenderError, match="AQUI_GENERAL_QUEUE=atencion-ciudadana is not a queue"):
        render_extensions(text, menu)
    no_global = text.replace("AQUI_GENERAL_QUEUE=", "AQUI_OTHER=")
    with pytest.raises(RenderError, match="does not set AQUI_GENERAL_QUEUE"):
        render_extensions(no_global, shipped().menu)


def test_render_needs_the_dialplan_folder(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="give --dialplan"):
        render_all(shipped(), dialplan_dir=tmp_path)


# --- reading a PBX's configuration ----------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def menu_queues_conf(names: list[str] | None = None) -> str:
    return "".join(f"[{name}]\nstrategy=ringall\n\n" for name in names or shipped().menu.queues)


def messages(findings: Iterable[Finding]) -> list[str]:
    return [str(finding) for finding in findings]


def test_the_rendered_folder_installed_as_documented_passes(rendered: Path, tmp_path: Path) -> None:
    for name in (QUEUES_CONF, EXTENSIONS_CONF):
        write(tmp_path / "linea-aqui" / name, (rendered / name).read_text(encoding="utf-8"))
        write(tmp_path / name, f'; stock file\n#include "linea-aqui/{name}"\n')
    result = cross_check(shipped(), tmp_path)
    assert result.findings == ()
    assert result.ok
    assert (result.asterisk_queues, result.menu_queues, result.missing) == (8, 8, 0)


def test_a_missing_queue_is_an_error_naming_the_menu_line(tmp_path: Path) -> None:
    loaded = shipped()
    names = [name for name in loaded.menu.queues if name != "qrobot"]
    write(tmp_path / QUEUES_CONF, "[general]\nautofill=yes\n\n" + menu_queues_conf(names))
    result = cross_check(loaded, tmp_path)
    assert not result.ok
    assert result.missing == 1
    [finding] = result.findings
    line = loaded.positions.of_key(("queues", "qrobot")).line
    assert finding.severity == "error"
    assert f"queue 'qrobot' of the menu ({loaded.path}:{line}) is not defined" in finding.message


def test_an_extra_queue_is_a_note(tmp_path: Path) -> None:
    write(tmp_path / QUEUES_CONF, menu_queues_conf() + "[ventas]\nstrategy=ringall\n")
    result = cross_check(shipped(), tmp_path)
    assert result.ok
    assert messages(result.findings) == [
        f"note: {tmp_path / QUEUES_CONF}:{3 * 8 + 1}: Asterisk defines queue 'ventas', "
        "which the menu does not name"
    ]


def test_templates_and_the_general_section_are_not_queues(tmp_path: Path) -> None:
    names = list(shipped().menu.queues)
    text = (
        "[general]\npersistentmembers=yes\n\n[cea](!)\nstrategy=ringall\n\n"
        "[plantilla](!) ; a template\nmaxlen=5\n\n"
        + "".join(f"[{name}](plantilla)\n" for name in names if name != "cea")
        + "[otra](plantilla,!)\n"
    )
    write(tmp_path / QUEUES_CONF, text)
    read = read_conf(tmp_path / QUEUES_CONF)
    assert [section.name for section in read.sections if section.is_template] == [
        "cea",
        "plantilla",
        "otra",
    ]
    result = cross_check(shipped(), tmp_path)
    assert [finding.severity for finding in result.findings] == ["error"]
    assert "queue 'cea' of the menu" in result.findings[0].message


def test_includes_are_followed_relative_to_the_asterisk_folder(tmp_path: Path) -> None:
    names = list(shipped().menu.queues)
    write(tmp_path / "sub" / "a.conf", menu_queues_conf(names[:3]))
    write(tmp_path / "sub" / "b.conf", "#include <sub/deeper/c.conf>\n")
    write(tmp_path / "sub" / "deeper" / "c.conf", menu_queues_conf(names[3:5]))
    write(tmp_path / "globbed" / "1.conf", menu_queues_conf(names[5:7]))
    write(tmp_path / "globbed" / "2.conf", menu_queues_conf(names[7:]))
    write(
        tmp_path / QUEUES_CONF,
        '[general]\n#include\t"sub/a.conf"\n#include sub/b.conf\n'
        f"#include {tmp_path}/globbed/*.conf\n#tryinclude optional.conf\n",
    )
    result = cross_check(shipped(), tmp_path)
    assert result.findings == ()
    assert result.asterisk_queues == 8


def test_a_missing_include_is_an_error_a_missing_tryinclude_is_not(tmp_path: Path) -> None:
    write(tmp_path / QUEUES_CONF, menu_queues_conf() + '#include "nada.conf"\n')
    result = cross_check(shipped(), tmp_path)
    [finding] = result.findings
    assert finding.severity == "error"
    assert "nada.conf" in finding.message
    assert "refuses the whole file" in finding.message


def test_exec_is_not_run_but_noted(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write(tmp_path / QUEUES_CONF, menu_queues_conf() + f"#exec /usr/bin/touch {marker}\n")
    result = cross_check(shipped(), tmp_path)
    assert [finding.severity for finding in result.findings] == ["note"]
    assert "#exec" in result.findings[0].message
    assert not marker.exists()


def test_an_include_loop_is_reported_not_followed_forever(tmp_path: Path) -> None:
    write(tmp_path / QUEUES_CONF, menu_queues_conf() + '#include "otro.conf"\n')
    write(tmp_path / "otro.conf", '#include "queues.conf"\n')
    result = cross_check(shipped(), tmp_path)
    assert [finding.severity for finding in result.findings] == ["error"]
    assert "includes itself" in result.findings[0].message


def test_comments_and_block_comments_hide_sections(tmp_path: Path) -> None:
    text = menu_queues_conf() + ";[fantasma]\n;--\n[oculta]\nmaxlen=1\n--;\n[visible];--x--;\n"
    write(tmp_path / QUEUES_CONF, text)
    assert [section.name for section in read_conf(tmp_path / QUEUES_CONF).sections][-1:] == [
        "visible"
    ]
    notes = messages(cross_check(shipped(), tmp_path).findings)
    assert len(notes) == 1
    assert "'visible'" in notes[0]


def test_queue_names_compare_without_case_as_app_queue_does(tmp_path: Path) -> None:
    write(tmp_path / QUEUES_CONF, menu_queues_conf([n.upper() for n in shipped().menu.queues]))
    assert cross_check(shipped(), tmp_path).findings == ()


def test_a_section_inheriting_an_unknown_template_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / QUEUES_CONF, menu_queues_conf() + "[extra](noexiste)\n")
    findings = cross_check(shipped(), tmp_path).findings
    [finding] = [finding for finding in findings if finding.severity == "error"]
    assert "inherits from [noexiste]" in finding.message


def test_a_missing_queues_conf_or_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = cross_check(shipped(), tmp_path)
    [finding] = result.findings
    assert finding.severity == "error"
    assert f"{tmp_path / QUEUES_CONF}: not found" in finding.message
    [finding] = cross_check(shipped(), tmp_path / "nope").findings
    assert "not a folder" in finding.message


def test_an_undefined_general_queue_in_extensions_conf_is_an_error(tmp_path: Path) -> None:
    names = [name for name in shipped().menu.queues if name != "atencion-ciudadana"]
    write(tmp_path / QUEUES_CONF, menu_queues_conf(names))
    write(tmp_path / EXTENSIONS_CONF, "[globals]\nAQUI_GENERAL_QUEUE=atencion-ciudadana\n")
    result = cross_check(shipped(), tmp_path)
    found = messages(result.findings)
    assert len(found) == 2
    assert any("AQUI_GENERAL_QUEUE=atencion-ciudadana is not a queue" in m for m in found)


def test_defined_queues_reads_pyst2_sections_with_their_origin(tmp_path: Path) -> None:
    path = write(tmp_path / QUEUES_CONF, "; head\n[general]\n\n[cea]\nmaxlen=3 ; max\n")
    queues = defined_queues(read_conf(path))
    assert list(queues) == ["cea"]
    assert str(queues["cea"].origin) == f"{path}:4"
    assert queues["cea"].items == (("maxlen", "3"),)


def test_conf_comment_keeps_one_line() -> None:
    assert conf_comment("uno\n dos\r\ntres\0") == "uno dos tres"


# --- the commands end to end -------------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


def test_ivr_render_prints_what_it_wrote_and_replaces_files(tmp_path: Path) -> None:
    out_dir = tmp_path / "nuevo" / "asterisk"
    code, out, err = run("render", "--out", str(out_dir), "--config", str(CONFIG))
    assert code == EXIT_OK, err
    for name in (QUEUES_CONF, EXTENSIONS_CONF, MANAGER_CONF, README_TXT):
        assert f"wrote {out_dir / name}\n" in out
    assert "8 queues from" in out
    (out_dir / QUEUES_CONF).write_text("stale", encoding="utf-8")
    assert run("render", "--out", str(out_dir), "--config", str(CONFIG))[0] == EXIT_OK
    assert (out_dir / QUEUES_CONF).read_text(encoding="utf-8").startswith("; queues.conf")
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [QUEUES_CONF, EXTENSIONS_CONF, MANAGER_CONF, README_TXT]
    ), "no temporary file is left behind"


def test_ivr_render_refuses_an_invalid_menu(tmp_path: Path) -> None:
    menu = write(tmp_path / "menu.yaml", TEXT.replace("  max_callers: 20 ", "  max_callers: 0 "))
    code, _, err = run("render", "--out", str(tmp_path / "out"), "--config", str(menu))
    assert code == EXIT_INVALID
    assert "max_callers" in err or "greater than or equal to 1" in err
    assert not (tmp_path / "out").exists()


def test_ivr_render_without_the_dialplan_folder_says_what_to_give(tmp_path: Path) -> None:
    menu = write(tmp_path / "config" / "menu.yaml", TEXT)
    code, _, err = run("render", "--out", str(tmp_path / "out"), "--config", str(menu))
    assert code == EXIT_INVALID
    assert "give --dialplan" in err
    code, _, err = run(
        "render", "--out", str(tmp_path / "out"), "--config", str(menu), "--dialplan", str(DIALPLAN)
    )
    assert code == EXIT_OK, err


def test_ivr_render_refuses_a_bad_prompt_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        run("render", "--out", str(tmp_path), "--prompt-dir", "a b")
    assert stop.value.code == EXIT_USAGE
    assert "invalid prompt folder" in capsys.readouterr().err


def test_ivr_check_asterisk_dir_ok_and_missing(rendered: Path, tmp_path: Path) -> None:
    code, out, err = run("check", str(CONFIG), "--asterisk-dir", str(rendered))
    assert code == EXIT_OK, err
    assert f"{rendered}: OK: Asterisk defines all 8 queues of the menu" in out
    text = (rendered / QUEUES_CONF).read_text(encoding="utf-8").replace("[cea]", "[cea](!)")
    write(tmp_path / QUEUES_CONF, text + "\n[ventas]\nstrategy=ringall\n")
    code, out, err = run("check", str(CONFIG), "--asterisk-dir", str(tmp_path))
    assert code == EXIT_INVALID
    assert "error: queue 'cea' of the menu" in err
    assert f"{tmp_path}: 1 error, 1 of the menu's queues missing" in err
    assert "note: " in out
    assert "Asterisk defines queue 'ventas'" in out


def test_ivr_check_asterisk_dir_without_queues_conf_fails(tmp_path: Path) -> None:
    code, _, err = run("check", str(CONFIG), "--asterisk-dir", str(tmp_path))
    assert code == EXIT_INVALID
    assert f"{tmp_path / QUEUES_CONF}: not found" in err


def test_ivr_check_without_asterisk_dir_reads_no_asterisk_file(tmp_path: Path) -> None:
    code, out, _ = run("check", str(CONFIG))
    assert "Asterisk defines" not in out
    assert code in {EXIT_OK, EXIT_INVALID}  # prompt audio may be judged elsewhere


def test_python_m_ivr_render_then_check_as_a_new_user_would(tmp_path: Path) -> None:
    out_dir = tmp_path / "asterisk"
    done = subprocess.run(
        [sys.executable, "-m", "ivr", "render", "--out", str(out_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "IVR_CONFIG": "config"},
    )
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "ivr", "check", "--asterisk-dir", str(out_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "IVR_CONFIG": "config"},
    )
    assert "OK: Asterisk defines all 8 queues" in done.stdout, done.stderr


def test_render_uses_the_loaded_menu_name_and_version(rendered: Path) -> None:
    head = (rendered / QUEUES_CONF).read_text(encoding="utf-8").splitlines()[2]
    menu: Menu = shipped().menu
    assert head == (
        f'; GENERATED by "ivr render" from menu.yaml (menu version {menu.version}). Do not edit'
    )
