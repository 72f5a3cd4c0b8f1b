"""The per-video HTML report ``reports/<id>/index.html``: a reconstruction people can look at.

One self-contained file (images as data URIs, plots as hand-written inline SVG from
:mod:`report_svg`, no script, no external reference), written atomically by the score step before
the media cache may be evicted. Sections:

* **timeline**: one figure on a common time axis: the keyframe of every shot (the
  sampled frame nearest the shot's middle; shots from ``cut_analysis``'s edit points), then one
  swimlane per kind of content whose table exists (:data:`LANES`: transcript words, on-screen
  text, people, objects, audio events, music with beats, camera motion, cuts, scenes, story
  phases, ...), items labelled from each analyzer's ``timeline`` label (for a table without one:
  its ``text``/``label``/... column or the table name), then temporal_flow's pace per second and the per-second
  coverage of each modality when those exist;
* **shots**: the keyframes again as images with their times;
* **transcript**: every word with its time (``speech_transcription``);
* **descriptions**: the window descriptions of the vision-language model (``qwen2_vl_temporal``);
* **score**: the reconstruction score and its per-modality breakdown (bar chart and table), the
  analyzers that failed or whose model is missing;
* **sources**: which tables were present, and what could not be shown (no media cache: no
  keyframes).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .analyzers.base import MODALITIES
from .atomic_files import write_text_atomic
from .config import Settings
from .report_svg import score_svg, timeline_svg

# (lane title, analyzer tables drawn in it); "transcript" and "music" are drawn specially
LANES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("transcript", ("speech_transcription",)),
    ("on-screen text", ("text_overlay", "comment_cta_detection")),
    ("people", ("face_emotion", "age_estimation", "body_pose", "eye_tracking", "background_segmentation")),
    ("objects", ("object_detection",)),
    ("audio events", ("sound_effects", "audio_environment")),
    ("music", ("audio_environment", "audio_analysis")),
    ("voice", ("speech_flow", "speech_emotion")),
    ("camera motion", ("camera_analysis",)),
    ("cuts", ("cut_analysis",)),
    ("scenes", ("scene_segmentation",)),
    ("effects", ("visual_effects",)),
    ("story", ("temporal_flow",)),
)
MAX_ITEMS_PER_LANE = 400
THUMB_LONG_SIDE = 180


def report_path(settings: Settings, video_id: str) -> Path:
    return settings.home / "reports" / video_id / "index.html"


def shots(cut_rows: list[dict[str, Any]] | None, duration: float) -> list[tuple[float, float]]:
    """Shot spans between edit points (a dissolve or fade ends one shot where it starts and begins
    the next where it ends); the whole video when there is no cut table."""
    edges = sorted((float(r["start_s"]), float(r["end_s"])) for r in cut_rows or []
                   if r.get("kind") in ("hard_cut", "dissolve", "fade_in", "fade_out"))
    spans, start = [], 0.0
    for a, b in edges:
        if a - start > 0.05:
            spans.append((start, a))
        start = max(start, b if b > a else a)
    if duration - start > 0.05 or not spans:
        spans.append((start, duration))
    return spans


def keyframes(media_dir: Path, spans: list[tuple[float, float]]) -> list[np.ndarray] | None:
    """The sampled frame nearest each shot's middle (shrunk), from the media cache; None without a cache."""
    from .media import MediaCache

    if not (media_dir / "meta.json").is_file():
        return None
    with MediaCache(media_dir) as media:
        times = np.asarray(media.frame_times, dtype=np.float64)
        if times.size == 0:
            return None
        picked = []
        for a, b in spans:
            inside = np.flatnonzero((times >= a) & (times < b))
            pool = inside if inside.size else np.arange(times.size)
            picked.append(shrink(np.array(media.frames[int(pool[np.argmin(np.abs(times[pool] - (a + b) / 2))])])))
    return picked


def shrink(frame: np.ndarray) -> np.ndarray:
    """The frame with its long side at most ``THUMB_LONG_SIDE`` (keeps the report small)."""
    from PIL import Image

    image = Image.fromarray(frame)
    image.thumbnail((THUMB_LONG_SIDE, THUMB_LONG_SIDE))
    return np.asarray(image)


