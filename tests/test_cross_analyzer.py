"""cross_analyzer_intelligence: hand-made conflicting rows give exactly the conflict rows expected;
on a generated clip of a person speaking the real people and speech analyzers agree.

Hand-written rows follow each table's schema (object_detection has no offline weights here;
written in text_overlay's schema where the clip shows no text). The media is a silent 6 s grey
clip, so only the tables speak.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from helpers import analyze, encode_frames, make_media
from people_clips import FPS, Clip, Placement, background

from tiktok_assets.analyzers import get_spec
from tiktok_assets.analyzers.base import AnalyzerContext, run_analyzer
from tiktok_assets.sample_video import speak, voiced_span

NAME = "cross_analyzer_intelligence"


def table(name: str, rows: list[dict]) -> pa.Table:
    spec = get_spec(name)
    return pa.Table.from_pylist([{"video_id": "grey", **r} for r in rows], schema=spec.schema)


def loose(rows: list[dict]) -> pa.Table:
    """A table of another branch's analyzer (not registered here): its columns as given."""
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module")
def grey(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cross")
    frames = [np.full((160, 90, 3), 128, np.uint8)] * 60
    return make_media(encode_frames(tmp / "grey.mp4", frames, 10), tmp / "media", "grey")


def cross(media, settings, inputs):
    whole = {name: [(0.0, float(media.duration_s))] for name in inputs}
    context = AnalyzerContext(video_id=media.video_id, settings=settings, inputs=inputs, input_examined=whole)
    result = run_analyzer(get_spec(NAME), media, context)
    rows = result.table.to_pylist()
    by_level: dict[str, list[dict]] = {}
    for row in rows:
        by_level.setdefault(row["level"], []).append(row)
    return by_level, result


def pose_frames(times):
    return [{"start_s": t, "end_s": t + 0.5, "level": "frame", "visible_part": "upper_body", "frames": 1}
            for t in times]


def test_person_track_where_pose_saw_nobody_is_one_conflict(grey, settings):
    # pose sees a person 0-3 s; an object track of a person runs 0-5 s: seconds 3 and 4 disagree
    pose = table("body_pose", pose_frames([0.0, 0.5, 1.0, 1.5, 2.0, 2.5]))
    boxes = [{"t": t / 2, "box": [0.2, 0.1, 0.8, 0.9], "conf": 0.9} for t in range(10)]
    objects = table("object_detection", [{"start_s": 0.0, "end_s": 5.0, "track_id": 1, "label": "person",
                                          "class_id": 0, "frames": 10, "boxes": boxes}])
    levels, run = cross(grey, settings, {"body_pose": pose, "object_detection": objects})
    assert [(c["start_s"], c["end_s"], c["kind"], c["analyzers"]) for c in levels["conflict"]] == [
        (3.0, 5.0, "person", ["body_pose", "object_detection"])]
    assert levels["conflict"][0]["detail"] == "body_pose: person no, object_detection: person yes"
    seconds = levels["second"]
    assert [s["confidence"] for s in seconds] == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]  # 6th: both say no
    assert [s["person"] for s in seconds] == [True, True, True, None, None, False]
    assert seconds[3]["conflicts"] == 1 and seconds[0]["checks"] == 1
    assert levels["video"][0]["conflicts"] == 1 and levels["video"][0]["confidence"] == pytest.approx(4 / 6, abs=1e-3)
    assert "speech_transcription" in run.metadata["missing_tables"]
    assert run.examined == [(0.0, pytest.approx(6.0, abs=0.05))]


