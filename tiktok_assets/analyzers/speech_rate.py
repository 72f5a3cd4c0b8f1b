"""Speaking tempo: words and syllables per minute per 5 s window and for the whole video.

Words come from ``speech_transcription`` (Whisper is not run again); voiced time comes from the
Silero VAD (unpadded spans; silences shorter than ``PAUSE_MIN_S`` count as voiced, longer ones
are pauses). Two rates are given:

* **articulation rate** (``articulation_wpm``/``articulation_spm``): words/syllables per minute of
  voiced time, pauses excluded; null where less than ``MIN_VOICED_S`` is voiced;
* **speaking rate** (``speaking_wpm``/``speaking_spm``): per minute of wall time, pauses included.
  A window's wall time is its length; the video row's is the speech region (first voiced
  moment or word to the last one), so leading and trailing silence do not dilute it.

A word belongs to the window holding its midpoint. Syllables are counted with a vowel-group
heuristic for German (ä/ö/ü; ei, ie, eu, äu, au count once) and English (silent final e, -ed,
-es) chosen by the segment's language.

Coverage: the rates are the key output and need the transcript, so without a
``speech_transcription`` table the analyzer claims nothing (``rate_status`` says why) and counts 0
for speech in the reconstruction score; with one it claims the whole video (a transcript without
words means no words were spoken).
"""

from __future__ import annotations

import math
from collections import Counter

import pyarrow as pa

from ..audio_features import (
    count_syllables,
    span_overlap,
    transcript_words,
    union_spans,
    voiced_spans,
    without_none,
)
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

WINDOW_S = 5.0
PAUSE_MIN_S = 0.3
MIN_VOICED_S = 0.25

COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("words", pa.int64()),
    pa.field("syllables", pa.int64()),
    pa.field("voiced_s", pa.float64()),
    pa.field("wall_s", pa.float64()),
    pa.field("articulation_wpm", pa.float64()),
    pa.field("articulation_spm", pa.float64()),
    pa.field("speaking_wpm", pa.float64()),
    pa.field("speaking_spm", pa.float64()),
    pa.field("language", pa.string()),
)


def per_minute(count: int, seconds: float, minimum: float) -> float | None:
    return round(60.0 * count / seconds, 1) if seconds >= minimum else None


def rate_row(level: str, start: float, end: float, words, syllables: list[int], voiced: float, wall: float,
             have_words: bool) -> dict:
    """One output row; rates are null when there is no transcription to count words from."""
    languages = Counter(w.language for w in words if w.language)
    n_words, n_syl = len(words), int(sum(syllables))
    return {
        "start_s": round(start, 3),
        "end_s": round(end, 3),
        "level": level,
        "words": n_words,
        "syllables": n_syl,
        "voiced_s": round(voiced, 3),
        "wall_s": round(wall, 3),
        "articulation_wpm": per_minute(n_words, voiced, MIN_VOICED_S) if have_words else None,
        "articulation_spm": per_minute(n_syl, voiced, MIN_VOICED_S) if have_words else None,
        "speaking_wpm": per_minute(n_words, wall, 1e-3) if have_words else None,
        "speaking_spm": per_minute(n_syl, wall, 1e-3) if have_words else None,
        "language": languages.most_common(1)[0][0] if languages else None,
    }


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    duration = media.duration_s
    has_input = "speech_transcription" in context.inputs
    words = transcript_words(context.inputs.get("speech_transcription"))
    spans = voiced_spans(media, PAUSE_MIN_S)  # the shared speech-activity track
    voice_source = "vad"
    if not spans and words:
        spans = union_spans([(w.start_s, w.end_s) for w in words])
        voice_source = "word timestamps"
    syllables = [count_syllables(w.text, w.language) for w in words]
    have_words = bool(words)

    rows = []
    n_windows = max(1, math.ceil(duration / WINDOW_S - 1e-9))
    for k in range(n_windows):
        start, end = k * WINDOW_S, min(duration, (k + 1) * WINDOW_S)
        if end <= start:
            continue
        last = k == n_windows - 1
        inside = [i for i, w in enumerate(words) if start <= w.mid_s < end or (last and w.mid_s >= end)]
        voiced = span_overlap(spans, start, end)
        rows.append(rate_row("window", start, end, [words[i] for i in inside], [syllables[i] for i in inside],
                             voiced, end - start, have_words))

    marks = [t for span in spans for t in span] + [t for w in words for t in (w.start_s, w.end_s)]
    region = (max(0.0, min(marks)), min(duration, max(marks))) if marks else (0.0, 0.0)
    total_voiced = span_overlap(spans, 0.0, duration)
    video = rate_row("video", region[0], region[1], words, syllables, total_voiced, region[1] - region[0],
                     have_words)
    if not marks:
        video["start_s"], video["end_s"] = 0.0, round(duration, 3)
    rows.append(video)

    if not has_input:
        note = "no speech_transcription input: rates need its words; only voiced time is given"
        status = "unavailable: no speech_transcription table (run speech_transcription first)"
    elif not words:
        note = "no words transcribed; rates are null"
        status = "ok: transcript has no words"
    else:
        note = ""
        status = "ok"
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, duration)] if has_input else [],
        metadata=without_none(
            {
                "articulation_wpm": video["articulation_wpm"],
                "speaking_wpm": video["speaking_wpm"],
                "syllables_per_min": video["articulation_spm"],
                "words": len(words),
                "voiced_s": round(total_voiced, 2),
                "voiced_from": voice_source,
                "rate_status": status,
                "note": note,
            }
        ),
    )


SPEC = AnalyzerSpec(
    name="speech_rate",
    modality="speech",
    description="Words and syllables per minute (articulation and speaking rate) per 5 s window and per video",
    version="1",
    columns=COLUMNS,
    run=run,
    passes=("speech_activity",),
    needs_audio=True,
    depends_on=("speech_transcription",),
    main_figure="articulation_wpm",
)
