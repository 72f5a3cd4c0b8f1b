"""The one definition of a black or white picture, shared by cut_analysis and visual_effects.

A frame is *black* when the mean of its grey level ``Y = 0.299 R + 0.587 G + 0.114 B`` is at most
``DARK`` and *white* when it is at least ``LIGHT``, in both cases with a grey-level standard
deviation under ``FLAT_STD`` (a flat picture, not a dark scene with detail).
"""

from __future__ import annotations

import numpy as np

DARK, LIGHT, FLAT_STD = 24.0, 231.0, 12.0
_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def grey(frame: np.ndarray) -> np.ndarray:
    """Grey level of an RGB frame, float32."""
    return np.asarray(frame, dtype=np.float32) @ _WEIGHTS


def luma_curve(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the grey level of every frame."""
    mean, std = np.zeros(len(frames)), np.zeros(len(frames))
    for i, frame in enumerate(frames):
        g = grey(frame)
        if g.size:
            mean[i], std[i] = g.mean(), g.std()
    return mean, std


def black(mean: np.ndarray | float, std: np.ndarray | float) -> np.ndarray | bool:
    """Flat and dark (elementwise for arrays)."""
    return (np.asarray(mean) <= DARK) & (np.asarray(std) < FLAT_STD)


def white(mean: np.ndarray | float, std: np.ndarray | float) -> np.ndarray | bool:
    """Flat and bright (elementwise for arrays)."""
    return (np.asarray(mean) >= LIGHT) & (np.asarray(std) < FLAT_STD)


def extreme(frame: np.ndarray) -> bool:
    """True for a (near) black or white frame."""
    g = grey(frame)
    if g.size == 0:
        return False
    mean, std = float(g.mean()), float(g.std())
    return bool(black(mean, std) or white(mean, std))
