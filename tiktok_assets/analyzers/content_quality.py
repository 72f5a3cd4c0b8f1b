"""Technical picture quality per ~1 s segment (never across a cut) and for the whole video.

Measured on every sampled frame (``media.frames``: long side 640, which normalises sources of any
resolution to one pixel scale; smaller sources are measured at their own size), on the grey
image ``Y = 0.299 R + 0.587 G + 0.114 B``:

* ``noise_sigma``: standard deviation of the noise in grey levels, from the residual of a 3x3
  median filter in the flattest quarter of the frame (lowest smoothed gradient, clipped pixels
  left out), robustly as ``1.4826 * MAD / 0.862`` (0.862: the residual's share of white noise).
* ``laplacian_var``: variance of the 4-neighbour Laplacian (the classic blur figure; depends on the
  amount of detail, reported for reference only).
* ``sharpness_index`` (0..1, higher is sharper): ``1 - blur effect`` after Crete-Roffet et al.
  (2007): the grey image is blurred again with a 9-tap box along rows (columns); the share of the
  neighbour differences that the re-blur does *not* remove is the blur (a blurred picture loses
  little more). The larger blur of the two directions counts. About 0.6-0.8 for a crisp photo,
  0.4-0.6 after a 1-pixel Gaussian blur, 0.25-0.35 after 2 pixels, 0.15-0.25 from 3-5 pixels,
  much the same whatever the content (noise raises it; it is scored on its own); null for a picture without detail (neighbour differences under
  ``FLAT_GRADIENT`` grey levels on average).
* ``underexposed`` / ``overexposed``: share of the frame with Y <= 16 / Y >= 240, measured on 4x4
  pixel averages (clipped *areas* count; a slight blur or single specular pixels change nothing).
* ``blockiness``: coding-block grid strength: the mean absolute difference between neighbouring
  columns (and rows) is read as a signal along the frame, and its Fourier amplitude at the block
  period (8 and 4 source pixels, scaled to the sampled frame; periods below 2.5 pixels are not
  measurable) above the neighbouring frequencies, relative to its mean; 0 for clean pictures,
  ~0.2-0.4 for heavy JPEG-style blocking, ~2 for a pixelated picture.

Grade (0-100) = ``100 * gate * sum(w_i s_i) / sum(w_i)`` with weights sharpness 0.35, noise 0.35,
exposure 0.15, blockiness 0.15 and scores clipped to 0..1:

* ``score_sharpness = (sharpness_index - 0.25) / 0.3`` (0 for a picture without detail: a flat,
  black or white frame has nothing sharp in it; it is never left out);
* ``score_noise = 1 - (noise_sigma - 1.5) / 6.5`` (1 up to 1.5 grey levels, 0 from 8);
* ``score_exposure = 1 - (underexposed + overexposed - 0.1) / 0.4`` (10 % clipped is free);
* ``score_blockiness = 1 - (blockiness - 0.1) / 0.25`` (left out, with its weight, where not
  measurable);
* ``gate = sqrt(min(score_sharpness, visible))`` with ``visible = (1 - clipped share) / 0.5``
  clipped to 0..1: a picture that is blurred away, flat, or mostly black or white grades 0
  whatever its other scores. Every factor rises with its score, so the grade falls
  monotonically with blur, noise, clipping and blocking.

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
FLAT_GRADIENT = 0.5
REBLUR_TAPS = 9
EXPOSURE_POOL = 4
SHARP_LOW, SHARP_SPAN = 0.25, 0.3
WEIGHTS = {"sharpness": 0.35, "noise": 0.35, "exposure": 0.15, "blockiness": 0.15}

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


def blur_effect(g: np.ndarray) -> float | None:
    """Blur effect 0 (sharp) .. 1 (blurred) of a grey frame, or None without detail (see the docstring)."""
    import cv2

    worst = None
    for axis in (0, 1):
        if g.shape[axis] < 2:
            continue
        shape = (REBLUR_TAPS, 1) if axis == 0 else (1, REBLUR_TAPS)
        kernel = np.full(shape, 1.0 / REBLUR_TAPS, np.float32)
        reblurred = cv2.filter2D(g, -1, kernel, borderType=cv2.BORDER_REFLECT)
        d = np.abs(np.diff(g, axis=axis))
        kept = np.maximum(0.0, d - np.abs(np.diff(reblurred, axis=axis)))
        total = float(d.sum())
        if total < FLAT_GRADIENT * d.size:
            continue
        blur = (total - float(kept.sum())) / total
        worst = blur if worst is None else max(worst, blur)
    return worst


def sharpness(g: np.ndarray) -> tuple[float, float | None]:
    """(Laplacian variance, sharpness index 0..1 or None for a picture without detail)."""
    import cv2

    inner = cv2.Laplacian(g, cv2.CV_32F, ksize=1)[1:-1, 1:-1] if min(g.shape) >= 3 else np.zeros(1)
    blur = blur_effect(g)
    return float(inner.var()), None if blur is None else 1.0 - blur


def _grid_strength(profile: np.ndarray, period: float) -> float:
    """Fourier amplitude of ``profile`` at 1/period above nearby frequencies, relative to its mean."""
    if profile.size < 4 * period:
        return 0.0
    mean = float(profile.mean())
    if mean <= 1e-6:
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


def _pooled(g: np.ndarray, k: int) -> np.ndarray:
    """Means of ``k`` x ``k`` pixel blocks (the frame itself when it is smaller than one block)."""
    h, w = (g.shape[0] // k) * k, (g.shape[1] // k) * k
    if h == 0 or w == 0:
        return g
    return g[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def frame_measures(frame: np.ndarray, scale: float) -> dict:
    g = grey(frame)
    sigma = noise_sigma(g)
    lap_var, index = sharpness(g)
    coarse = _pooled(g, EXPOSURE_POOL)
    return {
        "sharpness_index": index,
        "laplacian_var": lap_var,
        "noise_sigma": sigma,
        "underexposed": float((coarse <= DARK).mean()),
        "overexposed": float((coarse >= BRIGHT).mean()),
        "blockiness": blockiness(g, scale),
    }


def scores(m: dict) -> dict:
    """Sub-scores (0..1, None when not measurable) of one frame's measures."""
    clip = lambda v: float(np.clip(v, 0.0, 1.0))  # noqa: E731
    return {
        "sharpness": 0.0 if m["sharpness_index"] is None else clip((m["sharpness_index"] - SHARP_LOW) / SHARP_SPAN),
        "noise": clip(1 - (m["noise_sigma"] - 1.5) / 6.5),
        "exposure": clip(1 - (m["underexposed"] + m["overexposed"] - 0.1) / 0.4),
        "blockiness": None if m["blockiness"] is None else clip(1 - (m["blockiness"] - 0.1) / 0.25),
        "visible": clip((1 - m["underexposed"] - m["overexposed"]) / 0.5),
    }


def _mean(values: list) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def grade(score: dict) -> float | None:
    """Gated weighted mean of the available scores, 0..100 (see the module docstring)."""
    parts = [(WEIGHTS[k], score[k]) for k in WEIGHTS if score.get(k) is not None]
    if not parts or score.get("sharpness") is None:
        return None
    gate = min(score["sharpness"], score.get("visible", 1.0)) ** 0.5
    return 100.0 * gate * sum(w * v for w, v in parts) / sum(w for w, _ in parts)


def summary_row(measures: list[dict], frame_scores: list[dict]) -> dict:
    """Averaged measures, scores and grade of several frames."""
    row: dict = {}
    for key in ("sharpness_index", "laplacian_var", "noise_sigma", "underexposed", "overexposed", "blockiness"):
        value = _mean([m[key] for m in measures])
        row[key] = None if value is None else round(value, 4)
    averaged = {k: _mean([s[k] for s in frame_scores]) for k in (*WEIGHTS, "visible")}
    for key, value in averaged.items():
        if key not in WEIGHTS:
            continue
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
    version="2",
    columns=COLUMNS,
    run=run,
    depends_on=("cut_analysis",),
    main_figure="grade",
)
