"""Flow of speech: pauses, hesitation fillers, emphasised moments and a rhythm summary.

Rows by ``kind``:

* ``pause``: silence between two stretches of speech lasting at least ``PAUSE_MIN_S`` (default
  0.3 s; leading and trailing silence are not pauses). Found from the Silero VAD (``source =
  'vad'``) and from gaps between transcribed words (``'words'``, kept only where the level is well
  below speech); a pause both see is ``'vad+words'``. VAD edges are sharpened to where the level
  crosses 25 dB below the median speech level when such a crossing lies within 0.2 s. ``label``
  is ``short`` (< 0.7 s), ``medium`` (< 1.5 s) or ``long``.
* ``filler``: a transcribed hesitation word (English "uh", "um", "erm", "hmm"; German "äh", "ähm",
  "öh", "hm"); ``label`` is the filler with repeated letters collapsed ("Hmm" -> "hm"), ``text``
  the word as transcribed. Words such as "also", "like" or "so" are not counted, nor "um"/"er"
  in German segments (German words). Whisper drops some fillers, so this is a lower bound.
* ``emphasis``: a word (or, without words, a syllable-like energy peak) whose loudness or peak pitch
  stands out: z-score of at least ``EMPHASIS_Z`` against all words of the video and, since a
  z-score alone flags the top few percent of any clip, monotone speech included, at least
  ``MIN_EMPHASIS_DB`` louder or ``MIN_EMPHASIS_ST`` semitones higher than the median word. ``label`` is
  ``energy``, ``pitch`` or ``energy+pitch``; pitch comes from the shared YIN pitch pass.
* ``rhythm``: one row over the speech region: mean/std of inter-word onset intervals (intervals
  that span a pause left out), their nPVI (normalised pairwise variability index: 0 for even
  timing, higher for uneven), the share of the region spent in pauses, pauses and fillers per
  minute.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from ..audio_features import (
    Word,
    filler_label,
    transcript_words,
    voiced_spans,
    without_none,
    zscores,
)
from ..passes import prosody
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

PAUSE_MIN_S = 0.3
MEDIUM_PAUSE_S = 0.7
LONG_PAUSE_S = 1.5
EMPHASIS_Z = 1.5
MIN_EMPHASIS_DB = 4.0
MIN_EMPHASIS_ST = 2.0
MIN_UNITS_FOR_EMPHASIS = 5
SILENCE_DB = -55.0
QUIET_BELOW_SPEECH_DB = 20.0
EDGE_BELOW_SPEECH_DB = 25.0
EDGE_SEARCH_S = 0.2

COLUMNS = (
    pa.field("kind", pa.string()),
    pa.field("label", pa.string()),
    pa.field("duration_s", pa.float64()),
    pa.field("text", pa.string()),
    pa.field("language", pa.string()),
    pa.field("source", pa.string()),
    pa.field("z_score", pa.float64()),
    pa.field("energy_db", pa.float64()),
    pa.field("pitch_hz", pa.float64()),
    pa.field("mean_interval_s", pa.float64()),
    pa.field("std_interval_s", pa.float64()),
    pa.field("npvi", pa.float64()),
    pa.field("pause_share", pa.float64()),
    pa.field("pauses_per_min", pa.float64()),
    pa.field("fillers_per_min", pa.float64()),
)


def pause_label(length: float) -> str:
    if length < MEDIUM_PAUSE_S:
        return "short"
    return "medium" if length < LONG_PAUSE_S else "long"


def find_pauses(
    spans: list[tuple[float, float]],
    words: list[Word],
    quiet: Callable[[float, float], bool],
    min_pause_s: float = PAUSE_MIN_S,
) -> list[tuple[float, float, str]]:
    """Pauses (start, end, source) between speech, from VAD gaps and word gaps.

    A word gap the VAD did not split is kept only when ``quiet(start, end)`` says the signal in it
    is well below speech level (Whisper's word edges are loose, so most such gaps are not pauses).
    """
    vad = [(a[1], b[0]) for a, b in zip(spans[:-1], spans[1:], strict=True) if b[0] - a[1] >= min_pause_s]
    by_words = [
        (a.end_s, b.start_s)
        for a, b in zip(words[:-1], words[1:], strict=True)
        if b.start_s - a.end_s >= min_pause_s
    ]
    pauses = []
    matched = set()
    for start, end in vad:
        hits = [i for i, (ws, we) in enumerate(by_words) if min(end, we) - max(start, ws) > 0]
        matched.update(hits)
        pauses.append((start, end, "vad+words" if hits else "vad"))
    for i, (start, end) in enumerate(by_words):
        if i not in matched and quiet(start, end):
            pauses.append((start, end, "words"))
    return sorted(pauses)


def refine_edges(
    pauses: list[tuple[float, float, str]], times: np.ndarray, db: np.ndarray, threshold_db: float
) -> list[tuple[float, float, str]]:
    """Move VAD pause edges to where the level crosses ``threshold_db`` within ``EDGE_SEARCH_S``.

    Silero decides on 32 ms frames and reacts late to onsets; the level crossing is sharper. An
    edge without a crossing nearby (noisy background) keeps the VAD's value.
    """
    loud = db >= threshold_db
    out = []
    for start, end, source in pauses:
        if source != "words":
            near = np.flatnonzero((times >= start - EDGE_SEARCH_S) & (times <= start + EDGE_SEARCH_S))
            falls = [i for i in near if i + 1 < loud.size and loud[i] and not loud[i + 1]]
            if falls:
                start = float(times[falls[-1] + 1])
            near = np.flatnonzero((times >= end - EDGE_SEARCH_S) & (times <= end + EDGE_SEARCH_S))
            rises = [i for i in near if i > 0 and loud[i] and not loud[i - 1]]
            if rises:
                end = float(times[rises[0]])
        if end - start > 0:
            out.append((start, end, source))
    return out


def speech_level(
    times: np.ndarray, db: np.ndarray, spans: list[tuple[float, float]], words: list[Word] = ()
) -> float | None:
    """Median level (dBFS) of the voiced frames, else of the frames inside transcribed words;
    None when there is neither (no reference level: no gap can be called quiet)."""
    for stretches in (spans, [(w.start_s, w.end_s) for w in words]):
        voiced = np.zeros(times.size, dtype=bool)
        for a, b in stretches:
            voiced |= (times >= a) & (times <= b)
        if voiced.any():
            return float(np.median(db[voiced]))
    return None


def quiet_test(
    times: np.ndarray, db: np.ndarray, spans: list[tuple[float, float]], words: list[Word] = ()
) -> Callable[[float, float], bool]:
    """A predicate: is [start, end] at least ``QUIET_BELOW_SPEECH_DB`` below the median speech level?"""
    level = speech_level(times, db, spans, words)

    def quiet(start: float, end: float) -> bool:
        if level is None:
            return False
        sel = (times >= start + 0.05) & (times <= end - 0.05)
        return bool(sel.any()) and float(np.median(db[sel])) <= level - QUIET_BELOW_SPEECH_DB

    return quiet


def inter_onset_intervals(words: list[Word], min_pause_s: float = PAUSE_MIN_S) -> np.ndarray:
    """Onset-to-onset intervals of successive words, leaving out those that span a pause."""
    return np.array(
        [
            b.start_s - a.start_s
            for a, b in zip(words[:-1], words[1:], strict=True)
            if b.start_s > a.start_s and b.start_s - a.end_s < min_pause_s
        ]
    )


def npvi(intervals: np.ndarray) -> float | None:
    """Normalised pairwise variability index of successive durations."""
    if intervals.size < 2:
        return None
    a, b = intervals[:-1], intervals[1:]
    return float(100.0 * np.mean(np.abs(a - b) / ((a + b) / 2)))


def emphasis_units(words: list[Word], times: np.ndarray, db: np.ndarray, spans) -> list[tuple[float, float, str]]:
    """Words, or without words syllable-like energy peaks inside voiced spans, as (start, end, text)."""
    if words:
        return [(w.start_s, w.end_s, w.text) for w in words if not filler_label(w.text, w.language)]
    from scipy.signal import find_peaks

    voiced = np.zeros(times.size, dtype=bool)
    for a, b in spans:
        voiced |= (times >= a) & (times <= b)
    smooth = np.convolve(np.where(voiced, db, SILENCE_DB), np.ones(5) / 5, mode="same")
    peaks, _ = find_peaks(smooth, distance=15, prominence=3.0)
    return [(max(0.0, times[p] - 0.1), times[p] + 0.1, "") for p in peaks if voiced[p]]


def find_emphasis(units, times: np.ndarray, db: np.ndarray, f0: np.ndarray, pitch_times: np.ndarray) -> list[dict]:
    """Units whose mean energy or peak pitch (in semitones) has a z-score of at least EMPHASIS_Z."""
    if len(units) < MIN_UNITS_FOR_EMPHASIS:
        return []
    energy = np.full(len(units), np.nan)
    peak_pitch = np.full(len(units), np.nan)
    for i, (a, b, _text) in enumerate(units):
        sel = (times >= a) & (times <= b)
        if sel.any():
            energy[i] = 10 * np.log10(np.mean(10 ** (db[sel] / 10)))
        sel = (pitch_times >= a) & (pitch_times <= b) & np.isfinite(f0)
        if sel.any():
            peak_pitch[i] = float(np.nanmax(f0[sel]))
    semitones = 12 * np.log2(peak_pitch / np.nanmedian(peak_pitch)) if np.isfinite(peak_pitch).any() else peak_pitch
    above_db = energy - np.nanmedian(energy) if np.isfinite(energy).any() else energy
    z_energy, z_pitch = zscores(energy), zscores(semitones)
    rows = []
    for i, (a, b, text) in enumerate(units):
        loud = bool(np.isfinite(z_energy[i]) and z_energy[i] >= EMPHASIS_Z and above_db[i] >= MIN_EMPHASIS_DB)
        high = bool(np.isfinite(z_pitch[i]) and z_pitch[i] >= EMPHASIS_Z and semitones[i] >= MIN_EMPHASIS_ST)
        if not (loud or high):
            continue
        label = "energy+pitch" if loud and high else ("energy" if loud else "pitch")
        z = max(z_energy[i] if loud else -np.inf, z_pitch[i] if high else -np.inf)
        rows.append(
            {
                "start_s": round(a, 3),
                "end_s": round(b, 3),
                "kind": "emphasis",
                "label": label,
                "duration_s": round(b - a, 3),
                "text": text or None,
                "z_score": round(float(z), 2),
                "energy_db": round(float(energy[i]), 2) if np.isfinite(energy[i]) else None,
                "pitch_hz": round(float(peak_pitch[i]), 1) if np.isfinite(peak_pitch[i]) else None,
            }
        )
    return rows


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    duration = media.duration_s
    words = transcript_words(context.inputs.get("speech_transcription"))
    spans = voiced_spans(media, PAUSE_MIN_S)  # the shared speech-activity track
    rows: list[dict] = []

    times, db = prosody.energy(media)
    pauses = find_pauses(spans, words, quiet_test(times, db, spans, words))
    level = speech_level(times, db, spans, words)
    if level is not None:
        pauses = refine_edges(pauses, times, db, level - EDGE_BELOW_SPEECH_DB)
    pauses = [p for p in pauses if p[1] - p[0] >= PAUSE_MIN_S]
    for start, end, source in pauses:
        rows.append(
            {
                "start_s": round(start, 3),
                "end_s": round(end, 3),
                "kind": "pause",
                "label": pause_label(end - start),
                "duration_s": round(end - start, 3),
                "source": source,
            }
        )

    fillers = [(w, filler_label(w.text, w.language)) for w in words]
    fillers = [(w, label) for w, label in fillers if label]
    for w, label in fillers:
        rows.append(
            {
                "start_s": round(w.start_s, 3),
                "end_s": round(w.end_s, 3),
                "kind": "filler",
                "label": label,
                "duration_s": round(w.end_s - w.start_s, 3),
                "text": w.text,
                "language": w.language,
                "source": "words",
            }
        )

    pitch_times, f0 = prosody.pitch_track(media, spans) if spans else (np.zeros(0), np.zeros(0))
    emphasis = find_emphasis(emphasis_units(words, times, db, spans), times, db, f0, pitch_times)
    rows.extend(emphasis)

    marks = [t for span in spans for t in span] + [t for w in words for t in (w.start_s, w.end_s)]
    rhythm = None
    if marks:
        region_start, region_end = max(0.0, min(marks)), min(duration, max(marks))
        region = max(region_end - region_start, 1e-6)
        intervals = inter_onset_intervals(words)
        pause_time = sum(end - start for start, end, _ in pauses)
        minutes = region / 60.0
        rhythm = {
            "start_s": round(region_start, 3),
            "end_s": round(region_end, 3),
            "kind": "rhythm",
            "duration_s": round(region, 3),
            "source": "vad+words" if words else "vad",
            "mean_interval_s": round(float(intervals.mean()), 3) if intervals.size else None,
            "std_interval_s": round(float(intervals.std()), 3) if intervals.size else None,
            "npvi": round(v, 1) if (v := npvi(intervals)) is not None else None,
            "pause_share": round(min(1.0, pause_time / region), 3),
            "pauses_per_min": round(len(pauses) / minutes, 2),
            "fillers_per_min": round(len(fillers) / minutes, 2) if words else None,
        }
        rows.append(rhythm)

    rows.sort(key=lambda r: (r["start_s"], r["kind"]))
    if "speech_transcription" not in context.inputs:
        note = "no speech_transcription input: pauses and emphasis from the signal only, no fillers"
    elif not spans and not words:
        note = "no speech found"
    else:
        note = ""
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, duration)],
        metadata=without_none(
            {
                "pauses": len(pauses),
                "fillers": len(fillers),
                "emphasis": len(emphasis),
                "pause_share": rhythm["pause_share"] if rhythm else None,
                "npvi": rhythm["npvi"] if rhythm else None,
                "pause_min_s": PAUSE_MIN_S,
                "note": note,
            }
        ),
    )


SPEC = AnalyzerSpec(
    name="speech_flow",
    modality="speech",
    description="Pauses, hesitation fillers (German/English), emphasis (energy/pitch peaks) and rhythm of speech",
    version="2",
    columns=COLUMNS,
    run=run,
    passes=("speech_activity", "prosody"),
    needs_audio=True,
    depends_on=("speech_transcription",),
    main_figure="pauses",
    timeline_label="CASE WHEN kind IN ('pause', 'filler', 'emphasis') THEN kind || coalesce(': ' || nullif(label, ''), '') END",
)
