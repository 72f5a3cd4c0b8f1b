"""Reconstruction score v2: per second, which dimensions of what a viewer sees and hears are described.

Definitions (also in the README):

* **Dimensions** (:data:`DIMENSIONS`, weights sum to 1): speech content, music and sound, on-screen
  text, people, objects, setting and description, camera, edit. Each has the analyzers that describe
  it; a dimension counts only with at least one registered analyzer, and the audio dimensions are not
  expected for a video without an audio track (the weights of the expected dimensions are rescaled to
  sum to 1).
* **Described share** of dimension ``d`` in second ``s`` = the mean over ``d``'s analyzers of the share
  of ``s`` the analyzer's last run examined (measured spans in ``analyzer_runs``); a failed or missing
  run, or one whose model is not available here, counts 0.
* **Confidence** of second ``s``: ``cross_analyzer_intelligence``'s per-second ``confidence`` (1 when
  all analyzers that can answer agree, 0 at an even split) when it ran and could cross-check the
  second, else 1. Disagreement takes off at most :data:`CONFIDENCE_WEIGHT` of the second's score.
* **Second score** = (sum over expected dimensions of weight x described share) x
  (1 - CONFIDENCE_WEIGHT x (1 - confidence)).
* **Score v2** (0-100) = 100 x the mean second score; the per-dimension breakdown is 100 x the mean
  described share of each dimension.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .analyzers.base import AnalyzerSpec

# dimension -> (weight, analyzers describing it, needs an audio track)
DIMENSIONS: dict[str, tuple[float, tuple[str, ...], bool]] = {
    "speech_content": (0.20, ("speech_transcription", "speech_rate", "speech_flow", "speech_emotion"), True),
    "music_sound": (0.10, ("audio_analysis", "audio_environment", "sound_effects"), True),
    "on_screen_text": (0.15, ("text_overlay", "comment_cta_detection", "keywords", "brand_mentions"), False),
    "people": (0.15, ("eye_tracking", "body_pose", "background_segmentation", "age_estimation", "face_emotion"),
               False),
    "objects": (0.10, ("object_detection", "product_detection", "content_safety"), False),
    "setting": (0.15, ("qwen2_vl_temporal", "scene_segmentation", "color_analysis", "composition_analysis"), False),
    "camera": (0.05, ("camera_analysis", "content_quality"), False),
    "edit": (0.10, ("cut_analysis", "visual_effects", "temporal_flow"), False),
}
CONFIDENCE_WEIGHT = 0.25
CONFIDENCE_SOURCE = "cross_analyzer_intelligence"
DEFINITION_V2 = (
    "100 x mean over seconds of (weighted share of the dimensions speech, music/sound, on-screen text, "
    "people, objects, setting, camera, edit that their analyzers examined in the second) x "
    f"(1 - {CONFIDENCE_WEIGHT} x (1 - cross-analyzer confidence))"
)


def _share(spans: Sequence[Mapping[str, float]] | None, start: float, end: float) -> float:
    width = max(end - start, 1e-6)
    inside = sum(max(0.0, min(end, s["end_s"]) - max(start, s["start_s"])) for s in spans or [])
    return min(1.0, inside / width)


def expected_dimensions(specs: Mapping[str, AnalyzerSpec], has_audio: bool) -> dict[str, tuple[float, list[str]]]:
    """Dimension -> (rescaled weight, its registered analyzers) for a video with or without audio."""
    chosen = {
        name: (weight, [a for a in members if a in specs])
        for name, (weight, members, needs_audio) in DIMENSIONS.items()
        if (has_audio or not needs_audio) and any(a in specs for a in members)
    }
    total = sum(weight for weight, _ in chosen.values()) or 1.0
    return {name: (weight / total, members) for name, (weight, members) in chosen.items()}


def score_v2(
    duration_s: float, has_audio: bool, runs: Mapping[str, Mapping[str, Any]], specs: Mapping[str, AnalyzerSpec],
    confidence: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[float]]:
    """({"score_v2", "<dimension>_v2" for every dimension (None when not expected)}, second scores)
    from the latest run per analyzer (``status``, ``examined``) and the cross-analyzer ``second`` rows
    (``start_s``, ``confidence``)."""
    dims = expected_dimensions(specs, has_audio)
    ok = {name: run for name, run in runs.items() if run["status"] == "success"}
    by_second = {int(r["start_s"]): r["confidence"] for r in confidence or [] if r.get("confidence") is not None}
    seconds = max(1, math.ceil(duration_s - 1e-6))
    totals = dict.fromkeys(dims, 0.0)
    second_scores = []
    for s in range(seconds):
        start, end = float(s), min(float(s + 1), duration_s)
        described = 0.0
        for name, (weight, members) in dims.items():
            share = sum(_share(ok[a]["examined"], start, end) if a in ok else 0.0 for a in members) / len(members)
            totals[name] += share
            described += weight * share
        trust = 1.0 - CONFIDENCE_WEIGHT * (1.0 - float(by_second.get(s, 1.0)))
        second_scores.append(round(described * trust, 4))
    row: dict[str, Any] = {"score_v2": round(100.0 * sum(second_scores) / seconds, 2)}
    for name in DIMENSIONS:
        row[f"{name}_v2"] = round(100.0 * totals[name] / seconds, 2) if name in dims else None
    return row, second_scores
