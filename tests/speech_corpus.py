"""A seeded corpus of English/German espeak-ng sentences for code-switching tests and benchmarks.

Each clip is built from whole sentences whose language and text are known, joined by short
silences (0.2-0.4 s by default), optionally over a quiet music bed. ``wer`` and
``language_accuracy`` score a ``speech_transcription`` table against that truth.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from tiktok_assets.sample_video import speak, voiced_span

RATE = 16_000

ENGLISH = (
    "hello everyone and welcome back to my kitchen",
    "today we are going to make a very simple dinner",
    "first we cut the onions into small pieces",
    "this recipe is really quick and easy",
    "please leave a comment if you liked this video",
    "the weather was beautiful this morning",
    "my sister always brings fresh bread from the market",
    "we will need a large pan and some olive oil",
)
GERMAN = (
    "heute kochen wir zusammen eine leckere Suppe",
    "zuerst schneiden wir die Zwiebeln in kleine Stücke",
    "danach kommt das Gemüse in einen großen Topf",
    "das Rezept ist wirklich einfach und schnell",
    "vielen Dank fürs Zuschauen und bis zum nächsten Mal",
    "meine Schwester kauft jeden Morgen frisches Brot",
    "wir brauchen noch etwas Salz und Pfeffer",
    "am Wochenende fahren wir in die Berge",
)
VOICES = {"en": ("en-us", "en"), "de": ("de",)}


@dataclass
class Clip:
    """Audio (16 kHz mono float32) and its truth: one (start_s, end_s, language, text) per sentence."""

    audio: np.ndarray
    sentences: list[tuple[float, float, str, str]] = field(default_factory=list)

    def text(self, language: str | None = None) -> str:
        return " ".join(s[3] for s in self.sentences if language in (None, s[2]))


def sentence_audio(text: str, language: str, voice_index: int = 0) -> np.ndarray:
    """One sentence spoken by espeak-ng, trimmed to its voiced part."""
    voices = VOICES[language]
    audio = speak(text, voices[voice_index % len(voices)])
    a, b = voiced_span(audio)
    return audio[int(a * RATE) : int(b * RATE)]


def music_bed(seconds: float, bpm: float = 100.0, level: float = 0.03) -> np.ndarray:
    """Plucked major triads (C, F, G, C...), one chord per beat, peak amplitude about ``level``."""
    t = np.arange(int(seconds * RATE)) / RATE
    beat = 60.0 / bpm
    roots = (261.63, 349.23, 392.00, 261.63)
    out = np.zeros_like(t)
    for k in range(int(np.ceil(seconds / beat))):
        sel = (t >= beat * k) & (t < beat * (k + 1))
        local = t[sel] - beat * k
        envelope = np.minimum(1.0, local / 0.01) * np.exp(-4 * local)
        for ratio in (1.0, 1.25, 1.5):
            for h in range(1, 5):
                out[sel] += envelope * np.sin(2 * np.pi * roots[k % 4] * ratio * h * local) / h
    return (level * out / max(1e-9, np.abs(out).max())).astype(np.float32)


def build_clip(
    items: list[tuple[str, str]],
    seed: int = 0,
    gaps: tuple[float, float] = (0.2, 0.4),
    lead_s: float = 0.5,
    tail_s: float = 0.6,
    music_level: float = 0.0,
) -> Clip:
    """Sentences ``(text, language)`` one after another with seeded random gaps in ``gaps``."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(lead_s * RATE), np.float32)]
    t = lead_s
    truth = []
    for i, (text, language) in enumerate(items):
        if i:
            gap = np.zeros(int(rng.uniform(*gaps) * RATE), np.float32)
            parts.append(gap)
            t += gap.size / RATE
        audio = 0.8 * sentence_audio(text, language, int(rng.integers(0, 2)))
        parts.append(audio.astype(np.float32))
        truth.append((round(t, 3), round(t + audio.size / RATE, 3), language, text))
        t += audio.size / RATE
    parts.append(np.zeros(int(tail_s * RATE), np.float32))
    audio = np.concatenate(parts)
    if music_level > 0:
        audio = audio + music_bed(audio.size / RATE, level=music_level)
    return Clip(audio.astype(np.float32), truth)


def mixed_items(seed: int, n: int = 4, first: str = "en") -> list[tuple[str, str]]:
    """``n`` sentences alternating between English and German (seeded choice without repeats)."""
    rng = np.random.default_rng(seed)
    en, de = list(rng.permutation(len(ENGLISH))), list(rng.permutation(len(GERMAN)))
    order = ("en", "de") if first == "en" else ("de", "en")
    return [
        (ENGLISH[en.pop()], "en") if order[i % 2] == "en" else (GERMAN[de.pop()], "de") for i in range(n)
    ]


def single_items(seed: int, language: str, n: int = 4) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    pool = ENGLISH if language == "en" else GERMAN
    return [(pool[i], language) for i in rng.permutation(len(pool))[:n]]


# --- scoring --------------------------------------------------------------------------------


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation (umlauts kept, ß as ss)."""
    text = unicodedata.normalize("NFC", text.lower()).replace("ß", "ss")
    return re.findall(r"[a-zäöü']+", text.replace("'", ""))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance divided by the number of reference words."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / max(1, len(ref))


def transcript_text(rows: list[dict]) -> str:
    return " ".join(r["text"] for r in sorted(rows, key=lambda r: r["start_s"]))


def utterance_languages(rows: list[dict], clip: Clip) -> list[str | None]:
    """Per true sentence, the language of the transcribed words overlapping it most (None: no words)."""
    found = []
    for start, end, _language, _text in clip.sentences:
        weight: dict[str, float] = {}
        for row in rows:
            for w in row["words"] or []:
                overlap = min(end, w["end_s"]) - max(start, w["start_s"])
                if overlap > 0:
                    weight[row["language"]] = weight.get(row["language"], 0.0) + overlap
        found.append(max(weight, key=weight.get) if weight else None)
    return found


def language_accuracy(rows: list[dict], clip: Clip) -> tuple[int, int]:
    """(sentences whose words carry the right language, sentences)."""
    found = utterance_languages(rows, clip)
    return sum(f == s[2] for f, s in zip(found, clip.sentences, strict=True)), len(clip.sentences)
