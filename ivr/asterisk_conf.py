"""The Asterisk side of the menu: render its configuration, cross-check a PBX's.

``ivr render`` writes the folder an admin installs as ``/etc/asterisk/linea-aqui/``
(``dialplan/README.md``, Install):

- ``queues.conf``: one section per queue under ``queues:`` in the menu, every setting
  written out (``queue_defaults`` merged with the queue's own), so the file needs no
  templates and reads the same in Asterisk, pyst2's ``asterisk.config`` and asterisklint;
- ``extensions.conf`` and ``manager.conf``: the project's ``dialplan/`` files, copied
  unchanged under a provenance header (the dialplan is not derived from the menu; its
  general queue is checked to be one of the menu's queues);
- ``README.txt``: how to install the folder, with the ``#include`` lines that bring the
  citizen-line context (and the queues and the AMI user) into the stock files.

``ivr check --asterisk-dir`` reads an existing configuration folder: ``queues.conf``
and the files it includes (pyst2 reads each section; what it lacks, following
``#include``, template headers ``[name](!)``/``[name](tmpl)``, ``\\;`` escapes and block
comments, is done here first), and reports the menu's queues Asterisk does not define
(errors) and Asterisk's queues the menu does not name (notes).

Rendering is pure (text in, text out); :func:`write_files` and the cross-check touch
the disk.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

import asterisk.config

from ivr.agi.render import sound_path
from ivr.menu.loader import LoadedMenu
from ivr.menu.model import MEMBER_STATES, Menu, QueueSettings

QUEUES_CONF = "queues.conf"
EXTENSIONS_CONF = "extensions.conf"
MANAGER_CONF = "manager.conf"
README_TXT = "README.txt"
GENERAL_QUEUE_VARIABLE = "AQUI_GENERAL_QUEUE"
INSTALL_DIR = "/etc/asterisk/linea-aqui"
PROMPT_DIR_PATTERN = re.compile(r"^[A-Za-z0-9_./-]*$")  # as IVR_PROMPT_DIR

# Sections of queues.conf that are not queues (app_queue.c skips "general").
_RESERVED_SECTIONS = frozenset({"general"})
_COMMENT_COLUMN = 32
_MAX_INCLUDE_DEPTH = 20  # guards against runaway nesting; real configurations use 2 or 3


class RenderError(Exception):
    """The configuration cannot be rendered; the message says why and what to do."""


def add_asterisk_dir_argument(parser: argparse.ArgumentParser) -> None:
    """``ivr check --asterisk-dir DIR``."""
    parser.add_argument(
        "--asterisk-dir",
        type=Path,
        metavar="DIR",
        help="also compare the menu's queues with the queues.conf (and its #includes) of this "
        "Asterisk configuration folder, e.g. /etc/asterisk; exit 1 when one is missing",
    )


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ivr render``."""
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--config", type=Path, help="menu file or folder (default: config)")
    parser.add_argument(
        "--prompt-dir",
        type=prompt_dir_argument,
        metavar="DIR",
        default=os.environ.get("IVR_PROMPT_DIR", "ivr-aqui"),
        help="prompt folder under Asterisk's sounds (default: IVR_PROMPT_DIR or ivr-aqui)",
    )
    parser.add_argument(
        "--dialplan",
        type=Path,
        metavar="DIR",
        help="the project's dialplan/ folder (default: dialplan/ next to the menu's folder)",
    )


def prompt_dir_argument(text: str) -> str:
    """``--prompt-dir``: a folder name as IVR_PROMPT_DIR accepts it (argparse type)."""
    if not PROMPT_DIR_PATTERN.match(text) or len(text) > 200:
        raise argparse.ArgumentTypeError(
            f"invalid prompt folder {text!r}: letters, digits, '_', '.', '/' and '-' only"
        )
    return text


# --- .conf text --------------------------------------------------------------------------


def conf_value(text: str) -> str:
    """``text`` as the value of a ``key=value`` line: ``;`` escaped, line breaks refused.

    Asterisk cuts a line at the first ``;`` (a comment) unless it is written ``\\;``,
    and a line break would end the value and start a line of its own.
    """
    if any(char in text for char in "\r\n\0"):
        raise ValueError(f"a .conf value cannot hold a line break or NUL: {text!r}")
    return text.strip().replace(";", "\\;")


