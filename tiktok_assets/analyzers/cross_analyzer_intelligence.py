"""Agreement and conflict between analyzers, per second: who is on screen, is someone speaking, is
there music, which language, is a call to action said and shown.

A fusion analyzer: no model, it reads other analyzers' tables through ``context.inputs`` (whatever
subset exists; ``sources`` names the tables read, the metadata's ``missing_tables`` the absent
ones) and, for voice activity, the shared Silero VAD track (``passes.speech_activity``) when
``speech_rate`` or ``speech_flow`` ran (they computed it). Each *aspect* is asked of every source
that can answer it; per second [k, k+1) a source votes ``yes``, ``no`` or abstains:

* ``person``: ``body_pose`` (frame rows: a pose), ``face`` (span rows of ``face_emotion``,
  ``eye_tracking`` or ``age_estimation``, the first present), ``segmentation``
  (``background_segmentation`` frame rows: mean ``person_share`` >= ``SEG_MIN``, the selfie
  mask alone) and ``objects`` (``object_detection`` tracks labelled ``person``, their per-frame
  boxes). Span sources vote ``yes`` when they cover >= ``YES_SHARE`` of the second, ``no`` when
  they cover <= ``NO_SHARE``, else abstain (an edge inside the second is no conflict).
* ``speech``: ``vad`` (Silero spans), ``transcript`` (``speech_transcription`` words; words
  leave gaps, so words covering more than ``NO_SHARE`` of the second vote yes, else no) and
  ``audio_events`` (``audio_environment`` window rows: ``speech_score`` >= its ``CATEGORY_MIN`` or
  category ``speech`` votes yes, a speech score < ``CATEGORY_MIN / 2`` votes no).
* ``music``: ``audio_events`` (category music/singing or ``music_score`` >= ``CATEGORY_MIN``; no
  below half of it) and ``beats`` (``audio_analysis`` video row: a beat within
  ``BEAT_REACH_S`` of the second votes yes, no beat within ``2 * BEAT_REACH_S`` votes no).
* ``language``: the language of the transcript words in the second vs the languages of the
  ``text_overlay`` tracks shown in it (both must be known; a conflict when they share none).

Rows by ``level``:

* ``second``: one per second: ``person``/``speech``/``music`` = the majority vote (null without
  votes or on a tie), ``language`` = the spoken language, ``checks`` = aspects with >= 2 votes,
  ``conflicts`` = those with disagreeing votes, ``confidence`` (rule below), ``detail`` = every
  vote (``person: body_pose=no, objects=yes; ...``);
* ``conflict``: consecutive seconds with the same disagreement merged: ``kind`` (the aspect, or
  ``cta``), ``analyzers`` (the sources involved) and ``detail`` (what each said);
* ``video``: ``conflicts`` (conflict rows), ``checks`` (checked aspect-seconds), ``confidence``
  (mean of the seconds'), ``detail`` = conflict count per kind.

Confidence of a second: for each checked aspect with ``n`` votes of which ``m`` form the
majority, its agreement is ``(2m - n) / n`` (1 unanimous, 0 an even split); the second's
``confidence`` is the mean over its checked aspects, null when nothing could be cross-checked.

Call to action (``cta``): said = a transcript segment holding a CTA phrase (temporal_flow's
list) or a ``comment_cta_detection`` row with source ``speech``; shown = a text track holding
one or a detection with source ``text``. When both the transcript and on-screen text were read,
a CTA said with none shown within ``CTA_REACH_S`` (or shown and never said nearby) is a conflict
row over the CTA's span; agreeing pairs are counted in the metadata (``cta_agreements``).

Coverage: the whole video when at least one input table was read, else nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from ..audio_features import transcript_segments, transcript_words
from .audio_environment import CATEGORY_MIN
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec
from .temporal_flow import is_cta, overlap, rows_of

YES_SHARE = 0.5
NO_SHARE = 0.1
SEG_MIN = 0.05
BEAT_REACH_S = 0.5
CTA_REACH_S = 3.0
FACE_TABLES = ("face_emotion", "eye_tracking", "age_estimation")
VAD_USERS = ("speech_rate", "speech_flow")
INPUTS = ("body_pose", "background_segmentation", "face_emotion", "eye_tracking", "age_estimation",
            "speech_transcription", "audio_environment", "audio_analysis", "speech_rate", "speech_flow")
OPTIONAL = ("object_detection", "text_overlay", "comment_cta_detection")
ASPECTS = ("person", "speech", "music")
TABLE_OF = {"body_pose": "body_pose", "segmentation": "background_segmentation", "objects": "object_detection",
            "transcript": "speech_transcription", "audio_events": "audio_environment", "beats": "audio_analysis",
            "vad": "speech_activity (VAD)", "text": "text_overlay"}

COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("kind", pa.string()),
    pa.field("person", pa.bool_()),
    pa.field("speech", pa.bool_()),
    pa.field("music", pa.bool_()),
    pa.field("language", pa.string()),
    pa.field("checks", pa.int64()),
    pa.field("conflicts", pa.int64()),
    pa.field("confidence", pa.float64()),
    pa.field("analyzers", pa.list_(pa.string())),
    pa.field("detail", pa.string()),
    pa.field("sources", pa.list_(pa.string())),
)

Spans = list[tuple[float, float]]


def span_vote(spans: Spans, a: float, b: float) -> bool | None:
    """yes / no / abstain from the share of [a, b) the spans cover (module docstring)."""
    share = min(1.0, sum(overlap(s, e, a, b) for s, e in spans) / max(b - a, 1e-9))
    if share >= YES_SHARE:
        return True
    if share <= NO_SHARE:
        return False
    return None


def person_sources(inputs: Mapping[str, pa.Table], duration: float) -> dict[str, Any]:
    """Per source a function (a, b) -> vote, for the sources whose table is present."""
    out: dict[str, Any] = {}
    pose = rows_of(inputs, "body_pose")
    if pose is not None:
        spans = [(float(r["start_s"]), float(r["end_s"])) for r in pose if r.get("level") == "frame"]
        out["body_pose"] = lambda a, b, s=spans: span_vote(s, a, b)
    face_table = next((n for n in FACE_TABLES if n in inputs), None)
    if face_table:
        rows = [r for r in rows_of(inputs, face_table) or [] if face_table != "eye_tracking" or r.get("level") == "span"]
        spans = [(float(r["start_s"]), float(r["end_s"])) for r in rows]
        out[face_table] = lambda a, b, s=spans: span_vote(s, a, b)
    seg = rows_of(inputs, "background_segmentation")
    if seg is not None:
        frames = [(float(r["start_s"]), float(r.get("person_share") or 0.0)) for r in seg if r.get("level") == "frame"]

        def seg_vote(a: float, b: float, frames=frames) -> bool | None:
            shares = [v for t, v in frames if a <= t < b]
            return None if not shares else bool(np.mean(shares) >= SEG_MIN)

        out["segmentation"] = seg_vote
    objects = rows_of(inputs, "object_detection")
    if objects is not None:
        spans = []
        for r in objects:
            if r.get("label") != "person":
                continue
            times = sorted(float(d["t"]) for d in r.get("boxes") or [] if d.get("t") is not None)
            if not times:
                spans.append((float(r["start_s"]), float(r["end_s"])))
                continue
            step = (float(r["end_s"]) - times[-1]) or 0.5
            spans += [(t, min(duration, t + step)) for t in times]
        out["objects"] = lambda a, b, s=spans: span_vote(s, a, b)
    return out


def word_vote(words: Spans, a: float, b: float) -> bool:
    """Words leave short gaps between them: words covering more than ``NO_SHARE`` of a second is speech."""
    return sum(overlap(s, e, a, b) for s, e in words) > NO_SHARE * (b - a)


def vad_spans(media, inputs: Mapping[str, pa.Table]) -> Spans | None:
    """Silero VAD spans from the shared pass, read only when an analyzer that computes it ran."""
    if not any(n in inputs for n in VAD_USERS) or not media.has_audio:
        return None
    from ..passes import speech_activity

    return speech_activity.spans(media)


def speech_sources(media, inputs: Mapping[str, pa.Table]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    vad = vad_spans(media, inputs)
    if vad is not None:
        out["vad"] = lambda a, b, s=vad: span_vote(s, a, b)
    if "speech_transcription" in inputs:
        words = [(w.start_s, w.end_s) for w in transcript_words(inputs["speech_transcription"])]
        out["transcript"] = lambda a, b, s=words: word_vote(s, a, b)
    windows = [r for r in rows_of(inputs, "audio_environment") or [] if r.get("kind") == "window"]
    if "audio_environment" in inputs:
        out["audio_events"] = lambda a, b, w=windows: window_vote(w, a, b, "speech", ("speech",))
    return out


def window_vote(windows: list[dict[str, Any]], a: float, b: float, group: str, categories: tuple[str, ...]) -> bool | None:
    """audio_environment's vote for ``group`` from the window that covers most of [a, b)."""
    best = max(windows, key=lambda r: overlap(float(r["start_s"]), float(r["end_s"]), a, b), default=None)
    if best is None or overlap(float(best["start_s"]), float(best["end_s"]), a, b) < 0.5 * (b - a):
        return None
    score = best.get(f"{group}_score")
    if best.get("category") in categories or (score is not None and score >= CATEGORY_MIN):
        return True
    if best.get("category") == "silence" or (score is not None and score < CATEGORY_MIN / 2):
        return False
    return None


