"""Every analyzer survives tiny frames (down to 1x1), single frames and a tiny audio track.

The media cache is built straight from arrays (``array_media``) because the decoder never gives
frames under 2x2. Frames carry content (a moving gradient, a cut, noise) so that the analyzers'
code paths past their early exits are reached.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from array_media import media_from_arrays
from helpers import analyze

from tiktok_assets.analyzers import all_specs
from tiktok_assets.model_registry import ModelUnavailable

SIZES = [(1, 1), (2, 2), (3, 5), (9, 16), (16, 9)]
LENGTHS = [1, 2, 7]


def frames_of(h: int, w: int, n: int, seed: int = 0) -> np.ndarray:
    """``n`` frames: a drifting gradient, a hard cut to noise half-way, then a flash to white."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        if i < n // 2 or n < 3:
            base = (x * 40 + y * 25 + i * 9) % 256
            out.append(np.stack([base, 255 - base, (base * 3) % 256], axis=-1))
        elif i == n - 1 and n > 4:
            out.append(np.full((h, w, 3), 255))
        else:
            out.append(rng.integers(0, 256, (h, w, 3)))
    return np.asarray(out, dtype=np.uint8)


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)


# analyzers without offline weights (MODELS.md: the VLM, COCO object detection) and those that need
# their tables: they say so with ModelUnavailable and produce no rows
OFFLINE_GAPS = {"qwen2_vl_temporal", "object_detection", "product_detection"}


def run_all(media, settings) -> dict:
    """Run every registered analyzer, feeding dependencies like the asset graph does."""
    tables, out, unavailable = {}, {}, set()
    for name, spec in all_specs().items():
        required = [d for d in spec.depends_on if d not in spec.optional_inputs]
        inputs = {d: tables[d] for d in spec.depends_on if d in tables}
        try:
            if any(d in unavailable for d in required):
                raise ModelUnavailable(f"{name} needs {required}")
            rows, result = analyze(name, media, settings, inputs)
        except ModelUnavailable:
            unavailable.add(name)
            out[name] = []
            continue
        tables[name] = result.table
        out[name] = rows
    assert unavailable <= OFFLINE_GAPS, unavailable
    return out


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("length", LENGTHS, ids=lambda n: f"{n}f")
def test_every_analyzer_handles_tiny_frames(tmp_path, settings, size, length):
    h, w = size
    media = media_from_arrays(tmp_path / "m", frames_of(h, w, length), fps=30.0)
    results = run_all(media, settings)
    for name, rows in results.items():
        assert all(0 <= r["start_s"] <= r["end_s"] <= media.duration_s + 0.05 for r in rows), name
        assert not any(isinstance(v, float) and not math.isfinite(v) for r in rows for v in r.values()), name


@pytest.mark.parametrize("seconds", [0.0005, 0.02, 0.3])
def test_every_analyzer_handles_a_tiny_audio_track(tmp_path, settings, seconds):
    media = media_from_arrays(tmp_path / "m", frames_of(2, 2, 2), fps=30.0, audio=tone(seconds))
    assert media.has_audio
    results = run_all(media, settings)
    assert set(results) == set(all_specs())
