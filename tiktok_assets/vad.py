"""Voice activity from the Silero VAD that ships inside faster-whisper (no download).

Given a media cache (or the TrackedMedia an analyzer gets), the spans come from the video's shared
speech-activity track (one network pass per video, see :mod:`tiktok_assets.passes.speech_activity`);
given a bare array, the network runs on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .passes import speech_activity

RATE = speech_activity.RATE


def speech_spans(
    audio: Any, min_silence_s: float = 0.3, pad_s: float = 0.05, threshold: float = 0.5,
    drop: float = speech_activity.HYSTERESIS,
) -> list[tuple[float, float]]:
    """Speech spans in seconds of a media cache's audio or of a 16 kHz array; pauses shorter than
    ``min_silence_s`` do not split a span, and a pause starts under ``threshold - drop``."""
    if hasattr(audio, "directory") and hasattr(audio, "meta"):
        return speech_activity.spans(audio, min_silence_s, pad_s, threshold, drop)
    samples = np.asarray(audio, dtype=np.float32)
    if samples.size < speech_activity.MIN_SAMPLES:
        return []
    prob = speech_activity.probabilities(samples)
    return speech_activity.spans_from_track(prob, samples.size, min_silence_s, pad_s, threshold, drop)


def merge_spans(spans: list[tuple[float, float]], max_gap_s: float, max_len_s: float) -> list[tuple[float, float]]:
    """Join spans closer than ``max_gap_s`` as long as the result stays under ``max_len_s``."""
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start - merged[-1][1] < max_gap_s and end - merged[-1][0] <= max_len_s:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
