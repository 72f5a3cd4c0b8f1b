"""The person on the sampled frames: MediaPipe pose (33 landmarks) and selfie segmentation, one
pass per video shared by body_pose and background_segmentation.

At the frames chosen by ``people_fps``. Arrays:

* ``frames`` / ``times``: the sampled-frame indices read and their times,
* ``pose`` (N, 33, 4): x, y (0..1 of the frame), z, visibility; NaN where no person was found
  (MediaPipe pose follows one person, the most prominent),
* ``person_share`` (N,): share of the frame's pixels with person probability >= 0.5,
* ``mask`` (N, h, w) uint8: the person probability x 255 on a grid of long side 64 (enough for
  background statistics without storing full masks).

Reading it records the chosen frames as read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import store
from .faces import MODEL_ID, mark_frames

MASK_LONG_SIDE = 64
POSE_POINTS = 33


@dataclass
class Person:
    frames: np.ndarray
    times: np.ndarray
    pose: np.ndarray
    person_share: np.ndarray
    mask: np.ndarray
    width: int
    height: int

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.pose[:, 0, 0]) if len(self.pose) else np.zeros(0, bool)


def mask_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) of the stored mask grid."""
    scale = MASK_LONG_SIDE / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def person(media: Any, models: Any, device: str, fps: float) -> Person:
    """The person pass of this video at ``fps`` (computed once, then read from the media cache)."""
    import cv2

    from ..analyzers import _people

    base = store.base_media(media)
    picked = _people.people_frames(base.frame_times, fps)
    h, w = base.meta.frame_shape[1:3]
    mw, mh = mask_size(w, h)

    def compute() -> dict[str, np.ndarray]:
        model = models.load(MODEL_ID, device)
        poses, shares, masks = [], [], []
        for i in picked.tolist():
            frame = np.asarray(base.frames[i])
            landmarks = model.pose_landmarks(frame)
            poses.append(landmarks if landmarks is not None else np.full((POSE_POINTS, 4), np.nan))
            prob = model.person_mask(frame)
            shares.append(float((prob >= 0.5).mean()))
            masks.append(np.round(cv2.resize(prob, (mw, mh), interpolation=cv2.INTER_AREA) * 255).astype(np.uint8))
        return {
            "frames": picked,
            "times": np.asarray(base.frame_times, np.float64)[picked],
            "pose": np.asarray(poses, np.float32).reshape(-1, POSE_POINTS, 4),
            "person_share": np.asarray(shares, np.float64),
            "mask": np.asarray(masks, np.uint8).reshape(-1, mh, mw),
        }

    arrays = store.cached(media, "person", compute, key=f"{fps:g}fps")
    mark_frames(media, arrays["frames"])
    return Person(arrays["frames"], arrays["times"], arrays["pose"].astype(np.float64), arrays["person_share"],
                  arrays["mask"], int(w), int(h))
