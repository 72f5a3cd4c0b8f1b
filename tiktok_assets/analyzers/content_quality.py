"""Technical picture quality per ~1 s segment (never across a cut) and for the whole video.

Measured on every sampled frame (``media.frames``: long side 640, which normalises sources of any
resolution to one pixel scale; smaller sources are measured at their own size), on the grey
image ``Y = 0.299 R + 0.587 G + 0.114 B``:

* ``noise_sigma``: standard deviation of the noise in grey levels, from the residual of a 3x3
  median filter in the flattest quarter of the frame (lowest smoothed gradient, clipped pixels
  left out), robustly as ``1.4826 * MAD / 0.862`` (0.862: the residual's share of white noise).
* ``laplacian_var``: variance of the 4-neighbour Laplacian (the classic blur figure; depends on the
  amount of detail). ``sharpness_index`` normalises it by the mean squared gradient, both with the
  noise's share removed (``20 sigma^2`` and ``4 sigma^2``, at most 75 % of each): about 2-3 for a
  crisp picture, 0.5-0.9 after a 1-pixel Gaussian blur, ~0.2 after 2 pixels, whatever the content.
* ``underexposed`` / ``overexposed``: share of pixels with Y <= 16 / Y >= 240.
* ``blockiness``: coding-block grid strength: the mean absolute difference between neighbouring
  columns (and rows) is read as a signal along the frame, and its Fourier amplitude at the block
  period (8 and 4 source pixels, scaled to the sampled frame; periods below 2.5 pixels are not
  measurable) above the neighbouring frequencies, relative to its mean; 0 for clean pictures,
  ~0.2-0.4 for heavy JPEG-style blocking, ~2 for a pixelated picture.

Grade (0-100) = ``100 * sum(w_i s_i) / sum(w_i)`` over the scores that exist, with weights
sharpness 0.4, noise 0.25, exposure 0.2, blockiness 0.15 and scores clipped to 0..1:

* ``score_sharpness = (sharpness_index - 0.2) / 1.3`` (absent for frames without texture);
* ``score_noise = 1 - (noise_sigma - 1.5) / 6.5`` (1 up to 1.5 grey levels, 0 from 8);
* ``score_exposure = 1 - (underexposed + overexposed - 0.05) / 0.45`` (5 % clipped is free);
* ``score_blockiness = 1 - (blockiness - 0.05) / 0.25`` (absent where not measurable).

Scores are averaged over a segment's frames first; the grade is computed from those averages.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import _shots
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

SEGMENT_S = 1.0
DARK, BRIGHT = 16.0, 240.0
MEDIAN_RESIDUAL_SHARE = 0.862
BLOCK_PERIODS = (8.0, 4.0)
MIN_PERIOD_PX = 2.5
FLAT_GRADIENT2 = 2.0
WEIGHTS = {"sharpness": 0.4, "noise": 0.25, "exposure": 0.2, "blockiness": 0.15}

COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("shot_index", pa.int64()),
    pa.field("grade", pa.float64()),
    pa.field("sharpness_index", pa.float64()),
    pa.field("laplacian_var", pa.float64()),
    pa.field("noise_sigma", pa.float64()),
    pa.field("underexposed", pa.float64()),
    pa.field("overexposed", pa.float64()),
    pa.field("blockiness", pa.float64()),
    pa.field("score_sharpness", pa.float64()),
    pa.field("score_noise", pa.float64()),
    pa.field("score_exposure", pa.float64()),
    pa.field("score_blockiness", pa.float64()),
    pa.field("frames", pa.int64()),
)


def grey(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame, dtype=np.float32)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def noise_sigma(g: np.ndarray) -> float:
    """Noise standard deviation (grey levels) from the median-filter residual in flat regions."""
    import cv2

    residual = g - cv2.medianBlur(g, 3)
    smooth = cv2.GaussianBlur(g, (0, 0), 1.5)
    gradient = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    usable = (g > DARK) & (g < BRIGHT)
    if usable.sum() < 100:
        usable = np.ones_like(usable)
    flat = usable & (gradient <= np.percentile(gradient[usable], 25))
    r = residual[flat]
    if r.size < 50:
        return 0.0
    return float(1.4826 * np.median(np.abs(r - np.median(r))) / MEDIAN_RESIDUAL_SHARE)


def sharpness(g: np.ndarray, sigma: float) -> tuple[float, float | None]:
    """(Laplacian variance, noise-corrected Laplacian-to-gradient energy ratio or None if flat)."""
    import cv2

    lap_var = float(cv2.Laplacian(g, cv2.CV_32F, ksize=1)[1:-1, 1:-1].var())
    gx = np.diff(g, axis=1)[:-1, :]
    gy = np.diff(g, axis=0)[:, :-1]
    grad2 = float((gx**2 + gy**2).mean())
    if grad2 < FLAT_GRADIENT2:
        return lap_var, None
    lap_clean = max(lap_var - 20 * sigma**2, 0.25 * lap_var)
    grad_clean = max(grad2 - 4 * sigma**2, 0.25 * grad2)
    return lap_var, lap_clean / grad_clean


def _grid_strength(profile: np.ndarray, period: float) -> float:
    """Fourier amplitude of ``profile`` at 1/period above nearby frequencies, relative to its mean."""
    mean = float(profile.mean())
    if mean <= 1e-6 or profile.size < 4 * period:
        return 0.0
    x = np.arange(profile.size)
    centred = profile - mean

    def amplitude(f: float) -> float:
        return float(np.abs((centred * np.exp(-2j * np.pi * f * x)).sum()) / profile.size)

    f0 = 1.0 / period
    baseline = float(np.median([amplitude(f0 * (1 + s)) for s in (-0.12, -0.08, -0.05, 0.05, 0.08, 0.12)]))
    return max(0.0, 2 * (amplitude(f0) - baseline) / mean)


def blockiness(g: np.ndarray, scale: float) -> float | None:
    """Block-grid strength of a grey frame sampled at ``scale`` x the source size (None: too small)."""
    periods = [p * scale for p in BLOCK_PERIODS if p * scale >= MIN_PERIOD_PX]
    if not periods:
        return None
    across = np.abs(np.diff(g, axis=1)).mean(axis=0)
    down = np.abs(np.diff(g, axis=0)).mean(axis=1)
    return max(0.5 * (_grid_strength(across, p) + _grid_strength(down, p)) for p in periods)


def frame_measures(frame: np.ndarray, scale: float) -> dict:
    g = grey(frame)
    sigma = noise_sigma(g)
    lap_var, index = sharpness(g, sigma)
    return {
        "sharpness_index": index,
        "laplacian_var": lap_var,
        "noise_sigma": sigma,
        "underexposed": float((g <= DARK).mean()),
        "overexposed": float((g >= BRIGHT).mean()),
        "blockiness": blockiness(g, scale),
    }


def scores(m: dict) -> dict:
    """Sub-scores (0..1, None when not measurable) of one frame's measures."""
    clip = lambda v: float(np.clip(v, 0.0, 1.0))  # noqa: E731
    return {
        "sharpness": None if m["sharpness_index"] is None else clip((m["sharpness_index"] - 0.2) / 1.3),
        "noise": clip(1 - (m["noise_sigma"] - 1.5) / 6.5),
        "exposure": clip(1 - (m["underexposed"] + m["overexposed"] - 0.05) / 0.45),
        "blockiness": None if m["blockiness"] is None else clip(1 - (m["blockiness"] - 0.05) / 0.25),
    }


