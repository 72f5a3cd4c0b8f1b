"""Coverage is measured, not declared: what an analyzer reads decides what it examined.

A 4 s test pattern at 10 fps (64x112) with a 440 Hz tone is decoded with 2 sampled frames per
second, so sampled frame ``i`` stands for ``[0.5 i, 0.5 i + 0.5)`` and low-res frame ``j`` for
``[0.1 j, 0.1 j + 0.1)``: reading a known set of indices gives known seconds.
"""

from __future__ import annotations

import dataclasses
import subprocess

import numpy as np
import pyarrow as pa
import pytest
from helpers import make_media

from tiktok_assets.analyzers import AnalyzerContext, get_spec, run_analyzer
from tiktok_assets.analyzers.base import AnalyzerOutput, AnalyzerSpec
from tiktok_assets.media_access import AccessLog, TrackedArray, TrackedMedia, intersect_spans, merge_spans
from tiktok_assets.reconstruction import score_video
from tiktok_assets.sample_video import speak

DURATION = 4.0
COLUMNS = (pa.field("value", pa.float64()),)


@pytest.fixture(scope="module")
def pattern(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pattern")
    video = folder / "pattern.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size=64x112:rate=10:duration={DURATION}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={DURATION}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(video)],
        check=True,
    )
    media = make_media(video, folder / "media", "pattern")
    assert media.meta.frame_shape[0] == 8 and media.meta.lowres_shape[0] == 40
    return media


def spec_reading(name: str, modality: str, read, depends_on: tuple[str, ...] = ()) -> AnalyzerSpec:
    """A test analyzer that reads what ``read(media)`` reads and claims the whole video."""

    def run(media, context):
        value = float(read(media))
        return AnalyzerOutput(rows=[{"start_s": 0.0, "end_s": media.duration_s, "value": value}],
                              examined=[(0.0, media.duration_s)])

    return AnalyzerSpec(name=name, modality=modality, description="test", version="1", columns=COLUMNS, run=run,
                        depends_on=depends_on)


def run_spec(spec, media, settings, inputs=None, input_examined=None):
    context = AnalyzerContext(video_id=media.video_id, settings=settings, inputs=inputs or {},
                              input_examined=input_examined or {})
    return run_analyzer(spec, media, context)


def visual_score(media, runs: dict, specs: dict) -> float:
    video = {"video_id": media.video_id, "duration_s": media.duration_s, "has_audio": media.has_audio}
    records = [{"analyzer": n, "status": "success", "examined": [{"start_s": a, "end_s": b} for a, b in e]}
               for n, e in runs.items()]
    scores, _ = score_video(video, records, specs)
    return scores


def test_tracking_records_ints_slices_masks_arrays_and_iteration():
    data = np.arange(20 * 3).reshape(20, 3)
    log = AccessLog(20)
    view = TrackedArray(data, log)
    assert len(view) == 20 and view.shape == (20, 3) and view.dtype == data.dtype
    assert not log.read.any()  # describing the array reads nothing
    assert view[2][1] == 7 and view[-1][0] == 57
    np.testing.assert_array_equal(view[4:6, 1], [13, 16])
    np.testing.assert_array_equal(view[10:16:3], data[10:16:3])
    mask = np.zeros(20, bool)
    mask[[7]] = True
    np.testing.assert_array_equal(view[mask], data[7:8])
    np.testing.assert_array_equal(view[[8, 9]], data[8:10])
    assert log.runs() == [(2, 3), (4, 6), (7, 11), (13, 14), (19, 20)]

    log2 = AccessLog(20)
    for i, row in enumerate(TrackedArray(data, log2)):
        if i == 4:
            break
        assert row[0] == 3 * i
    assert log2.runs() == [(0, 5)]  # items 0..4 were handed out, nothing after the break

    for whole in (np.asarray, lambda v: v.mean(), lambda v: v * 2, lambda v: np.pad(v, 1), lambda v: v[..., 0],
                  lambda v: v.astype(float), lambda v: np.isfinite(v)):
        log3 = AccessLog(20)
        whole(TrackedArray(data, log3))
        assert log3.runs() == [(0, 20)]


def test_span_algebra():
    assert merge_spans([(2, 3), (0, 1), (1, 1.5), (2.5, 9)], 4.0) == [(0, 1.5), (2, 4.0)]
    assert intersect_spans([(0, 2), (3, 5)], [(1, 4)]) == [(1, 2), (3, 4)]


def test_tracked_media_maps_reads_to_seconds(pattern):
    tracked = TrackedMedia(pattern)
    tracked.frames[1]  # sampled frame 1: 0.5-1.0 s
    tracked.lowres[30:35]  # low-res frames 30..34: 3.0-3.5 s
    tracked.audio[16000:24000]  # samples: 1.0-1.5 s
    spans = tracked.read_spans()
    assert [(round(a, 2), round(b, 2)) for a, b in spans] == [(0.5, 1.5), (3.0, 3.5)]
    whole = TrackedMedia(pattern)
    assert whole.audio_path is not None  # a model handed the file reads all of it
    assert whole.read_spans() == [(0.0, pattern.duration_s)]


