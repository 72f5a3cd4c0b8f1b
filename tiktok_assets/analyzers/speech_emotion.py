"""Emotion of each speech segment, with the prosody it rests on.

Segments are the ``speech_transcription`` segments, or Silero VAD spans when there is no
transcription. Every segment always gets prosody measured from the signal: pitch mean, range
(5th to 95th percentile) and spread in Hz from the shared YIN pitch pass, loudness in dBFS, voiced share, and
the speaking rate in words per minute when words are known.

``emotion``/``confidence``/``emotion_scores`` come only from an audio-classification model
(wav2vec2-style, loaded with transformers' ``AutoFeatureExtractor`` and
``AutoModelForAudioClassification``) named by ``TIKTOK_ASSETS_SPEECH_EMOTION_MODEL``: a local
folder, or a hub id that is used from the local cache or downloaded where the hub is reachable.
A checkpoint without a trained classification head is refused (its labels would be random).
Without a model, ``emotion`` is null and ``model_status`` says which model is missing; no label
is ever guessed from prosody.

Coverage: the emotion label is this analyzer's key output, so it claims to have examined the
video only when a classifier ran (then the speech segments were classified and the rest was
found to hold no speech). Without a model it claims nothing and counts 0 for speech in the
reconstruction score, although its prosody rows are real.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa

from ..audio_features import (
    transcript_segments,
    transcript_words,
    voiced_spans,
    without_none,
)
from ..model_registry import ModelUnavailable, ResolvedModel, inference
from ..passes import prosody as prosody_pass
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

RATE = 16_000
SETTING = "TIKTOK_ASSETS_SPEECH_EMOTION_MODEL"
MIN_CLASSIFY_S = 0.5
MAX_CLASSIFY_S = 30.0
SILENCE_DB = -55.0

SCORE = pa.struct([("label", pa.string()), ("score", pa.float64())])
COLUMNS = (
    pa.field("source", pa.string()),
    pa.field("text", pa.string()),
    pa.field("emotion", pa.string()),
    pa.field("confidence", pa.float64()),
    pa.field("emotion_scores", pa.list_(SCORE)),
    pa.field("model_status", pa.string()),
    pa.field("pitch_mean_hz", pa.float64()),
    pa.field("pitch_range_hz", pa.float64()),
    pa.field("pitch_std_hz", pa.float64()),
    pa.field("energy_db", pa.float64()),
    pa.field("energy_range_db", pa.float64()),
    pa.field("voiced_share", pa.float64()),
    pa.field("speaking_rate_wpm", pa.float64()),
)


class EmotionClassifier:
    """A feature extractor and an audio-classification model on one device."""

    def __init__(self, resolved: ResolvedModel, device: str, cache_dir: Path):
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        kwargs = {"cache_dir": str(cache_dir), "local_files_only": resolved.origin != "hub download"}
        try:
            self.extractor = AutoFeatureExtractor.from_pretrained(resolved.path, **kwargs)
            model, info = AutoModelForAudioClassification.from_pretrained(
                resolved.path, output_loading_info=True, **kwargs
            )
        except Exception as exc:  # noqa: BLE001 - hub, file and config errors come in many types
            raise ModelUnavailable(
                f"speech emotion model {resolved.name!r} could not be loaded ({type(exc).__name__}); "
                f"set {SETTING} to a local audio-classification model folder"
            ) from exc
        missing = sorted(info.get("missing_keys") or [])
        if missing:
            raise ModelUnavailable(
                f"speech emotion model {resolved.name!r} has no trained classification head "
                f"(missing {', '.join(missing[:3])}); its labels would be random"
            )
        self.device = device if device.startswith("cuda") else "cpu"
        self.model = model.to(self.device).eval()
        self.labels = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
        self.resolved = resolved

    def scores(self, audio: np.ndarray) -> list[tuple[str, float]]:
        """(label, probability) for one 16 kHz clip, most likely first."""
        import torch

        inputs = self.extractor(audio, sampling_rate=RATE, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode(), inference("speech-emotion"):
            logits = self.model(**inputs).logits[0].float()
        probs = torch.softmax(logits, dim=-1).cpu().numpy()
        order = np.argsort(probs)[::-1]
        return [(self.labels[i], float(probs[i])) for i in order]


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint answers a TCP connection (fails fast when offline)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", endpoint.port or 443), timeout_s):
            return True
    except OSError:
        return False


def load_model(resolved: ResolvedModel, kind: str, index: int, store: Path) -> EmotionClassifier:
    """Registry loader of ``speech-emotion``: a local folder, or a hub id from the local cache and
    then (where the hub answers) a download; raises ModelUnavailable."""
    device = "cpu" if kind == "cpu" else f"cuda:{index}"
    if resolved.origin != "hub":
        return EmotionClassifier(resolved, device, Path(store) / "huggingface")
    cache_dir = Path(store) / "huggingface"
    try:
        return EmotionClassifier(ResolvedModel(resolved.name, resolved.path, "hub cache"), device, cache_dir)
    except ModelUnavailable:
        pass
    if hub_reachable():
        return EmotionClassifier(ResolvedModel(resolved.name, resolved.path, "hub download"), device, cache_dir)
    raise ModelUnavailable(
        f"speech emotion model {resolved.path!r} is not in the local cache and the model hub is not reachable; "
        f"set {SETTING} to a local folder"
    ) from None


def prosody(
    start: float, end: float, db_times: np.ndarray, db: np.ndarray, pitch_times: np.ndarray, f0: np.ndarray
) -> dict:
    """Pitch and energy figures of [start, end]."""
    sel = (pitch_times >= start) & (pitch_times < end)
    frames = int(sel.sum())
    voiced = f0[sel][np.isfinite(f0[sel])]
    loud = db[(db_times >= start) & (db_times < end)]
    loud = loud[loud > SILENCE_DB]
    out = {
        "voiced_share": round(voiced.size / frames, 3) if frames else None,
        "energy_db": round(float(10 * np.log10(np.mean(10 ** (loud / 10)))), 2) if loud.size else None,
        "energy_range_db": round(float(np.percentile(loud, 95) - np.percentile(loud, 5)), 2) if loud.size else None,
    }
    if voiced.size >= 3:
        out.update(
            pitch_mean_hz=round(float(voiced.mean()), 1),
            pitch_range_hz=round(float(np.percentile(voiced, 95) - np.percentile(voiced, 5)), 1),
            pitch_std_hz=round(float(voiced.std()), 1),
        )
    return out


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    duration = media.duration_s
    audio = media.audio
    table = context.inputs.get("speech_transcription")
    segments = transcript_segments(table)
    words = transcript_words(table)
    spans = voiced_spans(media, 0.3)  # the shared speech-activity track
    if segments:
        source = "transcription"
    else:
        source = "vad"
        segments = [{"start_s": a, "end_s": b, "text": None} for a, b in spans]

    try:
        classifier = context.models.load("speech-emotion", context.device)
        status = f"ok: {classifier.resolved.name} ({classifier.resolved.origin})"
    except ModelUnavailable as exc:
        classifier, status = None, f"unavailable: {exc}"
        context.log.warning(status)

    db_times, db = prosody_pass.energy(media)
    pitch_spans = [(s["start_s"], s["end_s"]) for s in segments]
    pitch_times, f0 = prosody_pass.pitch_track(media, pitch_spans) if pitch_spans else (np.zeros(0), np.zeros(0))
    rows = []
    for seg in segments:
        start, end = float(seg["start_s"]), min(float(seg["end_s"]), duration)
        if end <= start:
            continue
        row = {"start_s": round(start, 3), "end_s": round(end, 3), "source": source, "text": seg.get("text"),
               "model_status": status}
        row.update(prosody(start, end, db_times, db, pitch_times, f0))
        if source == "transcription":
            n = sum(1 for w in words if start <= w.mid_s < end)
            row["speaking_rate_wpm"] = round(60.0 * n / (end - start), 1)
        if classifier is not None:
            piece = audio[int(start * RATE) : int(min(end, start + MAX_CLASSIFY_S) * RATE)]
            if piece.size < MIN_CLASSIFY_S * RATE:
                piece = np.pad(piece, (0, int(MIN_CLASSIFY_S * RATE) - piece.size))
            ranked = classifier.scores(piece.astype(np.float32))
            row["emotion"], row["confidence"] = ranked[0][0], round(ranked[0][1], 4)
            row["emotion_scores"] = [{"label": label, "score": round(p, 4)} for label, p in ranked]
        rows.append(row)

    labels = [r["emotion"] for r in rows if r.get("emotion")]
    top = max(set(labels), key=labels.count) if labels else None
    if not rows:
        note = "no speech found"
    elif classifier is None:
        note = "prosody only: no emotion model could be used (see model_status)"
    else:
        note = ""
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, duration)] if classifier is not None else [],
        metadata=without_none(
            {
                "model": classifier.resolved.name if classifier else "none",
                "model_origin": classifier.resolved.origin if classifier else None,
                "model_status": status,
                "segments": len(rows),
                "segment_source": source,
                "main_emotion": top,
                "note": note,
            }
        ),
    )


SPEC = AnalyzerSpec(
    name="speech_emotion",
    modality="speech",
    description="Emotion per speech segment from an audio classifier (when configured) plus pitch/energy/rate",
    version="1",
    columns=COLUMNS,
    run=run,
    passes=("speech_activity", "prosody"),
    model="speech emotion classifier (TIKTOK_ASSETS_SPEECH_EMOTION_MODEL)",
    needs_audio=True,
    depends_on=("speech_transcription",),
    main_figure="main_emotion",
    timeline_label="CASE WHEN emotion IS NOT NULL THEN 'emotion: ' || emotion END",
    settings=("speech_emotion_model",),
    model_packages=("transformers",),
)
