"""composition_analysis on the astronaut photo placed at known positions and sizes on a 360x640
canvas (``people_clips``): placement, thirds, centring, headroom, size and framing come out as
placed; hand-written text_overlay rows inside and outside TikTok's UI zones are classified right.

Truth from the hand annotation of the photo (people_clips: face (180, 80)-(270, 180), eyes at
y ~ 102). The face boxes come from the real faces pass (MediaPipe, run by eye_tracking), poses
from the real body_pose, shots from the real cut_analysis.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from helpers import analyze, encode_frames, make_media
from people_clips import FPS, Clip, H, Placement, W, background

from tiktok_assets.analyzers import get_spec
from tiktok_assets.analyzers.base import AnalyzerContext, run_analyzer
from tiktok_assets.analyzers.composition_analysis import ui_overlap

# (name, placement, expected placement label, framing, headroom in px)
SHOTS = (
    # face centre x = 75 + (225 - 120) = 180 (centre); face top 100 + 60 = 160 px
    ("centred", Placement(75, 100, 1.0, crop=(120, 20, 330, 400)), "centred", "medium", 160),
    # face centre x = 15 + 105 = 120 (left third line); eyes at 131 + 82 = 213 = 640 / 3
    ("thirds", Placement(15, 131, 1.0, crop=(120, 20, 330, 400)), "left_third", "medium", 191),
    # scale 2: face 200 px high (0.31 of the frame); face centre 30 + 2 * 75 = 180; top 2 * 30 = 60 px
    ("close", Placement(30, 0, 2.0, crop=(150, 50, 300, 300)), "centred", "close_up", 60),
    # scale 0.5: face 50 px high (0.08); face centre 128 + 112.5 = 240 (right third line)
    ("wide", Placement(128, 300, 0.5), "right_third", "wide", 340),
)


@pytest.fixture(scope="module")
def composed(tmp_path_factory, settings):
    tmp = tmp_path_factory.mktemp("composition")
    clip = Clip()
    for k, (_, where, *_) in enumerate(SHOTS):  # the second shot on another background: a cut
        clip.add(2.0, background("hubble" if k == 1 else "gradient"), [where])
    half = np.zeros((H, W, 3), np.uint8)
    half[:, W // 2 :] = 220  # the last second: dark left half, bright right half, nobody
    clip.frames += [half] * FPS
    media = make_media(encode_frames(tmp / "c.mp4", clip.frames, FPS), tmp / "media", "c")
    inputs, examined = {}, {}
    for name in ("cut_analysis", "eye_tracking", "body_pose"):
        _, result = analyze(name, media, settings, inputs)
        inputs[name], examined[name] = result.table, result.examined
    return media, inputs, examined


def compose(media, settings, inputs, examined):
    context = AnalyzerContext(video_id=media.video_id, settings=settings, inputs=inputs,
                              input_examined={k: v for k, v in examined.items() if k in inputs})
    result = run_analyzer(get_spec("composition_analysis"), media, context)
    by_level: dict[str, list[dict]] = {}
    for row in result.table.to_pylist():
        by_level.setdefault(row["level"], []).append(row)
    return by_level, result


def test_placement_size_and_framing_as_placed(composed, settings):
    media, inputs, examined = composed
    levels, run = compose(media, settings, inputs, examined)
    seconds = levels["second"]
    assert len(seconds) == 9
    for k, (name, where, placement, framing, headroom) in enumerate(SHOTS):
        face = where.box((180.0, 80.0, 270.0, 180.0))
        for second in seconds[2 * k : 2 * k + 2]:
            assert second["subject_x"] == pytest.approx((face[0] + face[2]) / 2 / W, abs=0.03), name
            assert second["placement"] == placement, name
            assert second["framing"] == framing, name
            # the face mesh reaches ~10 photo pixels above the annotated hairline
            assert second["headroom"] == pytest.approx((headroom - 10 * where.scale) / H, abs=8 / H), name
            assert second["faces"] == 1
    assert all(s["on_thirds"] and s["thirds_distance"] < 0.05 for s in seconds[2:4])
    assert not any(s["on_thirds"] for s in seconds[0:2] + seconds[4:6])
    # subject size (face + pose box): at least the face, at most the pasted photo
    for k, (name, where, *_) in enumerate(SHOTS):
        fx0, fy0, fx1, fy1 = where.box((180.0, 80.0, 270.0, 180.0))
        px0, py0, px1, py1 = where.box(where.crop)
        photo = (min(W, px1) - max(0, px0)) * (min(H, py1) - max(0, py0)) / (W * H)
        for second in seconds[2 * k : 2 * k + 2]:
            assert 0.8 * (fx1 - fx0) * (fy1 - fy0) / (W * H) <= second["subject_size"] <= 1.05 * photo, name
    assert seconds[4]["subject_size"] > 2 * seconds[6]["subject_size"]
    assert seconds[0]["headroom_label"] == "loose" and seconds[4]["headroom_label"] == "good"
    last = seconds[8]
    assert last["subject_x"] is None and last["luma_balance"] == pytest.approx(1.0, abs=0.02)
    assert last["symmetry"] < 0.3 < seconds[0]["symmetry"]
    assert run.metadata["subject_samples"] == 16 and run.metadata["thirds_share"] == pytest.approx(0.25, abs=0.01)
    # shots follow cut_analysis's edit points (here it finds the cuts at 4, 6 and 8 s)
    cuts = sorted(r["start_s"] for r in inputs["cut_analysis"].to_pylist())
    shots = levels["shot"]
    assert [s["start_s"] for s in shots] == [0.0, *cuts] and shots[-1]["end_s"] == pytest.approx(9.0, abs=0.1)
    by_start = {s["start_s"]: s for s in shots}
    assert by_start[4.0]["framing"] == "close_up" and by_start[6.0]["placement"] == "right_third"
    assert by_start[4.0]["samples"] == 4
    assert run.examined == [(0.0, pytest.approx(9.0, abs=0.1))]


def test_text_inside_and_outside_the_ui_safe_area(composed, settings):
    media, inputs, examined = composed
    texts = pa.Table.from_pylist([
        {"start_s": 0.0, "end_s": 2.0, "text": "Größte Überraschung", "language": "de",
         "box_x": 0.1, "box_y": 0.3, "box_w": 0.6, "box_h": 0.08},  # mid-frame: safe
        {"start_s": 1.0, "end_s": 3.0, "text": "Link in bio", "language": "en",
         "box_x": 0.1, "box_y": 0.86, "box_w": 0.6, "box_h": 0.08},  # bottom caption band
        {"start_s": 2.0, "end_s": 4.0, "text": "Like!", "language": "en",
         "box_x": 0.8, "box_y": 0.5, "box_w": 0.2, "box_h": 0.05},  # right-hand buttons: 3/4 of its width
        {"start_s": 3.0, "end_s": 4.0, "text": "no box", "language": "en"},
    ])
    levels, run = compose(media, settings, {**inputs, "text_overlay": texts}, examined)
    got = [(t["text"], t["text_safe"], t["ui_zones"]) for t in levels["text"]]
    assert got == [("Größte Überraschung", True, []), ("Link in bio", False, ["bottom_caption"]),
                   ("Like!", False, ["right_buttons"])]
    assert levels["text"][1]["ui_overlap"] == pytest.approx(1.0)
    assert levels["text"][2]["ui_overlap"] == pytest.approx(0.75, abs=0.02)
    assert run.metadata["unsafe_texts"] == 2 and run.metadata["texts_without_box"] == 1


def test_ui_zone_edges_and_no_inputs(composed, settings):
    assert ui_overlap((0.2, 0.1, 0.8, 0.79)) == (0.0, [])
    share, zones = ui_overlap((0.0, 0.0, 1.0, 0.16))  # half in the top bar
    assert zones == ["top_bar"] and share == pytest.approx(0.5, abs=0.02)
    media, *_ = composed
    levels, run = compose(media, settings, {}, {})
    assert run.examined == [] and all(s["subject_x"] is None for s in levels["second"])
    assert "no input table" in run.metadata["note"]
