"""Audio signal processing in plain numpy: spectra, spectral features, onsets, tempo, beats, chroma, f0.

Written for the audio analyzers so that an audio step process does not import librosa (its import
and numba's loading of compiled functions cost seconds per process, see
``benchmarks/bench_audio_start.py``). The definitions are the textbook ones, with the conventions
librosa uses where the project's tables were built on them, so stored values keep their meaning:

* :func:`stft_magnitude`: periodic Hann window, frames centred on ``k * hop`` (zero padding of
  ``n_fft // 2`` on both sides), ``1 + len(y) // hop`` frames.
* :func:`spectral_features`: centroid, bandwidth (p = 2), roll-off (85 % of the magnitude sum) and
  flatness (geometric over arithmetic mean of the power, floor 1e-10) per frame.
* :func:`rms` and :func:`zero_crossing_rate`: centred frames (zero padding for RMS, edge copies for
  the ZCR, where a sample within 1e-10 of zero counts as positive).
* :func:`onset_strength`: spectral flux on a 128-band mel spectrogram (Slaney mel scale and area
  normalisation) in dB (80 dB range below the clip's maximum): the mean over bands of the positive
  frame-to-frame increase, shifted by ``1 + n_fft // (2 * hop)`` frames so a peak sits at the onset.
* :func:`tempo` and :func:`beat_track`: the tempo from the autocorrelation of the onset envelope
  (weighted by a log-normal preference around 120 BPM), the beats by dynamic programming over the
  envelope (Ellis 2007, "Beat tracking by dynamic programming").
* :func:`chroma`: STFT power folded onto the 12 pitch classes (A = 440 Hz, no tuning estimate).
* :func:`yin`: fundamental frequency by YIN (de Cheveigné & Kawahara 2002) with a voicing decision.
"""

from __future__ import annotations

import numpy as np

AMIN = 1e-10
TOP_DB = 80.0
N_MELS = 128
CHUNK_FRAMES = 1024  # frames per FFT batch (bounds the memory of long clips)
MULTIPLES = 4  # tempo: autocorrelation lags summed per candidate period (1x .. 4x)


def frames_to_time(frames: np.ndarray | int, sr: int, hop: int) -> np.ndarray:
    """Time in seconds of frame indices (frame ``k`` is centred on sample ``k * hop``)."""
    return np.asarray(frames) * hop / float(sr)


def n_frames(n_samples: int, hop: int) -> int:
    """Frames of a centred analysis of ``n_samples`` samples."""
    return 1 + n_samples // hop


def _framed(y: np.ndarray, frame_length: int, hop: int, mode: str) -> np.ndarray:
    """Centred frames (n_frames, frame_length) as a strided view of ``y`` padded by ``mode``."""
    y = np.asarray(y)
    half = frame_length // 2
    padded = np.pad(y, (half, half), mode=mode) if y.size else np.zeros(2 * half, y.dtype)
    if padded.size < frame_length:
        padded = np.pad(padded, (0, frame_length - padded.size))
    view = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop]
    return view[: n_frames(y.size, hop)]


