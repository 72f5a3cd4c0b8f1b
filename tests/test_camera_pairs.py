"""camera_analysis measures every frame pair of every segment: none is left between two segments."""

from __future__ import annotations

import pytest
from helpers import analyze, encode_frames, make_media
from transition_clips import pictures, window


@pytest.mark.parametrize("fps, seconds", [(30, 3.0), (30, 3.1), (24, 2.5), (60, 2.05)])
def test_every_pair_belongs_to_a_segment(tmp_path, settings, fps, seconds):
    pics = pictures()
    n = int(seconds * fps)
    frames = [window(pics[0], 250 + 40 * k / fps, 400).astype("uint8") for k in range(n)]  # a steady pan right
    media = make_media(encode_frames(tmp_path / "pan.mp4", frames, fps=fps), tmp_path, video_id="pan")
    rows, run = analyze("camera_analysis", media, settings)
    assert sum(r["pairs"] for r in rows) == run.metadata["pairs_measured"] > 0, rows
    assert all(r["motion"] == "pan_right" for r in rows), rows
