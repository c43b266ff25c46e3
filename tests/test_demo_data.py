"""Tests for the synthetic CREMA-D demo set: layout, format, determinism and emotion cues."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kser.config import CREMA_D_EMOTIONS
from kser.demo_data import (
    CREMA_D_SENTENCES,
    MAX_SECONDS,
    MIN_SECONDS,
    DemoSummary,
    generate_demo_dataset,
)
from kser.errors import KserError

CREMA_D_FILE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.wav$")
ACTORS, SENTENCES = 2, 1


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    """One small set shared by the read-only tests (generation is the slow part)."""
    out = tmp_path_factory.mktemp("demo")
    return out, generate_demo_dataset(out, actors=ACTORS, sentences=SENTENCES)


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _spectral_centroid(samples: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples - samples.mean())) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1.0 / sample_rate)
    return float((freqs * spectrum).sum() / spectrum.sum())


def test_names_parse_as_crema_d_and_cover_every_clip(demo: tuple[Path, DemoSummary]) -> None:
    """The crema_d layout reads labels and speakers from names only, so every name must parse."""
    out, _ = demo
    names = sorted(path.name for path in out.iterdir())
    parsed = [CREMA_D_FILE.match(name) for name in names]
    assert all(parsed), names
    found = {(m[1], m[2], m[3]) for m in parsed if m}
    expected = {
        (str(actor), sentence, emotion)
        for actor, sentence, emotion in itertools.product(
            range(1001, 1001 + ACTORS), CREMA_D_SENTENCES[:SENTENCES], CREMA_D_EMOTIONS
        )
    }
    assert found == expected
    assert len(names) == len(expected)
    assert {m[4] for m in parsed if m} == {"XX"}


def test_crema_d_layout_scans_the_demo_set(demo: tuple[Path, DemoSummary]) -> None:
    """The demo exists to feed the real pipeline: the crema_d layout must accept every file."""
    from kser.layouts import scan

    out, summary = demo
    result = scan(out, "crema_d")
    assert not result.skipped
    assert len(result.clips) == summary.num_files
    assert {clip.label for clip in result.clips} == set(CREMA_D_EMOTIONS)
    assert {clip.speaker for clip in result.clips} == {"1001", "1002"}


def test_files_are_16k_mono_pcm16_of_speech_length(demo: tuple[Path, DemoSummary]) -> None:
    """The builder and the study assume 16 kHz mono 16-bit clips of about 1.5-3 s."""
    out, _ = demo
    for path in out.iterdir():
        info = sf.info(path)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 16_000, 1), path
        assert MIN_SECONDS - 1e-3 <= info.duration <= MAX_SECONDS + 1e-3, (path, info.duration)


def test_summary_matches_what_was_written(demo: tuple[Path, DemoSummary]) -> None:
    """``make demo`` prints the summary, so it must describe the files on disk."""
    out, summary = demo
    paths = list(out.iterdir())
    assert summary.out_dir == str(out)
    assert summary.num_files == len(paths) == ACTORS * SENTENCES * len(CREMA_D_EMOTIONS)
    assert summary.num_actors == ACTORS
    assert summary.emotions == tuple(CREMA_D_EMOTIONS)
    assert summary.bytes == sum(path.stat().st_size for path in paths)
    assert summary.total_seconds == pytest.approx(sum(sf.info(path).duration for path in paths))


def test_no_clipping_and_not_silent(demo: tuple[Path, DemoSummary]) -> None:
    """Clipped clips would add distortion cues; silent ones would be useless."""
    out, _ = demo
    for path in out.iterdir():
        samples, _ = sf.read(path, dtype="int16")
        peak = int(np.abs(samples.astype(np.int32)).max())
        assert 0.01 * 32767 < peak < 0.99 * 32767, (path, peak)


def test_no_temporary_files_left(demo: tuple[Path, DemoSummary]) -> None:
    """Files are written under a temporary name and renamed; nothing else may remain."""
    out, _ = demo
    assert all(path.suffix == ".wav" and not path.name.startswith(".") for path in out.iterdir())


def test_same_arguments_give_byte_identical_files(demo: tuple[Path, DemoSummary], tmp_path: Path) -> None:
    """The demo must be reproducible anywhere, and regenerating in place must not change it."""
    out, _ = demo
    generate_demo_dataset(tmp_path, actors=ACTORS, sentences=SENTENCES)
    assert _files(tmp_path) == _files(out)
    generate_demo_dataset(tmp_path, actors=ACTORS, sentences=SENTENCES)
    assert _files(tmp_path) == _files(out)


def test_partial_generation_matches_the_full_set(demo: tuple[Path, DemoSummary], tmp_path: Path) -> None:
    """Each clip is seeded on its own, so a subset is byte-identical to the same clips of the full set."""
    out, _ = demo
    generate_demo_dataset(tmp_path, actors=1, sentences=SENTENCES)
    partial = _files(tmp_path)
    assert len(partial) == len(CREMA_D_EMOTIONS)
    full = _files(out)
    assert all(full[name] == data for name, data in partial.items())


def test_different_seed_gives_different_audio(demo: tuple[Path, DemoSummary], tmp_path: Path) -> None:
    """The seed must actually reach the signal (same names, different content)."""
    out, _ = demo
    generate_demo_dataset(tmp_path, actors=ACTORS, sentences=SENTENCES, seed=1)
    other, base = _files(tmp_path), _files(out)
    assert other.keys() == base.keys()
    assert all(other[name] != base[name] for name in base)


def test_emotion_changes_brightness_and_rate(demo: tuple[Path, DemoSummary]) -> None:
    """Emotion must be audible in spectrum and timing: SAD is darker and slower than ANG."""
    out, _ = demo

    def average(emotion: str) -> tuple[float, float]:
        centroids, durations = [], []
        for path in sorted(out.glob(f"*_{emotion}_XX.wav")):
            samples, rate = sf.read(path, dtype="float64")
            centroids.append(_spectral_centroid(samples, rate))
            durations.append(samples.size / rate)
        return float(np.mean(centroids)), float(np.mean(durations))

    sad_centroid, sad_seconds = average("SAD")
    angry_centroid, angry_seconds = average("ANG")
    assert sad_centroid < 0.8 * angry_centroid
    assert sad_seconds > angry_seconds


def test_rejects_out_of_range_arguments(tmp_path: Path) -> None:
    """Bad counts fail with one clear KserError before anything is written."""
    with pytest.raises(KserError, match="sentences"):
        generate_demo_dataset(tmp_path, sentences=len(CREMA_D_SENTENCES) + 1)
    with pytest.raises(KserError, match="actors"):
        generate_demo_dataset(tmp_path, actors=0)
    assert not any(tmp_path.iterdir())


def test_import_stays_light() -> None:
    """The generator runs in light processes: importing it must not pull in TensorFlow or Keras."""
    code = (
        "import sys, kser.demo_data; "
        "heavy = [m for m in ('tensorflow', 'keras', 'tensorflow_io') if m in sys.modules]; "
        "sys.exit(1 if heavy else 0)"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
