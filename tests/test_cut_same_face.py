"""A hard cut between two shots of the same large, centred face is a cut (cut_analysis v4).

The creator talks to the camera, then the same creator in another room or another shirt: the face
stays where it was, so phase correlation of the two frames peaks strongly at a small shift, and
cut_analysis v3 took the cut for "the same picture moved in one step" (dropped frames). Clips from
``face_cut_clips`` (exact cut frames): other backgrounds (photos, textures, plain colours whose grey
levels are almost equal), the same background with another shirt, the face a little offset, at
24, 30 and 60 fps. One continuous shot with a fast head turn and zoom gives no cut.
"""

from __future__ import annotations

import numpy as np
import pytest
from face_cut_clips import FaceShot, background, make_clip
from helpers import analyze, encode_frames, make_media

from tiktok_assets.analyzers.cut_analysis import CUT_MIN, frame_changes
from tiktok_assets.passes.frame_stats import joint_histograms

CLIPS = {
    "rooms_30": (30, [FaceShot(background("coffee")),
                      FaceShot(background("plain:40,90,160"), shirt=(200, 40, 40), pan=(-4, 2)),
                      FaceShot(background("texture", 2), dx=12, y=150, zoom=-0.03),
                      FaceShot(background("texture", 2), dx=12, y=150, shirt=(30, 140, 60), pan=(5, -3))]),
    "rooms_60": (60, [FaceShot(background("texture", 1), pan=(-8, 4)),
                      FaceShot(background("chelsea"), zoom=-0.04),
                      FaceShot(background("plain:40,90,160")),
                      FaceShot(background("plain:150,60,60"), dx=-6)]),  # almost the same grey as the blue
    "shirts_24": (24, [FaceShot(background("gradient"), shirt=(30, 60, 200)),
                       FaceShot(background("gradient"), shirt=(220, 200, 40), pan=(-5, 2), dx=5),
                       FaceShot(background("hubble")),
                       FaceShot(background("rocket"), dx=-8)]),
}
SECONDS = [1.0, 1.0, 1.0, 1.0]


def _cuts(tmp_path, settings, name: str, fps: int, clip) -> tuple[list[dict], np.ndarray]:
    """cut_analysis's rows for the encoded clip, and the frame changes it saw."""
    media = make_media(encode_frames(tmp_path / f"{name}.mp4", clip.frames, fps=fps), tmp_path, video_id=name)
    rows, _ = analyze("cut_analysis", media, settings)
    return rows, frame_changes(media.lowres, joint_histograms(media.lowres))


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_cut_between_shots_of_the_same_face_is_found(tmp_path, settings, name):
    fps, shots = CLIPS[name]
    clip = make_clip(shots, SECONDS, fps)
    rows, _ = _cuts(tmp_path, settings, name, fps, clip)
    assert len(clip.cuts) == 3
    assert [r["kind"] for r in rows] == ["hard_cut"] * 3, rows
    for row, truth in zip(rows, clip.cut_times):
        assert abs(row["start_s"] - truth) <= 1.0 / fps + 1e-6, (row, clip.cut_times)


@pytest.mark.parametrize("fps", [30, 60])
@pytest.mark.parametrize("sweep", [(60.0, 0.0), (50.0, 0.3)], ids=["turn", "turn_and_zoom"])
def test_fast_head_turn_and_zoom_in_one_shot_is_no_cut(tmp_path, settings, fps, sweep):
    """One shot, 1.2 s, over a panning background: within three frames the head sweeps 60 px (a
    third of the frame's width) sideways, or 50 px while the view zooms in by 35 %: frame changes
    above ``CUT_MIN``, yet one shot."""
    far, log_zoom = sweep
    clip = make_clip([FaceShot(background("coffee"), sweep=(0.5, 3 / fps, far, log_zoom), pan=(10, 4))], [1.2], fps)
    rows, change = _cuts(tmp_path, settings, f"sweep{fps}", fps, clip)
    assert change.max() >= CUT_MIN  # the sweep changes the frame as much as a cut may
    assert rows == [], rows


def test_moved_picture_needs_the_whole_frame_to_move():
    """A frame shifted by a few pixels is the same picture moved; the last frame of one face shot
    and the first of the next (same face, same place, another background) is not, though phase
    correlation peaks strongly for both."""
    import cv2

    from tiktok_assets.analyzers.cut_analysis import JUMP_RESPONSE, moved_picture, shift_step

    clip = make_clip([FaceShot(background("texture", 3)), FaceShot(background("coffee"))], [0.2, 0.2], 30)
    first, last, new = clip.frames[0], clip.frames[clip.cuts[0] - 1], clip.frames[clip.cuts[0]]
    for dx, dy in ((6, 3), (-9, 4), (0, -12), (15, 10)):
        moved = cv2.warpAffine(first, np.float32([[1, 0, dx], [0, 1, dy]]), (first.shape[1], first.shape[0]),
                               borderMode=cv2.BORDER_REFLECT)
        found_dx, found_dy, _ = shift_step(first, moved)
        short = min(first.shape[:2])
        assert (found_dx * short, found_dy * short) == pytest.approx((dx, dy), abs=1.0)
        assert moved_picture(first, moved)
    assert shift_step(last, new)[2] >= JUMP_RESPONSE  # the face alone gives a strong peak
    assert not moved_picture(last, new)
