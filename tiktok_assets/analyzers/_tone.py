"""The one definition of a black or white picture, shared by cut_analysis and visual_effects.

A frame is *black* when the mean of its grey level ``Y = 0.299 R + 0.587 G + 0.114 B`` is at most
``DARK`` and *white* when it is at least ``LIGHT``, in both cases with a grey-level standard
deviation under ``FLAT_STD`` (a flat picture, not a dark scene with detail). It is black (white)
too when at least ``1 - CAPTION_SHARE`` of its pixels are at most ``DARK`` (at least ``LIGHT``):
a caption, sticker or logo that stays on screen while the video fades through black covers the
rest.
"""

from __future__ import annotations

import numpy as np

DARK, LIGHT, FLAT_STD = 24.0, 231.0, 12.0
CAPTION_SHARE = 0.15
BLACK, NEITHER, WHITE = -1, 0, 1
_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def grey(frame: np.ndarray) -> np.ndarray:
    """Grey level of an RGB frame, float32."""
    return np.asarray(frame, dtype=np.float32) @ _WEIGHTS


def grey_tone(g: np.ndarray, mean: float | None = None) -> int:
    """``BLACK``, ``WHITE`` or ``NEITHER`` for a frame's grey levels (see the module docstring);
    ``mean``: their mean, when already at hand."""
    if g.size == 0:
        return NEITHER
    mean = float(g.mean()) if mean is None else mean
    edge = CAPTION_SHARE * 255.0  # a picture that is mostly black cannot be brighter on average
    most = (1 - CAPTION_SHARE) * g.size
    if mean <= DARK + edge and (
        (mean <= DARK and float(g.std()) < FLAT_STD) or np.count_nonzero(g <= DARK) >= most
    ):
        return BLACK
    if mean >= LIGHT - edge and (
        (mean >= LIGHT and float(g.std()) < FLAT_STD) or np.count_nonzero(g >= LIGHT) >= most
    ):
        return WHITE
    return NEITHER


def luma_curve(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean grey level and tone (``BLACK`` / ``NEITHER`` / ``WHITE``) of every frame."""
    mean, tone = np.zeros(len(frames)), np.zeros(len(frames), dtype=np.int8)
    for i, frame in enumerate(frames):
        g = grey(frame)
        if g.size:
            mean[i] = g.mean()
            tone[i] = grey_tone(g, float(mean[i]))
    return mean, tone


def tonal_step(prev: np.ndarray, cur: np.ndarray, min_gain: float, max_residual: float,
               min_change: float) -> float | None:
    """Signed mean grey change when ``cur`` is ``prev`` under one global gain and offset, else None.

    ``cur ~ g * prev + o`` over all pixels and channels with ``g >= min_gain`` and a mean residual
    <= ``max_residual`` of the mean absolute change (which must be >= ``min_change``): the same
    picture made brighter or darker, not another picture.
    """
    x = prev.astype(np.float32).ravel()
    y = cur.astype(np.float32).ravel()
    step = float(np.abs(y - x).mean())
    xc = x - x.mean()
    var = float(xc @ xc)
    if step < min_change or var <= 0:
        return None
    yc = y - y.mean()
    gain = float(xc @ yc) / var
    if gain < min_gain or float(np.abs(yc - gain * xc).mean()) > max_residual * step:
        return None
    return float(y.mean() - x.mean())


def black(tone: np.ndarray | int) -> np.ndarray | bool:
    """Black frames (elementwise for arrays)."""
    return np.asarray(tone) == BLACK


def white(tone: np.ndarray | int) -> np.ndarray | bool:
    """White frames (elementwise for arrays)."""
    return np.asarray(tone) == WHITE

