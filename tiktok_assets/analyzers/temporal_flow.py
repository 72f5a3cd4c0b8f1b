"""The story of a video in time: pacing per second, the hook, narrative phases and loop detection.

A fusion analyzer: it runs no model and reads the tables of other analyzers through
``context.inputs`` (``cut_analysis``, ``speech_transcription``, ``camera_analysis``,
``audio_analysis``; optionally ``text_overlay``, ``comment_cta_detection`` and a face table,
``face_emotion`` or ``eye_tracking``, when those analyzers exist). A missing table leaves its
figures null; ``sources`` says which tables were read. Only the loop check reads the media (the
sampled frames). Rows by ``level``:

* ``second``: one row per second ``[k, k+1)``:
  - ``cuts``: edit points (hard cuts, dissolves, fades from ``cut_analysis``) starting in it;
    ``edit_rate_per_min``: edit points per minute in the ``RATE_WINDOW_S`` window centred on it;
  - ``words``: transcript words whose midpoint lies in it; ``speech_density``: share of the second
    covered by words (0..1);
  - ``motion_energy``: camera motion in frame short sides per second, the time-weighted mean over
    the ``camera_analysis`` segments of ``max(hypot(pan, tilt), |zoom| / 2, jitter)``;
  - ``audio_rms_db``: the second's RMS level (``audio_analysis`` window row), ``audio_energy`` the
    same mapped linearly from -60..0 dBFS to 0..1;
  - ``text_density``: on-screen text tracks (``text_overlay``) weighted by the share of the second
    they are shown (1.0 = one text all second; null when there is no text_overlay table);
  - ``pace``: mean of the available normalised components: ``min(1, edit_rate / 30)``,
    ``speech_density``, ``min(1, motion_energy / 0.5)``, ``audio_energy``, ``min(1, text_density)``;
  - ``phase``: the narrative phase the second's midpoint falls into.
* ``hook``: the first ``HOOK_S`` seconds (at most a third of the video). ``hook_elements`` lists
  what happens in it: ``cut`` (an edit point after 0.1 s), ``speech`` (a word starts),
  ``motion`` (a camera segment labelled pan/tilt/zoom/shake with energy >= ``MOTION_MIN``),
  ``text`` (a text track shown) and ``face`` (a face row); ``first_speech_s`` / ``first_cut_s``
  give the first word and edit point of the video; ``detail`` names the elements that could not be
  checked because their table is missing.
* ``phase``: spans of ``hook``, ``setup``, ``main``, ``call_to_action`` and ``outro`` (in this
  order, each at most once, together covering the video). Rules:
  1. ``hook`` is the hook span above.
  2. ``outro``: the end after the last content (the end of the last word, text track or CTA, or
     the last hard cut or dissolve: a new shot is new content) when it lasts >= ``OUTRO_MIN_S``;
     a closing ``fade_out`` that starts earlier starts it. A video without any of these has an
     outro only from a closing fade.
  3. ``call_to_action``: from the first call to action that starts in the second half of the
     video and after the hook (a ``comment_cta_detection`` row, or a transcript segment or text
     track holding a phrase of the English/German list ``CTA_PATTERNS``; the phase starts where
     that segment or track starts) to the outro or the end.
  4. The body between the hook and the CTA (or outro, or end) is ``setup`` for its first quarter and
     ``main`` for the rest; the split snaps to an edit point or transcript segment start within
     ``SNAP_S`` of it. A body shorter than ``MIN_SETUP_BODY_S`` is all ``main``.
* ``loop``: the last second compared with the first (the TikTok replay trick), over the sampled
  frames as 32x32 grey thumbnails: ``loop_similarity`` is the best Pearson correlation of a
  frame of the last ``LOOP_S`` seconds with one of the first (two flat thumbnails of about the
  same brightness count as 1.0, a flat and a textured one as 0.0); ``is_loop`` when it is >=
  ``LOOP_MIN`` with mean grey levels within ``LOOP_MAX_GREY`` AND the picture changes in between
  (some frame correlates < ``LOOP_MIN`` with the first): a clip that never changes is not a loop.
* ``video``: the whole clip: mean ``pace``, overall edit rate, ``speech_density``, the hook, the
  loop flag; ``detail`` is the sequence of phases (``hook > setup > main``).

Coverage: the analyzer claims the whole video when it has at least one input table; what it
examined is then what its inputs examined plus the frames it read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from ..audio_features import transcript_segments, transcript_words
from ..textfold import fold
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

HOOK_S = 3.0
RATE_WINDOW_S = 5.0
MOTION_MIN = 0.05
OUTRO_MIN_S = 1.0
SNAP_S = 1.0
MIN_SETUP_BODY_S = 4.0
SETUP_SHARE = 0.25
LOOP_S = 1.0
LOOP_MIN = 0.9
LOOP_MAX_GREY = 20.0
THUMB = 32
FACE_TABLES = ("face_emotion", "eye_tracking")
EDIT_KINDS = ("hard_cut", "dissolve", "fade_in", "fade_out")
REQUIRED = ("cut_analysis", "speech_transcription", "camera_analysis", "audio_analysis")
PHASES = ("hook", "setup", "main", "call_to_action", "outro")

# calls to action, matched on lower-case text with umlauts folded (ä -> ae, ß -> ss)
CTA_PATTERNS = (
    r"\bfollow\b", r"\bsubscribe", r"\blike and\b", r"\bcomment\b", r"\bshare (this|it)\b",
    r"\blink in (my |the )?bio\b", r"\bcheck out\b", r"\bclick\b", r"\btap\b", r"\bsave this\b",
    r"\bpart (2|two)\b", r"\bshop now\b", r"\bsign up\b",
    r"\bfolg(t|e)?\b", r"\babonnier", r"\bkommentier", r"\bteil(t)? (das|es|dieses)\b",
    r"\blink in (der |meiner )?bio\b", r"\bschreib(t)? (mir|es|in die kommentare)\b", r"\blike(t)?\b",
    r"\bspeicher(t|n)?\b", r"\bklick", r"\bhol dir\b", r"\bjetzt kaufen\b", r"\bteil (2|zwei)\b",
)
_CTA = re.compile("|".join(CTA_PATTERNS))

COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("phase", pa.string()),
    pa.field("cuts", pa.int64()),
    pa.field("edit_rate_per_min", pa.float64()),
    pa.field("words", pa.int64()),
    pa.field("speech_density", pa.float64()),
    pa.field("motion_energy", pa.float64()),
    pa.field("audio_rms_db", pa.float64()),
    pa.field("audio_energy", pa.float64()),
    pa.field("text_density", pa.float64()),
    pa.field("pace", pa.float64()),
    pa.field("hook_elements", pa.list_(pa.string())),
    pa.field("first_speech_s", pa.float64()),
    pa.field("first_cut_s", pa.float64()),
    pa.field("loop_similarity", pa.float64()),
    pa.field("is_loop", pa.bool_()),
    pa.field("sources", pa.list_(pa.string())),
    pa.field("detail", pa.string()),
)


def is_cta(text: str) -> bool:
    """Whether ``text`` holds a call to action of ``CTA_PATTERNS`` (English or German)."""
    return bool(_CTA.search(fold(text or "")))


def overlap(a: float, b: float, c: float, d: float) -> float:
    return max(0.0, min(b, d) - max(a, c))


def rows_of(inputs: Mapping[str, pa.Table], name: str) -> list[dict[str, Any]] | None:
    table = inputs.get(name)
    return None if table is None else table.to_pylist()


def motion_of(row: dict[str, Any]) -> float | None:
    pan, tilt, zoom, jitter = (row.get(k) for k in ("pan", "tilt", "zoom", "jitter"))
    if pan is None and tilt is None and zoom is None:
        return None
    return max(math.hypot(pan or 0.0, tilt or 0.0), 0.5 * abs(zoom or 0.0), jitter or 0.0)


def thumbnails(media) -> tuple[np.ndarray, np.ndarray]:
    """32x32 grey thumbnails of every sampled frame (float32) and their times."""
    import cv2

    frames = media.frames
    times = np.asarray(media.frame_times, dtype=np.float64)
    thumbs = np.empty((len(times), THUMB, THUMB), np.float32)
    for i in range(len(times)):
        grey = cv2.cvtColor(np.ascontiguousarray(frames[i]), cv2.COLOR_RGB2GRAY)
        thumbs[i] = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return thumbs, times


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(correlation as in the module docstring, absolute difference of the mean grey levels)."""
    grey = abs(float(a.mean()) - float(b.mean()))
    sa, sb = float(a.std()), float(b.std())
    if sa < 3.0 or sb < 3.0:
        return (1.0 if sa < 3.0 and sb < 3.0 else 0.0), grey
    corr = float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb))
    return corr, grey


