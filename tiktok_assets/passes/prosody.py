"""Prosody: ONE pitch pass over the whole audio per video, plus the energy track.

Stored per cache version: ``f0`` (Hz, NaN where the frame is not voiced) and ``voiced_prob`` (the
frame's periodicity, 0-1) every :data:`HOP_S` seconds (frame ``k`` centred at ``k * HOP_S``), and the
RMS level in dBFS every 10 ms (:func:`tiktok_assets.audio_features.frame_db`). :func:`pitch_track`
restricts f0 to the spans an analyzer asks for, on a 20 ms grid. Pitch is YIN with a voicing
decision (:func:`tiktok_assets.dsp.yin`: 65-600 Hz, 1024-sample frames), in numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dsp
from . import store

RATE = 16_000
HOP_S = 0.02
FMIN, FMAX = 65.0, 600.0
FRAME_LENGTH = 1024


def f0_track(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f0 with NaN where unvoiced, periodicity) of 16 kHz audio every ``HOP_S`` seconds."""
    if audio.size < FRAME_LENGTH + int(HOP_S * RATE):
        return np.zeros(0), np.zeros(0)
    return dsp.yin(np.asarray(audio, dtype=np.float32), RATE, FMIN, FMAX, FRAME_LENGTH, int(HOP_S * RATE))


def track(media: Any) -> dict[str, np.ndarray]:
    """``f0``, ``voiced_prob``, ``energy_times``, ``energy_db`` and ``samples`` of the video's audio,
    computed once per cache version; reading it counts as reading the whole audio."""
    from ..audio_features import frame_db

    base = store.base_media(media)

    def compute() -> dict[str, np.ndarray]:
        audio = base.audio if base.has_audio else np.zeros(0, dtype=np.float32)
        f0, prob = f0_track(audio)
        times, db = frame_db(audio)
        return {"f0": f0, "voiced_prob": prob, "energy_times": times, "energy_db": db,
                "samples": np.array(audio.size, dtype=np.int64)}

    arrays = store.cached(media, "prosody", compute)
    if base.has_audio:
        store.mark_audio(media)
    return arrays


def energy(media: Any) -> tuple[np.ndarray, np.ndarray]:
    """(times, RMS level in dBFS) every 10 ms, as ``audio_features.frame_db`` gives for the audio."""
    arrays = track(media)
    return arrays["energy_times"], arrays["energy_db"]


def pitch_track(media: Any, spans: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """F0 in Hz every ``HOP_S`` seconds inside ``spans`` (NaN elsewhere and where unvoiced)."""
    arrays = track(media)
    samples = int(arrays["samples"])
    n = int(np.ceil(samples / RATE / HOP_S)) if samples else 0
    times = np.arange(n) * HOP_S
    f0 = np.full(n, np.nan)
    full = arrays["f0"][:n]
    hop = int(HOP_S * RATE)
    for start, end in spans:
        a = max(0, int(start * RATE) - FRAME_LENGTH // 2)
        b = min(samples, int(end * RATE) + FRAME_LENGTH // 2)
        if b - a < FRAME_LENGTH + hop:
            continue  # too short for one pitch frame
        inside = (times[: full.size] >= start) & (times[: full.size] <= end)
        f0[: full.size][inside] = full[inside]
    return times, f0
