"""Speech activity: ONE Silero VAD network pass per video, spans for any setting derived from it.

The network (shipped inside faster-whisper, no download) gives a speech probability for every
window of :data:`WINDOW` samples (32 ms at 16 kHz). That track is the stored intermediate;
:func:`spans_from_track` turns it into speech spans with the hysteresis faster-whisper's
``get_speech_timestamps`` applies (default options, no maximum span length):

* a span opens at the first window with probability >= ``threshold``;
* once open, a window under ``threshold - drop`` (``drop`` 0.15 by default, the lower threshold at
  least 0.01) starts a possible pause; a window
  >= ``threshold`` cancels it; the span closes at the pause's start as soon as a window under the
  lower threshold lies ``min_silence_s`` or more after that start; a span still open at the end
  runs to the end of the audio;
* every span is widened by ``pad_s`` on each side, but two spans closer than ``2 * pad_s`` share
  the gap between them (each gets half).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import numpy as np

from . import store

RATE = 16_000
WINDOW = 512
MIN_SAMPLES = RATE // 10  # shorter audio has no speech spans
HYSTERESIS = 0.15  # faster-whisper's: a pause starts under threshold - 0.15


def probabilities(audio: np.ndarray) -> np.ndarray:
    """Silero speech probability per ``WINDOW`` samples of 16 kHz audio (the network pass)."""
    from faster_whisper.vad import get_vad_model

    audio = np.ascontiguousarray(audio, dtype=np.float32)
    padded = np.pad(audio, (0, WINDOW - audio.shape[0] % WINDOW))
    return np.asarray(get_vad_model()(padded), dtype=np.float32).reshape(-1)


def _package() -> str:
    try:
        return metadata.version("faster-whisper").replace(".", "_")
    except metadata.PackageNotFoundError:
        return "absent"


def track(media: Any) -> tuple[np.ndarray, int]:
    """(probability per window, audio length in samples) of the video, computed once per cache version.

    Reading it counts as reading the whole audio (it was computed from all of it)."""
    base = store.base_media(media)
    if not base.has_audio:
        return np.zeros(0, dtype=np.float32), 0

    def compute() -> dict[str, np.ndarray]:
        audio = base.audio
        prob = probabilities(audio) if audio.size >= MIN_SAMPLES else np.zeros(0, dtype=np.float32)
        return {"prob": prob, "samples": np.array(audio.size, dtype=np.int64)}

    arrays = store.cached(media, "speech_activity", compute, key=f"fw{_package()}")
    store.mark_audio(media)
    return arrays["prob"], int(arrays["samples"])


def spans_from_track(
    prob: np.ndarray, samples: int, min_silence_s: float = 0.3, pad_s: float = 0.05, threshold: float = 0.5,
    drop: float = HYSTERESIS,
) -> list[tuple[float, float]]:
    """Speech spans in seconds from a probability track (see the module docstring)."""
    if samples < MIN_SAMPLES or len(prob) == 0:
        return []
    low = max(threshold - drop, 0.01)
    min_silence = RATE * int(min_silence_s * 1000) / 1000  # in samples, at the millisecond like faster-whisper
    pad = RATE * int(pad_s * 1000) / 1000
    found: list[list[int]] = []
    start: int | None = None
    pause: int | None = None
    for i, p in enumerate(np.asarray(prob, dtype=np.float64)):
        at = i * WINDOW
        if start is None:
            if p >= threshold:
                start = at
            continue
        if p >= threshold:
            pause = None
        elif p < low:
            pause = at if pause is None else pause
            if at - pause >= min_silence:
                found.append([start, pause])
                start = pause = None
    if start is not None and samples > start:
        found.append([start, samples])
    for k, span in enumerate(found):
        if k == 0:
            span[0] = int(max(0, span[0] - pad))
        if k + 1 < len(found):
            following = found[k + 1]
            gap = following[0] - span[1]
            if gap < 2 * pad:
                span[1] += int(gap // 2)
                following[0] = int(max(0, following[0] - gap // 2))
            else:
                span[1] = int(min(samples, span[1] + pad))
                following[0] = int(max(0, following[0] - pad))
        else:
            span[1] = int(min(samples, span[1] + pad))
    return [(a / RATE, b / RATE) for a, b in found]


def spans(
    media: Any, min_silence_s: float = 0.3, pad_s: float = 0.05, threshold: float = 0.5, drop: float = HYSTERESIS
) -> list[tuple[float, float]]:
    """Speech spans in seconds of the video's audio, from the shared track."""
    prob, samples = track(media)
    return spans_from_track(prob, samples, min_silence_s, pad_s, threshold, drop)