def test_an_analyzer_that_reads_half_the_frames_scores_half(pattern, settings):
    half = spec_reading("half_frames", "visual", lambda m: sum(float(f.mean()) for f in m.frames[:4]))
    full = spec_reading("all_frames", "visual", lambda m: sum(float(f.mean()) for f in m.frames))
    run = run_spec(half, pattern, settings)
    assert run.claimed == [(0.0, pattern.duration_s)]
    assert run.examined == [(0.0, pytest.approx(2.0, abs=0.01))]
    assert "claimed 4.0s but read only 2.0s" in run.metadata["coverage_note"]
    scores = visual_score(pattern, {"half_frames": run.examined}, {"half_frames": half})
    assert scores["visual_score"] == pytest.approx(50.0, abs=1.0)
    both = {"half_frames": run.examined, "all_frames": run_spec(full, pattern, settings).examined}
    scores = visual_score(pattern, both, {"half_frames": half, "all_frames": full})
    assert scores["visual_score"] == pytest.approx(75.0, abs=1.0)


def test_lowres_and_frames_reads_are_united(pattern, settings):
    """Sampled frames 0..3 (0-2 s) plus low-res frames 30..39 (3-4 s) examined 3 s of 4."""
    spec = spec_reading("two_streams", "visual", lambda m: float(m.frames[:4].mean() + m.lowres[30:].mean()))
    run = run_spec(spec, pattern, settings)
    assert [(round(a, 2), round(b, 2)) for a, b in run.examined] == [(0.0, 2.0), (3.0, 4.0)]


def test_a_table_only_analyzer_examines_what_its_inputs_examined(pattern, settings):
    fusion = spec_reading("fusion", "visual", lambda m: 1.0, depends_on=("upstream",))
    table = pa.table({"x": [1]})
    run = run_spec(fusion, pattern, settings, {"upstream": table}, {"upstream": [(1.0, 2.5)]})
    assert run.read == [] and run.examined == [(1.0, 2.5)]
    alone = run_spec(fusion, pattern, settings)  # no input table: nothing examined
    assert alone.examined == []


def test_step_result_share_follows_the_reads(pattern, settings):
    """The asset check `examined_whole_video` reads AnalyzerStepResult.examined_share."""
    import shutil

    from tiktok_assets.steps import run_analyzer_step

    shutil.copytree(pattern.directory, settings.media_dir / "pattern", dirs_exist_ok=True)
    third = spec_reading("first_third_lowres", "visual", lambda m: float(np.asarray(m.lowres[:13]).mean()))
    result = run_analyzer_step(settings, third, "pattern", "cpu", 1)
    assert result.examined_share == pytest.approx(1.3 / DURATION, abs=0.01)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """Silence, one espeak-ng sentence, silence, on a grey picture."""
    from helpers import encode_frames

    voice = speak("we cut the onions and fry them in a pan", "en")
    audio = np.concatenate([np.zeros(8000, np.float32), 0.8 * voice, np.zeros(8000, np.float32)])
    frames = [np.full((64, 36, 3), 90, np.uint8)] * int(audio.size / 16000 * 10 + 1)
    folder = tmp_path_factory.mktemp("spoken")
    return make_media(encode_frames(folder / "spoken.mp4", frames, 10, audio=audio), folder / "media", "spoken")


def _speech_score(media, name: str, run) -> float:
    scores = visual_score(media, {name: run.examined}, {name: get_spec(name)})
    return scores["speech_score"]


def test_speech_emotion_without_a_model_counts_zero_for_speech(spoken, settings):
    plain = dataclasses.replace(settings, speech_emotion_model=None)
    run = run_spec(get_spec("speech_emotion"), spoken, plain)
    rows = run.table.to_pylist()
    assert rows and all(r["emotion"] is None and r["pitch_mean_hz"] for r in rows)  # prosody is real
    assert run.metadata["model_status"].startswith("unavailable")
    assert run.read == [(0.0, spoken.duration_s)]  # it did read the audio ...
    assert run.examined == []  # ... but produced no label, so nothing is covered
    assert _speech_score(spoken, "speech_emotion", run) == 0.0


def test_speech_rate_without_transcript_counts_zero_for_speech(spoken, settings):
    run = run_spec(get_spec("speech_rate"), spoken, settings)
    assert run.metadata["rate_status"].startswith("unavailable: no speech_transcription")
    assert run.examined == []
    assert _speech_score(spoken, "speech_rate", run) == 0.0
