"""``ivr prompts build`` and ``import``: what gets rebuilt, and the audio espeak-ng and sox make.

The build logic runs first with a stand-in speaker (no tools needed). The synthesis
tests need espeak-ng and sox (``make system-deps`` installs both; CI runs it, so they
never skip there) and skip only when one of them is absent.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import wave
from array import array
from pathlib import Path

import pytest

from ivr.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, main
from ivr.menu.loader import load_menu
from ivr.prompts.build import BuildResult, build_prompts, import_recording
from ivr.prompts.files import file_sha256, wav_rms
from ivr.prompts.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    load_manifest,
    text_sha256,
    write_manifest,
)
from ivr.prompts.synth import SYNTHESIS, SynthesisError, ToolMissingError, Tools, find_tools

ROOT = Path(__file__).resolve().parent.parent
needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
needs_tts = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng or sox is not installed (make system-deps installs them)",
)
FAKE_TOOLS = Tools(sox="sox", espeak="espeak-ng", versions={"espeak-ng": "0", "sox": "0"})


def prompt_count() -> int:
    return len(load_menu(ROOT / "config").menu.prompts)


def write_tone(path: Path, *, rate: int = 8000, channels: int = 1, seconds: float = 0.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(rate * seconds)
    samples = [int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames)]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<h", s) * channels for s in samples))


class FakeSpeaker:
    """Writes a tone per prompt, as the real speaker writes speech; can fail on request."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.spoken: list[tuple[str, str]] = []
        self.fail = fail or set()

    def __call__(self, name: str, text: str, directory: Path, tools: Tools) -> dict[str, str]:
        assert tools is FAKE_TOOLS
        if name in self.fail:
            raise SynthesisError(f"prompt {name!r}: espeak-ng failed: boom")
        self.spoken.append((name, text))
        write_tone(directory / f"{name}.wav")
        (directory / f"{name}.ulaw").write_bytes(b"\x7f" * 4000)
        return {f: file_sha256(directory / f) for f in (f"{name}.ulaw", f"{name}.wav")}


def build(
    texts: dict[str, str],
    folder: Path,
    speaker: FakeSpeaker,
    *,
    force: bool = False,
    only: tuple[str, ...] | list[str] = (),
    prune: bool = False,
) -> BuildResult:
    return build_prompts(
        texts, folder, force=force, only=only, prune=prune, speaker=speaker, tools=FAKE_TOOLS
    )


# --- what a build redoes ------------------------------------------------------------


def test_a_first_build_makes_every_prompt_and_records_it(tmp_path: Path) -> None:
    texts = {"hola": "Hola.", "menu/uno": "Marque 1."}
    speaker = FakeSpeaker()
    result = build(texts, tmp_path / "es", speaker)
    assert result.built == ("hola", "menu/uno")
    assert sorted(speaker.spoken) == [("hola", "Hola."), ("menu/uno", "Marque 1.")]
    assert result.manifest_written
    manifest = load_manifest(tmp_path / "es")
    entry = manifest.prompts["menu/uno"]
    assert (entry.source, entry.text, entry.text_sha256) == (
        "generated",
        "Marque 1.",
        text_sha256("Marque 1."),
    )
    assert entry.synthesis == SYNTHESIS
    assert entry.tools == {"espeak-ng": "0", "sox": "0"}
    assert set(entry.files) == {"menu/uno.wav", "menu/uno.ulaw"}
    assert entry.files["menu/uno.wav"] == file_sha256(tmp_path / "es" / "menu" / "uno.wav")


def test_a_second_build_does_nothing(tmp_path: Path) -> None:
    texts = {"hola": "Hola.", "adios": "Adiós."}
    build(texts, tmp_path, FakeSpeaker())
    before = (tmp_path / MANIFEST_NAME).read_bytes()
    speaker = FakeSpeaker()
    result = build(texts, tmp_path, speaker)
    assert (result.built, speaker.spoken, result.manifest_written) == ((), [], False)
    assert result.plan.up_to_date == ("hola", "adios")
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before