def hann(n: int) -> np.ndarray:
    """Periodic Hann window of ``n`` samples (the FFT-analysis variant)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def fft_frequencies(sr: int, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each rfft bin."""
    return np.arange(n_fft // 2 + 1) * sr / n_fft


def stft_magnitude(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| as (n_fft // 2 + 1, n_frames) float32 (Hann window, centred frames, zero padding)."""
    frames = _framed(np.asarray(y, dtype=np.float32), n_fft, hop, "constant")
    window = hann(n_fft).astype(np.float32)
    out = np.empty((n_fft // 2 + 1, frames.shape[0]), np.float32)
    for a in range(0, frames.shape[0], CHUNK_FRAMES):
        out[:, a : a + CHUNK_FRAMES] = np.abs(np.fft.rfft(frames[a : a + CHUNK_FRAMES] * window, axis=1)).T
    return out


def rms(y: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Root mean square of each centred frame (zero padding at the edges)."""
    frames = _framed(np.asarray(y, dtype=np.float64), frame_length, hop, "constant")
    out = np.empty(frames.shape[0])
    for a in range(0, frames.shape[0], CHUNK_FRAMES):
        out[a : a + CHUNK_FRAMES] = np.sqrt(np.mean(frames[a : a + CHUNK_FRAMES] ** 2, axis=1))
    return out


def zero_crossing_rate(y: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Sign changes between neighbouring samples per sample of each centred frame (edge padding)."""
    y = np.asarray(y, dtype=np.float64)
    negative = np.signbit(np.where(np.abs(y) <= 1e-10, 0.0, y))
    frames = _framed(negative, frame_length, hop, "edge")
    out = np.empty(frames.shape[0])
    for a in range(0, frames.shape[0], CHUNK_FRAMES):
        block = frames[a : a + CHUNK_FRAMES]
        out[a : a + CHUNK_FRAMES] = np.count_nonzero(block[:, 1:] != block[:, :-1], axis=1) / frame_length
    return out


def spectral_features(magnitude: np.ndarray, sr: int, n_fft: int, roll_percent: float = 0.85) -> dict[str, np.ndarray]:
    """Centroid, bandwidth and roll-off in Hz and flatness (0-1) of each column of ``magnitude``.

    Columns without energy get centroid, bandwidth and roll-off 0 and flatness 1.
    """
    S = np.asarray(magnitude, dtype=np.float64)
    freq = fft_frequencies(sr, n_fft)[:, None]
    total = S.sum(axis=0)
    weights = S / np.where(total > np.finfo(np.float32).tiny, total, 1.0)
    centroid = (freq * weights).sum(axis=0)
    bandwidth = np.sqrt((weights * (freq - centroid) ** 2).sum(axis=0))
    reached = np.cumsum(S, axis=0) >= roll_percent * total
    rolloff = freq[np.argmax(reached, axis=0), 0]
    power = np.maximum(AMIN, S**2)
    flatness = np.exp(np.log(power).mean(axis=0)) / power.mean(axis=0)
    return {"centroid": centroid, "bandwidth": bandwidth, "rolloff": rolloff, "flatness": flatness}


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear (3 per 200 Hz) below 1 kHz, logarithmic (27 steps per 6.4x) above."""
    hz = np.asarray(hz, dtype=np.float64)
    step = np.log(6.4) / 27.0
    return np.where(hz < 1000.0, hz * 3.0 / 200.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / step)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    step = np.log(6.4) / 27.0
    return np.where(mel < 15.0, mel * 200.0 / 3.0, 1000.0 * np.exp(step * (mel - 15.0)))


def mel_filterbank(sr: int, n_fft: int, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters from 0 Hz to sr / 2, each of unit area in mel-Hz."""
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    freq = fft_frequencies(sr, n_fft)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freq[None, :] - lo) / (mid - lo)
    falling = (hi - freq[None, :]) / (hi - mid)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (hi - lo))


def power_to_db(power: np.ndarray, top_db: float = TOP_DB) -> np.ndarray:
    """10 log10 of power (floor 1e-10), clipped to ``top_db`` below its maximum."""
    out = 10.0 * np.log10(np.maximum(AMIN, power))
    return np.maximum(out, out.max() - top_db) if out.size else out


def onset_strength(y: np.ndarray, sr: int, hop: int, n_fft: int = 2048, n_mels: int = N_MELS,
                   magnitude: np.ndarray | None = None) -> np.ndarray:
    """Spectral-flux onset envelope, one value per centred frame (see the module docstring).

    ``magnitude`` may pass an already computed :func:`stft_magnitude` of ``y`` with ``n_fft``, ``hop``.
    """
    if magnitude is None:
        magnitude = stft_magnitude(y, n_fft, hop)
    mel = power_to_db(mel_filterbank(sr, n_fft, n_mels) @ (np.asarray(magnitude, dtype=np.float64) ** 2))
    flux = np.maximum(0.0, mel[:, 1:] - mel[:, :-1]).mean(axis=0)
    shift = 1 + n_fft // (2 * hop)
    return np.concatenate([np.zeros(shift), flux])[: mel.shape[1]]


def _correlate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum_n a[n] * b[n + lag] for lag 0 .. len - 1."""
    n = a.size
    return np.fft.irfft(np.conj(np.fft.rfft(a, 2 * n)) * np.fft.rfft(b, 2 * n))[:n]


def tempo(onset: np.ndarray, fps: float, mask: np.ndarray | None = None, start_bpm: float = 120.0,
          std_octaves: float = 1.0, min_bpm: float = 30.0, max_bpm: float = 320.0) -> float:
    """Tempo in BPM: the beat period (a grid of 1/4 frame) whose autocorrelation of the onset
    envelope, summed over its first :data:`MULTIPLES` multiples and weighted by a log-normal
    preference around ``start_bpm``, is highest; 0 for an envelope without onsets.

    With ``mask``, only frames where it is true count: the autocorrelation at each lag is the mean
    over the pairs of frames that both lie inside the mask (music spans between speech, say).
    """
    onset = np.asarray(onset, dtype=np.float64)
    inside = np.ones(onset.size, bool) if mask is None else np.asarray(mask, bool)
    if onset.size < 4 or not np.any(onset[inside] > 0):
        return 0.0
    n = onset.size
    centred = np.where(inside, onset - onset[inside].mean(), 0.0)
    pairs = np.round(_correlate(inside.astype(np.float64), inside.astype(np.float64)))
    acf = _correlate(centred, centred) / np.maximum(pairs, 1.0)
    acf[pairs < fps] = 0.0  # lags with less than a second of frame pairs say nothing
    acf = np.maximum(acf, 0.0)
    lags = np.arange(max(1.0, np.floor(60.0 * fps / max_bpm)), min(n - 1.0, np.ceil(60.0 * fps / min_bpm)), 0.25)
    if lags.size < 3:
        return 0.0
    # a period is as good as the autocorrelation at its first multiples (a single lag is noisy)
    score = sum(np.interp(k * lags, np.arange(n), acf, right=0.0) for k in range(1, MULTIPLES + 1))
    bpm = 60.0 * fps / lags
    score = score * np.exp(-0.5 * (np.log2(bpm / start_bpm) / std_octaves) ** 2)
    i = int(np.argmax(score))
    return float(bpm[i]) if score[i] > 0 else 0.0


def beat_track(onset: np.ndarray, fps: float, bpm: float | None = None, mask: np.ndarray | None = None,
               tightness: float = 400.0, trim: bool = True) -> tuple[float, np.ndarray]:
    """(tempo in BPM, beat frame indices) by dynamic programming over the onset envelope.

    Each frame's score is its smoothed, normalised onset strength plus the best score of a previous
    beat 0.5-2 periods earlier, penalised by ``tightness * log(interval / period) ** 2``; the beats
    are read back from the best frame of the last period. With ``trim``, beats at the start and end
    whose onset is below half the root mean square of the beats' onsets are dropped. ``mask``
    restricts the tempo estimate (:func:`tempo`) to some frames; beats may fall anywhere.
    """
    onset = np.asarray(onset, dtype=np.float64)
    if bpm is None:
        bpm = tempo(onset, fps, mask)
    if bpm <= 0 or onset.size < 4 or not np.any(onset > 0):
        return 0.0, np.zeros(0, dtype=int)
    period = 60.0 * fps / bpm
    std = onset.std(ddof=1)
    norm = onset / (std if std > 0 else 1.0)
    half = int(np.round(period))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * 32.0 / period) ** 2)
    local = np.convolve(norm, kernel, mode="same")

    n = local.size
    first, last = max(1, int(np.round(period / 2))), int(np.round(2 * period))
    steps = np.arange(first, last + 1)
    penalty = -tightness * np.log(steps / period) ** 2
    score = np.empty(n)
    back = np.full(n, -1, dtype=int)
    for t in range(n):
        lo = t - last
        if t < first:
            score[t] = local[t]
            continue
        cand = score[max(0, lo) : t - first + 1][::-1] + penalty[: t - first + 1 - max(0, lo)]
        j = int(np.argmax(cand))
        if cand[j] > 0:
            score[t] = local[t] + cand[j]
            back[t] = t - first - j
        else:
            score[t] = local[t]

    # the last beat: the best-scoring local maximum of the score within the final period
    tail = max(0, n - int(np.ceil(period)))
    peaks = np.flatnonzero((score[1:-1] >= score[:-2]) & (score[1:-1] > score[2:])) + 1
    peaks = peaks[peaks >= tail]
    beat = int(peaks[np.argmax(score[peaks])]) if peaks.size else tail + int(np.argmax(score[tail:]))
    beats = [beat]
    while back[beats[-1]] >= 0:
        beats.append(int(back[beats[-1]]))
    frames = np.array(beats[::-1], dtype=int)
    if trim and frames.size:
        strength = local[frames]
        keep = strength >= 0.5 * np.sqrt(np.mean(strength**2))
        if keep.any():
            frames = frames[np.argmax(keep) : frames.size - np.argmax(keep[::-1])]
    return float(bpm), frames


def chroma(magnitude: np.ndarray, sr: int, n_fft: int, fmin: float = 50.0, fmax: float = 5000.0) -> np.ndarray:
    """(12, n_frames) pitch-class energy, C first, each frame scaled to a maximum of 1.

    Every STFT bin between ``fmin`` and ``fmax`` adds its power to the pitch classes near its
    pitch (a Gaussian over the circular pitch-class distance, as wide as the bin is in semitones,
    at least one), weighted by a Gaussian over octaves centred on 440 Hz (2 octaves wide), so
    low rumble and high hiss count little.
    """
    freq = fft_frequencies(sr, n_fft)
    use = (freq >= fmin) & (freq <= fmax)
    midi = 69.0 + 12.0 * np.log2(np.maximum(freq, 1e-9) / 440.0)
    width = np.maximum(1.0, 12.0 * np.log2((freq + sr / n_fft) / np.maximum(freq, 1e-9)))
    distance = (midi[None, :] - np.arange(12)[:, None] + 6.0) % 12.0 - 6.0  # pitch class 0 = C
    weights = np.exp(-0.5 * (distance / (0.5 * width[None, :])) ** 2)
    weights *= np.exp(-0.5 * ((midi - 69.0) / 24.0) ** 2)[None, :]
    weights[:, ~use] = 0.0
    energy = weights @ (np.asarray(magnitude, dtype=np.float64) ** 2)
    peak = energy.max(axis=0)
    return energy / np.where(peak > np.finfo(np.float32).tiny, peak, 1.0)


def yin(y: np.ndarray, sr: int, fmin: float, fmax: float, frame_length: int, hop: int,
        threshold: float = 0.1, voicing: float = 0.35, min_rms: float = 3e-4) -> tuple[np.ndarray, np.ndarray]:
    """(f0 in Hz with NaN where unvoiced, periodicity 0-1) of each centred frame.

    YIN: the cumulative mean normalised difference d'(tau) over a window of ``frame_length // 2``
    samples; the period is the first dip of d' below ``threshold`` plus the frame's lowest d'
    (followed down to its local minimum, refined by a parabola). A frame is voiced when that
    minimum is below ``voicing`` and its RMS reaches ``min_rms``; runs of one or two voiced frames
    and frames more than 0.6 octave from the median of their run's neighbours within 100 ms (octave
    slips) are unvoiced. Periodicity is ``1 - d'`` at the period (0 for silent frames).
    """
    y = np.asarray(y, dtype=np.float64)
    count = n_frames(y.size, hop)
    window = frame_length // 2
    min_lag = max(2, int(np.floor(sr / fmax)))
    max_lag = min(window - 1, int(np.ceil(sr / fmin)))
    f0 = np.full(count, np.nan)
    periodicity = np.zeros(count)
    if y.size == 0 or max_lag <= min_lag + 2:
        return f0, periodicity
    frames = _framed(y, frame_length, hop, "constant")
    size = 1 << int(np.ceil(np.log2(frame_length + window)))
    lags = np.arange(max_lag + 2)
    for a in range(0, count, CHUNK_FRAMES):
        x = frames[a : a + CHUNK_FRAMES]
        spec = np.fft.rfft(x, size, axis=1)
        head = np.fft.rfft(x[:, :window], size, axis=1)
        r = np.fft.irfft(np.conj(head) * spec, size, axis=1)[:, lags]
        energy = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x**2, axis=1)], axis=1)
        e_shift = energy[:, lags + window] - energy[:, lags]
        d = np.maximum(energy[:, window][:, None] + e_shift - 2 * r, 0.0)
        cumulative = np.cumsum(d[:, 1:], axis=1)
        cmnd = np.ones_like(d)
        cmnd[:, 1:] = d[:, 1:] * lags[1:] / np.maximum(cumulative, 1e-12)
        seg = cmnd[:, min_lag : max_lag + 1]
        best = seg.min(axis=1)
        below = seg < (np.minimum(best + threshold, voicing))[:, None]
        start = np.argmax(below, axis=1)
        falling_ends = np.ones_like(seg, dtype=bool)
        falling_ends[:, :-1] = seg[:, 1:] >= seg[:, :-1]
        index = np.arange(seg.shape[1])[None, :]
        tau = np.argmax(falling_ends & (index >= start[:, None]), axis=1) + min_lag
        rows = np.arange(x.shape[0])
        prev, here, nxt = cmnd[rows, tau - 1], cmnd[rows, tau], cmnd[rows, tau + 1]
        curve = prev - 2 * here + nxt
        shift = np.where(curve > 0, 0.5 * (prev - nxt) / np.where(curve > 0, curve, 1.0), 0.0)
        period = tau + np.clip(shift, -0.5, 0.5)
        loud = np.sqrt(energy[:, -1] / frame_length) >= min_rms
        voiced = loud & (here < voicing)
        f0[a : a + x.shape[0]] = np.where(voiced, sr / period, np.nan)
        periodicity[a : a + x.shape[0]] = np.where(loud, np.clip(1.0 - here, 0.0, 1.0), 0.0)
    f0[(f0 < fmin * 0.97) | (f0 > fmax * 1.03)] = np.nan
    return _clean_runs(f0), periodicity


def _clean_runs(f0: np.ndarray, min_run: int = 3, max_octaves: float = 0.6, span: int = 5) -> np.ndarray:
    """Unvoice voiced runs shorter than ``min_run`` frames and frames more than ``max_octaves`` from
    the median of their run's frames within ``span`` frames on either side (octave slips)."""
    out = f0.copy()
    voiced = np.isfinite(out)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    for start, end in zip(edges[0::2], edges[1::2], strict=True):
        if end - start < min_run:
            out[start:end] = np.nan
            continue
        logs = np.log2(f0[start:end])
        padded = np.pad(logs, span, mode="constant", constant_values=np.nan)
        local = np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, 2 * span + 1), axis=1)
        out[start:end][np.abs(logs - local) > max_octaves] = np.nan
    return out
