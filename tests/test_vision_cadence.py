"""visual_effects on 15 fps content in a 30 fps container: repeated frames are its cadence, not
slow motion; a real slow-down inside such a video is still found."""

from __future__ import annotations

import pytest
from helpers import analyze, encode_frames, make_media
from transition_clips import pictures, window


def test_15fps_content_in_30fps_container_is_no_slow_motion(tmp_path, settings):
    pics = pictures()
    frames = []
    for k in range(30):  # shot 1, 2 s: a pan at 15 pictures a second, each shown twice
        frames += [window(pics[0], 250 + 4 * k, 400)] * 2
    x = 300.0
    for _ in range(60):  # shot 2, 4 s: 1 s normal, 1.5 s at half speed (each picture 4 times), 1.5 s normal
        t = len(frames) / 30 - 2.0
        repeats = 4 if 1.0 <= t < 2.5 else 2
        frames += [window(pics[2], x, 420)] * repeats
        x += 4
        if len(frames) >= 180:
            break
    frames = [f.astype("uint8") for f in frames[:180]]
    media = make_media(encode_frames(tmp_path / "cadence.mp4", frames, fps=30), tmp_path, video_id="cadence")
    cuts, run = analyze("cut_analysis", media, settings)
    assert [(r["kind"], r["start_s"]) for r in cuts] == [("hard_cut", 2.0)], cuts
    effects, _ = analyze("visual_effects", media, settings, {"cut_analysis": run.table})
    slow = [e for e in effects if e["kind"] == "slow_motion"]
    assert len(slow) == 1, effects  # not shot 1, not the normal parts of shot 2
    assert slow[0]["start_s"] == pytest.approx(3.0, abs=0.3) and slow[0]["end_s"] == pytest.approx(4.5, abs=0.3)
    assert slow[0]["strength"] == pytest.approx(0.5, abs=0.15)
    assert not [e for e in effects if e["kind"] in ("freeze", "speed_jump")], effects