def thumbnail_uri(frame: np.ndarray) -> str:
    from PIL import Image

    image = Image.fromarray(frame)
    image.thumbnail((THUMB_LONG_SIDE, THUMB_LONG_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


FALLBACK_LABELS = ("text", "label", "class_name", "emotion", "description")


def _row_label(row: Mapping[str, Any], table: str) -> str:
    """A row's first non-empty column of ``FALLBACK_LABELS``, else the table name."""
    return next((str(row[c]) for c in FALLBACK_LABELS if row.get(c) not in (None, "")), table)


def lane_items(tables: Mapping[str, list[dict[str, Any]]], labels: Mapping[str, list[dict[str, Any]]],
               ) -> list[tuple[str, list[tuple[float, float, str, str]]]]:
    """Per lane whose tables exist: (title, [(start, end, text, analyzer)]). Analyzers with a
    ``timeline_label`` show their labelled rows; others their rows with the first column of
    ``FALLBACK_LABELS`` they have (else the table name)."""
    from .analyzers import all_specs

    labelled = {name for name, spec in all_specs().items() if spec.timeline_label}
    out = []
    for title, names in LANES:
        present = [n for n in names if n in tables]
        if not present:
            continue
        items: list[tuple[float, float, str, str]] = []
        if title == "transcript":
            for segment in tables["speech_transcription"]:
                items += [(float(w["start_s"]), float(w["end_s"]), str(w["word"]).strip(), "speech_transcription")
                          for w in segment.get("words") or [] if w.get("start_s") is not None]
        elif title == "music":
            if "audio_environment" in tables:
                items += [(r["start_s"], r["end_s"], "music", "audio_environment")
                          for r in labels.get("audio_environment", []) if "music" in str(r["label"]).lower()]
            for row in tables.get("audio_analysis", []):
                if row.get("level") == "video" and row.get("tempo_bpm"):
                    items += [(float(t), float(t), "", "audio_analysis") for t in row.get("beat_times") or []]
                    items.append((row["start_s"], row["start_s"], f"{row['tempo_bpm']:.0f} BPM", "audio_analysis"))
        else:
            for name in present:
                if title == "audio events" and name == "audio_environment":
                    rows = [r for r in labels.get(name, []) if "music" not in str(r["label"]).lower()]
                elif name in labels or name in labelled:
                    rows = labels.get(name, [])  # rows without a label (static camera...) are not shown
                else:
                    rows = [{"start_s": r["start_s"], "end_s": r["end_s"], "label": _row_label(r, name)}
                            for r in tables[name]]
                items += [(float(r["start_s"]), float(r["end_s"]), str(r["label"]), name) for r in rows]
        out.append((title, items[:MAX_ITEMS_PER_LANE]))
    return out


CSS = """
body { font-family: DejaVu Sans, Arial, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ddd; margin-top: 1.6em; }
.strip { display: flex; flex-wrap: wrap; gap: 8px; }
.shot { margin: 0; text-align: center; font-size: 0.8em; }
.shot img { display: block; height: 160px; border: 1px solid #bbb; }
.word { padding: 0 1px; } .time { color: #888; font-size: 0.8em; margin-right: 0.4em; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ddd; padding: 3px 8px; }
.note { color: #8a5a00; }
svg { max-width: 100%; height: auto; }
"""


def render(video_id: str, duration: float, tables: Mapping[str, list[dict[str, Any]]],
           labels: Mapping[str, list[dict[str, Any]]], scores: Mapping[str, Any],
           coverage: Sequence[Mapping[str, Any]], frames: list[np.ndarray] | None, notes: list[str]) -> str:
    """The report's HTML from the video's tables, labels, score and keyframes."""
    esc = html.escape
    spans = shots(tables.get("cut_analysis"), duration)
    if frames is not None and len(frames) != len(spans):
        raise ValueError(f"{len(frames)} keyframes for {len(spans)} shots")
    lanes = lane_items(tables, labels)
    pace = [(float(r["start_s"]), float(r["pace"])) for r in tables.get("temporal_flow", [])
            if r.get("level") == "second" and r.get("pace") is not None]
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(video_id)}: reconstruction"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>Video {esc(video_id)}</h1><p>{duration:.2f} s · {len(spans)} shot{'s' * (len(spans) != 1)} · "
             f"reconstruction score <b id=\"score\">{float(scores.get('score') or 0):.1f}</b></p>"]
    parts.append("<section id=\"timeline\"><h2>Timeline</h2>")
    uris = [thumbnail_uri(frame) for frame in frames] if frames is not None else None
    shapes = [frame.shape[:2] for frame in frames] if frames is not None else None
    parts.append(timeline_svg(duration, spans, uris, shapes, lanes, pace, list(coverage)))
    parts.append("</section><section id=\"shots\"><h2>Shots</h2>")
    if frames is None:
        parts.append("<p class=\"note\">No keyframes: the media cache was not present when the report was written.</p>")
    else:
        parts.append("<div class=\"strip\">")
        for index, ((a, b), uri) in enumerate(zip(spans, uris or []), start=1):
            parts.append(f"<figure class=\"shot\" data-start=\"{a:.3f}\" data-end=\"{b:.3f}\"><img class=\"keyframe\" "
                         f"alt=\"shot {index}, {a:.1f}-{b:.1f} s\" src=\"{uri}\">"
                         f"<figcaption>{index} · {a:.1f}–{b:.1f} s</figcaption></figure>")
        parts.append("</div>")
    parts.append("</section><section id=\"transcript\"><h2>Transcript</h2>")
    if "speech_transcription" not in tables:
        parts.append("<p class=\"note\">No speech_transcription table.</p>")
    elif not tables["speech_transcription"]:
        parts.append("<p>No speech transcribed.</p>")
    for segment in tables.get("speech_transcription", []):
        words = segment.get("words") or []
        text = "".join(
            f"<span class=\"word\" data-start=\"{w['start_s']:.2f}\" title=\"{w['start_s']:.2f}-{w['end_s']:.2f} s\">"
            f"{esc(str(w['word']).strip())}</span> " for w in words if w.get("start_s") is not None
        ) or esc(segment.get("text") or "")
        parts.append(f"<p class=\"segment\" lang=\"{esc(segment.get('language') or '')}\"><span class=\"time\">"
                     f"{segment['start_s']:.1f}–{segment['end_s']:.1f} s</span>{text}</p>")
    parts.append("</section>")
    if tables.get("qwen2_vl_temporal"):
        parts.append("<section id=\"descriptions\"><h2>Descriptions</h2><table><tr><th>time</th><th>description</th></tr>")
        for row in tables["qwen2_vl_temporal"]:
            parts.append(f"<tr><td>{row['start_s']:.1f}–{row['end_s']:.1f} s</td>"
                         f"<td>{esc(str(row.get('description') or ''))}</td></tr>")
        parts.append("</table></section>")
    parts.append("<section id=\"score-breakdown\"><h2>Score</h2>")
    parts.append(score_svg(scores))
    parts.append("<table><tr><th>modality</th><th>score</th><th>seconds covered</th></tr>")
    for m in MODALITIES:
        parts.append(f"<tr><td>{m}</td><td>{float(scores.get(f'{m}_score') or 0):.1f}</td>"
                     f"<td>{float(scores.get(f'{m}_seconds_covered') or 0):.1f}</td></tr>")
    parts.append("</table>")
    for key, title in (("analyzers_failed", "failed"), ("analyzers_model_unavailable", "model unavailable"),
                       ("analyzers_missing", "not run")):
        if scores.get(key):
            parts.append(f"<p>{title}: {esc(', '.join(scores[key]))}</p>")
    parts.append("</section><section id=\"sources\"><h2>Sources</h2>")
    parts.append(f"<p>Tables read: {esc(', '.join(sorted(tables)) or 'none')}.</p>")
    parts += [f"<p class=\"note\">{esc(n)}</p>" for n in notes]
    parts.append("</section></body></html>\n")
    return "".join(parts)