def conf_comment(text: str) -> str:
    """``text`` on one line, fit for a ``;`` comment (line breaks become spaces)."""
    return " ".join(text.replace("\0", " ").split())


def _setting(key: str, value: str, comment: str | None = None) -> str:
    line = f"{key}={conf_value(value)}"
    if comment:
        line = f"{line.ljust(_COMMENT_COLUMN - 1)} ; {conf_comment(comment)}"
    return line


def _words(items: Iterable[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    names = list(items)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


# --- joinempty / leavewhenempty ----------------------------------------------------------


def _states(states: Iterable[str]) -> list[str]:
    """Member states in Asterisk's documented order, each once."""
    chosen = set(states)
    return [state for state in MEMBER_STATES if state in chosen]


def joinempty_value(refuse_callers_when: Iterable[str]) -> str:
    """queues.conf ``joinempty`` for the menu's ``refuse_callers_when``.

    A caller may not join when every member is in one of the listed states (or there is
    no member). No state at all is Asterisk's ``joinempty=yes``: join even when nobody
    can answer. (For leavewhenempty ``yes`` means the opposite: see below.)
    """
    states = _states(refuse_callers_when)
    return ",".join(states) if states else "yes"


def leavewhenempty_value(release_callers_when: Iterable[str]) -> str:
    """queues.conf ``leavewhenempty`` for the menu's ``release_callers_when``.

    Waiting callers are let go when every member is in one of the listed states (or
    there is no member). No state at all is ``leavewhenempty=no``: never let them go.
    """
    states = _states(release_callers_when)
    return ",".join(states) if states else "no"


# --- queues.conf -------------------------------------------------------------------------

_QUEUES_HEADER = """\
; queues.conf - operator queues of the Línea Aquí citizen line
;
; GENERATED by "ivr render" from {source} (menu version {version}). Do not edit
; it: change "queue_defaults:" or "queues:" in the menu, check it ("ivr check"), then run
;     ivr render --out <folder>
; and install the folder (dialplan/README.md, Install). dialplan/queues.conf in the
; project is this file for config/menu.yaml; a test keeps the two in step.
;
; One section per queue under "queues:" in the menu: the service sets IVR_QUEUE to one
; of these names. Every setting is written out (the menu's queue_defaults with what each
; queue sets itself), so no section depends on a template. Members are left as comments:
; list the operators' phones, or let them log in with AddQueueMember / the AMI QueueAdd
; action (persistentmembers keeps them across restarts).
;
; How the settings meet extensions.conf ([linea-aqui-flow], exten "queue"):
; - Queue() runs with option c and a timeout of AQUI_QUEUE_TIMEOUT; after it a TIMEOUT,
;   or FULL (maxlen callers already waiting), offers the caller to keep waiting, up to
;   AQUI_QUEUE_RETRIES times, or to call back later.
; - joinempty (the menu's refuse_callers_when): a caller does not join a queue whose
;   members are all in one of the listed states, or that has no member logged in:
;   Queue() returns JOINEMPTY at once and an area's caller overflows to the general
;   queue instead of waiting for nobody. "joinempty=yes" would mean: always join.
; - leavewhenempty (the menu's release_callers_when): callers already waiting are let go
;   (LEAVEEMPTY, same overflow) when every member is in one of the listed states.
;   "leavewhenempty=no" would mean: never let them go. Mind that "yes" means opposite
;   things for the two settings.
;   States: paused; penalty (outside QUEUE_MAX_PENALTY); inuse (on a call); ringing;
;   unavailable (logged off / not registered); invalid (unknown to the PBX); unknown
;   (state not known); wrapup (in wrapuptime).
; - timeout is how long one member's phone rings (the menu's ring_seconds), then retry
;   seconds pass before ringing again; timeoutpriority=app lets Queue()'s own timeout
;   cut a ring short. wrapuptime gives a member time after each call; ringinuse=no never
;   rings a member already on a call; maxlen callers at most wait (the next gets FULL).
; - strategy leastrecent rings first the member idle the longest (an even workload).
; - servicelevel=60: calls answered within 60 s count toward the service level;
;   setinterfacevar=yes puts MEMBERINTERFACE etc. on the caller's channel.
; - periodic-announce plays the line's own prompt (a prompt of the menu) every
;   periodic-announce-frequency seconds; announce-frequency, announce-position and
;   announce-holdtime are Asterisk's place-in-line messages (its stock recordings).
"""

_GENERAL_SECTION = """\
[general]
persistentmembers=yes           ; dynamic members survive a restart
autofill=yes                    ; offer calls to every free member, not one at a time
shared_lastcall=yes             ; a member in several queues gets wrap-up time from any of them
log_membername_as_agent=yes     ; queue_log names the member, not the channel
"""


def _queue_lines(settings: QueueSettings, prompt_dir: str) -> list[str]:
    announce = settings.announce
    periodic = settings.periodic_announce
    refuse = _states(settings.refuse_callers_when)
    release = _states(settings.release_callers_when)
    lines = [
        _setting("musicclass", "default"),
        _setting("strategy", settings.strategy),
        _setting("timeout", str(settings.ring_seconds)),
        _setting("retry", str(settings.retry_seconds)),
        _setting("timeoutpriority", "app"),
        _setting("wrapuptime", str(settings.wrapup_seconds)),
        _setting("ringinuse", "no"),
        _setting("maxlen", str(settings.max_callers)),
        "; "
        + (
            f"refuse new callers when every member is {_words(refuse)}"
            if refuse
            else "let callers in even when nobody can answer"
        ),
        _setting("joinempty", joinempty_value(refuse)),
        "; "
        + (
            f"let waiting callers go when every member is {_words(release)}"
            if release
            else "never let waiting callers go"
        ),
        _setting("leavewhenempty", leavewhenempty_value(release)),
        _setting("announce-frequency", str(announce.every)),
        _setting("announce-position", announce.position),
    ]
    if announce.position in {"limit", "more"}:
        lines.append(_setting("announce-position-limit", str(announce.position_limit)))
    lines.append(_setting("announce-holdtime", announce.holdtime))
    if periodic is not None:
        lines.append(_setting("periodic-announce", sound_path(prompt_dir, periodic.prompt)))
        lines.append(_setting("periodic-announce-frequency", str(periodic.every)))
    else:
        lines.append(_setting("periodic-announce-frequency", "0"))
    lines += [
        _setting("reportholdtime", "no"),
        _setting("servicelevel", "60"),
        _setting("setinterfacevar", "yes"),
        _setting("autopause", "no"),
    ]
    return lines


def render_queues(menu: Menu, prompt_dir: str = "ivr-aqui", source: str = "menu.yaml") -> str:
    """queues.conf for every queue of ``menu``; ``prompt_dir`` as ``IVR_PROMPT_DIR``."""
    if not PROMPT_DIR_PATTERN.match(prompt_dir):
        raise RenderError(f"invalid prompt folder {prompt_dir!r}: letters, digits, _ . / - only")
    reserved = sorted(name for name in menu.queues if name.casefold() in _RESERVED_SECTIONS)
    if reserved:
        raise RenderError(
            f"queue name {reserved[0]!r} cannot be used: [{reserved[0]}] of queues.conf holds "
            "Asterisk's global queue settings, not a queue; rename the queue in the menu"
        )
    parts = [
        _QUEUES_HEADER.format(source=conf_comment(source), version=conf_comment(menu.version)),
        _GENERAL_SECTION,
    ]
    for name, queue in menu.queues.items():
        lines = [f"[{name}]"]
        if queue.description:
            lines.append(f"; {conf_comment(queue.description)}")
        lines += _queue_lines(menu.queue_settings(name), prompt_dir)
        lines.append(f";member => PJSIP/asesor-{name}-01,0,{name} 01")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


# --- extensions.conf, manager.conf, README -----------------------------------------------


def general_queue(extensions_text: str) -> str | None:
    """The value of ``AQUI_GENERAL_QUEUE`` in the ``[globals]`` of an extensions.conf text."""
    found: str | None = None
    for section in read_conf_text(extensions_text, "extensions.conf").sections:
        if section.name.casefold() == "globals":
            for key, value in section.items:
                if key == GENERAL_QUEUE_VARIABLE:
                    found = value
    return found


def render_copy(text: str, name: str, menu: Menu, source: str) -> str:
    """A project file copied unchanged, under a header that says where it comes from."""
    header = (
        f'; {name} - copied unchanged by "ivr render" from {conf_comment(source)}, together\n'
        f"; with queues.conf for menu version {conf_comment(menu.version)}. Edit the project's "
        "file and\n; render again: rendering overwrites this copy.\n;\n"
    )
    return header + text


def render_extensions(text: str, menu: Menu, source: str = "dialplan/extensions.conf") -> str:
    """The project's extensions.conf for the rendered folder.

    Its ``AQUI_GENERAL_QUEUE`` (outages, service errors, unknown queues, overflow) must
    be one of the menu's queues, or those callers would find no queue at all.
    """
    general = general_queue(text)
    if general is None:
        raise RenderError(f"{source}: [globals] does not set {GENERAL_QUEUE_VARIABLE}")
    if general not in menu.queues:
        raise RenderError(
            f"{source}: {GENERAL_QUEUE_VARIABLE}={general} is not a queue of the menu "
            f"(queues: {', '.join(menu.queues)}): outages and overflow would find no queue; "
            "add it under 'queues:' or change the dialplan"
        )
    return render_copy(text, EXTENSIONS_CONF, menu, source)


def render_readme(menu: Menu, source: str = "menu.yaml") -> str:
    """README.txt of the rendered folder: how to install it, with the #include lines."""
    return f"""\
Línea Aquí: Asterisk configuration rendered by "ivr render" from {source}
(menu version {conf_comment(menu.version)}, {len(menu.queues)} queues). See dialplan/README.md.

Install it on the line's own Asterisk (as root):

    install -d {INSTALL_DIR}
    install -m 0644 extensions.conf queues.conf {INSTALL_DIR}/
    install -m 0640 -g asterisk manager.conf {INSTALL_DIR}/

and include the files from the stock ones, which hold nothing else:

    ; /etc/asterisk/extensions.conf  (the citizen-line contexts [linea-aqui], [linea-aqui-flow])
    #include "linea-aqui/extensions.conf"

    ; /etc/asterisk/queues.conf
    #include "linea-aqui/queues.conf"

    ; /etc/asterisk/manager.conf  (the second file holds the real AMI secret, never in git)
    #include "linea-aqui/manager.conf"
    #include "manager-ivr-secret.conf"

Then reload and check:

    asterisk -rx "dialplan reload"
    asterisk -rx "queue reload all"
    asterisk -rx "manager reload"
    ivr check --asterisk-dir /etc/asterisk

The queues are the menu's: change them in the menu and render again, never here.
"""


def render_all(
    loaded: LoadedMenu, *, prompt_dir: str = "ivr-aqui", dialplan_dir: Path
) -> dict[str, str]:
    """Every file of the install folder, by name."""
    menu = loaded.menu
    source = loaded.path.name
    texts: dict[str, str] = {}
    for name in (EXTENSIONS_CONF, MANAGER_CONF):
        path = dialplan_dir / name
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RenderError(
                f"cannot read {path} ({exc.strerror or exc}): give --dialplan, the project's "
                "dialplan/ folder"
            ) from None
    return {
        QUEUES_CONF: render_queues(menu, prompt_dir, source),
        EXTENSIONS_CONF: render_extensions(
            texts[EXTENSIONS_CONF], menu, str(dialplan_dir / EXTENSIONS_CONF)
        ),
        MANAGER_CONF: render_copy(
            texts[MANAGER_CONF], MANAGER_CONF, menu, str(dialplan_dir / MANAGER_CONF)
        ),
        README_TXT: render_readme(menu, source),
    }


def write_files(out_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write each file atomically (a temporary file renamed over it); create ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        target = out_dir / name
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o640 if name == MANAGER_CONF else 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


# --- reading an Asterisk configuration ---------------------------------------------------

Severity = Literal["error", "note"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of the cross-check; errors make ``ivr check`` exit 1."""

    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass(frozen=True, slots=True)
class Origin:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class ConfSection:
    name: str
    options: tuple[str, ...]
    origin: Origin
    items: tuple[tuple[str, str], ...]

    @property
    def is_template(self) -> bool:
        """``[name](!)``: a template only; Asterisk does not load it as a section."""
        return "!" in self.options


@dataclass
class ConfRead:
    sections: list[ConfSection] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


_HEADER = re.compile(r"^\[(?P<name>[^\]]*)\]\s*(?:\((?P<options>[^)]*)\))?$")
_ESCAPED_SEMICOLON = "\ue000"  # stands for "\;" while pyst2 reads the lines


def _without_comments(line: str, depth: int) -> tuple[str, int]:
    """``line`` without ``;`` comments and ``;-- --;`` blocks, as Asterisk's config.c reads it.

    ``\\;`` is kept as a literal semicolon (here: a placeholder). ``depth`` is the block
    comment nesting carried from the previous line.
    """
    kept: list[str] = []
    index = 0
    while index < len(line):
        if depth:
            if line.startswith("--;", index):
                depth -= 1
                index += 3
            elif line.startswith(";--", index):
                depth += 1
                index += 3
            else:
                index += 1
            continue
        char = line[index]
        if char == ";":
            if kept and kept[-1] == "\\":
                kept[-1] = _ESCAPED_SEMICOLON
                index += 1
                continue
            if line.startswith(";--", index):
                depth += 1
                index += 3
                continue
            break
        kept.append(char)
        index += 1
    return "".join(kept).strip(), depth


class _Pyst2Config(asterisk.config.Config):  # type: ignore[misc]
    """pyst2's parser on lines prepared here rather than on a file it opens itself."""

    def __init__(self, lines: list[str], name: str) -> None:
        self._prepared = lines
        super().__init__(name)

    def load(self) -> None:
        self.raw_lines = list(self._prepared)


class _Reader:
    """Preprocesses a .conf file (and its includes) for pyst2, remembering where each line is."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.lines: list[str] = []
        self.origins: list[Origin] = []
        self.options: dict[int, tuple[str, ...]] = {}
        self.findings: list[Finding] = []
        self.open_files: list[Path] = []

    def error(self, origin: Origin | str, message: str) -> None:
        self.findings.append(Finding("error", f"{origin}: {message}"))

    def note(self, origin: Origin | str, message: str) -> None:
        self.findings.append(Finding("note", f"{origin}: {message}"))

    def read_file(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            self.error(str(path), f"cannot read: {exc.strerror or exc}")
            return
        self.read_text(text, str(path), path)

    def read_text(self, text: str, name: str, path: Path | None = None) -> None:
        if path is not None and path.resolve() in self.open_files:
            self.error(name, "includes itself (directly or through another file)")
            return
        if len(self.open_files) >= _MAX_INCLUDE_DEPTH:
            self.error(name, f"more than {_MAX_INCLUDE_DEPTH} nested #include levels")
            return
        self.open_files.append(path.resolve() if path is not None else Path(name))
        depth = 0
        try:
            for number, raw in enumerate(text.splitlines(), start=1):
                line, depth = _without_comments(raw, depth)
                if line:
                    self.line(line, Origin(name, number))
        finally:
            self.open_files.pop()

    def line(self, text: str, origin: Origin) -> None:
        if text.startswith("#"):
            self.directive(text, origin)
            return
        if text.startswith("["):
            header = _HEADER.match(text)
            if header is None:
                self.error(origin, f"bad section header {text!r}: Asterisk refuses the file")
                return
            options = tuple(
                option.strip() for option in (header["options"] or "").split(",") if option.strip()
            )
            self.options[len(self.lines)] = options
            self.add(f"[{header['name'].strip()}]", origin)
            return
        if "=" not in text:
            self.note(origin, f"line without '=' ignored (as Asterisk does): {text!r}")
            return
        if not self.options:
            self.error(origin, "a setting before any [section]: Asterisk refuses the file")
            return
        self.add(text, origin)

    def add(self, text: str, origin: Origin) -> None:
        self.lines.append(text)
        self.origins.append(origin)

    def directive(self, text: str, origin: Origin) -> None:
        command, _, argument = text[1:].replace("\t", " ").partition(" ")
        command = command.lower()
        argument = argument.strip()
        if command == "exec":
            self.note(origin, f"#exec {argument!r} not run: what it defines is not checked")
            return
        if command not in {"include", "tryinclude"} or not argument:
            self.note(origin, f"directive ignored: {text!r}")
            return
        if len(argument) >= 2 and (argument[0], argument[-1]) in {('"', '"'), ("<", ">")}:
            argument = argument[1:-1]
        target = Path(argument)
        if not target.is_absolute():
            target = self.base_dir / target  # Asterisk: relative to its configuration folder
        matches = (
            sorted(Path(found) for found in glob.glob(str(target)))
            if glob.has_magic(str(target))
            else ([target] if target.is_file() else [])
        )
        if not matches:
            if command == "include":
                self.error(
                    origin,
                    f"#include {argument!r}: {target} not found; Asterisk refuses the whole "
                    "file when an #include is missing",
                )
            return
        for path in matches:
            self.read_file(path)

    def result(self, name: str) -> ConfRead:
        read = ConfRead(findings=self.findings)
        try:
            config = _Pyst2Config(self.lines, name)
        except asterisk.config.ParseError as exc:  # not expected: the lines are prepared
            number, message = exc.args if len(exc.args) == 2 else (1, str(exc))
            origin = self.origins[int(number) - 1] if 0 < int(number) <= len(self.origins) else name
            read.findings.append(Finding("error", f"{origin}: {message}"))
            return read
        defined: set[str] = set()
        for category in config.categories:
            index = int(category.number) - 1
            options = self.options.get(index, ())
            origin = self.origins[index]
            for option in options:
                if option not in {"!", "+"} and option.casefold() not in defined:
                    read.findings.append(
                        Finding(
                            "error",
                            f"{origin}: [{category.name}] inherits from [{option}], which is "
                            "not defined before it: Asterisk refuses the file",
                        )
                    )
            if "+" in options and category.name.casefold() not in defined:
                read.findings.append(
                    Finding(
                        "error",
                        f"{origin}: [{category.name}](+) adds to a section not defined before "
                        "it: Asterisk refuses the file",
                    )
                )
            defined.add(category.name.casefold())
            items = tuple(
                (
                    str(item.name),
                    str(item.value).strip().replace(_ESCAPED_SEMICOLON, ";"),
                )
                for item in category.items
            )
            read.sections.append(ConfSection(category.name, options, origin, items))
        return read


def read_conf(path: Path, base_dir: Path | None = None) -> ConfRead:
    """Read an Asterisk .conf file and the files it includes (paths relative to ``base_dir``)."""
    reader = _Reader(base_dir if base_dir is not None else path.parent)
    reader.read_file(path)
    return reader.result(str(path))


def read_conf_text(text: str, name: str, base_dir: Path | None = None) -> ConfRead:
    """:func:`read_conf` on text already in memory."""
    reader = _Reader(base_dir if base_dir is not None else Path())
    reader.read_text(text, name)
    return reader.result(name)


def defined_queues(read: ConfRead) -> dict[str, ConfSection]:
    """The queues a queues.conf defines, by case-folded name (app_queue compares names
    without case): every section except ``[general]`` and templates ``(!)``."""
    queues: dict[str, ConfSection] = {}
    for section in read.sections:
        key = section.name.casefold()
        if key in _RESERVED_SECTIONS or section.is_template or key in queues:
            continue
        queues[key] = section
    return queues


# --- the cross-check ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrossCheck:
    """What :func:`cross_check` found, with the counts for a summary line."""

    findings: tuple[Finding, ...]
    asterisk_queues: int
    menu_queues: int
    missing: int

    @property
    def ok(self) -> bool:
        return not any(finding.severity == "error" for finding in self.findings)


def _menu_of(menu: Menu | LoadedMenu) -> tuple[Menu, LoadedMenu | None]:
    return (menu.menu, menu) if isinstance(menu, LoadedMenu) else (menu, None)


def _where_in_menu(loaded: LoadedMenu | None, name: str) -> str:
    if loaded is None:
        return ""
    position = loaded.positions.of_key(("queues", name))
    return f" ({loaded.path}:{position.line})"


def cross_check(menu: Menu | LoadedMenu, asterisk_dir: Path) -> CrossCheck:
    """Compare the menu's queues with those of the Asterisk configuration in ``asterisk_dir``.

    Errors: the folder or its queues.conf is missing, a file Asterisk would refuse, a queue
    the menu names that Asterisk does not define, a general queue (AQUI_GENERAL_QUEUE in
    extensions.conf, when there is one) that Asterisk does not define. Notes: queues
    Asterisk defines that the menu does not name, things that could not be followed.
    """
    the_menu, loaded = _menu_of(menu)
    queues_conf = asterisk_dir / QUEUES_CONF
    if not asterisk_dir.is_dir():
        finding = Finding("error", f"{asterisk_dir}: not a folder (Asterisk's is /etc/asterisk)")
        return CrossCheck((finding,), 0, len(the_menu.queues), len(the_menu.queues))
    if not queues_conf.is_file():
        finding = Finding(
            "error",
            f"{queues_conf}: not found, so Asterisk defines no queue; is {asterisk_dir} "
            "Asterisk's configuration folder (usually /etc/asterisk)? Install the output of "
            "'ivr render' (dialplan/README.md)",
        )
        return CrossCheck((finding,), 0, len(the_menu.queues), len(the_menu.queues))
    read = read_conf(queues_conf, asterisk_dir)
    findings = list(read.findings)
    defined = defined_queues(read)
    missing = [name for name in the_menu.queues if name.casefold() not in defined]
    findings += [
        Finding(
            "error",
            f"queue {name!r} of the menu{_where_in_menu(loaded, name)} is not defined in "
            f"{queues_conf} or the files it includes: callers routed there go to the "
            "general queue, with a WARNING in Asterisk's log",
        )
        for name in missing
    ]
    named = {name.casefold() for name in the_menu.queues}
    findings += [
        Finding(
            "note",
            f"{section.origin}: Asterisk defines queue {section.name!r}, which the menu "
            "does not name",
        )
        for key, section in defined.items()
        if key not in named
    ]
    findings += _check_general_queue(asterisk_dir, defined)
    return CrossCheck(tuple(findings), len(defined), len(the_menu.queues), len(missing))


def _check_general_queue(asterisk_dir: Path, defined: dict[str, ConfSection]) -> list[Finding]:
    extensions = asterisk_dir / EXTENSIONS_CONF
    if not extensions.is_file():
        return []
    read = read_conf(extensions, asterisk_dir)
    value: tuple[str, Origin] | None = None
    for section in read.sections:
        if section.name.casefold() == "globals":
            for key, item in section.items:
                if key == GENERAL_QUEUE_VARIABLE:
                    value = (item, section.origin)
    if value is None:
        return []
    general, origin = value
    if general.casefold() in defined:
        return []
    return [
        Finding(
            "error",
            f"{extensions} (its [globals] at {origin}): {GENERAL_QUEUE_VARIABLE}={general} is "
            "not a queue Asterisk defines: callers of an outage or an overflow find no queue",
        )
    ]


def report_cross_check(
    menu: Menu | LoadedMenu, asterisk_dir: Path, out: TextIO, err: TextIO
) -> bool:
    """Run :func:`cross_check` and print it as ``ivr check --asterisk-dir`` does.

    Errors go to ``err``, notes and the OK line to ``out``; False when there is an error.
    """
    result = cross_check(menu, asterisk_dir)
    for finding in result.findings:
        print(finding, file=err if finding.severity == "error" else out)
    if result.ok:
        print(
            f"{asterisk_dir}: OK: Asterisk defines all {result.menu_queues} queues of the menu "
            f"({result.asterisk_queues} queues in all)",
            file=out,
        )
    else:
        errors = sum(finding.severity == "error" for finding in result.findings)
        missing = f", {result.missing} of the menu's queues missing" if result.missing else ""
        print(
            f"{asterisk_dir}: {errors} error{'s' if errors != 1 else ''}{missing}",
            file=err,
        )
    return result.ok
