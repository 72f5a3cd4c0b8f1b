"""Faces on the sampled frames: one MediaPipe pass per video shared by the face analyzers.

At the frames chosen by ``people_fps`` (:func:`~tiktok_assets.analyzers._people.people_frames`):
full-range face detection on the frame scaled to a long side of 320 and on square tiles along the
long side of a portrait frame (small faces), then the refined face mesh (478 points with the
irises) on a square crop around each face found, so the mesh costs nothing on frames without faces. Arrays:

* ``frames`` / ``times``: the sampled-frame indices read and their times,
* ``det_frame`` (position in ``frames``), ``det_score``, ``det_box`` (x0, y0, x1, y1 in 0..1),
  ``det_mesh`` (478, 3; x/y in 0..1 of the frame, NaN when the mesh found no face in the crop).

Reading it records the chosen frames as read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import store

MODEL_ID = "mediapipe-legacy"


@dataclass
class Faces:
    frames: np.ndarray
    times: np.ndarray
    det_frame: np.ndarray
    det_score: np.ndarray
    det_box: np.ndarray
    det_mesh: np.ndarray
    width: int
    height: int

    @property
    def det_times(self) -> np.ndarray:
        return self.times[self.det_frame] if len(self.det_frame) else np.zeros(0)

    @property
    def face_box(self) -> np.ndarray:
        """(F, 4) face boxes in 0..1: the extent of the mesh (forehead to chin, cheek to cheek)
        where there is one, else the detector's box (a square from the brows to the mouth)."""
        if not len(self.det_box):
            return np.zeros((0, 4))
        out = self.det_box.copy()
        ok = self.has_mesh
        if ok.any():
            xy = self.det_mesh[ok, :, :2]
            out[ok] = np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1)
        return np.clip(out, 0, 1)

    @property
    def has_mesh(self) -> np.ndarray:
        return ~np.isnan(self.det_mesh[:, 0, 0]) if len(self.det_mesh) else np.zeros(0, bool)


def mark_frames(media: Any, indices: np.ndarray) -> None:
    """Record sampled frames ``indices`` as read."""
    from ..media_access import TrackedMedia

    if isinstance(media, TrackedMedia):
        media.frames_log.record(np.asarray(indices, dtype=np.int64))


def faces(media: Any, models: Any, device: str, fps: float) -> Faces:
    """The face pass of this video at ``fps`` (computed once, then read from the media cache)."""
    from ..analyzers import _people

    base = store.base_media(media)
    picked = _people.people_frames(base.frame_times, fps)
    h, w = base.meta.frame_shape[1:3]

    def compute() -> dict[str, np.ndarray]:
        model = models.load(MODEL_ID, device)
        det_frame, det_score, det_box, det_mesh = [], [], [], []
        for k, i in enumerate(picked.tolist()):
            for score, box, mesh in model.faces(np.asarray(base.frames[i])):
                det_frame.append(k)
                det_score.append(score)
                det_box.append(box)
                det_mesh.append(mesh if mesh is not None else np.full((_people.MESH_POINTS, 3), np.nan))
        return {
            "frames": picked,
            "times": np.asarray(base.frame_times, np.float64)[picked],
            "det_frame": np.asarray(det_frame, np.int64),
            "det_score": np.asarray(det_score, np.float32),
            "det_box": np.asarray(det_box, np.float64).reshape(-1, 4),
            "det_mesh": np.asarray(det_mesh, np.float32).reshape(-1, _people.MESH_POINTS, 3),
        }

    arrays = store.cached(media, "faces", compute, key=f"{fps:g}fps")
    mark_frames(media, arrays["frames"])
    return Faces(arrays["frames"], arrays["times"], arrays["det_frame"], arrays["det_score"].astype(np.float64),
                 arrays["det_box"], arrays["det_mesh"].astype(np.float64), int(w), int(h))
