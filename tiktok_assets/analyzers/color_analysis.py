"""Colour per segment: dominant palette, brightness, saturation, colourfulness and temperature.

Segments are pieces of ~2 s of each shot (never across a cut). Each segment's pixels come from
the sampled frames inside it (``media.frames``, a regular grid of ~6000 pixels), or from the
full-rate low-resolution frame at its middle when the segment is too short to hold a sampled
frame. One ``level = 'video'`` row summarises the whole clip.

* ``palette_*``: up to ``K`` colours from k-means in CIELAB (``_palette``), with their pixel share,
  as hex, and as sRGB triples; ``dominant_hex`` is the largest.
* ``brightness``: mean Rec.709 luma of the gamma-encoded pixels, 0 (black) .. 1 (white).
* ``saturation``: mean HSV saturation ``(max - min) / max`` per pixel, 0 .. 1.
* ``colorfulness``: Hasler & Suesstrunk's metric on 0..255 values (about 0 for grey, > 80 vivid).
* ``temperature_k``: correlated colour temperature of the mean linear colour (McCamy), null for
  black pictures and deep blues/purples; ``warmth`` = (mean R - mean B) / 255 of the gamma-encoded
  pixels, a simple balance always defined; ``tone`` is ``warm`` below 4500 K, ``cool`` above
  7000 K, ``neutral`` between (from ``warmth`` > 0.05 / < -0.05 when there is no temperature).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import _palette, _shots
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

SEGMENT_S = 2.0
K = 5
PIXELS_PER_SEGMENT = 6000
PIXELS_PER_VIDEO = 30000
WARM_BELOW_K = 4500.0
COOL_ABOVE_K = 7000.0

COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("shot_index", pa.int64()),
    pa.field("palette_hex", pa.list_(pa.string())),
    pa.field("palette_rgb", pa.list_(pa.list_(pa.int64()))),
    pa.field("palette_share", pa.list_(pa.float64())),
    pa.field("dominant_hex", pa.string()),
    pa.field("brightness", pa.float64()),
    pa.field("saturation", pa.float64()),
    pa.field("colorfulness", pa.float64()),
    pa.field("temperature_k", pa.float64()),
    pa.field("warmth", pa.float64()),
    pa.field("tone", pa.string()),
    pa.field("frames", pa.int64()),
)


def colour_figures(pixels: np.ndarray) -> dict:
    """Brightness, saturation, colourfulness, temperature, warmth and tone of (N, 3) uint8 pixels."""
    rgb = pixels.astype(np.float64)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    luma = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255.0
    high, low = rgb.max(axis=1), rgb.min(axis=1)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-9), 0.0)
    rg, yb = r - g, 0.5 * (r + g) - b
    colorfulness = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    temperature = _palette.colour_temperature(pixels)
    warmth = float((r.mean() - b.mean()) / 255.0)
    if temperature is not None:
        tone = "warm" if temperature < WARM_BELOW_K else "cool" if temperature > COOL_ABOVE_K else "neutral"
    else:
        tone = "warm" if warmth > 0.05 else "cool" if warmth < -0.05 else "neutral"
    return {
        "brightness": round(float(luma.mean()), 4),
        "saturation": round(float(saturation.mean()), 4),
        "colorfulness": round(float(colorfulness), 2),
        "temperature_k": round(temperature) if temperature is not None else None,
        "warmth": round(warmth, 4),
        "tone": tone,
    }


def palette_columns(pixels: np.ndarray, k: int = K) -> dict:
    colours = _palette.palette(pixels, k)
    return {
        "palette_hex": [c.hex for c in colours],
        "palette_rgb": [list(c.rgb) for c in colours],
        "palette_share": [c.share for c in colours],
        "dominant_hex": colours[0].hex if colours else None,
    }


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    shots = _shots.shot_list(media, context)
    frame_times = np.asarray(media.frame_times)
    rows = []
    fallback = 0
    for segment in shots.segments(SEGMENT_S):
        picked = _shots.frames_in(frame_times, segment.start_s, segment.end_s)
        if picked.size:
            images = [media.frames[i] for i in picked]
        else:
            images = [media.lowres[(segment.first + segment.last) // 2]]
            fallback += 1
        pixels = _palette.sample_pixels(images, PIXELS_PER_SEGMENT)
        rows.append({
            "start_s": segment.start_s,
            "end_s": segment.end_s,
            "level": "segment",
            "shot_index": segment.shot_index,
            **palette_columns(pixels),
            **colour_figures(pixels),
            "frames": len(images),
        })
    pixels = _palette.sample_pixels(list(media.frames), PIXELS_PER_VIDEO)
    video = {
        "start_s": 0.0,
        "end_s": round(float(media.duration_s), 3),
        "level": "video",
        **palette_columns(pixels),
        **colour_figures(pixels),
        "frames": len(frame_times),
    }
    rows.append(video)
    palette_text = ", ".join(
        f"{h} {s:.0%}" for h, s in zip(video["palette_hex"], video["palette_share"])
    )
    metadata = {
        "palette": palette_text,
        "dominant_hex": video["dominant_hex"],
        "brightness": video["brightness"],
        "saturation": video["saturation"],
        "temperature_k": video["temperature_k"],
        "tone": video["tone"],
        "segments": len(rows) - 1,
        "cuts_from": shots.source,
    }
    metadata = {k: v for k, v in metadata.items() if v is not None}
    if fallback:
        metadata["note"] = f"{fallback} short segment(s) held no sampled frame; their full-rate low-res frame was used"
    return AnalyzerOutput(rows=rows, examined=[(0.0, media.duration_s)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="color_analysis",
    modality="visual",
    description="Dominant palette (k-means in CIELAB), brightness, saturation and colour temperature per segment and per video",
    version="1",
    columns=COLUMNS,
    run=run,
    depends_on=("cut_analysis",),
    main_figure="palette",
)