def music_sources(inputs: Mapping[str, pa.Table]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "audio_environment" in inputs:
        windows = [r for r in rows_of(inputs, "audio_environment") or [] if r.get("kind") == "window"]
        out["audio_events"] = lambda a, b, w=windows: window_vote(w, a, b, "music", ("music", "singing"))
    if "audio_analysis" in inputs:
        video = [r for r in rows_of(inputs, "audio_analysis") or [] if r.get("level") == "video"]
        beats = sorted(float(t) for r in video for t in r.get("beat_times") or [])

        def beat_vote(a: float, b: float, beats=beats) -> bool | None:
            if any(a - BEAT_REACH_S <= t < b + BEAT_REACH_S for t in beats):
                return True
            if not any(a - 2 * BEAT_REACH_S <= t < b + 2 * BEAT_REACH_S for t in beats):
                return False
            return None

        out["beats"] = beat_vote
    return out


def spoken_language(words, a: float, b: float) -> str | None:
    langs = [w.language for w in words if a <= w.mid_s < b and w.language]
    return max(set(langs), key=langs.count) if langs else None


def shown_languages(texts: list[dict[str, Any]], a: float, b: float) -> set[str]:
    return {t["language"] for t in texts if t.get("language") and t["language"] not in ("und", "unknown")
            and overlap(float(t["start_s"]), float(t["end_s"]), a, b) >= 0.5 * (b - a)}


def agreement(votes: dict[str, bool]) -> tuple[bool | None, float]:
    """(majority value or None on a tie, (2m - n) / n)."""
    yes = sum(votes.values())
    n = len(votes)
    m = max(yes, n - yes)
    return (None if yes * 2 == n else yes * 2 > n), (2 * m - n) / n


def say(value: bool) -> str:
    return "yes" if value else "no"


def cta_conflicts(inputs: Mapping[str, pa.Table], duration: float) -> tuple[list[dict[str, Any]], int]:
    """Conflict rows for CTAs said but not shown (or shown, not said), and the count of agreeing ones."""
    has_speech = "speech_transcription" in inputs
    has_screen = "text_overlay" in inputs
    detections = rows_of(inputs, "comment_cta_detection") or []
    if not (has_speech and has_screen):
        return [], 0
    said = [(float(s["start_s"]), float(s["end_s"]), s.get("text") or "", "speech_transcription")
            for s in transcript_segments(inputs["speech_transcription"]) if is_cta(s.get("text") or "")]
    said += [(float(r["start_s"]), float(r["end_s"]), r.get("text") or "", "comment_cta_detection")
             for r in detections if r.get("source") == "speech"]
    shown = [(float(t["start_s"]), float(t["end_s"]), t.get("text") or "", "text_overlay")
             for t in rows_of(inputs, "text_overlay") or [] if is_cta(t.get("text") or "")]
    shown += [(float(r["start_s"]), float(r["end_s"]), r.get("text") or "", "comment_cta_detection")
              for r in detections if r.get("source") == "text"]

    def near(x, others) -> bool:
        return any(o[0] - CTA_REACH_S <= x[1] and x[0] <= o[1] + CTA_REACH_S for o in others)

    rows, agreeing = [], 0
    for items, others, what, other_what in ((said, shown, "said", "shown"), (shown, said, "shown", "said")):
        for item in items:
            if near(item, others):
                agreeing += what == "said"
                continue
            a, b = max(0.0, item[0]), min(duration, item[1])
            missing = "text_overlay" if what == "said" else "speech_transcription"
            rows.append({"start_s": round(a, 3), "end_s": round(max(a, b), 3), "level": "conflict", "kind": "cta",
                         "analyzers": sorted({item[3], missing}),
                         "detail": f"{item[3]}: call to action {what} ({item[2].strip()!r}); {missing}: none "
                                   f"{other_what} within {CTA_REACH_S:.0f} s"})
    return rows, agreeing


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    duration = float(media.duration_s)
    inputs = context.inputs
    sources_read = sorted(inputs)
    aspects = {"person": person_sources(inputs, duration), "speech": speech_sources(media, inputs),
               "music": music_sources(inputs)}
    if "vad" in aspects["speech"]:
        sources_read.append("speech_activity")
    words = transcript_words(inputs.get("speech_transcription"))
    texts = rows_of(inputs, "text_overlay")

    rows: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    confidences: list[float] = []
    checked = 0
    for k in range(max(1, math.ceil(duration - 1e-6))):
        a, b = float(k), min(float(k + 1), duration)
        if b <= a:
            continue
        row: dict[str, Any] = {"start_s": a, "end_s": round(b, 3), "level": "second"}
        parts, scores, n_conflicts = [], [], 0
        for aspect, sources in aspects.items():
            votes = {name: v for name, vote in sources.items() if (v := vote(a, b)) is not None}
            if not votes:
                continue
            value, agree = agreement(votes)
            row[aspect] = value
            parts.append(f"{aspect}: " + ", ".join(f"{n}={say(v)}" for n, v in sorted(votes.items())))
            if len(votes) >= 2:
                scores.append(agree)
                if agree < 1.0:
                    n_conflicts += 1
                    conflicts.append({"start_s": a, "end_s": round(b, 3), "level": "conflict", "kind": aspect,
                                      "analyzers": sorted(TABLE_OF.get(n, n) for n in votes),
                                      "detail": ", ".join(f"{TABLE_OF.get(n, n)}: {aspect} {say(v)}"
                                                          for n, v in sorted(votes.items()))})
        spoken = spoken_language(words, a, b)
        row["language"] = spoken
        if spoken and texts:
            shown = shown_languages(texts, a, b)
            if shown:
                parts.append(f"language: speech={spoken}, text={'/'.join(sorted(shown))}")
                same = spoken in shown
                scores.append(1.0 if same else 0.0)
                if not same:
                    n_conflicts += 1
                    conflicts.append({"start_s": a, "end_s": round(b, 3), "level": "conflict", "kind": "language",
                                      "analyzers": ["speech_transcription", "text_overlay"],
                                      "detail": f"speech_transcription: {spoken}; text_overlay: "
                                                f"{'/'.join(sorted(shown))}"})
        row["checks"] = len(scores)
        row["conflicts"] = n_conflicts
        checked += len(scores)
        if scores:
            row["confidence"] = round(float(np.mean(scores)), 3)
            confidences.append(row["confidence"])
        row["detail"] = "; ".join(parts) or "no source"
        rows.append(row)

    merged: list[dict[str, Any]] = []
    for c in sorted(conflicts, key=lambda r: (r["kind"], r["start_s"])):
        last = merged[-1] if merged else None
        if last and last["kind"] == c["kind"] and last["detail"] == c["detail"] and abs(last["end_s"] - c["start_s"]) < 1e-6:
            last["end_s"] = c["end_s"]
        else:
            merged.append(dict(c))
    cta_rows, cta_agree = cta_conflicts(inputs, duration)
    merged += cta_rows
    merged.sort(key=lambda r: (r["start_s"], r["kind"]))
    rows += merged

    by_kind: dict[str, int] = {}
    for c in merged:
        by_kind[c["kind"]] = by_kind.get(c["kind"], 0) + 1
    mean_conf = round(float(np.mean(confidences)), 3) if confidences else None
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(by_kind.items())) or "no conflicts"
    rows.append({"start_s": 0.0, "end_s": round(duration, 3), "level": "video", "conflicts": len(merged),
                 "checks": checked, "confidence": mean_conf, "detail": summary})
    for row in rows:
        row["sources"] = sources_read

    missing = [n for n in (*INPUTS, *OPTIONAL) if n not in inputs]
    metadata: dict[str, Any] = {"conflicts": len(merged), "conflict_kinds": summary, "mean_confidence": mean_conf,
                                "cta_agreements": cta_agree, "sources": ", ".join(sources_read) or "none"}
    if missing:
        metadata["missing_tables"] = ", ".join(missing)
    if not inputs:
        metadata["note"] = "no input table: nothing to cross-check"
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)] if inputs else [],
                          metadata={k: v for k, v in metadata.items() if v is not None})


SPEC = AnalyzerSpec(
    name="cross_analyzer_intelligence",
    modality="visual",
    description="Agreement and conflict between analyzers per second (person, speech, music, language, CTA) "
                "and a per-second confidence",
    version="1",
    columns=COLUMNS,
    run=run,
    depends_on=(),
    optional_inputs=(*INPUTS, *OPTIONAL),
    passes=("speech_activity",),
    main_figure="mean_confidence",
    timeline_label="CASE WHEN level = 'conflict' THEN 'conflict ' || kind || ': ' || detail END",
)
