"""Clips with known edits for the transition tests: hard cuts, dissolves, fades, flashes, whip pans.

A clip is a run of shots; every shot is a window slowly panning (and sometimes zooming) over a
picture (scikit-image's bundled photos or a textured noise field), so no shot is a still. Between
shots the generator puts a hard cut, a cross-dissolve (0.3-1.0 s) or a fade through black or white;
inside shots it puts 2-3-frame white flashes (hard or soft) and whip pans (the window races
sideways or up/down over a few frames, mostly motion-blurred, and settles elsewhere on the same
picture: one shot, no edit). Shot lengths, pictures, pans and transition kinds are drawn from a
seeded generator, so each seed gives a different clip whose truth is exact:

* ``hard_cut``: the time of the first frame of the new shot;
* ``dissolve`` / ``fade_out`` / ``fade_in``: the span from the last unmixed frame to the first
  unmixed (or fully black/white) frame, and its midpoint;
* ``flash`` and ``whip``: spans in which no edit may be reported; a whip also names the camera
  motion it is (``camera``: ``pan_left``/``pan_right``/``tilt_up``/``tilt_down``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

W, H = 180, 320


def _textured(seed: int) -> np.ndarray:
    """A colourful textured noise field with a few shapes (600x400)."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, (8, 6, 3)).astype(np.float32)
    img = cv2.resize(low, (400, 600), interpolation=cv2.INTER_CUBIC)
    img += cv2.GaussianBlur(rng.normal(0, 40, (600, 400, 3)).astype(np.float32), (0, 0), 1.2)
    for _ in range(40):
        centre = (int(rng.uniform(0, 400)), int(rng.uniform(0, 600)))
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        if rng.random() < 0.5:
            cv2.circle(img, centre, int(rng.uniform(5, 40)), colour, -1)
        else:
            cv2.rectangle(img, centre, (centre[0] + int(rng.uniform(5, 60)), centre[1] + int(rng.uniform(5, 60))),
                          colour, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def pictures() -> list[np.ndarray]:
    """The source pictures: real photos and textured noise, each at least 1.5x the clip size."""
    import skimage.data

    found = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket(),
             _textured(1), _textured(2)]
    out = []
    for img in found:
        scale = max(1.5 * H / img.shape[0], 1.5 * W / img.shape[1])
        out.append(cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                              interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC))
    return out


def window(img: np.ndarray, cx: float, cy: float, zoom: float = 1.0, blur_dx: float = 0.0,
           blur_dy: float = 0.0) -> np.ndarray:
    """The clip-sized view centred at (cx, cy) of ``img`` magnified by ``zoom`` (reflecting at the
    borders), smeared over ``blur_dx`` / ``blur_dy`` pixels (the motion blur of a fast pan)."""
    m = np.float32([[zoom, 0, W / 2 - zoom * cx], [0, zoom, H / 2 - zoom * cy]])
    view = cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    kx, ky = int(round(abs(blur_dx))), int(round(abs(blur_dy)))
    if max(kx, ky) >= 2:
        view = cv2.blur(view, (max(1, kx), max(1, ky)), borderType=cv2.BORDER_REFLECT)
    return view.astype(np.float32)


@dataclass
class Shot:
    """A view panning over a picture: position at frame k is start + k * velocity."""

    img: np.ndarray
    cx: float
    cy: float
    vx: float
    vy: float
    zoom: float
    zoom_rate: float  # per frame, multiplicative
    whip_at: int | None = None  # frame of the shot where a whip pan starts
    whip_frames: int = 0
    whip_dx: float = 0.0
    whip_vertical: bool = False
    whip_blur: bool = True

    def _whip(self, k: int) -> float:
        """How far the whip pan has carried the view by frame k (smoothstep over its frames)."""
        if self.whip_at is None:
            return 0.0
        u = float(np.clip((k - self.whip_at + 1) / self.whip_frames, 0, 1))
        return self.whip_dx * u * u * (3 - 2 * u)

    def frame(self, k: int) -> np.ndarray:
        whip = self._whip(k)
        smear = (whip - self._whip(k - 1)) if self.whip_blur else 0.0
        x, y = self.cx + self.vx * k, self.cy + self.vy * k
        if self.whip_vertical:
            return window(self.img, x, y + whip, self.zoom * self.zoom_rate**k, 0.0, smear)
        return window(self.img, x + whip, y, self.zoom * self.zoom_rate**k, smear)