def detect_loop(media, duration: float) -> dict[str, Any]:
    """``loop_similarity``, ``is_loop`` and a ``detail`` sentence (rule: module docstring)."""
    thumbs, times = thumbnails(media)
    if len(times) < 3:
        return {"loop_similarity": None, "is_loop": False, "detail": "fewer than 3 sampled frames"}
    span = min(LOOP_S, duration / 3)
    first = [i for i, t in enumerate(times) if t < span] or [0]
    last = [i for i, t in enumerate(times) if t >= duration - span] or [len(times) - 1]
    best, grey_at_best = -1.0, 0.0
    for i in last:
        for j in first:
            corr, grey = similarity(thumbs[i], thumbs[j])
            if corr > best or (corr == best and grey < grey_at_best):
                best, grey_at_best = corr, grey
    middle = [i for i in range(len(times)) if i not in first and i not in last]
    changes = any(min(similarity(thumbs[i], thumbs[j])[0] for j in first) < LOOP_MIN for i in middle)
    matches = best >= LOOP_MIN and grey_at_best <= LOOP_MAX_GREY
    if matches and not changes:
        detail = "the picture does not change: no loop to detect"
    elif matches:
        detail = f"the last {span:.1f} s match the first (correlation {best:.2f}): the clip replays seamlessly"
    else:
        detail = f"the last {span:.1f} s differ from the first (best correlation {best:.2f})"
    return {"loop_similarity": round(best, 4), "is_loop": bool(matches and changes), "detail": detail}


