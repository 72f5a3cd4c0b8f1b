"""Clips of people with known truth, built from photos that ship in scikit-image.

The astronaut portrait (Eileen Collins, NASA, 1990s: a smiling woman in her late 30s looking into
the camera) is placed, scaled, moved, mirrored and cut against backgrounds without a person (the
coffee cup photo, the Hubble deep field, the retina photo, a synthetic gradient), so each frame's truth is known: person
present or not, where the face is, how many faces. Hand annotation of the photo (512x512 pixels):
eye centres (202.5, 100.5) and (247.5, 103.5), mouth centre (225, 147), face from cheek to cheek and
hairline to chin (180, 80)-(270, 180).

Clips are 360x640 (portrait), a few seconds at 10 fps. Not used as a background: scikit-image's
rocket photo, whose nose cone with its round logo MediaPipe reads as a face (score 0.65) with a
pose, and the cat photo, which selfie segmentation marks as half person.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

W, H = 360, 640
FPS = 10

EYES = ((202.5, 100.5), (247.5, 103.5))
MOUTH = (225.0, 147.0)
FACE_BOX = (180.0, 80.0, 270.0, 180.0)
# The closed-eye edit: the eye openings (hand drawn around the eyes, x0, y0, x1, y1 in the photo)
EYE_OPENINGS = ((190.0, 96.0, 215.0, 105.0), (235.0, 99.0, 260.0, 108.0))


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def background(kind: str = "coffee") -> np.ndarray:
    """A person-free 360x640 background."""
    from skimage import data

    if kind == "gradient":
        y = np.linspace(0, 1, H)[:, None, None]
        x = np.linspace(0, 1, W)[None, :, None]
        return np.clip(np.concatenate([60 + 120 * x + 0 * y, 90 + 100 * y + 0 * x, 160 - 80 * x * y], axis=2),
                       0, 255).astype(np.uint8)
    photo = {"coffee": data.coffee, "hubble": data.hubble_deep_field, "retina": data.retina}[kind]()
    h, w = photo.shape[:2]
    side = min(w, int(h * W / H))  # a portrait window out of the landscape photo
    crop = photo[:, (w - side) // 2 : (w - side) // 2 + side]
    return np.asarray(Image.fromarray(crop).resize((W, H), Image.BILINEAR))


@dataclass
class Placement:
    """The photo (or a crop of it) scaled by ``scale`` with its top-left corner at (x, y) in the
    frame, optionally mirrored."""

    x: float
    y: float
    scale: float
    crop: tuple[int, int, int, int] = (0, 0, 512, 512)  # x0, y0, x1, y1 of the photo
    mirrored: bool = False

    def point(self, px: float, py: float) -> tuple[float, float]:
        """Where photo pixel (px, py) lands in the frame."""
        x0, y0, x1, _ = self.crop
        u = (px - x0) * self.scale
        if self.mirrored:
            u = (x1 - x0) * self.scale - u
        return self.x + u, self.y + (py - y0) * self.scale

    def box(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        (ax, ay), (bx, by) = self.point(box[0], box[1]), self.point(box[2], box[3])
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def paste(frame: np.ndarray, photo: np.ndarray, where: Placement) -> np.ndarray:
    """``frame`` with the placed photo pasted over it (clipped at the frame's edges)."""
    x0, y0, x1, y1 = where.crop
    part = photo[y0:y1, x0:x1]
    size = (max(1, round(part.shape[1] * where.scale)), max(1, round(part.shape[0] * where.scale)))
    img = np.asarray(Image.fromarray(part).resize(size, Image.LANCZOS))
    if where.mirrored:
        img = img[:, ::-1]
    out = frame.copy()
    fx, fy = int(round(where.x)), int(round(where.y))
    sx0, sy0 = max(0, fx), max(0, fy)
    sx1, sy1 = min(W, fx + img.shape[1]), min(H, fy + img.shape[0])
    if sx1 > sx0 and sy1 > sy0:
        out[sy0:sy1, sx0:sx1] = img[sy0 - fy : sy1 - fy, sx0 - fx : sx1 - fx]
    return out


@dataclass
class Clip:
    frames: list[np.ndarray] = field(default_factory=list)
    # per frame: the placements of faces in it (empty: no person)
    truth: list[list[Placement]] = field(default_factory=list)

    def add(self, seconds: float, bg: np.ndarray, placements: list[Placement] | None = None,
            photo: np.ndarray | None = None, moving: tuple[float, float] = (0.0, 0.0)) -> Clip:
        """``seconds`` of frames: ``placements`` of ``photo`` (default the astronaut) over ``bg``,
        each moving by ``moving`` pixels per second."""
        photo = astronaut() if photo is None else photo
        for k in range(int(round(seconds * FPS))):
            t = k / FPS
            frame, here = bg, []
            for p in placements or []:
                q = Placement(p.x + moving[0] * t, p.y + moving[1] * t, p.scale, p.crop, p.mirrored)
                frame = paste(frame, photo, q)
                here.append(q)
            self.frames.append(frame)
            self.truth.append(here)
        return self

    def present_per_second(self) -> list[bool]:
        """Whether a person is on screen for most of each second."""
        out = []
        for s in range(int(np.ceil(len(self.frames) / FPS))):
            part = self.truth[s * FPS : (s + 1) * FPS]
            out.append(sum(bool(t) for t in part) * 2 > len(part))
        return out


def closed_eyes(photo: np.ndarray) -> np.ndarray:
    """The photo with both eye openings flattened to the skin colour just below them, and a thin
    lash line: the eyes read as closed."""
    out = photo.copy()
    for x0, y0, x1, y1 in EYE_OPENINGS:
        skin = photo[int(y1) + 3 : int(y1) + 6, int(x0) + 4 : int(x1) - 4].reshape(-1, 3).mean(axis=0)
        yy, xx = np.mgrid[0 : photo.shape[0], 0 : photo.shape[1]]
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 + 1, (y1 - y0) / 2 + 1
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        out[inside] = skin.astype(np.uint8)
        out[int(cy) + 1, int(x0) : int(x1)] = (70, 50, 45)
    return out


def shifted_irises(photo: np.ndarray, dx: float, dy: float = 0.0) -> np.ndarray:
    """The photo with both irises moved ``dx`` pixels sideways (positive: to the picture's right)
    and ``dy`` down, their old place filled with the white of the eye: the eyes look aside."""
    out = photo.copy()
    for (cx, cy), (x0, _, x1, _) in zip(EYES, EYE_OPENINGS):
        r = 4.5
        yy, xx = np.mgrid[-7:8, -7:8]
        disc = xx**2 + yy**2 <= r * r
        ix, iy = int(round(cx)), int(round(cy))
        patch = photo[iy - 7 : iy + 8, ix - 7 : ix + 8].copy()
        row = photo[iy - 1 : iy + 2, int(x0) : int(x1)].reshape(-1, 3)
        sclera = row[row.sum(axis=1) >= np.percentile(row.sum(axis=1), 95)].mean(axis=0).astype(np.uint8)
        out[iy - 7 : iy + 8, ix - 7 : ix + 8][disc] = sclera
        nx, ny = ix + int(round(dx)), iy + int(round(dy))
        out[ny - 7 : ny + 8, nx - 7 : nx + 8][disc] = patch[disc]
    return out


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
