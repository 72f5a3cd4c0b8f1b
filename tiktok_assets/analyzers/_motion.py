"""Global (camera) motion between two frames from sparse optical flow (not an analyzer itself).

Corners (``cv2.goodFeaturesToTrack``) of the earlier frame are tracked into the later one with
pyramidal Lucas-Kanade, kept only when tracking back lands within half a pixel of where they
started, and a similarity transform (``cv2.estimateAffinePartial2D`` with RANSAC) is fitted.

Conventions (image coordinates: x to the right, y down). ``dx``/``dy`` are how far the picture
content at the frame centre moved, in units of the frame's short side; ``log_scale`` is the
natural log of the size change (> 0: content grows). Content moving right means the camera turned
left; content moving down means the camera tilted up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from . import _tone

MAX_CORNERS = 200
MIN_POINTS = 8
FB_MAX_PX = 0.5
RANSAC_PX = 1.0
TARGET_FPS = 10.0
GRID = 4
WRAP_SHARE = 0.4
SHIFT_SIDE = 48


@dataclass(frozen=True)
class PairMotion:
    i: int
    j: int
    dt: float
    dx: float
    dy: float
    log_scale: float
    rotation: float  # radians, positive = content turns clockwise on screen
    points: int
    inlier_share: float
    spread: float  # share of the cells of a 4x4 grid over the frame that hold an inlier corner


def to_gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def similarity(a: np.ndarray, b: np.ndarray, points: np.ndarray | None = None) -> tuple | None:
    """(dx_px, dy_px, log_scale, rotation, points, inlier share, spread) of gray frame b relative to a."""
    import cv2

    if points is None:
        points = cv2.goodFeaturesToTrack(a, MAX_CORNERS, 0.01, 4, blockSize=5)
    if points is None or len(points) < MIN_POINTS:
        return None
    lk = {"winSize": (15, 15), "maxLevel": 3,
          "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01)}
    moved, status, _ = cv2.calcOpticalFlowPyrLK(a, b, points, None, **lk)
    back, status_back, _ = cv2.calcOpticalFlowPyrLK(b, a, moved, None, **lk)
    error = np.linalg.norm((back - points).reshape(-1, 2), axis=1)
    good = (status.ravel() == 1) & (status_back.ravel() == 1) & (error < FB_MAX_PX)
    if good.sum() < MIN_POINTS:
        return None
    src, dst = points.reshape(-1, 2)[good], moved.reshape(-1, 2)[good]
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX)
    if matrix is None or inliers is None or int(inliers.sum()) < MIN_POINTS:
        return None
    h, w = a.shape
    centre = np.array([w / 2.0, h / 2.0, 1.0])
    shift = matrix @ centre - centre[:2]
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    rotation = float(np.arctan2(matrix[1, 0], matrix[0, 0]))
    kept = src[inliers.ravel() == 1]
    cells = np.unique((np.clip(kept[:, 1] * GRID / h, 0, GRID - 1)).astype(int) * GRID
                      + np.clip(kept[:, 0] * GRID / w, 0, GRID - 1).astype(int))
    return float(shift[0]), float(shift[1]), float(np.log(max(scale, 1e-6))), rotation, int(good.sum()), \
        float(inliers.mean()), cells.size / GRID**2


def pair_step(fps: float, target_fps: float = TARGET_FPS) -> int:
    """Frames between the two frames of a measured pair, for about ``target_fps`` pairs a second."""
    return max(1, int(round((fps or 30.0) / target_fps)))


def track(lowres: np.ndarray, times: np.ndarray, pairs: Iterable[tuple[int, int]]) -> list[PairMotion | None]:
    """Motion for each (i, j) pair of lowres frames; None where too little could be tracked."""
    gray: dict[int, np.ndarray] = {}

    def get(k: int) -> np.ndarray:
        if k not in gray:
            if len(gray) > 8:
                gray.pop(min(gray))
            gray[k] = to_gray(lowres[k])
        return gray[k]

    out: list[PairMotion | None] = []
    for i, j in pairs:
        a, b = get(i), get(j)
        fit = similarity(a, b)
        if fit is None:
            out.append(None)
            continue
        short = float(min(a.shape))
        dx, dy, log_scale, rotation, points, share, spread = fit
        dt = max(float(times[j] - times[i]), 1e-3)
        out.append(PairMotion(i, j, dt, dx / short, dy / short, log_scale, rotation, points, share, spread))
    return out


def shot_pairs(shots, step: int) -> list[tuple[int, int]]:
    """Frame pairs ``step`` apart inside each shot, never across an edit point or a transition."""
    pairs = []
    for shot in shots.shots:
        for i in range(shot.first, shot.last - step + 1, step):
            if not shots.crosses_edit(i, i + step):
                pairs.append((i, i + step))
    return pairs


def step_shifts(lowres, first: int, last: int) -> np.ndarray:
    """(dx, dy, response) per step k -> k + 1 for frames first..last (last - first rows): the
    translation of the content between consecutive frames by phase correlation of the grey frames
    under a Hann window (frames with a short side of at least twice ``SHIFT_SIDE`` halved first),
    dx and dy in frame short sides (content moving right / down > 0): it measures moves too fast and
    smeared for the corner tracker (``cut_analysis.shift_step`` is the same measure for one step, on
    full frames). A move of more than ``WRAP_SHARE`` of
    the frame's width or height along that axis gets response 0: the correlation wraps round at half
    the frame, so such a peak may be a bigger move the other way; so does a step into or out of a
    black or white frame (a flash, a fade's middle: ``_tone.grey_tone``), whose peak is noise."""
    import cv2

    out = np.zeros((max(0, last - first), 3), dtype=np.float64)
    if last <= first:
        return out
    grey = [to_gray(frame) for frame in lowres[first : last + 1]]
    if min(grey[0].shape) >= 2 * SHIFT_SIDE:  # halved: a third of the cost, the same moves in short sides
        grey = [cv2.resize(g, (g.shape[1] // 2, g.shape[0] // 2), interpolation=cv2.INTER_AREA) for g in grey]
    grey = [g.astype(np.float32) for g in grey]
    h, w = grey[0].shape
    if min(h, w) < 8:
        return out
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    short = float(min(h, w))
    plain = [_tone.grey_tone(g) == _tone.NEITHER for g in grey]
    for k in range(len(grey) - 1):
        (dx, dy), response = cv2.phaseCorrelate(grey[k], grey[k + 1], window)
        trusted = abs(dx) <= WRAP_SHARE * w and abs(dy) <= WRAP_SHARE * h and plain[k] and plain[k + 1]
        out[k] = dx / short, dy / short, response if trusted else 0.0
    return out
