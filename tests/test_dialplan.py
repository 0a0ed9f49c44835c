"""dialplan/ keeps its contract with the FastAGI service, the menu and least privilege.

- asterisklint, which reads extensions.conf the way Asterisk loads it, finds nothing,
  and does find each deliberate mistake planted in a copy;
- a small interpreter runs the dialplan for every AGISTATUS, IVR_OUTCOME, QUEUESTATUS and
  key the caller may press, and shows where each call ends: in a queue, or at a
  deliberate Hangup() after a goodbye, never dropped by running off an extension;
- queues.conf defines exactly the menu's queues, with join/leave rules the dialplan handles;
- manager.conf: loopback only, no secret, exactly the classes the service's events need;
- README.md lists every prompt the dialplan and the queues play, with its Spanish text.

Asterisk's .conf files are read with the small parser below rather than pyst2's
``asterisk.config``: that one cuts lines at every ``;`` (Asterisk keeps ``\\;``) and
rejects template headers such as ``[obra-publica](linea-aqui-defaults)``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import ipaddress
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DIALPLAN = ROOT / "dialplan"
EXTENSIONS = DIALPLAN / "extensions.conf"
QUEUES = DIALPLAN / "queues.conf"
MANAGER = DIALPLAN / "manager.conf"
README = DIALPLAN / "README.md"
MENU = ROOT / "config" / "menu.yaml"

OUTCOMES = ("routed", "fallback", "closed", "invalid", "no_input", "abandoned_in_menu", "error")
QUEUE_STATUSES = (
    "TIMEOUT",
    "FULL",
    "JOINEMPTY",
    "LEAVEEMPTY",
    "JOINUNAVAIL",
    "LEAVEUNAVAIL",
    "CONTINUE",
    "WITHDRAW",
)
EMPTY_STATUSES = ("JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL")

# The AMI events the service follows and the class each is created with:
# apps/app_queue.c queue_channel_to_ami() / queue_multi_channel_to_ami() use
# EVENT_FLAG_AGENT, main/manager_channels.c channel_state_change() creates "Hangup"
# with EVENT_FLAG_CALL. Its actions (Ping in main/manager.c, QueueStatus and
# QueueSummary in app_queue.c load_module()) are registered with authority 0, which
# main/manager.c process_message() lets any logged-in user run: no write class.
EVENT_CLASS = {
    "QueueCallerJoin": "agent",
    "QueueCallerLeave": "agent",
    "QueueCallerAbandon": "agent",
    "AgentCalled": "agent",
    "AgentRingNoAnswer": "agent",
    "AgentConnect": "agent",
    "AgentComplete": "agent",
    "AgentDump": "agent",
    "Hangup": "call",
}
SECRET_PLACEHOLDER = "CHANGE-ME-put-the-value-of-IVR_AMI_SECRET-here"  # noqa: S105 - a placeholder, never a secret


# --- a reader for Asterisk .conf files ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: str
    line: int


@dataclass(slots=True)
class Section:
    name: str
    options: tuple[str, ...]
    line: int
    entries: list[Entry] = field(default_factory=list)

    @property
    def is_template(self) -> bool:
        return "!" in self.options

    def values(self, key: str) -> list[str]:
        return [entry.value for entry in self.entries if entry.key == key]

    def value(self, key: str) -> str:
        found = self.values(key)
        assert len(found) == 1, f"[{self.name}] should set {key} once, sets it {len(found)} times"
        return found[0]


_HEADER = re.compile(r"\[(?P<name>[^\]]+)\](?:\((?P<options>[^)]*)\))?")
_COMMENT = re.compile(r"(?<!\\);")


def without_comment(text: str) -> str:
    """The line up to its first ``;`` that is not written ``\\;``."""
    match = _COMMENT.search(text)
    return (text[: match.start()] if match else text).strip()


def parse_conf(path: Path) -> list[Section]:
    sections: list[Section] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = without_comment(raw)
        if not text:
            continue
        where = f"{path.name}:{number}"
        if text.startswith("["):
            header = _HEADER.fullmatch(text)
            if header is None:
                raise ValueError(f"{where}: bad section header {text!r}")
            options = tuple(
                option.strip() for option in (header["options"] or "").split(",") if option
            )
            sections.append(Section(header["name"], options, number))
            continue
        key, equals, value = text.partition("=")
        if text.startswith("#") or not equals or not sections:
            raise ValueError(f"{where}: not a name=value line inside a section: {text!r}")
        sections[-1].entries.append(Entry(key.strip(), value.removeprefix(">").strip(), number))
    return sections


def only(sections: list[Section], name: str) -> Section:
    found = [section for section in sections if section.name == name]
    assert len(found) == 1, f"expected one [{name}], found {len(found)}"
    return found[0]


def menu() -> dict[str, Any]:
    loaded = yaml.safe_load(MENU.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def menu_queues() -> set[str]:
    return set(menu()["queues"])


@functools.cache
def defined_queues() -> frozenset[str]:
    return frozenset(
        s.name for s in parse_conf(QUEUES) if s.name != "general" and not s.is_template
    )


# --- the dialplan, and a small interpreter for it ------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    label: str | None
    app: str
    data: str
    line: int


Plan = dict[str, dict[str, list[Step]]]
_STEP = re.compile(r"(?P<prio>\d+|n)(?:\((?P<label>[\w-]+)\))?,(?P<app>\w+)\((?P<data>.*)\)")


@functools.cache
def load_dialplan() -> tuple[dict[str, str], Plan]:
    sections = parse_conf(EXTENSIONS)
    settings = {entry.key: entry.value for entry in only(sections, "globals").entries}
    plan: Plan = {}
    for section in sections:
        if section.name in {"general", "globals"}:
            continue
        extensions = plan.setdefault(section.name, {})
        current: str | None = None
        for entry in section.entries:
            where = f"{EXTENSIONS.name}:{entry.line}"
            if entry.key == "exten":
                current, _, rest = entry.value.partition(",")
            elif entry.key == "same" and current is not None:
                rest = entry.value
            else:
                raise ValueError(f"{where}: unexpected {entry.key!r} in [{section.name}]")
            step = _STEP.fullmatch(rest)
            if step is None:
                raise ValueError(f"{where}: not priority,App(data): {rest!r}")
            steps = extensions.setdefault(current, [])
            if step["prio"] != "n" and int(step["prio"]) != len(steps) + 1:
                raise ValueError(f"{where}: priority {step['prio']} out of sequence")
            steps.append(Step(step["label"], step["app"], step["data"], entry.line))
    return settings, plan


_TOKEN = re.compile(r'\s*(?:"(?P<quoted>[^"]*)"|(?P<op>!=|>=|<=|=|>|<|\+|-)|(?P<word>[^\s"]+))')
_INTEGER = re.compile(r"-?\d+")


def evaluate(expression: str) -> str:
    """``$[...]`` for what this dialplan writes: one value, or ``a OP b``."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while expression[position:].strip():
        token = _TOKEN.match(expression, position)
        assert token is not None, f"cannot read $[{expression}]"
        kind = token.lastgroup
        assert kind is not None
        tokens.append((kind, token[kind]))
        position = token.end()
    if len(tokens) == 1:
        return tokens[0][1]
    assert len(tokens) == 3, f"expression too complex for this interpreter: $[{expression}]"
    assert tokens[1][0] == "op", f"no operator in $[{expression}]"
    left, op, right = tokens[0][1], tokens[1][1], tokens[2][1]
    numeric = bool(_INTEGER.fullmatch(left) and _INTEGER.fullmatch(right))
    if op in {"+", "-"}:
        assert numeric, f"arithmetic on text in $[{expression}]"
        return str(int(left) + int(right) if op == "+" else int(left) - int(right))
    if numeric:
        order = (int(left) > int(right)) - (int(left) < int(right))
    else:
        order = (left > right) - (left < right)
    verdicts = {
        "=": order == 0,
        "!=": order != 0,
        ">=": order >= 0,
        "<=": order <= 0,
        ">": order > 0,
        "<": order < 0,
    }
    return "1" if verdicts[op] else "0"


