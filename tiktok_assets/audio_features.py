"""Signal-level helpers shared by the speech and audio analyzers (no model weights).

* transcript words from a ``speech_transcription`` table, filler words, syllable counts (German
  and English vowel-group heuristic);
* voiced spans (Silero VAD) and pauses between them;
* frame energy (dB) (the pitch track is the shared prosody pass, :mod:`tiktok_assets.passes.prosody`);
* loudness after ITU-R BS.1770 (K-weighting derived for the sample rate, gated integrated
  loudness, short-term loudness over 3 s).

No SciPy: the K-weighting filter is applied by FFT convolution with its impulse response.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

RATE = 16_000

# Hesitation sounds, written with repeated letters collapsed ("ähhm" -> "ähm", "hmm" -> "hm",
# "ummm" -> "um"). Discourse words that are also real words ("also", "like", "so", "halt") are
# deliberately not fillers. Some English fillers are German words ("um" = around/at, "er" = he),
# so each language has its own list; words of unknown language are checked against both.
FILLERS_EN = frozenset({"uh", "um", "uhm", "er", "erm", "ah", "eh", "hm", "mhm"})
FILLERS_DE = frozenset({"äh", "ähm", "öh", "öhm", "eh", "ehm", "hm", "mhm", "mh", "em", "öm", "äm"})
FILLERS = FILLERS_EN | FILLERS_DE

VOWELS = "aeiouyäöü"
# Vowel pairs that are one syllable (diphthongs, long vowels written double).
ONE_SYLLABLE_PAIRS_DE = frozenset({"ei", "ai", "ey", "ay", "au", "äu", "eu", "ie", "aa", "ee", "oo", "oi", "ui"})
ONE_SYLLABLE_PAIRS_EN = frozenset(
    {"ai", "ay", "au", "ea", "ee", "ei", "ey", "ie", "oa", "oe", "oi", "oo", "ou", "oy", "ue", "ui", "uy", "ya", "ye",
     "yo", "yu"}
)


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    language: str | None
    probability: float | None = None

    @property
    def mid_s(self) -> float:
        return (self.start_s + self.end_s) / 2


def without_none(metadata: dict) -> dict:
    """Metadata without the figures that could not be computed."""
    return {key: value for key, value in metadata.items() if value is not None}


def transcript_words(table) -> list[Word]:
    """Words (time-sorted) from a ``speech_transcription`` Arrow table; [] for None or no words."""
    if table is None or table.num_rows == 0 or "words" not in table.column_names:
        return []
    languages = table.column("language").to_pylist() if "language" in table.column_names else [None] * table.num_rows
    words = []
    for language, items in zip(languages, table.column("words").to_pylist(), strict=True):
        for item in items or []:
            text = (item.get("word") or "").strip()
            if not text or item.get("start_s") is None or item.get("end_s") is None:
                continue
            words.append(Word(text, float(item["start_s"]), float(item["end_s"]), language, item.get("probability")))
    return sorted(words, key=lambda w: w.start_s)


def transcript_segments(table) -> list[dict]:
    """Segments ``{start_s, end_s, text, language}`` of a ``speech_transcription`` table."""
    if table is None or table.num_rows == 0:
        return []
    columns = [c for c in ("start_s", "end_s", "text", "language") if c in table.column_names]
    return sorted(table.select(columns).to_pylist(), key=lambda r: r["start_s"])


def normalise_word(text: str) -> str:
    """Lower case letters only (umlauts kept, ß kept), for word lists and syllable counts."""
    text = unicodedata.normalize("NFC", text.lower())
    return "".join(ch for ch in text if ch.isalpha())


def filler_label(text: str, language: str | None = None) -> str | None:
    """The filler a word is, repeated letters collapsed ("Ähhm," -> "ähm", "Hmm" -> "hm"), or None.

    ``language`` ("en", "de", ...) picks the list: "um" is a filler in English, a word in German.
    """
    collapsed = re.sub(r"(.)\1+", r"\1", normalise_word(text))
    code = (language or "").lower()[:2]
    fillers = FILLERS_EN if code == "en" else FILLERS_DE if code == "de" else FILLERS
    return collapsed if collapsed in fillers else None


def count_syllables(text: str, language: str | None = None) -> int:
    """Syllables of one word by vowel groups; German umlauts and diphthongs, English silent e, -ion.

    Digits count one syllable each (a rough stand-in for spoken numbers). Every word with a
    letter has at least one syllable.
    """
    digits = sum(ch.isdigit() for ch in text)
    word = normalise_word(text).replace("ß", "s")
    if not word:
        return digits
    english = (language or "").lower().startswith("en")
    pairs = ONE_SYLLABLE_PAIRS_EN if english else ONE_SYLLABLE_PAIRS_DE
    word = re.sub(r"qu", "q", word)  # the u of qu is not a vowel
    if english:
        word = re.sub(r"^y", "j", word)  # initial y is a consonant (yes, you)
        word = re.sub(r"(?<=[^aeiouy])i(?=ons?$)", "", word)  # -ion is one syllable (onion, nation)
    count = 0
    for group in re.findall(f"[{VOWELS}]+", word):
        i = 0
        while i < len(group):
            if group[i : i + 2] in pairs:
                i += 2
            else:
                i += 1
            count += 1
    if english and count > 1:
        if re.search(r"[^aeiouy]e$", word) and not re.search(r"[^aeiouy]le$", word):
            count -= 1  # silent final e: make, home (but table, little)
        elif re.search(r"[^aeiouytd]ed$", word) or re.search(r"[^aeiouysxzhc]es$", word):
            count -= 1  # jumped, makes (but wanted, boxes)
    return max(1, count) + digits


def voiced_spans(audio: np.ndarray, min_pause_s: float = 0.3) -> list[tuple[float, float]]:
    """Speech spans from the Silero VAD, unpadded; gaps shorter than ``min_pause_s`` are kept inside."""
    from .vad import speech_spans

    return speech_spans(audio, min_silence_s=min_pause_s, pad_s=0.0)


def span_overlap(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of ``spans`` inside [start, end)."""
    return float(sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans))