def _mean(values: list) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def grade(score: dict) -> float | None:
    """The weighted mean of the available scores, 0..100 (see the module docstring)."""
    parts = [(WEIGHTS[k], v) for k, v in score.items() if v is not None]
    if not parts:
        return None
    return 100.0 * sum(w * v for w, v in parts) / sum(w for w, _ in parts)


def summary_row(measures: list[dict], frame_scores: list[dict]) -> dict:
    """Averaged measures, scores and grade of several frames."""
    row: dict = {}
    for key in ("sharpness_index", "laplacian_var", "noise_sigma", "underexposed", "overexposed", "blockiness"):
        value = _mean([m[key] for m in measures])
        row[key] = None if value is None else round(value, 4)
    averaged = {k: _mean([s[k] for s in frame_scores]) for k in WEIGHTS}
    for key, value in averaged.items():
        row[f"score_{key}"] = None if value is None else round(value, 4)
    total = grade(averaged)
    row["grade"] = None if total is None else round(total, 1)
    row["frames"] = len(measures)
    return row


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    shots = _shots.shot_list(media, context)
    frame_times = np.asarray(media.frame_times)
    scale = media.meta.frame_shape[2] / max(media.meta.width, 1)
    measures = [frame_measures(frame, scale) for frame in media.frames]
    frame_scores = [scores(m) for m in measures]
    rows, examined, skipped = [], [], 0
    for segment in shots.segments(SEGMENT_S):
        picked = _shots.frames_in(frame_times, segment.start_s, segment.end_s)
        if picked.size == 0:
            skipped += 1
            continue
        rows.append({
            "start_s": segment.start_s,
            "end_s": segment.end_s,
            "level": "segment",
            "shot_index": segment.shot_index,
            **summary_row([measures[i] for i in picked], [frame_scores[i] for i in picked]),
        })
        examined.append((segment.start_s, segment.end_s))
    video = {"start_s": 0.0, "end_s": round(float(media.duration_s), 3), "level": "video",
             **summary_row(measures, frame_scores)}
    rows.append(video)
    grades = [r["grade"] for r in rows[:-1] if r["grade"] is not None]
    metadata = {
        "grade": video["grade"],
        "worst_segment_grade": min(grades) if grades else None,
        "sharpness_index": video["sharpness_index"],
        "noise_sigma": video["noise_sigma"],
        "blockiness": video["blockiness"],
        "frames_measured": len(measures),
        "cuts_from": shots.source,
    }
    metadata = {k: v for k, v in metadata.items() if v is not None}
    notes = []
    if skipped:
        notes.append(f"{skipped} segment(s) shorter than the frame sampling interval were not measured")
    if video["blockiness"] is None:
        notes.append("blockiness not measurable: the sampled frames are scaled down too far from the source")
    if notes:
        metadata["note"] = "; ".join(notes)
    return AnalyzerOutput(rows=rows, examined=examined, metadata=metadata)


SPEC = AnalyzerSpec(
    name="content_quality",
    modality="visual",
    description="Sharpness, noise, exposure and blockiness per ~1 s segment with a 0-100 grade, and for the video",
    version="1",
    columns=COLUMNS,
    run=run,
    depends_on=("cut_analysis",),
    main_figure="grade",
)
