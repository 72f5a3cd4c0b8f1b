"""Camera motion per segment from sparse optical flow on the low-resolution full-rate stream.

Every shot is cut into ~1 s segments (never across a cut or a gradual transition). Inside a
shot, frame pairs ~0.1 s apart are measured (corners + pyramidal Lucas-Kanade + a RANSAC
similarity fit, see ``_motion``); no pair ever spans an edit point.

Direction conventions, in camera terms (what the operator did), with the picture seen on screen:

* ``pan_left`` = the camera turns left, so the content moves **right** in the frame; ``pan_right``
  the opposite. Column ``pan`` is the camera's horizontal speed, > 0 to the right, in frame short
  sides per second (``pan = -content speed along x``).
* ``tilt_up`` = the camera turns up, so the content moves **down**; ``tilt_down`` the opposite.
  Column ``tilt`` is > 0 for up, in short sides per second (``tilt = +content speed along y``,
  image y pointing down).
* ``zoom_in`` = the content grows; column ``zoom`` is the log size change per second (0.2 means
  the picture grows by about 22 % a second), < 0 for ``zoom_out``.
* ``shake`` = back-and-forth jitter: column ``jitter`` is the RMS of the pair velocities' deviation
  from their neighbours' mean (second difference), in short sides per second.

Label rule, per segment: ``unknown`` when fewer than half of the pairs could be tracked (flat
picture); otherwise, with ``trans = hypot(pan, tilt)`` and ``zoom_motion = 0.5 * |zoom|`` (the speed
a point half a short side from the centre gets from the zoom), ``dominant = max(trans,
zoom_motion)``: ``shake`` if ``jitter >= SHAKE_MIN`` and ``jitter > dominant``; else ``static`` if
``dominant < STATIC_MAX``; else the zoom if ``zoom_motion >= trans``; else pan or tilt, whichever
axis is faster. A moving label becomes ``unknown`` when the corners that agree on it cover less
than ``MIN_SPREAD`` of a 4x4 grid over the frame (column ``spread``): then one moving object on a
flat background cannot be told from a moving camera. ``magnitude`` is the figure behind the label
(``trans`` for pan/tilt, ``|zoom|`` for zooms, ``jitter`` for shake, ``dominant`` for static,
null for unknown); the signed figures stay filled in for ``unknown`` rows that could be measured.

Fast pans (a whip pan races across the scene in a few smeared frames) defeat the corner tracker:
its pairs fail, or the velocity's ramp up and down reads as jitter. So a segment with pairs that
could not be tracked or with jitter >= ``SHAKE_MIN`` is also measured step by step: phase
correlation of consecutive frames (``_motion.step_shifts``; steps with a peak below
``SWEEP_RESPONSE`` are skipped). When those moves add up, along the faster axis, to at least
``SWEEP_MIN`` short sides and go one way (the net move is at least ``SWEEP_STRAIGHT`` of the path:
back-and-forth shake is not), the segment is a pan or tilt that way (``sweep`` true): ``pan`` /
``tilt`` are then the net move over the segment's duration (a lower bound: a step of more than
``_motion.WRAP_SHARE`` of the frame is not counted) and ``magnitude`` their norm.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from ..passes import motion
from . import _motion, _shots
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

SEGMENT_S = 1.0
STATIC_MAX = 0.02
SHAKE_MIN = 0.08
MIN_TRACKED_SHARE = 0.5
MIN_SPREAD = 0.3
SWEEP_RESPONSE = 0.1
SWEEP_MIN = 0.3
SWEEP_STRAIGHT = 0.7
LABELS = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "shake", "unknown")

COLUMNS = (
    pa.field("shot_index", pa.int64()),
    pa.field("motion", pa.string()),
    pa.field("magnitude", pa.float64()),
    pa.field("pan", pa.float64()),
    pa.field("tilt", pa.float64()),
    pa.field("zoom", pa.float64()),
    pa.field("rotation_deg_s", pa.float64()),
    pa.field("jitter", pa.float64()),
    pa.field("pairs", pa.int64()),
    pa.field("tracked_points", pa.float64()),
    pa.field("spread", pa.float64()),
    pa.field("confidence", pa.float64()),
    pa.field("sweep", pa.bool_()),
)


def jitter(vx: np.ndarray, vy: np.ndarray) -> float:
    """RMS deviation of each velocity from the mean of its two neighbours, noise-scaled to one sigma."""
    if vx.size < 3:
        return 0.0
    ex = vx[1:-1] - 0.5 * (vx[:-2] + vx[2:])
    ey = vy[1:-1] - 0.5 * (vy[:-2] + vy[2:])
    return float(np.sqrt(np.mean(ex**2 + ey**2) / 1.5))


def classify(pan: float, tilt: float, zoom: float, shake: float) -> tuple[str, float]:
    """Label and magnitude of one segment from its camera figures (see the module docstring)."""
    trans = float(np.hypot(pan, tilt))
    zoom_motion = 0.5 * abs(zoom)
    dominant = max(trans, zoom_motion)
    if shake >= SHAKE_MIN and shake > dominant:
        return "shake", shake
    if dominant < STATIC_MAX:
        return "static", dominant
    if zoom_motion >= trans:
        return ("zoom_in" if zoom > 0 else "zoom_out"), abs(zoom)
    if abs(pan) >= abs(tilt):
        return ("pan_right" if pan > 0 else "pan_left"), trans
    return ("tilt_up" if tilt > 0 else "tilt_down"), trans


def segment_row(segment: _shots.Segment, motions: list[_motion.PairMotion], expected: int) -> dict:
    """One output row from the pair motions measured inside a segment."""
    row = {"start_s": segment.start_s, "end_s": segment.end_s, "shot_index": segment.shot_index,
           "pairs": len(motions), "sweep": False}
    if not motions or len(motions) < MIN_TRACKED_SHARE * max(expected, 1):
        return {**row, "motion": "unknown", "confidence": 0.0}
    dt = np.array([m.dt for m in motions])
    vx = np.array([m.dx for m in motions]) / dt
    vy = np.array([m.dy for m in motions]) / dt
    total = dt.sum()
    pan = -float(sum(m.dx for m in motions) / total)
    tilt = float(sum(m.dy for m in motions) / total)
    zoom = float(sum(m.log_scale for m in motions) / total)
    rotation = float(np.degrees(sum(m.rotation for m in motions) / total))
    shake = jitter(vx, vy)
    label, magnitude = classify(pan, tilt, zoom, shake)
    spread = float(np.mean([m.spread for m in motions]))
    if label != "static" and spread < MIN_SPREAD:
        label, magnitude = "unknown", None
    inliers = float(np.mean([m.inlier_share for m in motions]))
    confidence = inliers * min(1.0, len(motions) / max(expected, 1)) * min(1.0, spread / MIN_SPREAD)
    return {
        **row,
        "motion": label,
        "magnitude": None if magnitude is None else round(magnitude, 4),
        "pan": round(pan, 4),
        "tilt": round(tilt, 4),
        "zoom": round(zoom, 4),
        "rotation_deg_s": round(rotation, 3),
        "jitter": round(shake, 4),
        "tracked_points": round(float(np.mean([m.points for m in motions])), 1),
        "spread": round(spread, 3),
        "confidence": round(confidence, 3),
    }


def sweep(shifts: np.ndarray) -> tuple[float, float] | None:
    """(net dx, net dy) in short sides of the content's one-way fast move over consecutive-frame
    ``shifts`` (rows dx, dy, peak response; see ``_motion.step_shifts``), or None when the measured
    steps do not add up to a sweep (see the module docstring)."""
    ok = shifts[:, 2] >= SWEEP_RESPONSE
    if ok.sum() < 2:
        return None
    dx, dy = shifts[ok, 0], shifts[ok, 1]
    along = dx if abs(dx.sum()) >= abs(dy.sum()) else dy
    net = float(along.sum())
    if abs(net) < SWEEP_MIN or abs(net) < SWEEP_STRAIGHT * float(np.abs(along).sum()):
        return None
    return float(dx.sum()), float(dy.sum())


def swept_row(row: dict, shifts: np.ndarray) -> dict:
    """``row`` relabelled as a pan or tilt when the segment's step shifts hold a sweep."""
    found = sweep(shifts)
    if found is None:
        return row
    duration = max(row["end_s"] - row["start_s"], 1e-3)
    pan, tilt = -found[0] / duration, found[1] / duration
    label, magnitude = classify(pan, tilt, 0.0, 0.0)
    return {**row, "motion": label, "magnitude": round(magnitude, 4), "pan": round(pan, 4),
            "tilt": round(tilt, 4), "sweep": True,
            "confidence": round(float(np.mean(shifts[:, 2] >= SWEEP_RESPONSE)), 3)}


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    shots = _shots.shot_list(media, context)
    step = _motion.pair_step(media.meta.fps)
    pairs = _motion.shot_pairs(shots, step)
    motions = [m for m in motion.pair_motions(media, shots.times, pairs) if m is not None]
    starts = np.array([m.i for m in motions], dtype=np.int64)
    pair_starts = np.array([i for i, _ in pairs], dtype=np.int64)
    rows = []
    for segment in shots.segments(SEGMENT_S):  # a pair belongs to the segment its first frame is in
        a = int(np.searchsorted(starts, segment.first))
        b = int(np.searchsorted(starts, segment.last, side="right"))  # a pair may start on the last frame
        expected = int(np.searchsorted(pair_starts, segment.last, side="right")
                       - np.searchsorted(pair_starts, segment.first))
        row = segment_row(segment, motions[a:b], expected)
        if row["pairs"] < expected or (row.get("jitter") or 0.0) >= SHAKE_MIN:
            row = swept_row(row, _motion.step_shifts(media.lowres, segment.first, segment.last))
        rows.append(row)
    durations = Counter()
    for row in rows:
        durations[row["motion"]] += row["end_s"] - row["start_s"]
    known = sum(v for k, v in durations.items() if k != "unknown")
    moving = sum(v for k, v in durations.items() if k not in ("static", "unknown"))
    dominant = max(durations, key=durations.get) if durations else "unknown"
    metadata = {
        "dominant_motion": dominant,
        "moving_share": round(moving / known, 3) if known else 0.0,
        "segments": len(rows),
        "pairs_measured": len(motions),
        "pairs_untracked": len(pairs) - len(motions),
        "fast_sweeps": sum(bool(row.get("sweep")) for row in rows),
        "cuts_from": shots.source,
        **{f"{label}_s": round(durations[label], 2) for label in LABELS if durations[label]},
    }
    return AnalyzerOutput(rows=rows, examined=[(0.0, media.duration_s)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="camera_analysis",
    modality="visual",
    description="Camera motion per ~1 s segment (static, pan, tilt, zoom, shake) with magnitude, from sparse optical "
                "flow (fast and whip pans: frame-to-frame phase correlation)",
    version="3",
    columns=COLUMNS,
    run=run,
    passes=("motion",),
    depends_on=("cut_analysis",),
    main_figure="dominant_motion",
    timeline_label="CASE WHEN motion NOT IN ('static', 'unknown') THEN 'camera ' || motion END",
)