def union_spans(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, merged copy of possibly overlapping spans."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def frame_db(audio: np.ndarray, hop_s: float = 0.01, frame_s: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """RMS level in dBFS per frame (centred frames every ``hop_s``); returns (times, dB)."""
    hop, size = int(hop_s * RATE), int(frame_s * RATE)
    if audio.size == 0:
        return np.zeros(0), np.zeros(0)
    padded = np.pad(np.asarray(audio, dtype=np.float64), (size // 2, size // 2))
    n = max(1, (padded.size - size) // hop + 1)
    csum = np.concatenate([[0.0], np.cumsum(padded**2)])
    starts = np.minimum(np.arange(n) * hop, padded.size - size if padded.size >= size else 0)
    power = (csum[np.minimum(starts + size, padded.size)] - csum[starts]) / size
    return np.arange(n) * hop_s, 10 * np.log10(np.maximum(power, 1e-12))


def zscores(values: np.ndarray) -> np.ndarray:
    """Standard scores ignoring NaN (NaN stays NaN; all-equal values give 0)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if finite.sum() < 2:
        return np.where(finite, 0.0, np.nan)
    mean, std = values[finite].mean(), values[finite].std()
    if std < 1e-9:
        return np.where(finite, 0.0, np.nan)
    return (values - mean) / std


# --- Loudness (ITU-R BS.1770-4) ------------------------------------------------------------

# Analogue prototypes of the two K-weighting stages; the biquads are derived for any sample
# rate with the bilinear transform (at 48 kHz they give the coefficients printed in BS.1770).
SHELF_F0, SHELF_GAIN_DB, SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
HIGHPASS_F0, HIGHPASS_Q = 38.13547087602444, 0.5003270373238773
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0


def k_weighting(rate: int = RATE) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(b, a) of the high-shelf and the high-pass stage of the K-weighting filter at ``rate``."""
    k = np.tan(np.pi * SHELF_F0 / rate)
    vh = 10 ** (SHELF_GAIN_DB / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / SHELF_Q + k * k
    shelf_b = np.array([vh + vb * k / SHELF_Q + k * k, 2 * (k * k - vh), vh - vb * k / SHELF_Q + k * k]) / a0
    shelf_a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / SHELF_Q + k * k) / a0])
    k = np.tan(np.pi * HIGHPASS_F0 / rate)
    a0 = 1 + k / HIGHPASS_Q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])
    hp_a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / HIGHPASS_Q + k * k) / a0])
    return (shelf_b, shelf_a), (hp_b, hp_a)


# The K-weighting cascade's impulse response is used up to this length: its slowest part (the 38 Hz
# high-pass, a double pole) has decayed below 1e-20 of its start after 0.5 s.
IMPULSE_S = 0.5
FILTER_BLOCK = 1 << 18  # samples per FFT block of the overlap-add (bounds memory on long videos)


def biquad_impulse(stages: tuple[tuple[np.ndarray, np.ndarray], ...], n: int) -> np.ndarray:
    """The first ``n`` samples of the impulse response of biquads ``(b, a)`` in cascade (``a[0]`` = 1),
    by their difference equations."""
    h = np.zeros(n)
    h[0] = 1.0
    for b, a in stages:
        x, y = h.tolist(), [0.0] * n
        x1 = x2 = y1 = y2 = 0.0
        for i, xi in enumerate(x):
            yi = b[0] * xi + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
            y[i] = yi
            x1, x2, y1, y2 = xi, x1, yi, y1
        h = np.asarray(y)
    return h


def k_weighted(audio: np.ndarray, rate: int = RATE) -> np.ndarray:
    """``audio`` through the K-weighting filter: the cascade's impulse response (``IMPULSE_S``),
    convolved by FFT in blocks (overlap-add). Equals recursive filtering (``scipy.signal.lfilter``)
    to ~1e-12 of the signal's scale, without importing SciPy (1.3 s in a fresh process)."""
    x = np.asarray(audio, dtype=np.float64)
    h = biquad_impulse(k_weighting(rate), int(IMPULSE_S * rate))
    size = 1 << int(np.ceil(np.log2(FILTER_BLOCK + h.size - 1)))
    spectrum = np.fft.rfft(h, size)
    out = np.zeros(x.size + h.size - 1)
    for start in range(0, x.size, FILTER_BLOCK):
        block = x[start : start + FILTER_BLOCK]
        out[start : start + block.size + h.size - 1] += np.fft.irfft(np.fft.rfft(block, size) * spectrum, size)[
            : block.size + h.size - 1
        ]
    return out[: x.size]


def _loudness(mean_square: np.ndarray | float) -> np.ndarray | float:
    return -0.691 + 10 * np.log10(np.maximum(mean_square, 1e-20))


def block_mean_squares(weighted: np.ndarray, block_s: float, step_s: float, rate: int = RATE) -> np.ndarray:
    """Mean square of K-weighted audio in blocks of ``block_s`` every ``step_s`` seconds."""
    size, step = int(round(block_s * rate)), int(round(step_s * rate))
    if weighted.size < size:
        return np.array([np.mean(weighted**2)]) if weighted.size else np.zeros(0)
    csum = np.concatenate([[0.0], np.cumsum(weighted**2)])
    starts = np.arange(0, weighted.size - size + 1, step)
    return (csum[starts + size] - csum[starts]) / size


def integrated_loudness(audio: np.ndarray, rate: int = RATE) -> float | None:
    """Gated integrated loudness in LUFS (400 ms blocks, 75 % overlap); None for silence."""
    z = block_mean_squares(k_weighted(audio, rate), 0.4, 0.1, rate)
    if z.size == 0:
        return None
    levels = _loudness(z)
    z = z[levels > ABSOLUTE_GATE_LUFS]
    if z.size == 0:
        return None
    relative_gate = _loudness(z.mean()) + RELATIVE_GATE_LU
    z = z[_loudness(z) > relative_gate]
    return float(_loudness(z.mean())) if z.size else None


def short_term_loudness(weighted: np.ndarray, center_s: float, rate: int = RATE, window_s: float = 3.0) -> float | None:
    """Loudness (LUFS) of the ``window_s`` of K-weighted audio centred on ``center_s`` (cut at the clip's ends)."""
    half = int(window_s * rate) // 2
    center = int(round(center_s * rate))
    piece = weighted[max(0, center - half) : max(0, center + half)]
    if piece.size == 0:
        return None
    level = float(_loudness(np.mean(piece**2)))
    return level if level > ABSOLUTE_GATE_LUFS else None