@dataclass
class Clip:
    fps: int
    frames: list[np.ndarray] = field(default_factory=list)
    edits: list[dict] = field(default_factory=list)  # hard_cut / dissolve / fade_out / fade_in
    calm: list[dict] = field(default_factory=list)  # flash / whip spans: no edit may be inside

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def _shot(rng: np.random.Generator, pics: list[np.ndarray], fps: int, last: int | None) -> tuple[Shot, int]:
    choices = [i for i in range(len(pics)) if i != last] if rng.random() < 0.8 else list(range(len(pics)))
    index = int(rng.choice(choices))
    img = pics[index]
    speed = rng.uniform(8, 30) / fps  # pixels per frame: a slow pan
    angle = rng.uniform(0, 2 * np.pi)
    zoom_rate = float(np.exp(rng.choice([0.0, rng.uniform(-0.08, 0.08)]) / fps))
    shot = Shot(img, rng.uniform(0.3, 0.7) * img.shape[1], rng.uniform(0.3, 0.7) * img.shape[0],
                speed * np.cos(angle), speed * np.sin(angle), rng.uniform(1.0, 1.3), zoom_rate)
    return shot, index


def make_clip(seed: int, fps: int | None = None, shots: int = 5) -> Clip:
    """A clip of ``shots`` shots joined by random transitions, with flashes and whip pans inside."""
    rng = np.random.default_rng(seed)
    fps = int(fps or rng.choice([24, 30, 60]))
    pics = pictures()
    clip = Clip(fps)
    current, last_pic = _shot(rng, pics, fps, None)
    k = 0  # frame counter inside the current shot
    for number in range(shots):
        length = int(round(rng.uniform(0.8, 2.0) * fps))
        events = rng.random(2)
        flash_at = int(rng.uniform(0.15, 0.4) * length) if events[0] < 0.35 else None  # before any whip
        if events[1] < 0.3 and length > fps:
            current.whip_at, current.whip_frames = k + int(0.55 * length), int(rng.integers(4, 8)) * fps // 30 + 2
            current.whip_dx = float(rng.choice([-1, 1]) * rng.uniform(1.2, 3.0) * W)
            current.whip_vertical, current.whip_blur = bool(rng.random() < 0.25), bool(rng.random() < 0.7)
            # the window races right/down for whip_dx > 0: the camera pans right or tilts down
            camera = ("tilt_down" if current.whip_dx > 0 else "tilt_up") if current.whip_vertical else \
                ("pan_right" if current.whip_dx > 0 else "pan_left")
            clip.calm.append({"kind": "whip", "start_s": (len(clip.frames) + int(0.55 * length) - 1) / fps,
                              "end_s": (len(clip.frames) + int(0.55 * length) + current.whip_frames) / fps,
                              "camera": camera})
        flash_len = int(rng.integers(2, 4))
        profile = [1.0] * flash_len if rng.random() < 0.5 else [0.75, 1.0, 0.6][:flash_len]  # hard or soft flash
        if flash_at is not None:
            t = len(clip.frames) + flash_at
            clip.calm.append({"kind": "flash", "start_s": (t - 1) / fps, "end_s": (t + flash_len) / fps})
        for j in range(length):
            if flash_at is not None and flash_at <= j < flash_at + flash_len:
                a = profile[j - flash_at]
                clip.frames.append(np.clip((1 - a) * current.frame(k + j) + a * 255 + 0.5, 0, 255).astype(np.uint8))
            else:
                clip.frames.append(current.frame(k + j).astype(np.uint8))
        k += length
        if number == shots - 1:
            break
        nxt, last_pic = _shot(rng, pics, fps, last_pic)
        kind = rng.choice(["hard_cut", "hard_cut", "dissolve", "dissolve", "fade"])
        t0 = len(clip.frames)
        if kind == "hard_cut":
            clip.edits.append({"kind": "hard_cut", "start_s": t0 / fps, "end_s": t0 / fps, "mid_s": t0 / fps})
            current, k = nxt, 0
            continue
        if kind == "dissolve":
            n = int(round(rng.uniform(0.3, 1.0) * fps))
            for j in range(n):
                a = (j + 1) / (n + 1)
                mixed = (1 - a) * current.frame(k + j) + a * nxt.frame(j)
                clip.frames.append(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
            start, end = (t0 - 1) / fps, (t0 + n) / fps
            clip.edits.append({"kind": "dissolve", "start_s": start, "end_s": end, "mid_s": (start + end) / 2})
            current, k = nxt, n
            continue
        tone = 0.0 if rng.random() < 0.7 else 255.0
        n_out, hold, n_in = (int(round(rng.uniform(0.3, 0.8) * fps)), int(rng.integers(0, 4)),
                             int(round(rng.uniform(0.3, 0.8) * fps)))
        for j in range(n_out):
            a = (j + 1) / n_out
            clip.frames.append(np.clip((1 - a) * current.frame(k + j) + a * tone + 0.5, 0, 255).astype(np.uint8))
        start, end = (t0 - 1) / fps, (t0 + n_out - 1) / fps
        clip.edits.append({"kind": "fade_out", "start_s": start, "end_s": end, "mid_s": (start + end) / 2})
        clip.frames += [np.full((H, W, 3), int(tone), np.uint8)] * hold
        t1 = len(clip.frames)
        for j in range(n_in):
            a = j / n_in
            clip.frames.append(np.clip(a * nxt.frame(j) + (1 - a) * tone + 0.5, 0, 255).astype(np.uint8))
        start, end = (t1 - 1) / fps, (t1 + n_in) / fps
        clip.edits.append({"kind": "fade_in", "start_s": start, "end_s": end, "mid_s": (start + end) / 2})
        current, k = nxt, n_in
    return clip


def score(found: list[dict], clip: Clip, cut_tol: float | None = None, mid_tol: float = 0.25) -> dict:
    """Hard-cut and gradual-transition precision, recall and F1 of ``found`` (cut_analysis rows)
    against the clip's truth, and the edits reported inside flashes or whip pans."""
    cut_tol = cut_tol if cut_tol is not None else 1.5 / clip.fps
    out: dict = {}
    for group, kinds in (("cut", {"hard_cut"}), ("gradual", {"dissolve", "fade_out", "fade_in"})):
        truth = [e for e in clip.edits if e["kind"] in kinds]
        got = [r for r in found if r["kind"] in kinds]
        used: set[int] = set()
        hits = 0
        for e in truth:
            for i, r in enumerate(got):
                mid = (r["start_s"] + r["end_s"]) / 2
                ok = abs(r["start_s"] - e["start_s"]) <= cut_tol if group == "cut" else \
                    r["kind"] == e["kind"] and abs(mid - e["mid_s"]) <= mid_tol
                if ok and i not in used:
                    used.add(i)
                    hits += 1
                    break
        precision = hits / len(got) if got else 1.0
        recall = hits / len(truth) if truth else 1.0
        out[group] = {"truth": len(truth), "found": len(got), "hits": hits,
                      "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}
    out["inside_calm"] = [r for r in found for c in clip.calm
                          if c["start_s"] < (r["start_s"] + r["end_s"]) / 2 < c["end_s"]]
    return out
