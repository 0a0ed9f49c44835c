"""Prompt audio bookkeeping: the manifest, staleness, and what ``ivr check`` reports.

None of these tests needs espeak-ng or sox: they work on the committed ``prompts/es/``,
on copies of it, and on hand-made data. Synthesis is tested in test_prompts_build.py.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import wave
from pathlib import Path

import pytest

from ivr.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, main
from ivr.menu.loader import load_menu
from ivr.prompts.checking import default_prompts_dir
from ivr.prompts.files import scan, wav_problem, wav_rms
from ivr.prompts.manifest import (
    MANIFEST_NAME,
    Entry,
    Manifest,
    ManifestError,
    Synthesis,
    dump_manifest,
    load_manifest,
    parse_manifest,
    text_sha256,
    write_manifest,
)
from ivr.prompts.state import (
    FileInfo,
    State,
    expected_files,
    menu_texts,
    plan_build,
    prompt_status,
    survey,
)
from ivr.prompts.synth import SYNTHESIS

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
PROMPTS = ROOT / "prompts" / "es"
VALID_BASE = Path(__file__).resolve().parent / "bad_menus" / "valid_base.yaml"
WARNING = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): warning: (?P<message>.+)$")

OTHER = Synthesis(voice="es", speed=175, pipeline=1)


def entry(text: str, name: str = "p", *, source: str = "generated", **changes: object) -> Entry:
    data: dict[str, object] = {
        "text": text,
        "text_sha256": text_sha256(text),
        "source": source,
        "synthesis": SYNTHESIS if source == "generated" else None,
        "files": {f: f"hash-of-{f}" for f in expected_files(name)},
    }
    data.update(changes)
    return Entry.model_validate(data)


def files_for(name: str = "p", **problems: str) -> dict[str, FileInfo]:
    return {
        f: FileInfo(f"hash-of-{f}", problems.get(f.rsplit(".")[-1])) for f in expected_files(name)
    }


# --- the manifest -------------------------------------------------------------


def test_text_hash_ignores_only_surrounding_blanks() -> None:
    assert text_sha256("Hola. ") == text_sha256("\n Hola.")
    assert text_sha256("Hola.") != text_sha256("Hola")
    assert text_sha256("Hola,  adiós") != text_sha256("Hola, adiós")
    # sha256 of the UTF-8 bytes, so any tool can recompute it
    assert text_sha256(" Hola.") == (
        "ee6494f54a3e6a4605ff8fd710ff6980f656385595777597db72bc71335e659f"
    )


def test_manifest_round_trips_through_stable_json(tmp_path: Path) -> None:
    manifest = Manifest().with_entries({"b": entry("B", "b"), "a": entry("A", "a")})
    path = write_manifest(tmp_path, manifest)
    assert path == tmp_path / MANIFEST_NAME
    text = path.read_text(encoding="utf-8")
    assert text == dump_manifest(manifest)
    assert text.index('"a"') < text.index('"b"')
    assert load_manifest(tmp_path) == manifest
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]  # no temporary left


def test_manifest_keeps_spanish_readable(tmp_path: Path) -> None:
    write_manifest(tmp_path, Manifest().with_entries({"p": entry("Atención médica")}))
    assert "Atención médica" in (tmp_path / MANIFEST_NAME).read_text(encoding="utf-8")


def test_no_manifest_is_an_empty_one(tmp_path: Path) -> None:
    assert load_manifest(tmp_path / "nowhere") == Manifest()


def test_a_broken_manifest_says_where() -> None:
    with pytest.raises(ManifestError) as excinfo:
        parse_manifest('{\n  "format": 1,\n  "prompts": {,}\n}\n', Path("m.json"))
    assert (excinfo.value.line, excinfo.value.col) == (3, 15)
    assert str(excinfo.value).startswith("m.json:3:15: not valid JSON")


def test_a_manifest_of_another_format_is_refused() -> None:
    with pytest.raises(ManifestError, match="format 2"):
        parse_manifest(json.dumps({"format": 2, "prompts": {}}), Path("m.json"))
    with pytest.raises(ManifestError, match=r"prompts\.p\.source"):
        parse_manifest(
            json.dumps({"prompts": {"p": {"text": "x", "text_sha256": "y", "source": "tts"}}}),
            Path("m.json"),
        )


def test_with_entries_replaces_and_drops() -> None:
    manifest = Manifest().with_entries({"a": entry("A", "a"), "b": entry("B", "b")})
    changed = manifest.with_entries({"a": entry("A2", "a")}, drop={"b"})
    assert set(changed.prompts) == {"a"}
    assert changed.prompts["a"].text == "A2"
    assert set(manifest.prompts) == {"a", "b"}  # frozen: the original is untouched


# --- one prompt's state -----------------------------------------------------------


def test_a_prompt_whose_audio_matches_its_text_is_ok() -> None:
    status = prompt_status("p", "Hola.", entry("Hola."), files_for(), SYNTHESIS)
    assert (status.state, status.reason, status.source) == (State.OK, "", "generated")


def test_a_changed_text_is_stale() -> None:
    status = prompt_status("p", "Hola de nuevo.", entry("Hola."), files_for(), SYNTHESIS)
    assert status.state is State.STALE
    assert status.reason == "text changed since its audio was built"


def test_other_synthesis_settings_make_generated_audio_stale_but_not_recordings() -> None:
    generated = prompt_status("p", "Hola.", entry("Hola.", synthesis=OTHER), files_for(), OTHER)
    assert generated.state is State.OK
    generated = prompt_status("p", "Hola.", entry("Hola.", synthesis=OTHER), files_for(), SYNTHESIS)
    assert (generated.state, generated.reason) == (
        State.STALE,
        "built with other synthesis settings",
    )
    recorded = prompt_status(
        "p", "Hola.", entry("Hola.", source="recorded"), files_for(), SYNTHESIS
    )
    assert recorded.state is State.OK
    recorded = prompt_status(
        "p", "Adiós.", entry("Hola.", source="recorded"), files_for(), SYNTHESIS
    )
    assert (recorded.state, recorded.reason) == (
        State.STALE,
        "text changed since its audio was recorded",
    )


def test_no_audio_at_all_is_missing() -> None:
    status = prompt_status("p", "Hola.", None, {}, SYNTHESIS)
    assert (status.state, status.reason, status.source) == (
        State.MISSING,
        "no audio (p.ulaw and p.wav)",
        None,
    )


def test_one_file_gone_is_missing_even_with_a_manifest_entry() -> None:
    files = files_for()
    del files["p.ulaw"]
    status = prompt_status("p", "Hola.", entry("Hola."), files, SYNTHESIS)
    assert (status.state, status.reason) == (State.MISSING, "p.ulaw is missing")


def test_missing_wins_over_stale() -> None:
    status = prompt_status("p", "Otro texto.", entry("Hola."), {}, SYNTHESIS)
    assert status.state is State.MISSING


def test_an_unplayable_file_is_invalid() -> None:
    files = files_for(wav="44100 Hz, 2 channels, 16-bit")
    status = prompt_status("p", "Hola.", entry("Hola."), files, SYNTHESIS)
    assert (status.state, status.reason) == (State.INVALID, "p.wav: 44100 Hz, 2 channels, 16-bit")


def test_files_replaced_by_hand_are_modified() -> None:
    files = files_for()
    files["p.wav"] = FileInfo("another-hash")
    status = prompt_status("p", "Hola.", entry("Hola."), files, SYNTHESIS)
    assert (status.state, status.reason) == (
        State.MODIFIED,
        "p.wav changed since the manifest was written",
    )
    status = prompt_status("p", "Hola.", None, files_for(), SYNTHESIS)
    assert status.state is State.MODIFIED
    assert "not in the manifest" in status.reason


def test_prompt_names_with_folders_map_to_nested_files() -> None:
    assert expected_files("temporada/aviso") == ("temporada/aviso.wav", "temporada/aviso.ulaw")


# --- the whole folder -----------------------------------------------------------


def test_survey_keeps_menu_order_and_finds_orphans() -> None:
    texts = {"b": "Bé.", "a": "A.", "x/y": "Equis."}
    manifest = Manifest().with_entries(
        {"a": entry("A.", "a"), "b": entry("Bé.", "b"), "viejo": entry("Viejo.", "viejo")}
    )
    files = {
        **files_for("a"),
        **files_for("b"),
        "otro.wav": FileInfo("h"),
        "README.txt": FileInfo("h"),
    }
    result = survey(texts, manifest, files, SYNTHESIS)
    assert [(p.name, p.state) for p in result.prompts] == [
        ("b", State.OK),
        ("a", State.OK),
        ("x/y", State.MISSING),
    ]
    assert [(o.name, o.files, o.in_manifest) for o in result.orphans] == [
        ("otro", ("otro.wav",), False),
        ("viejo", (), True),
    ]
    assert [p.name for p in result.problems] == ["x/y"]


def test_plan_rebuilds_only_generated_missing_and_stale_prompts() -> None:
    texts = {
        "ok": "Ok.",
        "new": "Nuevo.",
        "edited": "Editado.",
        "rec": "Grabado 2.",
        "hand": "A mano.",
    }
    manifest = Manifest().with_entries(
        {
            "ok": entry("Ok.", "ok"),
            "edited": entry("Antes.", "edited"),
            "rec": entry("Grabado.", "rec", source="recorded"),
            "hand": entry("A mano.", "hand"),
        }
    )
    files = {**files_for("ok"), **files_for("edited"), **files_for("rec"), **files_for("hand")}
    files["hand.wav"] = FileInfo("a recording copied over it")
    result = survey(texts, manifest, files, SYNTHESIS)
    plan = plan_build(result)
    assert plan.build == ("new", "edited")
    assert plan.up_to_date == ("ok",)
    assert [name for name, _ in plan.skipped] == ["rec", "hand"]
    rec_why, hand_why = (why for _, why in plan.skipped)
    assert "ivr prompts import rec FILE" in rec_why
    assert "build --force --only rec" in rec_why
    assert "ivr prompts import hand FILE" in hand_why

    assert plan_build(result, force=True).build == tuple(texts)
    only = plan_build(result, only=["edited", "ok"])
    assert (only.build, only.up_to_date, only.skipped) == (("edited",), ("ok",), ())


def test_the_menu_texts_are_stripped_and_in_file_order() -> None:
    texts = menu_texts(load_menu(CONFIG).menu)
    assert list(texts)[:2] == ["bienvenida", "aviso-privacidad"]
    assert texts["proxima-apertura"] == "Le atenderemos a partir del"
    assert all(text == text.strip() for text in texts.values())


@pytest.mark.parametrize(
    ("menu", "folder"),
    [
        ("config/menu.yaml", "prompts/es"),
        ("/srv/ivr/config/menu.yaml", "/srv/ivr/prompts/es"),
        ("menu.yaml", "../prompts/es"),
    ],
)
def test_the_default_prompts_folder_is_beside_the_menus_folder(menu: str, folder: str) -> None:
    assert default_prompts_dir(Path(menu)) == Path(folder)


# --- the committed audio ----------------------------------------------------------


def test_the_committed_prompts_are_up_to_date_with_the_menu() -> None:
    """An edited text without `ivr prompts build` fails here (and in `ivr check`)."""
    texts = menu_texts(load_menu(CONFIG).menu)
    result = survey(texts, load_manifest(PROMPTS), scan(PROMPTS), SYNTHESIS)
    problems = [f"{p.name}: {p.state.value}: {p.reason}" for p in result.problems]
    assert problems == [], "run: ivr prompts build"
    assert result.orphans == (), "run: ivr prompts build --prune"


def test_every_committed_prompt_is_8khz_mono_16bit_and_not_silent() -> None:
    wavs = sorted(PROMPTS.rglob("*.wav"))
    assert len(wavs) == len(menu_texts(load_menu(CONFIG).menu))
    for path in wavs:
        assert wav_problem(path) is None, path
        with wave.open(str(path), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            frames = wav.getnframes()
        assert frames > 8000 // 2, f"{path.name}: under half a second"
        assert wav_rms(path) > 0.02, f"{path.name} is (nearly) silent"
        # raw µ-law: one byte per sample, the same samples as the WAV
        assert path.with_suffix(".ulaw").stat().st_size == frames, path.name


# --- `ivr check` on a copy of the line ------------------------------------------------


def check(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", *args], out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def line_copy(tmp_path: Path) -> Path:
    """A copy of config/ and prompts/es/ as a deployment would have them."""
    shutil.copytree(CONFIG, tmp_path / "config")
    shutil.copytree(PROMPTS, tmp_path / "prompts" / "es")
    return tmp_path


def line_of(menu: Path, prefix: str) -> tuple[int, str]:
    lines = menu.read_text(encoding="utf-8").splitlines()
    [number] = [n for n, line in enumerate(lines, start=1) if line.startswith(prefix)]
    return number, lines[number - 1]


def warnings(err: str) -> list[tuple[str, int, int, str]]:
    found = []
    for line in err.splitlines():
        match = WARNING.match(line)
        if match:
            found.append((match["file"], int(match["line"]), int(match["col"]), match["message"]))
    return found


def test_check_the_shipped_line_reports_no_prompt_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = check("config", "--strict")
    assert (code, err) == (EXIT_OK, "")
    assert out.count("\n") == 1


def test_check_reports_a_changed_text_as_stale_at_its_line(line_copy: Path) -> None:
    menu = line_copy / "config" / "menu.yaml"
    text = menu.read_text(encoding="utf-8")
    old = "  opcion-cea: Para la Comisión Estatal de Aguas, marque 4.\n"
    assert text.count(old) == 1
    menu.write_text(text.replace(old, old.replace("Para la", "Para llamar a la")), encoding="utf-8")
    line, content = line_of(menu, "  opcion-cea:")

    code, out, err = check(str(line_copy / "config"))
    assert code == EXIT_OK
    assert ": OK: line 4421015205 " in out
    [(file, number, col, message)] = warnings(err)
    assert (file, number) == (str(menu), line)
    assert content[col - 1 :].startswith("Para llamar a la")
    assert message == (
        "prompt 'opcion-cea': stale: text changed since its audio was built; "
        "run 'ivr prompts build'"
    )
    assert (
        err.splitlines()[-1] == f"{menu}: 1 prompt audio warning ({line_copy / 'prompts' / 'es'})"
    )

    code, _, strict_err = check(str(line_copy / "config"), "--strict")
    assert (code, strict_err) == (EXIT_INVALID, err)


def test_check_reports_a_deleted_audio_file_as_missing(line_copy: Path) -> None:
    (line_copy / "prompts" / "es" / "opcion-qrobot.ulaw").unlink()
    (line_copy / "prompts" / "es" / "bienvenida.wav").unlink()
    (line_copy / "prompts" / "es" / "bienvenida.ulaw").unlink()
    menu = line_copy / "config" / "menu.yaml"
    welcome, _ = line_of(menu, "  bienvenida:")
    qrobot, _ = line_of(menu, "  opcion-qrobot:")

    code, _, err = check(str(menu))
    assert code == EXIT_OK
    found = warnings(err)
    assert [(number, message) for _, number, _, message in found] == [
        (welcome, "prompt 'bienvenida': missing: no audio (bienvenida.ulaw and bienvenida.wav); "
         "run 'ivr prompts build'"),
        (qrobot, "prompt 'opcion-qrobot': missing: opcion-qrobot.ulaw is missing; "
         "run 'ivr prompts build'"),
    ]  # fmt: skip
    # A folded text (">-") is reported at its first line, where the text starts.
    assert found[0][2] == len("  bienvenida: ") + 1
    assert check(str(menu), "--strict")[0] == EXIT_INVALID


def test_check_reports_audio_replaced_by_hand(line_copy: Path) -> None:
    folder = line_copy / "prompts" / "es"
    shutil.copy(folder / "despedida.wav", folder / "transferencia.wav")
    shutil.copy(folder / "despedida.ulaw", folder / "transferencia.ulaw")
    _, _, err = check(str(line_copy / "config"))
    [(_, _, _, message)] = warnings(err)
    assert message.startswith(
        "prompt 'transferencia': modified: transferencia.ulaw and transferencia.wav changed "
        "since the manifest was written; if it is a recording, run 'ivr prompts import "
        "transferencia FILE'"
    )


def test_check_reports_audio_asterisk_cannot_play(line_copy: Path) -> None:
    path = line_copy / "prompts" / "es" / "despedida.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44100)
        wav.writeframes(b"\x01\x00" * 2 * 44100)
    _, _, err = check(str(line_copy / "config"))
    [(_, _, _, message)] = warnings(err)
    assert message.startswith(
        "prompt 'despedida': invalid: despedida.wav: 44100 Hz, 2 channels, 16-bit: "
        "Asterisk needs 8000 Hz, 1 channel, 16-bit"
    )


def test_check_notes_audio_of_prompts_the_menu_dropped(line_copy: Path) -> None:
    folder = line_copy / "prompts" / "es"
    shutil.copy(folder / "despedida.wav", folder / "viejo.wav")
    code, _, err = check(str(line_copy / "config"), "--strict")
    assert code == EXIT_OK  # a note, not a warning
    assert err.splitlines() == [
        f"{folder / 'viejo.wav'}: note: audio for prompt 'viejo', which the menu does not "
        "define; 'ivr prompts build --prune' removes it"
    ]


def test_check_reports_a_broken_manifest_with_its_position(line_copy: Path) -> None:
    manifest = line_copy / "prompts" / "es" / MANIFEST_NAME
    manifest.write_text('{"format": 1,\n "prompts": {]\n', encoding="utf-8")
    code, _, err = check(str(line_copy / "config"))
    assert code == EXIT_OK
    first, *rest = err.splitlines()
    assert first.startswith(f"{manifest}:2:14: warning: cannot read the prompts manifest")
    # without a manifest nothing vouches for the audio: every prompt is reported
    assert len(warnings("\n".join(rest))) == len(menu_texts(load_menu(CONFIG).menu))


def test_check_with_an_explicit_prompts_folder(line_copy: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = check(str(line_copy / "config"), "--prompts", str(empty))
    assert code == EXIT_OK
    assert len(warnings(err)) == len(menu_texts(load_menu(CONFIG).menu))
    count = len(menu_texts(load_menu(CONFIG).menu))
    assert err.splitlines()[-1].endswith(f"{count} prompt audio warnings ({empty})")
    code, _, err = check(str(VALID_BASE), "--prompts", str(line_copy / "prompts" / "es"))
    assert code == EXIT_OK
    assert " note: audio for prompt 'bienvenida'," not in err  # valid_base defines it


def test_check_without_a_prompts_folder_says_audio_was_not_checked() -> None:
    code, out, err = check(str(VALID_BASE))
    assert (code, err) == (EXIT_OK, "")
    folder = VALID_BASE.parent.parent / "prompts" / "es"
    assert out.splitlines()[1] == (
        f"{VALID_BASE}: prompt audio not checked: no folder {folder} (--prompts DIR names it)"
    )
    code, _, err = check(str(VALID_BASE), "--strict")
    assert code == EXIT_INVALID
    assert "missing: no audio" in err


def test_check_of_an_invalid_menu_does_not_look_at_audio(line_copy: Path) -> None:
    menu = line_copy / "config" / "menu.yaml"
    menu.write_text(menu.read_text(encoding="utf-8").replace("queue: qrobot", "qeue: qrobot"))
    (line_copy / "prompts" / "es" / "bienvenida.wav").unlink()
    code, out, err = check(str(menu))
    assert (code, out) == (EXIT_INVALID, "")
    assert "warning" not in err


# --- `ivr prompts status` and usage -----------------------------------------------------


def test_prompts_status_lists_every_prompt(line_copy: Path) -> None:
    (line_copy / "prompts" / "es" / "despedida.ulaw").unlink()
    out, err = io.StringIO(), io.StringIO()
    code = main(["prompts", "status", "--config", str(line_copy / "config")], out, err)
    assert (code, err.getvalue()) == (EXIT_OK, "")
    lines = out.getvalue().splitlines()
    count = len(menu_texts(load_menu(CONFIG).menu))
    assert len(lines) == count + 1
    assert lines[0].split() == ["ok", "generated", "bienvenida"]
    [not_ok] = [line for line in lines[:-1] if not line.startswith("ok ")]
    assert not_ok.split() == [
        "missing", "generated", "despedida", "despedida.ulaw", "is", "missing",
    ]  # fmt: skip
    assert (
        lines[-1] == f"{line_copy / 'prompts' / 'es'}: {count} prompts: {count - 1} ok, 1 missing"
    )


def test_prompts_build_refuses_unknown_names(line_copy: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["prompts", "build", "--config", str(line_copy / "config"), "--only", "despedidas"],
        out,
        err,
    )
    assert code == EXIT_USAGE
    assert err.getvalue() == (
        "ivr prompts build: the menu defines no prompt 'despedidas'; did you mean 'despedida'?\n"
    )


def test_prompts_commands_report_an_invalid_menu() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["prompts", "status", "--config", str(VALID_BASE.parent / "missing_key.yaml")], out, err
    )
    assert code == EXIT_INVALID
    assert "missing required key" in err.getvalue()
