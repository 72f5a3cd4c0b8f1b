"""content_quality's grade on a blur ladder and a noise ladder of real photos, and on blank frames.

Every rung is a 3-frame clip (a slow pan over the photo) built straight into a media cache, so
the only thing that changes between rungs is the known blur or noise.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
from array_media import media_from_arrays
from helpers import analyze

W, H = 180, 320
PHOTOS = {"astronaut": skimage.data.astronaut, "coffee": skimage.data.coffee, "chelsea": skimage.data.chelsea}
BLURS = (0.0, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
NOISES = (0.0, 3.0, 6.0, 10.0, 20.0)


def pan(photo: np.ndarray, n: int = 3) -> list[np.ndarray]:
    """``n`` frames of a slow pan over ``photo``, at the clip size."""
    h, w = photo.shape[:2]
    cw = min(w - 2 * n, int(h * W / H))
    ch = int(cw * H / W)
    return [cv2.resize(photo[:ch, i * 2 : i * 2 + cw], (W, H), interpolation=cv2.INTER_AREA) for i in range(n)]


def grade_of(tmp_path, name: str, frames, settings) -> float:
    media = media_from_arrays(tmp_path / name, np.asarray(frames), fps=30.0, sample_fps=30.0)
    rows, run = analyze("content_quality", media, settings)
    return run.metadata["grade"]


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_grade_falls_with_blur_and_noise(tmp_path, settings, name):
    frames = pan(PHOTOS[name]())
    rng = np.random.default_rng(1)
    blur = [grade_of(tmp_path, f"b{s}", [f if s == 0 else cv2.GaussianBlur(f, (0, 0), s) for f in frames], settings)
            for s in BLURS]
    noise = [grade_of(tmp_path, f"n{s}", [np.clip(f + rng.normal(0, s, f.shape), 0, 255).astype(np.uint8)
                                          for f in frames], settings) for s in NOISES]
    print(name, "blur", dict(zip(BLURS, blur)), "noise", dict(zip(NOISES, noise)))
    assert blur[0] > 85 and noise[0] > 85, (blur, noise)
    assert all(a >= b for a, b in zip(blur, blur[1:])), blur  # never rises with more blur
    assert blur[0] - blur[3] > 25 and blur[3] - blur[5] > 25 and blur[-1] < 20, blur  # and really falls
    assert all(a > b for a, b in zip(noise, noise[1:])), noise
    assert noise[-1] < noise[0] - 25, noise


@pytest.mark.parametrize("value", [0, 128, 255])
def test_flat_black_and_white_frames_grade_low(tmp_path, settings, value):
    flat = [np.full((H, W, 3), value, np.uint8)] * 3
    assert grade_of(tmp_path, "flat", flat, settings) < 20
