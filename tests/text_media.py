"""Frames with known on-screen text (DejaVu fonts, Pillow) for the OCR tests and the OCR benchmark.

Styles: ``outline`` (white, black stroke), ``shadow`` (white, dark drop shadow), ``box`` (dark text on
a coloured box), ``caption`` (TikTok's white-on-black caption box), ``plain`` (coloured text
straight on the picture). ``angle`` slants the line (degrees, counter-clockwise).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
REGULAR = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
STYLES = ("outline", "shadow", "box", "caption", "plain")


def font(size: int, bold: bool = True) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(BOLD if bold else REGULAR, size)


def background(width: int, height: int, t: float = 0.0, seed: int = 0) -> Image.Image:
    """A busy picture: a diagonal colour gradient with soft blobs that drift with ``t`` (seconds)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 90 + 60 * np.sin(xs / 53.0 + t)
    g = 110 + 50 * np.cos(ys / 71.0 - 0.7 * t)
    b = 120 + 40 * np.sin((xs + ys) / 97.0 + 0.3 * t)
    img = np.stack([r, g, b], axis=-1)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        cx += 25 * t
        rad = rng.uniform(20, 60)
        mask = ((xs - cx) ** 2 + (ys - cy) ** 2) < rad**2
        img[mask] = rng.uniform(40, 220, 3)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def draw_text(img: Image.Image, text: str, size: int, xy: tuple[float, float], style: str = "outline",
              angle: float = 0.0, bold: bool = True) -> tuple[float, float, float, float]:
    """Draw ``text`` with its top-left near ``xy``; returns the text's (x0, y0, x1, y1) on the image."""
    f = font(size, bold)
    left, top, right, bottom = f.getbbox(text)
    tw, th = right - left, bottom - top
    pad = max(4, size // 3)
    layer = Image.new("RGBA", (tw + 4 * pad, th + 4 * pad), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    origin = (2 * pad - left, 2 * pad - top)
    if style == "outline":
        d.text(origin, text, font=f, fill=(255, 255, 255, 255), stroke_width=max(1, size // 12),
               stroke_fill=(0, 0, 0, 255))
    elif style == "shadow":
        off = max(1, size // 14)
        d.text((origin[0] + off, origin[1] + off), text, font=f, fill=(20, 20, 20, 230))
        d.text(origin, text, font=f, fill=(255, 255, 255, 255))
    elif style == "box":
        d.rounded_rectangle([pad, pad, tw + 3 * pad, th + 3 * pad], radius=pad, fill=(255, 214, 0, 255))
        d.text(origin, text, font=f, fill=(20, 20, 20, 255))
    elif style == "caption":
        d.rectangle([pad, pad, tw + 3 * pad, th + 3 * pad], fill=(0, 0, 0, 255))
        d.text(origin, text, font=f, fill=(255, 255, 255, 255))
    elif style == "plain":
        d.text(origin, text, font=f, fill=(255, 240, 60, 255))
    else:
        raise ValueError(f"unknown style {style!r}")
    if angle:
        layer = layer.rotate(angle, resample=Image.BICUBIC, expand=True)
    x, y = int(xy[0]), int(xy[1])
    img.paste(layer, (x - 2 * pad, y - 2 * pad), layer)
    w, h = layer.size
    return float(x - 2 * pad), float(y - 2 * pad), float(x - 2 * pad + w), float(y - 2 * pad + h)