def write_report(settings: Settings, video_id: str, scores: Mapping[str, Any],
                 coverage: Sequence[Mapping[str, Any]], duration: float,
                 timeline: Sequence[Mapping[str, Any]]) -> Path:
    """Read the video's tables and keyframes and write ``reports/<id>/index.html`` atomically;
    ``timeline``: the video's labelled rows (``steps.readable_timeline``)."""
    from . import catalog
    from .analyzers import all_specs

    store = catalog.warehouse(settings)
    names = sorted({n for _, lane in LANES for n in lane} | {"temporal_flow", "qwen2_vl_temporal", *all_specs()})
    tables = {}
    for name in names:
        table = store.read(name, video_id)
        if table is not None:
            tables[name] = sorted(table.to_pylist(), key=lambda r: (r["start_s"], r["end_s"]))
    labels: dict[str, list[dict[str, Any]]] = {}
    for row in timeline:
        labels.setdefault(row["analyzer"], []).append(row)
    notes = []
    if "cut_analysis" not in tables:
        notes.append("No cut_analysis table: the whole video is shown as one shot.")
    spans = shots(tables.get("cut_analysis"), duration)
    frames = keyframes(settings.media_dir / video_id, spans)
    if frames is None:
        notes.append("No keyframes: the media cache was not present.")
    missing = [title for title, lane in LANES if not any(n in tables for n in lane)]
    if missing:
        notes.append(f"Lanes without a table: {', '.join(missing)}.")
    page = render(video_id, duration, tables, labels, scores, coverage, frames, notes)
    target = report_path(settings, video_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, page)
    return target