def test_only_the_changed_and_the_missing_prompts_are_rebuilt(tmp_path: Path) -> None:
    build({"a": "A.", "b": "Be.", "c": "Ce."}, tmp_path, FakeSpeaker())
    (tmp_path / "c.ulaw").unlink()
    speaker = FakeSpeaker()
    result = build({"a": "A.", "b": "Be larga.", "c": "Ce.", "d": "De."}, tmp_path, speaker)
    assert result.built == ("b", "c", "d")
    assert sorted(name for name, _ in speaker.spoken) == ["b", "c", "d"]
    assert load_manifest(tmp_path).prompts["b"].text == "Be larga."


def test_force_and_only(tmp_path: Path) -> None:
    texts = {"a": "A.", "b": "Be."}
    build(texts, tmp_path, FakeSpeaker())
    assert build(texts, tmp_path, FakeSpeaker(), force=True).built == ("a", "b")
    assert build(texts, tmp_path, FakeSpeaker(), force=True, only=["b"]).built == ("b",)


def test_one_failure_does_not_stop_the_others(tmp_path: Path) -> None:
    result = build({"a": "A.", "b": "Be.", "c": "Ce."}, tmp_path, FakeSpeaker(fail={"b"}))
    assert result.built == ("a", "c")
    assert result.failed == (("b", "prompt 'b': espeak-ng failed: boom"),)
    assert set(load_manifest(tmp_path).prompts) == {"a", "c"}


def test_recorded_audio_is_never_overwritten_without_force(tmp_path: Path) -> None:
    build({"a": "A."}, tmp_path, FakeSpeaker())
    manifest = load_manifest(tmp_path)
    recorded = manifest.prompts["a"].model_copy(update={"source": "recorded", "synthesis": None})
    write_manifest(tmp_path, manifest.with_entries({"a": recorded}))
    before = (tmp_path / "a.wav").read_bytes()

    result = build({"a": "A, con otro texto."}, tmp_path, FakeSpeaker())
    assert result.built == ()
    [(name, why)] = result.plan.skipped
    assert name == "a"
    assert why.startswith("recorded audio, text changed since its audio was recorded")
    assert (tmp_path / "a.wav").read_bytes() == before

    result = build({"a": "A, con otro texto."}, tmp_path, FakeSpeaker(), force=True)
    assert result.built == ("a",)
    assert load_manifest(tmp_path).prompts["a"].source == "generated"


def test_audio_copied_in_by_hand_is_kept(tmp_path: Path) -> None:
    write_tone(tmp_path / "a.wav")
    (tmp_path / "a.ulaw").write_bytes(b"\x7f" * 4000)
    result = build({"a": "A."}, tmp_path, FakeSpeaker())
    assert result.built == ()
    assert "not in the manifest" in result.plan.skipped[0][1]


