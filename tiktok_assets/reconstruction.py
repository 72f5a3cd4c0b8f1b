"""How completely the analyzers describe a video, computed from the warehouse only.

Definitions (also in the README):

* An analyzer run records the time spans of the input it really **examined** (not where it found
  something), measured by the framework (:mod:`tiktok_assets.analyzers.base`): the media it read
  plus its inputs' examined spans, cut to where it claims complete key output. A failed or
  missing run examined nothing.
* **Per-second coverage**: second ``s`` of modality ``m`` (speech, text, visual, audio, people) is covered
  when a successful analyzer of that modality examined at least half of it.
* **Expected**: every registered analyzer of every modality the video can have; speech and audio are
  not expected for a video without an audio track.
* **Score** (0-100) = 100 x the mean over expected modalities of the mean examined share of that
  modality's analyzers. A modality with no analyzer yet (e.g. text before OCR exists) counts 0, a
  failed analyzer counts 0, an analyzer that only looked at the first 10 s of 60 counts 1/6.
* **Person presence** (not part of the score): per second, whether background_segmentation saw a
  person (a face or a pose) in most of its samples; null where it has not run successfully.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from .analyzers.base import MODALITIES, AnalyzerSpec
from .reconstruction_v2 import DEFINITION_V2, DIMENSIONS, score_v2
from .warehouse import MODEL_UNAVAILABLE

SCORES_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("score", pa.float64()),
        *[(f"{m}_score", pa.float64()) for m in MODALITIES],
        *[(f"{m}_seconds_covered", pa.float64()) for m in MODALITIES],
        ("analyzers_expected", pa.int64()),
        ("analyzers_succeeded", pa.int64()),
        ("analyzers_failed", pa.list_(pa.string())),
        ("analyzers_missing", pa.list_(pa.string())),
        ("analyzers_model_unavailable", pa.list_(pa.string())),
        ("definition", pa.string()),
        ("person_seconds", pa.float64()),
        # score v2 (tiktok_assets/reconstruction_v2.py): dimensions per second, with the fusion confidence
        ("score_v2", pa.float64()),
        *[(f"{d}_v2", pa.float64()) for d in DIMENSIONS],
        ("definition_v2", pa.string()),
    ]
)

COVERAGE_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        *[(m, pa.bool_()) for m in MODALITIES],
        ("modalities_covered", pa.int64()),
        ("analyzers", pa.list_(pa.string())),
        ("person", pa.bool_()),
        ("score_v2", pa.float64()),  # the second's v2 score, 0-1
    ]
)

DEFINITION = (
    "100 x mean over expected modalities of the mean share of the video each of its analyzers "
    "examined; failed or missing analyzers count 0; speech/audio not expected without audio"
)


def _overlap(spans: Iterable[Mapping[str, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(end, s["end_s"]) - max(start, s["start_s"])) for s in spans)


def score_video(
    video: Mapping[str, Any], runs: list[Mapping[str, Any]], specs: Mapping[str, AnalyzerSpec],
    presence: list[Mapping[str, Any]] | None = None, confidence: list[Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(scores row, per-second coverage rows) for one video from its ``videos`` row and runs;
    ``presence``: background_segmentation's ``presence`` rows (``start_s``, ``end_s``, ``person``),
    None when it has not run successfully; ``confidence``: cross_analyzer_intelligence's ``second``
    rows (``start_s``, ``confidence``) for score v2, None when it has not run successfully."""
    video_id, duration = video["video_id"], float(video["duration_s"])
    expected_modalities = [m for m in MODALITIES if video["has_audio"] or m not in ("speech", "audio")]
    latest = {r["analyzer"]: r for r in runs}
    ok = {name: r for name, r in latest.items() if r["status"] == "success" and name in specs}
    seconds = max(1, math.ceil(duration - 1e-6))

    coverage_rows = []
    covered_seconds = {m: 0.0 for m in MODALITIES}
    for s in range(seconds):
        start, end = float(s), min(float(s + 1), duration)
        width = max(end - start, 1e-6)
        by_modality: dict[str, bool] = {}
        names = []
        for name, run in ok.items():
            if _overlap(run["examined"] or [], start, end) >= 0.5 * width:
                names.append(name)
                by_modality[specs[name].modality] = True
        row = {"video_id": video_id, "start_s": start, "end_s": round(end, 3)}
        for m in MODALITIES:
            row[m] = bool(by_modality.get(m))
            covered_seconds[m] += width if row[m] else 0.0
        row["modalities_covered"] = sum(row[m] for m in expected_modalities)
        row["analyzers"] = sorted(names)
        row["person"] = None
        if presence is not None:
            row["person"] = _overlap([p for p in presence if p["person"]], start, end) >= 0.5 * width
        coverage_rows.append(row)

    modality_scores: dict[str, float | None] = {}
    expected = [spec for spec in specs.values() if spec.modality in expected_modalities]
    for m in MODALITIES:
        members = [spec.name for spec in specs.values() if spec.modality == m]
        if m not in expected_modalities:
            modality_scores[m] = None
            continue
        shares = [
            min(1.0, _overlap(ok[n]["examined"] or [], 0.0, duration) / duration) if n in ok else 0.0
            for n in members
        ]
        modality_scores[m] = sum(shares) / len(shares) if shares else 0.0
    present = [modality_scores[m] for m in expected_modalities]
    score = 100.0 * sum(present) / len(present) if present else 0.0
    scores_row = {
        "video_id": video_id,
        "start_s": 0.0,
        "end_s": duration,
        "score": round(score, 2),
        **{f"{m}_score": None if v is None else round(100 * v, 2) for m, v in modality_scores.items()},
        **{f"{m}_seconds_covered": round(covered_seconds[m], 3) for m in MODALITIES},
        "analyzers_expected": len(expected),
        "analyzers_succeeded": sum(1 for spec in expected if spec.name in ok),
        "analyzers_failed": sorted(
            n for n, r in latest.items() if r["status"] not in ("success", MODEL_UNAVAILABLE)
        ),
        "analyzers_missing": sorted(spec.name for spec in expected if spec.name not in latest),
        "analyzers_model_unavailable": sorted(n for n, r in latest.items() if r["status"] == MODEL_UNAVAILABLE),
        "definition": DEFINITION,
        "person_seconds": None if presence is None else round(
            sum(r["end_s"] - r["start_s"] for r in coverage_rows if r["person"]), 3),
    }
    runs_of_specs = {name: run for name, run in latest.items() if name in specs}
    v2, per_second = score_v2(duration, bool(video["has_audio"]), runs_of_specs, specs, confidence)
    scores_row.update(v2, definition_v2=DEFINITION_V2)
    for row, value in zip(coverage_rows, per_second, strict=True):
        row["score_v2"] = value
    return scores_row, coverage_rows


