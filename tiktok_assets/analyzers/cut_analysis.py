"""Edit points from the low-resolution full-rate stream: hard cuts, dissolves and fades.

* Frame change ``d[i]`` is the total-variation distance between colour histograms (8x8x8 RGB bins)
  of frames ``i-1`` and ``i``, raised to the mean absolute pixel change when two shots share a
  palette.
* A **hard cut** is a change above ``CUT_MIN`` and well above its neighbourhood's median, that does
  not snap back within a few frames (that would be a flash, reported by ``visual_effects``).
* A **dissolve** is a span without hard cuts whose ends differ strongly and whose frames in between
  are, pixel for pixel, blends of the two ends with a rising mix; when one end is (near) black or
  white it is reported as ``fade_in`` / ``fade_out``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

CUT_MIN = 0.3
CUT_CONTRAST = 2.5
FLASH_FRAMES = 3
DISSOLVE_MIN = 0.3
BLEND_MAX_RESIDUAL = 0.3

COLUMNS = (
    pa.field("kind", pa.string()),
    pa.field("strength", pa.float64()),
    pa.field("frame_index", pa.int64()),
    pa.field("shot_index", pa.int64()),
)


def histograms(frames: np.ndarray, bins: int = 8) -> np.ndarray:
    """Normalised joint RGB histograms, shape (N, bins**3)."""
    shift = int(np.log2(256 // bins))
    out = np.empty((len(frames), bins**3), dtype=np.float32)
    for i, frame in enumerate(frames):
        q = (frame >> shift).astype(np.int32)
        index = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
        out[i] = np.bincount(index.ravel(), minlength=bins**3)
    out /= out.sum(axis=1, keepdims=True)
    return out


def tv_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 0.5 * np.abs(a - b).sum(axis=-1)


def frame_changes(frames: np.ndarray, hists: np.ndarray) -> np.ndarray:
    """Change into each frame from the previous one (0 for the first frame)."""
    change = np.zeros(len(frames), dtype=np.float64)
    if len(frames) < 2:
        return change
    change[1:] = tv_distance(hists[1:], hists[:-1])
    for i in range(1, len(frames)):
        mad = np.abs(frames[i].astype(np.int16) - frames[i - 1].astype(np.int16)).mean() / 80.0
        change[i] = max(change[i], min(1.0, mad))
    return change


def hard_cuts(change: np.ndarray, hists: np.ndarray, fps: float) -> list[int]:
    """Frame indices where a new shot begins."""
    half = max(3, int(round(fps / 2)))
    cuts: list[int] = []
    for i in range(1, len(change)):
        if change[i] < CUT_MIN:
            continue
        around = np.concatenate([change[max(1, i - half) : i], change[i + 1 : i + 1 + half]])
        baseline = float(np.median(around)) if around.size else 0.0
        if change[i] < CUT_CONTRAST * baseline + 0.05:
            continue
        later = hists[i + 1 : i + 1 + FLASH_FRAMES]
        if later.size and tv_distance(later, hists[i - 1]).min() < CUT_MIN / 2:
            continue  # the picture comes back: a flash, not a cut
        if cuts and i - cuts[-1] < half // 2:
            if change[i] > change[cuts[-1]]:
                cuts[-1] = i
            continue
        cuts.append(i)
    return cuts


def _extreme_tone(frame: np.ndarray) -> str | None:
    mean, std = float(frame.mean()), float(frame.std())
    if std < 12 and mean < 30:
        return "black"
    if std < 12 and mean > 225:
        return "white"
    return None


def _blend_fit(frames: np.ndarray, a: int, b: int) -> tuple[float, np.ndarray]:
    """Residual share and mix weights of frames a..b explained as blends of frames a and b."""
    first = frames[a].astype(np.float32).ravel()
    last = frames[b].astype(np.float32).ravel()
    delta = last - first
    norm = float(delta @ delta)
    if norm <= 0:
        return 1.0, np.zeros(b - a + 1)
    alphas, residuals = [], []
    for i in range(a, b + 1):
        x = frames[i].astype(np.float32).ravel() - first
        alpha = float(np.clip(x @ delta / norm, 0, 1))
        alphas.append(alpha)
        residuals.append(np.abs(x - alpha * delta).mean())
    return float(np.mean(residuals) / (np.abs(delta).mean() + 1e-6)), np.asarray(alphas)


def dissolves(frames: np.ndarray, hists: np.ndarray, cuts: list[int], fps: float) -> list[tuple[int, int, str, float]]:
    """(first, last, kind, strength) of gradual transitions between shots."""
    k = max(2, int(round(fps * 0.5)))
    n = len(frames)
    if n <= 2 * k:
        return []
    long_change = np.zeros(n)
    long_change[k : n - k] = tv_distance(hists[2 * k :], hists[: n - 2 * k])
    cut_set = set(cuts)
    candidate = [
        i for i in range(k, n - k)
        if long_change[i] > DISSOLVE_MIN and not any(j in cut_set for j in range(i - k, i + k + 1))
    ]
    groups: list[list[int]] = []
    for i in candidate:
        if groups and i - groups[-1][-1] <= 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    found = []
    for group in groups:
        a, b = max(0, group[0] - k), min(n - 1, group[-1] + k)
        residual, alphas = _blend_fit(frames, a, b)
        rising = np.corrcoef(np.arange(len(alphas)), alphas)[0, 1] if alphas.std() > 0 else 0.0
        if residual > BLEND_MAX_RESIDUAL or rising < 0.9:
            continue
        inside = np.flatnonzero((alphas > 0.03) & (alphas < 0.97))
        if inside.size == 0:
            continue
        first, last = a + max(0, int(inside[0]) - 1), a + min(len(alphas) - 1, int(inside[-1]) + 1)
        tone_in, tone_out = _extreme_tone(frames[a]), _extreme_tone(frames[b])
        kind = "fade_in" if tone_in else "fade_out" if tone_out else "dissolve"
        found.append((first, last, kind, float(tv_distance(hists[a], hists[b]))))
    return found


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    frames = media.lowres
    times = media.lowres_times
    fps = media.meta.fps or (len(times) / max(media.duration_s, 1e-6))
    hists = histograms(frames)
    change = frame_changes(frames, hists)
    cuts = hard_cuts(change, hists, fps)
    events = [(i, i, "hard_cut", float(change[i])) for i in cuts]
    events += dissolves(frames, hists, cuts, fps)
    events.sort()
    rows = []
    for shot_index, (first, last, kind, strength) in enumerate(events, start=1):
        rows.append(
            {
                "start_s": round(float(times[first]), 3),
                "end_s": round(float(times[last]), 3),
                "kind": kind,
                "strength": round(strength, 4),
                "frame_index": int(first),
                "shot_index": shot_index,
            }
        )
    minutes = media.duration_s / 60 if media.duration_s else 1.0
    shots = len(rows) + 1
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, media.duration_s)],
        metadata={
            "cuts": sum(r["kind"] == "hard_cut" for r in rows),
            "transitions": len(rows),
            "cuts_per_minute": round(len(rows) / minutes, 2),
            "mean_shot_length_s": round(media.duration_s / shots, 2),
            "frames_compared": int(len(frames)),
        },
    )


SPEC = AnalyzerSpec(
    name="cut_analysis",
    modality="visual",
    description="Hard cuts, dissolves and fades with time and strength; cut rate",
    version="1",
    columns=COLUMNS,
    run=run,
    main_figure="cuts",
)