def is_true(condition: str) -> bool:
    """pbx_checkcondition(): empty is false, a number is its value, other text is true."""
    condition = condition.strip()
    if _INTEGER.fullmatch(condition):
        return int(condition) != 0
    return bool(condition)


Event = tuple[str, ...]
_VARIABLE = re.compile(r"\$\{([^${}]*)\}")
_EXPRESSION = re.compile(r"\$\[([^$\[\]]*)\]")
_FUNCTION = re.compile(r"(?P<name>[A-Z_]+)\((?P<argument>[^()]*)\)")


@dataclass
class Call:
    """One call through the dialplan, with what Asterisk and the caller answer."""

    agi: dict[str, str]
    queue_results: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    did: str = "s"
    variables: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    context: str = "linea-aqui"
    exten: str = ""
    index: int = 0

    def __post_init__(self) -> None:
        self.settings, self.plan = load_dialplan()
        self.queues = defined_queues()
        self._results: Iterator[str] = iter(self.queue_results)
        self._keys: Iterator[str] = iter(self.keys)

    def run(self) -> Call:
        self.context, self.exten, self.index = "linea-aqui", self.did, 0
        for _ in range(2000):
            steps = self.plan[self.context][self.exten]
            assert self.index < len(steps), (
                f"the call ran off the end of {self.exten}@{self.context}: Asterisk would "
                f"hang up without a word ({self.events})"
            )
            step = steps[self.index]
            self.index += 1
            if self.execute(step.app, self.substitute(step.data)):
                return self
        raise AssertionError(f"more than 2000 steps, a loop: {self.events[-20:]}")

    # -- variables and expressions --

    def read(self, name: str) -> str:
        function = _FUNCTION.fullmatch(name)
        if function and function["name"] == "QUEUE_EXISTS":
            assert function["argument"], "QUEUE_EXISTS() without a queue logs an ERROR"
            return "1" if function["argument"] in self.queues else "0"
        if function and name not in self.variables:
            raise AssertionError(f"function {name} is not modelled by this test")
        # Channel variables hide globals of the same name, as in Asterisk.
        return self.variables.get(name, self.settings.get(name, ""))

    def substitute(self, text: str) -> str:
        while True:
            done = _VARIABLE.sub(lambda match: self.read(match[1]), text)
            done = _EXPRESSION.sub(lambda match: evaluate(match[1]), done)
            if done == text:
                return done
            text = done

    # -- applications --

    def jump(self, target: str) -> None:
        parts = target.split(",")
        if len(parts) == 1:
            context, exten, priority = self.context, self.exten, parts[0]
        elif len(parts) == 2:
            context, exten, priority = self.context, parts[0], parts[1]
        else:
            context, exten, priority = parts[0], parts[1], parts[2]
        assert exten in self.plan.get(context, {}), f"Goto({target}): no such extension"
        steps = self.plan[context][exten]
        labels = [step.label for step in steps]
        assert priority.isdigit() or priority in labels, f"Goto({target}): no such label"
        self.context, self.exten = context, exten
        self.index = int(priority) - 1 if priority.isdigit() else labels.index(priority)

    def execute(self, app: str, data: str) -> bool:
        """Run one application; True when the call is over."""
        if app == "Set":
            name, _, value = data.partition("=")
            self.variables[name] = value
        elif app == "GotoIf":
            condition, _, targets = data.partition("?")
            if_true, _, if_false = targets.partition(":")
            target = if_true if is_true(condition) else if_false
            if target:
                self.jump(target)
        elif app == "Goto":
            self.jump(data)
        elif app == "ExecIf":
            condition, _, application = data.partition("?")
            run = re.fullmatch(r"(\w+)\((.*)\)", application)
            assert run is not None, f"ExecIf({data}) not modelled"
            assert ":" not in application, f"ExecIf({data}): the else branch is not modelled"
            if is_true(condition):
                return self.execute(run[1], run[2])
        elif app == "AGI":
            self.events.append(("AGI", data))
            self.variables.update(self.agi)
            if self.agi.get("AGISTATUS") == "HANGUP":
                return True  # AGI() returns -1: the dialplan stops
        elif app == "Queue":
            return self.queue(data)
        elif app == "Read":
            name, files, *_ = data.split(",")
            self.events.append(("Read", files))
            self.variables[name] = next(self._keys, "")
        elif app == "Playback":
            self.events.extend(("Play", file) for file in data.split("&"))
        elif app in {"Hangup", "Wait", "MusicOnHold", "Answer"}:
            self.events.append((app, data))
            return app == "Hangup"
        elif app == "Log":
            self.events.append(("Log", data.partition(",")[0]))
        elif app != "NoOp":
            raise AssertionError(f"{app}() is not modelled by this test")
        return False

    def queue(self, data: str) -> bool:
        name, options, _url, _announce, timeout, *_ = [*data.split(","), "", "", "", ""]
        self.events.append(("Queue", name, options, timeout))
        if name not in self.queues:
            return False  # "Unable to join queue": QUEUESTATUS is left as it was
        result = next(self._results)
        if result == "CALLER_HANGUP":
            return True  # the caller hung up while waiting or talking
        status, _, withdraw_info = result.partition(":")
        self.variables["QUEUESTATUS"] = status
        if withdraw_info:
            self.variables["QUEUE_WITHDRAW_INFO"] = withdraw_info
        return False

    # -- what the caller lived --

    @property
    def queued(self) -> list[str]:
        return [event[1] for event in self.events if event[0] == "Queue"]

    @property
    def heard(self) -> list[str]:
        return [event[1] for event in self.events if event[0] == "Play"]