def _clock(t: float) -> str:
    return f"{int(t // 60):02d}:{t % 60:04.1f}"


def timeline_markdown(video_id: str, rows: list[Mapping[str, Any]], limit: int = 400) -> str:
    """A merged, readable timeline: one line per labelled analyzer row, in time order."""
    lines = [f"# Timeline of {video_id}", ""]
    for row in rows[:limit]:
        span = _clock(row["start_s"]) if row["end_s"] - row["start_s"] < 0.05 else (
            f"{_clock(row['start_s'])}-{_clock(row['end_s'])}")
        label = str(row["label"]).replace("\n", " ").strip()
        lines.append(f"- `{span}` **{row['analyzer']}** {label}")
    if len(rows) > limit:
        lines.append(f"- ... {len(rows) - limit} more rows: `SELECT * FROM timeline WHERE video_id = '{video_id}'`")
    if len(rows) == 0:
        lines.append("(no labelled rows yet)")
    return "\n".join(lines)


def coverage_markdown(scores: Mapping[str, Any], coverage: list[Mapping[str, Any]]) -> str:
    """A per-second coverage matrix for the Dagster UI (one line per modality)."""
    lines = [f"**Reconstruction score {scores['score']:.1f} / 100** ({DEFINITION})", ""]
    header = "".join(str(int(r["start_s"]) % 10) for r in coverage)
    lines.append("```")
    lines.append(f"{'second':<8}{header}")
    for m in MODALITIES:
        cells = "".join("#" if r[m] else "." for r in coverage)
        value = scores.get(f"{m}_score")
        label = "n/a" if value is None else f"{value:.0f}%"
        lines.append(f"{m:<8}{cells}  {label}")
    if coverage and coverage[0].get("person") is not None:
        cells = "".join("P" if r["person"] else "." for r in coverage)
        lines.append(f"{'person':<8}{cells}  {scores.get('person_seconds') or 0:.0f}s with a person")
    lines.append("```")
    if scores["analyzers_failed"]:
        lines.append(f"Failed: {', '.join(scores['analyzers_failed'])}")
    if scores.get("analyzers_model_unavailable"):
        lines.append(f"Model not available here (not covered): {', '.join(scores['analyzers_model_unavailable'])}")
    if scores["analyzers_missing"]:
        lines.append(f"Not run yet: {', '.join(scores['analyzers_missing'])}")
    return "\n".join(lines)
