"""Voice activity from the Silero VAD that ships inside faster-whisper (no download)."""

from __future__ import annotations

import numpy as np

RATE = 16_000


def speech_spans(
    audio: np.ndarray, min_silence_s: float = 0.3, pad_s: float = 0.05, threshold: float = 0.5
) -> list[tuple[float, float]]:
    """Speech spans in seconds; pauses shorter than ``min_silence_s`` do not split a span."""
    if audio.size < RATE // 10:
        return []
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        threshold=threshold,
        min_silence_duration_ms=int(min_silence_s * 1000),
        speech_pad_ms=int(pad_s * 1000),
    )
    stamps = get_speech_timestamps(np.ascontiguousarray(audio, dtype=np.float32), options)
    return [(s["start"] / RATE, s["end"] / RATE) for s in stamps]


def merge_spans(spans: list[tuple[float, float]], max_gap_s: float, max_len_s: float) -> list[tuple[float, float]]:
    """Join spans closer than ``max_gap_s`` as long as the result stays under ``max_len_s``."""
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start - merged[-1][1] < max_gap_s and end - merged[-1][0] <= max_len_s:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
