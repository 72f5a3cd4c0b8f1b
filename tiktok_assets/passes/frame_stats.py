"""Frame statistics of the low-res stream, computed once per video.

Per low-res frame: the normalised joint RGB histogram with 8 bins per channel (512 shares, the one
``cut_analysis`` compares and ``scene_segmentation`` pools) and the mean and standard deviation of
its grey level and whether it is a black or white picture (``_tone.luma_curve``, the luma curve of
``visual_effects``). Reading a statistic through
:func:`stats` records the low-res frames it describes as read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import store

BINS = 8


def joint_histograms(frames: Any, bins: int = BINS) -> np.ndarray:
    """Normalised joint RGB histograms of RGB uint8 frames (or regions), shape (N, bins**3)."""
    shift = int(np.log2(256 // bins))
    out = np.empty((len(frames), bins**3), dtype=np.float32)
    for i, frame in enumerate(frames):
        q = (np.asarray(frame) >> shift).astype(np.int32)
        index = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
        out[i] = np.bincount(index.ravel(), minlength=bins**3)
    out /= out.sum(axis=1, keepdims=True)
    return out


def luma_stats(frames: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean grey level and tone (black / neither / white, ``_tone``) of every frame."""
    from ..analyzers import _tone

    return _tone.luma_curve(frames)


@dataclass
class FrameStats:
    """Per low-res frame arrays (views that record reads when the media is tracked)."""

    hist: Any  # (N, 512) float32
    luma_mean: Any  # (N,) float64
    tone: Any  # (N,) int8: _tone.BLACK / NEITHER / WHITE


def stats(media: Any) -> FrameStats:
    """The low-res stream's statistics, computed once per media-cache version."""
    base = store.base_media(media)

    def compute() -> dict[str, np.ndarray]:
        lowres = base.lowres
        mean, tone = luma_stats(lowres)
        return {"hist": joint_histograms(lowres), "luma_mean": mean, "tone": tone}

    arrays = store.cached(media, "frame_stats", compute)
    return FrameStats(*(store.lowres_view(media, arrays[k]) for k in ("hist", "luma_mean", "tone")))


def tv_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total-variation distance between histograms along the last axis."""
    return 0.5 * np.abs(a - b).sum(axis=-1)
