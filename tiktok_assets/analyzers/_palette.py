"""Dominant colours by k-means in CIELAB (not an analyzer itself).

Pixels are converted to CIELAB (D65, OpenCV), clustered with a deterministic k-means (k-means++
seeding from a fixed seed), clusters closer than ``MERGE_DELTA_E`` are merged, and each colour is
reported as the mean sRGB of its pixels (more faithful than converting the Lab centre back).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MERGE_DELTA_E = 10.0
MIN_SHARE = 0.01
ITERATIONS = 12


@dataclass(frozen=True)
class Colour:
    rgb: tuple[int, int, int]
    share: float

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 sRGB -> (N, 3) float32 L*a*b* (L in 0..100)."""
    import cv2

    scaled = (np.asarray(rgb, dtype=np.float32) / 255.0).reshape(-1, 1, 3)
    return cv2.cvtColor(scaled, cv2.COLOR_RGB2Lab).reshape(-1, 3)


def sample_pixels(frames: np.ndarray | list[np.ndarray], budget: int = 6000) -> np.ndarray:
    """About ``budget`` pixels (N, 3) uint8 on a regular grid spread over all given frames."""
    frames = [np.asarray(f) for f in frames]
    if not frames:
        return np.zeros((0, 3), dtype=np.uint8)
    per_frame = max(64, budget // len(frames))
    out = []
    for frame in frames:
        h, w = frame.shape[:2]
        stride = max(1, int(np.sqrt(h * w / per_frame)))
        out.append(frame[stride // 2 :: stride, stride // 2 :: stride].reshape(-1, 3))
    return np.concatenate(out)


def kmeans(points: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(centres, labels) of a k-means++ seeded Lloyd clustering with a fixed seed."""
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(points)))
    centres = [points[rng.integers(len(points))]]
    nearest = ((points - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        if total <= 0:
            break
        pick = points[rng.choice(len(points), p=nearest / total)]
        centres.append(pick)
        nearest = np.minimum(nearest, ((points - pick) ** 2).sum(axis=1))
    c = np.asarray(centres, dtype=np.float64)
    labels = np.zeros(len(points), dtype=np.int64)
    for _ in range(ITERATIONS):
        distance = ((points[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        new = distance.argmin(axis=1)
        if _ and np.array_equal(new, labels):
            break
        labels = new
        for j in range(len(c)):
            members = points[labels == j]
            if len(members):
                c[j] = members.mean(axis=0)
    return c, labels


def palette(pixels: np.ndarray, k: int = 5) -> list[Colour]:
    """Up to ``k`` dominant colours of (N, 3) uint8 sRGB pixels, largest share first."""
    if len(pixels) == 0:
        return []
    lab = to_lab(pixels).astype(np.float64)
    centres, labels = kmeans(lab, k)
    groups = [[j] for j in range(len(centres))]
    merged = True
    while merged:  # join clusters whose (share-weighted) Lab centres are perceptually close
        merged = False
        means = [np.average(centres[g], axis=0, weights=[(labels == j).sum() + 1e-9 for j in g]) for g in groups]
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if np.linalg.norm(means[a] - means[b]) < MERGE_DELTA_E:
                    groups[a] += groups.pop(b)
                    merged = True
                    break
            if merged:
                break
    colours = []
    for group in groups:
        mask = np.isin(labels, group)
        share = float(mask.mean())
        if share < MIN_SHARE:
            continue
        rgb = tuple(int(round(v)) for v in pixels[mask].astype(np.float64).mean(axis=0))
        colours.append(Colour(rgb, share))
    total = sum(c.share for c in colours) or 1.0
    colours = [Colour(c.rgb, round(c.share / total, 4)) for c in colours]
    return sorted(colours, key=lambda c: -c.share)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


def colour_temperature(pixels: np.ndarray) -> float | None:
    """Correlated colour temperature (K) of the mean linear colour, McCamy's formula, 1500-20000 K.

    None for (near) black pictures, where the chromaticity is undefined, and for purples and deep
    blues far below the Planckian locus (CIE y < 0.2), where the formula has no meaning.
    """
    mean = srgb_to_linear(pixels).reshape(-1, 3).mean(axis=0)
    xyz = SRGB_TO_XYZ @ mean
    total = xyz.sum()
    if total < 1e-3:
        return None
    x, y = xyz[0] / total, xyz[1] / total
    if y < 0.2:
        return None
    n = (x - 0.3320) / (0.1858 - y)
    cct = 449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33
    return float(np.clip(cct, 1500.0, 20000.0))