def test_prune_removes_audio_the_menu_no_longer_names(tmp_path: Path) -> None:
    build({"a": "A.", "viejo": "Viejo."}, tmp_path, FakeSpeaker())
    write_tone(tmp_path / "suelto.wav")
    result = build({"a": "A."}, tmp_path, FakeSpeaker())
    assert [o.name for o in result.orphans] == ["suelto", "viejo"]
    assert (tmp_path / "viejo.wav").exists()

    result = build({"a": "A."}, tmp_path, FakeSpeaker(), prune=True)
    assert sorted(result.pruned) == ["suelto.wav", "viejo.ulaw", "viejo.wav"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ulaw", "a.wav", MANIFEST_NAME]
    assert set(load_manifest(tmp_path).prompts) == {"a"}


def test_a_damaged_manifest_stops_a_build_unless_forced(tmp_path: Path) -> None:
    build({"a": "A."}, tmp_path, FakeSpeaker())
    (tmp_path / MANIFEST_NAME).write_text("{", encoding="utf-8")
    with pytest.raises(ManifestError, match="not valid JSON"):
        build({"a": "A."}, tmp_path, FakeSpeaker())
    assert build({"a": "A."}, tmp_path, FakeSpeaker(), force=True).built == ("a",)
    assert set(load_manifest(tmp_path).prompts) == {"a"}


# --- missing tools --------------------------------------------------------------------


def test_missing_tools_name_the_debian_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as excinfo:
        find_tools()
    assert str(excinfo.value) == (
        "espeak-ng and sox not found: install the Debian packages espeak-ng and sox: "
        "apt-get install espeak-ng sox"
    )
    with pytest.raises(ToolMissingError, match=r"^sox not found"):
        find_tools(espeak=False)


def test_prompts_build_without_the_tools_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    out, err = io.StringIO(), io.StringIO()
    code = main(["prompts", "build", "--config", str(tmp_path / "config")], out, err)
    assert (code, out.getvalue()) == (EXIT_INVALID, "")
    assert "install the Debian packages espeak-ng and sox" in err.getvalue()
    assert not (tmp_path / "prompts" / "es" / MANIFEST_NAME).exists()


def test_a_build_with_nothing_to_do_needs_no_tools(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A fresh install (no espeak-ng) with the committed audio: nothing to do, no error."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "prompts" / "es", tmp_path / "prompts" / "es")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    out, err = io.StringIO(), io.StringIO()
    code = main(["prompts", "build", "--config", str(tmp_path / "config")], out, err)
    assert (code, err.getvalue()) == (EXIT_OK, "")
    folder = tmp_path / "prompts" / "es"
    assert (
        out.getvalue() == f"{folder}: 0 built, {prompt_count()} up to date, 0 skipped, 0 failed\n"
    )


# --- real synthesis ---------------------------------------------------------------------


def ulaw_to_linear(byte: int) -> int:
    """G.711 µ-law decoding (the inverse of what sox writes)."""
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    return -(magnitude - 0x84) if sign else magnitude - 0x84


def ulaw_rms(path: Path) -> float:
    samples = [ulaw_to_linear(b) for b in path.read_bytes()]
    return math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768


def wav_samples(path: Path) -> array[int]:
    with wave.open(str(path), "rb") as wav:
        return array("h", wav.readframes(wav.getnframes()))


@needs_tts
def test_synthesis_makes_8khz_mono_16bit_audio_that_is_not_silent(tmp_path: Path) -> None:
    texts = {
        "opcion-reemplacamiento": "Para Reemplacamiento, marque 1.",
        "avisos/lluvias": "Por la temporada de lluvias, la Comisión Estatal de Aguas le atiende.",
    }
    result = build_prompts(texts, tmp_path)
    assert (result.built, result.failed) == (tuple(texts), ())
    for name in texts:
        wav_path, ulaw_path = tmp_path / f"{name}.wav", tmp_path / f"{name}.ulaw"
        with wave.open(str(wav_path), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert wav.getcomptype() == "NONE"
            frames = wav.getnframes()
        assert frames > 8000, f"{name}: under a second of speech"
        rms = wav_rms(wav_path)
        assert rms > 0.02, f"{name}: RMS {rms} is too quiet"
        peak = max(abs(s) for s in wav_samples(wav_path)) / 32768
        assert 0.6 < peak < 0.75, f"{name}: peak {peak} not normalised to -3 dBFS"
        # µ-law: one byte per sample of the same audio
        assert ulaw_path.stat().st_size == frames
        assert ulaw_rms(ulaw_path) == pytest.approx(rms, rel=0.05)
    manifest = load_manifest(tmp_path)
    assert set(manifest.prompts) == set(texts)
    assert manifest.prompts["avisos/lluvias"].tools.keys() == {"espeak-ng", "sox"}


@needs_tts
def test_synthesis_is_repeatable(tmp_path: Path) -> None:
    """The same text and tools give the same bytes, so a rebuild leaves git with no diff."""
    texts = {"hola": "Gracias por llamar al Centro de Llamadas Aquí."}
    build_prompts(texts, tmp_path / "one")
    build_prompts(texts, tmp_path / "two")
    for file in ("hola.wav", "hola.ulaw"):
        assert (tmp_path / "one" / file).read_bytes() == (tmp_path / "two" / file).read_bytes()


@needs_tts
def test_text_without_speech_fails_clearly(tmp_path: Path) -> None:
    result = build_prompts({"nada": "..."}, tmp_path)
    [(name, why)] = result.failed
    assert name == "nada"
    assert "silent" in why
    assert not list(tmp_path.glob("*.wav"))
    assert not list(tmp_path.glob(".*"))


@needs_tts
def test_ivr_prompts_build_after_a_text_edit(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "prompts" / "es", tmp_path / "prompts" / "es")
    menu = tmp_path / "config" / "menu.yaml"
    old = "  opcion-reemplacamiento: Para reemplacamiento, marque 2.\n"
    text = menu.read_text(encoding="utf-8")
    assert text.count(old) == 1
    menu.write_text(text.replace(old, old.replace("Para", "Para trámites de")), encoding="utf-8")
    folder = tmp_path / "prompts" / "es"
    before = (folder / "opcion-cea.wav").read_bytes()

    out, err = io.StringIO(), io.StringIO()
    code = main(["prompts", "build", "--config", str(menu)], out, err)
    assert (code, err.getvalue()) == (EXIT_OK, "")
    assert out.getvalue().splitlines() == [
        f"built {folder / 'opcion-reemplacamiento'}.wav and .ulaw: "
        "'Para trámites de reemplacamiento, marque 2.'",
        f"{folder}: 1 built, {prompt_count() - 1} up to date, 0 skipped, 0 failed; "
        "manifest written",
    ]
    assert (folder / "opcion-cea.wav").read_bytes() == before
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", "--strict", str(menu)], out, err) == EXIT_OK
    assert err.getvalue() == ""


# --- importing a recording ----------------------------------------------------------------


@needs_sox
def test_import_converts_a_recording_and_marks_it(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "prompts" / "es", tmp_path / "prompts" / "es")
    studio = tmp_path / "estudio" / "despedida-44k.wav"
    write_tone(studio, rate=44100, channels=2, seconds=1.0)
    folder = tmp_path / "prompts" / "es"

    out, err = io.StringIO(), io.StringIO()
    args = ["prompts", "import", "despedida", str(studio), "--config", str(tmp_path / "config")]
    assert main(args, out, err) == EXIT_OK, err.getvalue()
    assert out.getvalue() == (
        f"imported {studio} as 'despedida' (recorded): "
        f"{folder / 'despedida.ulaw'} and {folder / 'despedida.wav'}\n"
    )
    entry = load_manifest(folder).prompts["despedida"]
    assert (entry.source, entry.recorded_from, entry.synthesis) == (
        "recorded",
        "despedida-44k.wav",
        None,
    )
    with wave.open(str(folder / "despedida.wav"), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        # 1 s of tone, plus the 0.1 s and 0.3 s of padding
        assert wav.getnframes() == 8000 + 800 + 2400
    assert (folder / "despedida.ulaw").stat().st_size == 8000 + 800 + 2400
    assert wav_rms(folder / "despedida.wav") > 0.1

    out, err = io.StringIO(), io.StringIO()
    assert main(["check", "--strict", str(tmp_path / "config")], out, err) == EXIT_OK
    assert err.getvalue() == ""


@needs_sox
def test_import_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    texts = {"a": "A."}
    with pytest.raises(SynthesisError, match="no such file"):
        import_recording(texts, tmp_path, "a", tmp_path / "nope.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all")
    with pytest.raises(SynthesisError, match="sox failed"):
        import_recording(texts, tmp_path, "a", garbage)
    assert load_manifest(tmp_path) == Manifest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.wav"]


def test_import_of_a_prompt_the_menu_does_not_define(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    config = str(ROOT / "config")
    code = main(
        ["prompts", "import", "despedidas", str(tmp_path / "x.wav"), "--config", config], out, err
    )
    assert code == EXIT_USAGE
    assert "did you mean 'despedida'?" in err.getvalue()