def test_two_against_one_and_speech_music_language_cta(grey, settings):
    pose = table("body_pose", pose_frames([t / 2 for t in range(12)]))
    faces = table("face_emotion", [{"start_s": 0.0, "end_s": 6.0, "face_id": 1, "emotion": "happy"}])
    seg = table("background_segmentation", [{"start_s": t / 2, "end_s": t / 2 + 0.5, "level": "frame",
                                              "person": True, "person_share": 0.0 if t >= 8 else 0.3}
                                             for t in range(12)])
    said = "Folgt mir für mehr Rezepte und schreibt es in die Kommentare"
    words = [{"word": w, "start_s": 0.28 * i, "end_s": 0.28 * i + 0.25, "probability": 0.9}
             for i, w in enumerate(said.split())]
    transcript = table("speech_transcription", [{"start_s": 0.0, "end_s": 3.05, "language": "de", "text": said,
                                                 "words": words}])
    windows = [{"start_s": float(k), "end_s": float(k + 1), "kind": "window", "category": cat,
                "speech_score": sp, "music_score": mu}
               for k, (cat, sp, mu) in enumerate([("speech", 0.9, 0.0), ("speech", 0.8, 0.0), ("speech", 0.9, 0.0),
                                                  ("music", 0.05, 0.9), ("music", 0.05, 0.9), ("music", 0.05, 0.8)])]
    events = table("audio_environment", windows)
    beats = table("audio_analysis", [{"start_s": 0.0, "end_s": 6.0, "level": "video", "beat_times": [3.5]}])
    texts = loose([{"start_s": 0.0, "end_s": 2.0, "text": "Follow for more", "language": "en",
                    "box_x": 0.1, "box_y": 0.3, "box_w": 0.5, "box_h": 0.1}])
    levels, run = cross(grey, settings, {"body_pose": pose, "face_emotion": faces, "background_segmentation": seg,
                                         "speech_transcription": transcript, "audio_environment": events,
                                         "audio_analysis": beats, "text_overlay": texts})
    got = [(c["start_s"], c["end_s"], c["kind"]) for c in levels["conflict"]]
    # segmentation (share 0) against pose and face at 4-6 s; music: no beat within 1 s of second 5
    # while YAMNet hears music (second 2 abstains: the beat lies 0.5 s after it); German speech
    # under English text 0-2 s
    assert got == [(0.0, 2.0, "language"), (4.0, 6.0, "person"), (5.0, 6.0, "music")]
    person = next(c for c in levels["conflict"] if c["kind"] == "person")
    assert person["analyzers"] == ["background_segmentation", "body_pose", "face_emotion"]
    assert levels["second"][4]["person"] is True  # two against one
    assert levels["second"][4]["confidence"] == pytest.approx(np.mean([1 / 3, 1.0, 1.0]), abs=1e-3)
    assert levels["second"][0]["language"] == "de"
    # the CTA said at 0-3.05 s and the CTA shown at 0-2 s agree
    assert run.metadata["cta_agreements"] == 1
    assert "cta" not in {c["kind"] for c in levels["conflict"]}


def test_cta_said_but_not_shown_and_no_inputs(grey, settings):
    transcript = table("speech_transcription", [{"start_s": 4.0, "end_s": 5.5, "language": "en",
                                                 "text": "link in bio", "words": []}])
    texts = loose([{"start_s": 0.0, "end_s": 1.0, "text": "Pasta Rezept", "language": "de"}])
    levels, _ = cross(grey, settings, {"speech_transcription": transcript, "text_overlay": texts})
    assert [(c["start_s"], c["end_s"], c["kind"], c["analyzers"]) for c in levels["conflict"]] == [
        (4.0, 5.5, "cta", ["speech_transcription", "text_overlay"])]
    levels, run = cross(grey, settings, {})
    assert run.examined == [] and "conflict" not in levels
    assert all(s["confidence"] is None for s in levels["second"])


def test_real_analyzers_agree_on_a_person_speaking(tmp_path, settings):
    """A person on screen the whole clip, English speech 0.5-~2.5 s: pose, face and segmentation
    agree on the person; VAD, transcript and YAMNet agree on speech in the clearly spoken seconds."""
    clip = Clip().add(4.0, background("gradient"), [Placement(0, 100, 0.7)])
    said = speak("hello everybody and welcome to my kitchen", "en-us")
    a, b = voiced_span(said)
    said = said[int(a * 16000) : int(b * 16000)]
    audio = np.zeros(4 * 16000, np.float32)
    audio[8000 : 8000 + said.size] = 0.8 * said[: audio.size - 8000]
    media = make_media(encode_frames(tmp_path / "p.mp4", clip.frames, FPS, audio=audio), tmp_path / "m", "p")
    inputs = {}
    for name in ("body_pose", "face_emotion", "background_segmentation", "speech_transcription",
                 "audio_environment", "speech_rate"):
        _, result = analyze(name, media, settings, inputs)
        inputs[name] = result.table
    levels, run = cross(media, settings, inputs)
    assert "person" not in {c["kind"] for c in levels["conflict"]}
    assert all(s["person"] is True for s in levels["second"])
    assert "speech_activity" in levels["video"][0]["sources"]
    speech_end = 0.5 + said.size / 16000
    assert levels["second"][1]["speech"] is True and "vad=yes" in levels["second"][1]["detail"]
    inner = [s for s in levels["second"] if s["end_s"] <= speech_end - 0.3 and s["start_s"] >= 1.0]
    assert inner and all(s["confidence"] == 1.0 for s in inner)
