"""Clips of one large, centred face cut hard between shots (the creator talking to the camera, then
the same creator in another room or another shirt), with exact truth.

The astronaut portrait (scikit-image) is cut to her head and shoulders, softened at the edge by an
elliptical mask and pasted large and centred on a 180x320 (portrait) frame over a background: a
plain colour, a colour gradient, a textured noise field or another photo. Within a shot the head
bobs a few pixels, the view slowly zooms and the background pans, so no shot is a still; a
clothing band (the shirt) fills the bottom of the frame. Shots are joined by hard cuts only;
``Clip.cuts`` holds the first frame of every new shot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

W, H = 180, 320
HEAD = (110, 0, 350, 330)  # x0, y0, x1, y1 of the head and shoulders in the 512x512 photo


def head() -> tuple[np.ndarray, np.ndarray]:
    """The head-and-shoulders crop (float32 RGB) and its soft elliptical mask (float32, 0..1)."""
    from skimage import data

    x0, y0, x1, y1 = HEAD
    crop = data.astronaut()[y0:y1, x0:x1].astype(np.float32)
    h, w = crop.shape[:2]
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, int(h * 0.33)), (int(w * 0.3), int(h * 0.29)), 0, 0, 360, 1.0, -1)
    cv2.rectangle(mask, (int(w * 0.04), int(h * 0.55)), (int(w * 0.96), h), 1.0, -1)  # the shoulders
    return crop, cv2.GaussianBlur(mask, (0, 0), 2)


def background(kind: str, seed: int = 0) -> np.ndarray:
    """A 1.5x-frame-sized background (float32 RGB): 'plain:<r>,<g>,<b>', 'gradient', 'texture',
    or a scikit-image photo ('coffee', 'chelsea', 'rocket', 'hubble')."""
    size = (int(1.5 * W), int(1.5 * H))
    if kind.startswith("plain:"):
        colour = [float(c) for c in kind[6:].split(",")]
        return np.ones((size[1], size[0], 3), np.float32) * np.float32(colour)
    if kind == "gradient":
        y = np.linspace(0, 1, size[1])[:, None]
        x = np.linspace(0, 1, size[0])[None, :]
        return np.stack([60 + 150 * x + 0 * y, 200 - 120 * y + 0 * x, 90 + 100 * x * y], axis=2).astype(np.float32)
    if kind == "texture":
        rng = np.random.default_rng(seed)
        low = rng.uniform(0, 255, (6, 4, 3)).astype(np.float32)
        img = cv2.resize(low, size, interpolation=cv2.INTER_CUBIC)
        img += cv2.GaussianBlur(rng.normal(0, 35, (size[1], size[0], 3)).astype(np.float32), (0, 0), 1.5)
        return np.clip(img, 0, 255)
    from skimage import data

    photo = {"coffee": data.coffee, "chelsea": data.chelsea, "rocket": data.rocket,
             "hubble": data.hubble_deep_field}[kind]()
    scale = max(size[0] / photo.shape[1], size[1] / photo.shape[0])
    img = cv2.resize(photo, (round(photo.shape[1] * scale) + 1, round(photo.shape[0] * scale) + 1),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return img[: size[1], : size[0]].astype(np.float32)


@dataclass
class FaceShot:
    """One shot: ``bg`` panning by ``pan`` px/s, the head (width ``face_w`` px) centred at
    (W/2 + dx, ``y``) and bobbing by ``bob`` px, the view zooming by ``zoom`` per second, and a
    shirt band of colour ``shirt`` (None: the astronaut's own suit) over the bottom of the frame."""

    bg: np.ndarray
    face_w: float = 150.0
    dx: float = 0.0
    y: float = 140.0
    bob: float = 3.0
    pan: tuple[float, float] = (6.0, 3.0)
    zoom: float = 0.03
    shirt: tuple[float, float, float] | None = None
    sweep: tuple[float, float, float, float] | None = None  # (start s, length s, dx px, log zoom):
    # a fast head turn or zoom inside the shot, eased in and out

    def frame(self, t: float, crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
        bx, by = 0.25 * W + self.pan[0] * t, 0.25 * H + self.pan[1] * t
        m = np.float32([[1, 0, -bx], [0, 1, -by]])
        out = cv2.warpAffine(self.bg, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if self.shirt is not None:
            out[int(0.78 * H):] = np.float32(self.shirt)
        turn, burst = 0.0, 0.0
        if self.sweep is not None:
            start, length, far, log_zoom = self.sweep
            u = float(np.clip((t - start) / length, 0, 1))
            turn, burst = far * u * u * (3 - 2 * u), log_zoom * u * u * (3 - 2 * u)
        zoom = float(np.exp(self.zoom * t + burst))
        s = self.face_w / crop.shape[1] * zoom
        cx = W / 2 + self.dx + self.bob * np.sin(2 * np.pi * 0.7 * t) + turn
        cy = self.y + 0.6 * self.bob * np.sin(2 * np.pi * 0.45 * t + 1.0)
        a = np.float32([[s, 0, cx - s * crop.shape[1] / 2], [0, s, cy - s * crop.shape[0] * 0.45]])
        face = cv2.warpAffine(crop, a, (W, H), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        alpha = cv2.warpAffine(mask, a, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        if self.shirt is not None:  # the shirt covers the body below the neck
            body = np.zeros((H, W, 1), np.float32)
            body[int(cy + s * crop.shape[0] * 0.37):] = 1.0
            alpha = alpha * (1 - body)
            out = np.where(body > 0, np.float32(self.shirt), out)
        return out * (1 - alpha) + face * alpha


@dataclass
class Clip:
    fps: float
    frames: list[np.ndarray] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # first frame of every new shot

    @property
    def cut_times(self) -> list[float]:
        return [k / self.fps for k in self.cuts]


def make_clip(shots: list[FaceShot], seconds: list[float], fps: float) -> Clip:
    """The shots, ``seconds`` long each, joined by hard cuts."""
    crop, mask = head()
    clip = Clip(fps)
    for number, (shot, length) in enumerate(zip(shots, seconds)):
        if number:
            clip.cuts.append(len(clip.frames))
        for k in range(int(round(length * fps))):
            clip.frames.append(np.clip(shot.frame(k / fps, crop, mask) + 0.5, 0, 255).astype(np.uint8))
    return clip
