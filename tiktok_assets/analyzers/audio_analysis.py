"""Audio features with librosa: loudness and spectrum per second, tempo, beats and key per video.

Rows with ``level = 'window'`` cover one second each (RMS and peak level in dBFS, spectral
centroid/bandwidth/roll-off/flatness, zero-crossing rate, onset strength, beats in the window).
One row with ``level = 'video'`` spans the whole clip and holds tempo, beat times, beat strength
(how much louder onsets are on beats than elsewhere; near 1 means no steady beat) and the key.
Over a steady beat the tempo is refined from the beat times (see :func:`refine_tempo`).

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

from ..audio_features import integrated_loudness, k_weighted, short_term_loudness
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

RATE = 16_000
HOP = 256
WINDOW_S = 1.0
SILENCE_DB = -60.0
MIN_BEATS_FOR_FIT = 8
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


def refine_tempo(tempo: float, beat_times: np.ndarray) -> float:
    """Tempo from a straight-line fit of the beat times when the beats are regular.

    librosa's tempo comes from an autocorrelation lag on a 16 ms grid (about 1-2 % steps near
    100 BPM); the slope of beat time against beat number over a steady beat is finer. The fit is
    used only for at least ``MIN_BEATS_FOR_FIT`` beats whose intervals vary by less than 10 % and
    when it agrees with librosa's estimate within 4 %.
    """
    if beat_times.size < MIN_BEATS_FOR_FIT:
        return tempo
    intervals = np.diff(beat_times)
    if intervals.mean() <= 0 or intervals.std() / intervals.mean() >= 0.1:
        return tempo
    fitted = 60.0 / float(np.polyfit(np.arange(beat_times.size), beat_times, 1)[0])
    return fitted if abs(fitted - tempo) <= 0.04 * tempo else tempo


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
    import librosa

    y = np.asarray(media.audio)  # librosa wants an ndarray; counts as reading all of the audio
    duration = y.size / RATE
    frame_len = 2 * HOP * 4
    rms = librosa.feature.rms(y=y, frame_length=frame_len, hop_length=HOP)[0]
    centroid = librosa.feature.spectral_centroid(y=y, sr=RATE, n_fft=frame_len, hop_length=HOP)[0]
    bandwidth = librosa.feature.spectral_bandwidth(y=y, sr=RATE, n_fft=frame_len, hop_length=HOP)[0]
    rolloff = librosa.feature.spectral_rolloff(y=y, sr=RATE, n_fft=frame_len, hop_length=HOP)[0]
    flatness = librosa.feature.spectral_flatness(y=y, n_fft=frame_len, hop_length=HOP)[0]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=frame_len, hop_length=HOP)[0]
    onset = librosa.onset.onset_strength(y=y, sr=RATE, hop_length=HOP)
    tempo, beat_frames = librosa.beat.beat_track(onset_envelope=onset, sr=RATE, hop_length=HOP)
    tempo = float(np.atleast_1d(tempo)[0])
    beat_times = librosa.frames_to_time(beat_frames, sr=RATE, hop_length=HOP)
    tempo = refine_tempo(tempo, beat_times)
    chroma = librosa.feature.chroma_stft(y=y, sr=RATE, n_fft=frame_len, hop_length=HOP)
    n = min(rms.size, centroid.size, bandwidth.size, rolloff.size, flatness.size, zcr.size, onset.size)
    rms, centroid, bandwidth, rolloff, flatness, zcr = (
        a[:n] for a in (rms, centroid, bandwidth, rolloff, flatness, zcr)
    )
    frame_t = librosa.frames_to_time(np.arange(n), sr=RATE, hop_length=HOP)
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
    on_beat = onset[beat_frames].mean() if beat_frames.size else 0.0
    beat_strength = float(on_beat / (onset.mean() + 1e-9)) if beat_frames.size else 0.0
    key = estimate_key(chroma) if rms.max() > 10 ** (SILENCE_DB / 20) else None
    rows.append(
        {
            "start_s": 0.0,
            "end_s": round(duration, 3),
            "level": "video",
            "rms_db": round(float(db(np.sqrt(np.mean(y**2)))), 2),
            "peak_db": round(float(db(np.abs(y).max())), 2),
            "spectral_centroid_hz": round(float(centroid.mean()), 3),
            "tempo_bpm": round(tempo, 2) if beat_frames.size else None,
            "beat_times": [round(float(t), 3) for t in beat_times],
            "beat_strength": round(beat_strength, 3),
            "key": key,
            "lufs_integrated": rounded(lufs_integrated),
        }
    )
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, duration)],
        metadata={
            "tempo_bpm": round(tempo, 1),
            "beats": int(beat_times.size),
            "beat_strength": round(beat_strength, 2),
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
    version="2",
    columns=COLUMNS,
    run=run,
    needs_audio=True,
    main_figure="tempo_bpm",
)