def general_queue() -> str:
    return load_dialplan()[0]["AQUI_GENERAL_QUEUE"]


# --- asterisklint ----------------------------------------------------------------------

_LINT = (
    "import os, sys; from asterisklint.main import main; sys.exit(main(sys.argv[1:], os.environ))"
)
_FINDING = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+) (?P<code>[A-Z][A-Z0-9_]+): ", re.MULTILINE)


def asterisklint(path: Path) -> tuple[int, list[tuple[int, str]], str]:
    """Run ``asterisklint dialplan-check``: exit code, (line, code) findings, full output."""
    environment = {name: value for name, value in os.environ.items() if name != "ALINT_IGNORE"}
    done = subprocess.run(
        [sys.executable, "-c", _LINT, "dialplan-check", str(path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    findings = [(int(m["line"]), m["code"]) for m in _FINDING.finditer(output)]
    return done.returncode, findings, output


def test_asterisklint_is_a_dev_dependency_recent_enough() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dev = project["project"]["optional-dependencies"]["dev"]
    assert any(re.match(r"asterisklint\b", requirement) for requirement in dev)
    version = tuple(int(part) for part in importlib.metadata.version("asterisklint").split("."))
    assert version >= (0, 4, 3)


def test_asterisklint_finds_nothing_in_the_dialplan() -> None:
    code, findings, output = asterisklint(EXTENSIONS)
    assert (code, findings, output.strip()) == (0, [], "")


@pytest.mark.parametrize(
    ("original", "broken", "expected"),
    [
        pytest.param(
            "NoOp(QUEUESTATUS=${QUEUESTATUS} in",
            "NoOp(QUEUESTATUS=${QUEUESTATUS}; in",
            "W_APP_BALANCE",
            id="unescaped-semicolon-in-arguments",
        ),
        pytest.param("Hangup(16)", "Hangpu(16)", "E_APP_MISSING", id="unknown-application"),
        pytest.param(
            "QUEUE_EXISTS(${LINEA_QUEUE})",
            "QUEUE_EXIST(${LINEA_QUEUE})",
            "E_FUNC_MISSING",
            id="unknown-function",
        ),
        pytest.param(
            "Set(LINEA_CHOICE=)", "Set(LINEA_CHOICE=))", "W_APP_BALANCE", id="unbalanced-paren"
        ),
        pytest.param(
            "Goto(farewell,1)",
            "Goto(farwell,1)",
            "W_DP_GOTO_CONTEXT_NOEXTEN",
            id="goto-to-a-missing-extension",
        ),
    ],
)
def test_asterisklint_reports_a_planted_mistake(
    tmp_path: Path, original: str, broken: str, expected: str
) -> None:
    text = EXTENSIONS.read_text(encoding="utf-8")
    assert original in text, "the mistake to plant is no longer in extensions.conf"
    line = text[: text.index(original)].count("\n") + 1
    copy = tmp_path / "extensions.conf"
    copy.write_text(text.replace(original, broken, 1), encoding="utf-8")
    code, findings, output = asterisklint(copy)
    assert code == 1, output
    assert (line, expected) in findings, output


def test_asterisklint_accepts_the_escaped_semicolon(tmp_path: Path) -> None:
    text = EXTENSIONS.read_text(encoding="utf-8")
    original = "NoOp(QUEUESTATUS=${QUEUESTATUS} in"
    assert original in text
    copy = tmp_path / "extensions.conf"
    copy.write_text(text.replace(original, "NoOp(QUEUESTATUS=${QUEUESTATUS}\\; in", 1), "utf-8")
    code, findings, output = asterisklint(copy)
    assert (code, findings) == (0, []), output


# --- the inbound context and the AGI call ----------------------------------------------


def test_the_did_and_s_land_in_the_inbound_context_and_nothing_else_does() -> None:
    _, plan = load_dialplan()
    assert set(plan["linea-aqui"]) == {menu()["line"]["number"], "s"}
    assert plan["linea-aqui"][menu()["line"]["number"]][0].data == "s,1"


def test_spanish_and_both_agi_hangup_flags_are_set_before_the_agi() -> None:
    settings, plan = load_dialplan()
    steps = plan["linea-aqui"]["s"]
    agi = [index for index, step in enumerate(steps) if step.app == "AGI"]
    assert len(agi) == 1
    before = [step.data for step in steps[: agi[0]] if step.app == "Set"]
    assert {"CHANNEL(language)=es", "AGISIGHUP=yes", "AGIEXITONHANGUP=yes"} <= set(before)
    url = steps[agi[0]].data
    assert url == "agi://${AQUI_IVR_HOST}:${AQUI_IVR_PORT}/citizen-line"
    assert settings["AQUI_IVR_PORT"] == "4573"
    assert ipaddress.ip_address(settings["AQUI_IVR_HOST"]).is_loopback


def test_the_hagi_variant_is_offered_without_a_port() -> None:
    """An explicit port in a hagi:// URL disables the SRV lookup (res_agi.c)."""
    lines = EXTENSIONS.read_text(encoding="utf-8").splitlines()
    hagi = [line for line in lines if "AGI(hagi://" in line]
    assert len(hagi) == 1
    assert hagi[0].lstrip().startswith(";"), "the hagi:// line is an alternative, commented"
    assert re.search(r"AGI\(hagi://\$\{AQUI_IVR_SRV_DOMAIN\}/citizen-line\)", hagi[0])
    assert "AQUI_IVR_SRV_DOMAIN" in load_dialplan()[0]


def test_the_dialplan_reads_the_contract_variables() -> None:
    _, plan = load_dialplan()
    data = " ".join(
        step.data for steps in plan.values() for exten in steps.values() for step in exten
    )
    for variable in ("AGISTATUS", "IVR_OUTCOME", "IVR_QUEUE", "QUEUESTATUS"):
        assert "${" + variable + "}" in data, variable
    compared = set(re.findall(r'"\$\{IVR_OUTCOME\}" = "(\w+)"', data))
    assert compared == set(OUTCOMES) - {"error"}, "error goes to the general queue by default"
    statuses = set(re.findall(r'"\$\{AGISTATUS\}" = "(\w+)"', data))
    assert statuses == {"SUCCESS", "FAILURE", "HANGUP", "NOTFOUND"}
    handled = set(re.findall(r'"\$\{QUEUESTATUS\}" = "(\w+)"', data))
    assert handled == set(QUEUE_STATUSES)


def test_the_general_queue_is_the_menus_fallback_queue() -> None:
    line = menu()["line"]
    areas = {
        key: area
        for vertiente in menu()["vertientes"].values()
        for key, area in vertiente["areas"].items()
    }
    assert general_queue() == areas[line["fallback"]["area"]]["queue"] == "atencion-ciudadana"


# --- every path of a call ------------------------------------------------------------


@pytest.mark.parametrize("status", ["FAILURE", "NOTFOUND", "SOMETHING_NEW", ""])
def test_without_the_service_the_caller_is_apologised_to_and_queued(status: str) -> None:
    # agi-server-down-log: Asterisk sets AGISTATUS and no IVR_* variable at all.
    call = Call({"AGISTATUS": status}, ["CONTINUE"]).run()
    settings, _ = load_dialplan()
    assert call.events[1] == ("Log", "WARNING")
    assert call.queued == [general_queue()]
    assert ("Queue", general_queue(), "c", settings["AQUI_QUEUE_TIMEOUT"]) in call.events
    assert call.heard == [
        "ivr-aqui/disculpa-menu",
        "ivr-aqui/transferencia-general",
        "ivr-aqui/despedida",
    ]
    assert call.events[-1] == ("Hangup", "16")


@pytest.mark.parametrize("outcome", ["error", "", "something_new"])
def test_a_service_error_or_no_decision_queues_to_the_general_queue(outcome: str) -> None:
    call = Call({"AGISTATUS": "SUCCESS", "IVR_OUTCOME": outcome}, ["CONTINUE"]).run()
    assert call.queued == [general_queue()]
    assert call.heard[:2] == ["ivr-aqui/disculpa-menu", "ivr-aqui/transferencia-general"]
    assert call.variables["CALLERID(name)"] == "SIN-IVR"


@pytest.mark.parametrize("outcome", ["routed", "fallback"])
@pytest.mark.parametrize("queue", sorted(menu_queues()))
def test_routed_calls_wait_in_the_queue_the_service_chose(outcome: str, queue: str) -> None:
    agi = {"AGISTATUS": "SUCCESS", "IVR_OUTCOME": outcome, "IVR_QUEUE": queue}
    call = Call(agi, ["CONTINUE"]).run()
    assert call.queued == [queue]
    assert call.heard == ["ivr-aqui/despedida"]  # the operator hung up first (option c)
    assert call.events[-1] == ("Hangup", "16")


def test_routed_calls_start_from_the_inbound_did_too() -> None:
    agi = {"AGISTATUS": "SUCCESS", "IVR_OUTCOME": "routed", "IVR_QUEUE": "cea"}
    call = Call(agi, ["CALLER_HANGUP"], did=menu()["line"]["number"]).run()
    assert call.queued == ["cea"]
    assert call.events[-1][0] == "Queue"


@pytest.mark.parametrize("queue", ["", "no-such-queue"])
def test_a_queue_queues_conf_does_not_define_becomes_the_general_queue(queue: str) -> None:
    agi = {"AGISTATUS": "SUCCESS", "IVR_OUTCOME": "routed", "IVR_QUEUE": queue}
    call = Call(agi, ["CONTINUE"]).run()
    assert call.queued == [general_queue()]
    assert ("Log", "WARNING") in call.events


@pytest.mark.parametrize("outcome", ["closed", "invalid", "no_input"])
def test_after_the_services_goodbye_the_call_is_cleared_politely(outcome: str) -> None:
    call = Call({"AGISTATUS": "SUCCESS", "IVR_OUTCOME": outcome}).run()
    assert call.events[1:] == [("Wait", "1"), ("Hangup", "16")]


def test_a_caller_who_left_the_menu_is_hung_up() -> None:
    call = Call({"AGISTATUS": "SUCCESS", "IVR_OUTCOME": "abandoned_in_menu"}).run()
    assert call.events[1:] == [("Hangup", "")]


def test_a_hangup_during_the_agi_ends_the_dialplan() -> None:
    call = Call({"AGISTATUS": "HANGUP"}).run()
    assert call.events == [("AGI", "agi://127.0.0.1:4573/citizen-line")]


def routed(queue: str = "salud-medica") -> dict[str, str]:
    return {"AGISTATUS": "SUCCESS", "IVR_OUTCOME": "routed", "IVR_QUEUE": queue}


@pytest.mark.parametrize("status", ["TIMEOUT", "FULL"])
def test_busy_offers_to_keep_waiting_with_one_read(status: str) -> None:
    call = Call(routed(), [status, "CONTINUE"], keys=["1"]).run()
    reads = [event for event in call.events if event[0] == "Read"]
    assert reads == [
        ("Read", "ivr-aqui/asesores-ocupados&ivr-aqui/seguir-esperando&ivr-aqui/horario-atencion")
    ]
    assert call.queued == ["salud-medica", "salud-medica"]
    assert call.variables["QUEUE_PRIO"] == "1"  # ahead of newer callers
    assert ("MusicOnHold", ",60") not in call.events


def test_busy_without_the_key_says_goodbye() -> None:
    call = Call(routed(), ["TIMEOUT"], keys=[""]).run()
    assert call.queued == ["salud-medica"]
    assert call.heard == ["ivr-aqui/despedida"]
    assert call.events[-1] == ("Hangup", "16")


def test_keeping_waiting_is_bounded() -> None:
    settings, _ = load_dialplan()
    retries = int(settings["AQUI_QUEUE_RETRIES"])
    call = Call(routed(), ["TIMEOUT"] * 10, keys=["1"] * 10).run()
    assert call.queued == ["salud-medica"] * (retries + 1)
    assert len([event for event in call.events if event[0] == "Read"]) == retries
    assert call.heard == [
        "ivr-aqui/no-es-posible-atender",
        "ivr-aqui/horario-atencion",
        "ivr-aqui/despedida",
    ]
    assert call.events[-1] == ("Hangup", "16")


@pytest.mark.parametrize("status", EMPTY_STATUSES)
def test_an_empty_area_queue_overflows_to_the_general_queue(status: str) -> None:
    call = Call(routed(), [status, "CONTINUE"]).run()
    assert call.queued == ["salud-medica", general_queue()]
    assert call.heard == ["ivr-aqui/transferencia-general", "ivr-aqui/despedida"]
    assert ("Log", "NOTICE") in call.events


def test_an_empty_general_queue_offers_to_wait_with_music_first() -> None:
    call = Call(routed(), ["JOINEMPTY", "JOINEMPTY", "CONTINUE"], keys=["1"]).run()
    assert call.queued == ["salud-medica", general_queue(), general_queue()]
    kinds = [event[0] for event in call.events]
    read = kinds.index("Read")
    assert call.events[read + 1] == ("MusicOnHold", ",60")
    assert kinds[read + 2] == "Queue"


@pytest.mark.parametrize(
    ("result", "next_queue"),
    [
        ("WITHDRAW:cea", "cea"),
        ("WITHDRAW", "atencion-ciudadana"),
        ("WITHDRAW:nada", "atencion-ciudadana"),
    ],
)
def test_a_withdrawn_caller_moves_to_the_named_queue_or_the_general_one(
    result: str, next_queue: str
) -> None:
    call = Call(routed(), [result, "CONTINUE"]).run()
    assert call.queued == ["salud-medica", next_queue]


def test_a_queue_that_vanished_in_a_reload_does_not_lose_the_caller() -> None:
    call = Call(routed(), ["", "CONTINUE"]).run()
    assert call.queued == ["salud-medica", general_queue()]


def test_no_path_drops_a_call() -> None:
    """Every combination ends in a queue, the service's goodbye or a deliberate Hangup()."""
    agi_statuses = ["SUCCESS", "FAILURE", "NOTFOUND", "HANGUP", ""]
    outcomes = [*OUTCOMES, "", "bogus"]
    firsts = [*QUEUE_STATUSES, "WITHDRAW:cea", "", "CALLER_HANGUP"]
    runs = 0
    for status in agi_statuses:
        for outcome in outcomes:
            for first in firsts:
                for key in ("1", "", "9"):
                    agi = {"AGISTATUS": status, "IVR_OUTCOME": outcome, "IVR_QUEUE": "cea"}
                    results = [first, *(["TIMEOUT"] * 4), "CONTINUE"]
                    call = Call(agi, results, keys=[key] * 5).run()
                    runs += 1
                    case = (status, outcome, first, key, call.events)
                    last = call.events[-1]
                    if status == "HANGUP":
                        assert call.events == [call.events[0]], case
                    elif status == "SUCCESS" and outcome in {"closed", "invalid", "no_input"}:
                        assert call.events[1:] == [("Wait", "1"), ("Hangup", "16")], case
                    elif status == "SUCCESS" and outcome == "abandoned_in_menu":
                        assert call.events[1:] == [("Hangup", "")], case
                    elif first == "CALLER_HANGUP":
                        assert last[0] == "Queue", case
                    else:
                        assert call.queued, case
                        assert last == ("Hangup", "16"), case
    assert runs == len(agi_statuses) * len(outcomes) * len(firsts) * 3


# --- queues.conf -------------------------------------------------------------------------


def effective_queues() -> dict[str, dict[str, str]]:
    """Each queue's settings: its templates' first, then its own."""
    sections = parse_conf(QUEUES)
    by_name = {section.name: section for section in sections}
    queues: dict[str, dict[str, str]] = {}
    for section in sections:
        if section.is_template or section.name == "general":
            continue
        settings: dict[str, str] = {}
        for template in section.options:
            assert by_name[template].is_template, f"[{section.name}] inherits a non-template"
            settings.update((e.key, e.value) for e in by_name[template].entries)
        settings.update((e.key, e.value) for e in section.entries)
        queues[section.name] = settings
    return queues


def test_queues_conf_defines_exactly_the_menus_queues() -> None:
    sections = parse_conf(QUEUES)
    names = [section.name for section in sections]
    assert len(names) == len(set(names)), "a queue is defined twice"
    assert set(effective_queues()) == menu_queues()


def test_every_queue_has_the_settings_the_dialplan_relies_on() -> None:
    for name, settings in effective_queues().items():
        for key in ("strategy", "timeout", "retry", "maxlen", "joinempty", "leavewhenempty"):
            assert settings.get(key), f"[{name}] lacks {key}"
        assert int(settings["maxlen"]) > 0, f"[{name}]: FULL must be reachable, not endless"
        assert int(settings["timeout"]) > 0
        assert int(settings["retry"]) >= 0
        assert "member" not in settings, f"[{name}]: members are examples, left as comments"


def test_join_and_leave_rules_end_in_statuses_the_dialplan_handles() -> None:
    """Nobody to answer gives JOINEMPTY / LEAVEEMPTY (overflow), never an endless wait."""
    for name, settings in effective_queues().items():
        join = set(settings["joinempty"].split(","))
        leave = set(settings["leavewhenempty"].split(","))
        assert {"unavailable", "invalid"} <= join, name
        assert {"unavailable", "invalid"} <= leave, name
        assert "inuse" not in join | leave, f"[{name}]: busy operators must not empty the queue"
        assert "paused" not in leave, f"[{name}]: a short pause must not throw callers out"
    _, plan = load_dialplan()
    queue_calls = [s.data for e in plan["linea-aqui-flow"].values() for s in e if s.app == "Queue"]
    assert queue_calls == ["${LINEA_QUEUE},c,,,${AQUI_QUEUE_TIMEOUT}"]
    assert int(load_dialplan()[0]["AQUI_QUEUE_TIMEOUT"]) > 0


# --- manager.conf --------------------------------------------------------------------------


def manager() -> tuple[Section, Section]:
    sections = parse_conf(MANAGER)
    assert [section.name for section in sections] == ["general", "ivr"]
    return only(sections, "general"), only(sections, "ivr")


def test_the_ami_listens_on_loopback_and_events_carry_the_call_id() -> None:
    general, _ = manager()
    assert ipaddress.ip_address(general.value("bindaddr")).is_loopback
    assert "IVR_CALL_ID" in general.value("channelvars").split(",")


def test_manager_conf_holds_no_secret() -> None:
    general, ivr = manager()
    assert general.values("secret") == []
    assert ivr.values("secret") == [SECRET_PLACEHOLDER]
    text = MANAGER.read_text(encoding="utf-8")
    assert "IVR_AMI_SECRET" in text
    assert "IVR_AMI_SECRET_FILE" in text
    assert not re.search(r"\b[0-9a-f]{24,}\b", text, re.IGNORECASE), "looks like a real secret"


def acl_allows(rules: list[tuple[str, str]], address: str) -> bool:
    """ast_apply_ha(): every matching rule in order, the last one decides; none: allowed."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    allowed = True
    for sense, network in rules:
        net = ipaddress.ip_network(network, strict=False)
        if net.version == ip.version and ip in net:
            allowed = sense == "permit"
    return allowed


def test_only_this_machine_may_log_in_as_ivr() -> None:
    _, ivr = manager()
    rules = [(e.key, e.value) for e in ivr.entries if e.key in {"permit", "deny"}]
    assert rules
    for address in ("127.0.0.1", "::1"):
        assert acl_allows(rules, address), address
    for address in ("10.0.0.5", "192.168.1.20", "200.57.7.10", "2001:db8::5", "::ffff:10.0.0.5"):
        assert not acl_allows(rules, address), address


def test_the_ivr_user_has_exactly_the_least_privilege_classes() -> None:
    _, ivr = manager()
    read = set(ivr.value("read").split(","))
    write = set(ivr.value("write").split(","))
    assert read == set(EVENT_CLASS.values()) == {"agent", "call"}
    assert write == {"none"}


def test_the_event_filter_lets_through_exactly_the_events_the_service_follows() -> None:
    _, ivr = manager()
    filters = [e for e in ivr.entries if e.key.startswith("eventfilter")]
    names = set()
    for entry in filters:
        match = re.fullmatch(r"eventfilter\(action\(include\),name\((\w+)\)\)", entry.key)
        assert match, entry.key
        assert entry.value == "", "a name filter matches on the name alone"
        names.add(match[1])
    assert len(filters) == len(names)
    assert names == set(EVENT_CLASS)


# --- the prompts ----------------------------------------------------------------------------

_PROMPT_ROW = re.compile(
    r"^\| `ivr-aqui/(?P<name>[\w-]+)` \| (?P<text>[^|]+?) \| (?P<when>[^|]*?) \|$", re.MULTILINE
)


def played_prompts() -> set[str]:
    values = [
        entry.value
        for path in (EXTENSIONS, QUEUES)
        for s in parse_conf(path)
        for entry in s.entries
    ]
    return set(re.findall(r"ivr-aqui/([\w-]+)", " ".join(values)))


def test_every_prompt_played_is_listed_with_its_text() -> None:
    rows = {m["name"]: m for m in _PROMPT_ROW.finditer(README.read_text(encoding="utf-8"))}
    assert set(rows) == played_prompts()
    menu_prompts = menu()["prompts"]
    for name, row in rows.items():
        text = row["text"].strip()
        assert text[0].isupper(), name
        assert text.endswith("."), name
        # Every text lives in the menu, so `ivr prompts build` makes its audio.
        assert name in menu_prompts, f"{name}: add its text under prompts: in menu.yaml"
        assert " ".join(str(menu_prompts[name]).split()) == text, name


def test_the_readme_documents_the_contract() -> None:
    readme = README.read_text(encoding="utf-8")
    for word in (
        "IVR_CALL_ID",
        "IVR_OUTCOME",
        "IVR_QUEUE",
        "IVR_VERTIENTE",
        "IVR_AREA",
        "AGISIGHUP",
        "AGIEXITONHANGUP",
        "asterisklint dialplan-check",
        "#include",
        *OUTCOMES,
        *QUEUE_STATUSES,
    ):
        assert word in readme, word