def cta_spans(inputs: Mapping[str, pa.Table], segments, texts) -> list[tuple[float, float, str]]:
    """Calls to action: (start, end, source) from comment_cta_detection rows, transcript segments
    and text tracks holding a CTA phrase."""
    found = [(float(r["start_s"]), float(r["end_s"]), "comment_cta_detection")
             for r in rows_of(inputs, "comment_cta_detection") or []]
    found += [(float(s["start_s"]), float(s["end_s"]), "speech") for s in segments if is_cta(s.get("text") or "")]
    found += [(float(t["start_s"]), float(t["end_s"]), "text") for t in texts or [] if is_cta(t.get("text") or "")]
    return sorted(found)


def narrative_phases(duration: float, hook_end: float, content_ends: list[float], closing_fade: float | None,
                     ctas: list[tuple[float, float, str]], boundaries: list[float]) -> list[tuple[str, float, float]]:
    """(phase, start, end) spans by the rules of the module docstring."""
    outro = None
    if content_ends:
        end = max(content_ends)
        if duration - end >= OUTRO_MIN_S and end >= hook_end:
            outro = end
    if closing_fade is not None and closing_fade >= hook_end and (outro is None or closing_fade < outro):
        outro = closing_fade
    tail = outro if outro is not None else duration
    cta = next((a for a, _, _ in ctas if a >= max(hook_end, duration / 2) and a < tail), None)
    body_end = cta if cta is not None else tail
    phases = [("hook", 0.0, hook_end)]
    if body_end - hook_end >= MIN_SETUP_BODY_S:
        target = hook_end + SETUP_SHARE * (body_end - hook_end)
        near = [b for b in boundaries if abs(b - target) <= SNAP_S and hook_end + 0.5 <= b <= body_end - 1.0]
        split = min(near, key=lambda b: abs(b - target)) if near else target
        phases += [("setup", hook_end, split), ("main", split, body_end)]
    elif body_end > hook_end:
        phases.append(("main", hook_end, body_end))
    if cta is not None:
        phases.append(("call_to_action", cta, tail))
    if outro is not None:
        phases.append(("outro", outro, duration))
    return [(name, round(a, 3), round(b, 3)) for name, a, b in phases if b - a > 1e-6]


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    duration = float(media.duration_s)
    inputs = context.inputs
    sources = sorted(k for k in inputs)
    edits = [r for r in rows_of(inputs, "cut_analysis") or [] if r.get("kind") in EDIT_KINDS]
    edit_starts = sorted(float(r["start_s"]) for r in edits)
    transcript = inputs.get("speech_transcription")
    words = transcript_words(transcript)
    segments = transcript_segments(transcript)
    camera = rows_of(inputs, "camera_analysis")
    audio = [r for r in rows_of(inputs, "audio_analysis") or [] if r.get("level") == "window"]
    texts = rows_of(inputs, "text_overlay")
    face_table = next((name for name in FACE_TABLES if name in inputs), None)
    faces = rows_of(inputs, face_table) if face_table else None
    has = {"edit": "cut_analysis" in inputs, "speech": transcript is not None, "motion": camera is not None,
           "audio": "audio_analysis" in inputs, "text": texts is not None}

    hook_end = round(min(HOOK_S, duration / 3), 3)
    ctas = cta_spans(inputs, segments, texts)
    content_ends = ([w.end_s for w in words] + [float(t["end_s"]) for t in texts or []] + [b for _, b, _ in ctas]
                    + [float(r["start_s"]) for r in edits if r["kind"] in ("hard_cut", "dissolve")])
    fades = [r for r in edits if r["kind"] == "fade_out" and float(r["end_s"]) >= duration - 0.3]
    closing_fade = float(fades[-1]["start_s"]) if fades else None
    boundaries = sorted(set(edit_starts + [float(s["start_s"]) for s in segments]))
    phases = narrative_phases(duration, hook_end, content_ends, closing_fade, ctas, boundaries)

    rows: list[dict[str, Any]] = []
    paces: list[float] = []
    for k in range(max(1, math.ceil(duration - 1e-6))):
        a, b = float(k), min(float(k + 1), duration)
        if b <= a:
            continue
        row: dict[str, Any] = {"start_s": a, "end_s": round(b, 3), "level": "second"}
        mid = (a + b) / 2
        row["phase"] = next((p for p, s, e in phases if s <= mid < e), phases[-1][0])
        parts: list[float] = []
        if has["edit"]:
            row["cuts"] = sum(a <= t < b for t in edit_starts)
            w0, w1 = max(0.0, mid - RATE_WINDOW_S / 2), min(duration, mid + RATE_WINDOW_S / 2)
            rate = 60.0 * sum(w0 <= t < w1 for t in edit_starts) / max(w1 - w0, 1e-6)
            row["edit_rate_per_min"] = round(rate, 2)
            parts.append(min(1.0, rate / 30.0))
        if has["speech"]:
            row["words"] = sum(a <= w.mid_s < b for w in words)
            covered = sum(overlap(w.start_s, w.end_s, a, b) for w in words)
            row["speech_density"] = round(min(1.0, covered / (b - a)), 3)
            parts.append(row["speech_density"])
        if camera is not None:
            weighted = [(overlap(float(r["start_s"]), float(r["end_s"]), a, b), motion_of(r)) for r in camera]
            weighted = [(w, m) for w, m in weighted if w > 0 and m is not None]
            if weighted:
                energy = sum(w * m for w, m in weighted) / sum(w for w, _ in weighted)
                row["motion_energy"] = round(energy, 4)
                parts.append(min(1.0, energy / 0.5))
        if audio:
            inside = [r for r in audio if overlap(float(r["start_s"]), float(r["end_s"]), a, b) > 0.5 * (b - a)]
            levels = [r["rms_db"] for r in inside if r.get("rms_db") is not None]
            if levels:
                level = float(np.mean(levels))
                row["audio_rms_db"] = round(level, 2)
                row["audio_energy"] = round(min(1.0, max(0.0, (level + 60.0) / 60.0)), 3)
                parts.append(row["audio_energy"])
        if texts is not None:
            shown = sum(overlap(float(t["start_s"]), float(t["end_s"]), a, b) for t in texts) / (b - a)
            row["text_density"] = round(shown, 3)
            parts.append(min(1.0, shown))
        if parts:
            row["pace"] = round(float(np.mean(parts)), 3)
            paces.append(row["pace"])
        rows.append(row)

    elements, unchecked = [], []
    if any(0.1 <= t < hook_end for t in edit_starts):
        elements.append("cut")
    if any(w.start_s < hook_end for w in words):
        elements.append("speech")
    if any(overlap(float(r["start_s"]), float(r["end_s"]), 0.0, hook_end) > 0
           and r.get("motion") not in ("static", "unknown", None) and (motion_of(r) or 0.0) >= MOTION_MIN
           for r in camera or []):
        elements.append("motion")
    if any(overlap(float(t["start_s"]), float(t["end_s"]), 0.0, hook_end) > 0 for t in texts or []):
        elements.append("text")
    if any(overlap(float(f["start_s"]), float(f["end_s"]), 0.0, hook_end) > 0 for f in faces or []):
        elements.append("face")
    for element, present in (("cut", has["edit"]), ("speech", has["speech"]), ("motion", has["motion"]),
                             ("text", has["text"]), ("face", faces is not None)):
        if not present:
            unchecked.append(element)
    first_speech = round(words[0].start_s, 3) if words else None
    first_cut = round(edit_starts[0], 3) if edit_starts else None
    hook_detail = ", ".join(elements) if elements else "nothing detected"
    if unchecked:
        hook_detail += f" (not checked, no table: {', '.join(unchecked)})"
    rows.append({"start_s": 0.0, "end_s": hook_end, "level": "hook", "phase": "hook", "hook_elements": elements,
                 "first_speech_s": first_speech, "first_cut_s": first_cut, "detail": hook_detail})

    for name, a, b in phases:
        rows.append({"start_s": a, "end_s": b, "level": "phase", "phase": name})

    loop = detect_loop(media, duration)
    rows.append({"start_s": round(max(0.0, duration - min(LOOP_S, duration / 3)), 3), "end_s": round(duration, 3),
                 "level": "loop", **loop})

    speech_density = (round(min(1.0, sum(w.end_s - w.start_s for w in words) / duration), 3)
                      if has["speech"] and duration > 0 else None)
    edit_rate = round(60.0 * len(edit_starts) / duration, 2) if has["edit"] and duration > 0 else None
    mean_pace = round(float(np.mean(paces)), 3) if paces else None
    rows.append({"start_s": 0.0, "end_s": round(duration, 3), "level": "video", "cuts": len(edit_starts)
                 if has["edit"] else None, "edit_rate_per_min": edit_rate, "words": len(words) if has["speech"]
                 else None, "speech_density": speech_density, "pace": mean_pace, "hook_elements": elements,
                 "first_speech_s": first_speech, "first_cut_s": first_cut, "loop_similarity": loop["loop_similarity"],
                 "is_loop": loop["is_loop"], "detail": " > ".join(p for p, _, _ in phases)})
    for row in rows:
        row["sources"] = sources

    missing = [n for n in (*REQUIRED, "text_overlay", "comment_cta_detection") if n not in inputs]
    if faces is None:
        missing.append(" or ".join(FACE_TABLES))
    metadata: dict[str, Any] = {
        "hook": ", ".join(elements) or "nothing",
        "phases": " > ".join(f"{p} {a:.1f}-{b:.1f}s" for p, a, b in phases),
        "is_loop": loop["is_loop"],
        "mean_pace": mean_pace,
        "sources": ", ".join(sources) or "none",
    }
    if missing:
        metadata["missing_tables"] = ", ".join(missing)
    if not inputs:
        metadata["note"] = "no input table: only the loop check ran"
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)] if inputs else [],
                          metadata={k: v for k, v in metadata.items() if v is not None})


SPEC = AnalyzerSpec(
    name="temporal_flow",
    modality="visual",
    description="Pacing per second, the hook, narrative phases and loop detection, fused from other analyzers",
    version="1",
    columns=COLUMNS,
    run=run,
    depends_on=REQUIRED,
    optional_inputs=("text_overlay", "comment_cta_detection", *FACE_TABLES),
    main_figure="mean_pace",
    timeline_label="CASE WHEN level = 'phase' THEN 'phase ' || phase WHEN level = 'loop' AND is_loop "
                   "THEN 'loop: last second replays the first' END",
)
