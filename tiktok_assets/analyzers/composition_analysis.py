"""Composition of the picture: subject placement (rule of thirds, centred), headroom, subject size,
framing, balance and symmetry, and whether on-screen text sits inside TikTok's UI-safe area.

A fusion analyzer without a model. Boxes come from other analyzers: the main face (the largest
face of a sample, from the shared ``faces`` pass, read only when a face analyzer ran:
``eye_tracking``, ``face_emotion`` or ``age_estimation``), the ``body_pose`` landmarks (seen
ones: visibility >= 0.5, inside the frame) and ``object_detection`` tracks (per-frame boxes).
Shots come from ``cut_analysis`` (a hard cut starts a shot, a dissolve or fade splits at its
middle; without the table the video is one shot). The sampled frames are read for the luminance
balance and symmetry. All coordinates are shares of the frame (0..1, y downwards).

Per sample: the **subject box** is the union of the main face box and the pose box, else the
largest ``person`` object box. The **subject point** is the face's eye line (face box centre x,
``EYE_LEVEL`` of the way down the face box) or, without a face, the subject box centre.

* ``subject_x``/``subject_y``: the subject point; ``placement``: ``centred`` when
  ``|x - 1/2| <= CENTRE_TOL``, ``left_third``/``right_third`` when within ``THIRD_TOL`` of a
  vertical third line, else ``left``/``right``; ``thirds_distance``: distance of the point from
  the nearest of the four thirds intersections; ``on_thirds`` when it is <= ``THIRDS_NEAR``;
* ``headroom``: space above the subject box's top (share of the frame height); ``headroom_label``
  ``cut`` (< ``HEADROOM_CUT``: the head touches the edge), ``tight`` (< ``HEADROOM_TIGHT``),
  ``good`` (<= ``HEADROOM_LOOSE``) or ``loose``;
* ``subject_size``: the subject box's area as a share of the frame;
* ``framing`` from the face height: ``close_up`` (>= ``CLOSE_UP``), ``medium`` (>= ``MEDIUM``),
  else ``wide``; without a face from body_pose's visible part (full body = wide, upper body =
  medium, face only = close-up); from a person object box alone: ``wide`` below half the frame
  height, else ``medium``;
* ``box_balance``: area-weighted mean horizontal offset of the subject and object boxes from the
  centre, times 2 (-1 all weight at the left edge .. +1 right; null without boxes);
* ``luma_balance``: (right - left) / (right + left) of the frame halves' mean grey level;
  ``symmetry``: 1 - mean |thumbnail - its mirror image| / 255 of a 32x32 grey thumbnail.

Rows by ``level``: ``second`` (samples of [k, k+1)) and ``shot`` (``shot_index``, samples of the
shot) give medians of the numbers over the samples (subject figures over the samples with a
subject) and the most common labels; ``samples`` counts the samples, ``faces`` the most faces
seen on one. ``text``: one per ``text_overlay`` track with a box (columns ``box_x``, ``box_y`` = top-left
corner, ``box_w``, ``box_h``, fractions of the frame; tracks without them are passed over): ``ui_zones`` (the zones it touches),
``ui_overlap`` (share of its box inside them) and ``text_safe`` (``ui_overlap`` <=
``SAFE_MAX_OVERLAP``). ``video``: the shares of subject samples centred / on thirds, the median
subject size, the number of unsafe texts in ``detail``.

UI zones (``UI_ZONES``, shares of a 9:16 frame; approximations read off TikTok's creator safe-zone
overlays, not an official specification): ``right_buttons`` = the right 15 % between 35 % and
85 % of the height (like, comment, share, profile), ``bottom_caption`` = the lowest 20 %
(caption, sound, username), ``top_bar`` = the top 8 % (Following / For You tabs).

Coverage: the whole video when at least one input table was read, else nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec
from .temporal_flow import rows_of

EYE_LEVEL = 0.4
CENTRE_TOL = 0.07
THIRD_TOL = 0.07
THIRDS_NEAR = 0.1
HEADROOM_CUT = 0.005
HEADROOM_TIGHT = 0.03
HEADROOM_LOOSE = 0.15
CLOSE_UP = 0.2
MEDIUM = 0.09
SAFE_MAX_OVERLAP = 0.05
THUMB = 32
UI_ZONES = {  # name: (x0, y0, x1, y1)
    "right_buttons": (0.85, 0.35, 1.0, 0.85),
    "bottom_caption": (0.0, 0.80, 1.0, 1.0),
    "top_bar": (0.0, 0.0, 1.0, 0.08),
}
FACE_TABLES = ("eye_tracking", "face_emotion", "age_estimation")
INPUTS = ("cut_analysis", "body_pose", *FACE_TABLES)
OPTIONAL = ("object_detection", "text_overlay")
POSE_FRAMING = {"full_body": "wide", "upper_body": "medium", "face_only": "close_up"}
TOL_S = 0.05

COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("shot_index", pa.int64()),
    pa.field("samples", pa.int64()),
    pa.field("faces", pa.int64()),
    pa.field("subject_source", pa.string()),
    pa.field("subject_x", pa.float64()),
    pa.field("subject_y", pa.float64()),
    pa.field("placement", pa.string()),
    pa.field("thirds_distance", pa.float64()),
    pa.field("on_thirds", pa.bool_()),
    pa.field("headroom", pa.float64()),
    pa.field("headroom_label", pa.string()),
    pa.field("subject_size", pa.float64()),
    pa.field("framing", pa.string()),
    pa.field("box_balance", pa.float64()),
    pa.field("luma_balance", pa.float64()),
    pa.field("symmetry", pa.float64()),
    pa.field("text", pa.string()),
    pa.field("ui_zones", pa.list_(pa.string())),
    pa.field("ui_overlap", pa.float64()),
    pa.field("text_safe", pa.bool_()),
    pa.field("detail", pa.string()),
    pa.field("sources", pa.list_(pa.string())),
)

Box = tuple[float, float, float, float]


def placement_of(x: float) -> str:
    if abs(x - 0.5) <= CENTRE_TOL:
        return "centred"
    if abs(x - 1 / 3) <= THIRD_TOL:
        return "left_third"
    if abs(x - 2 / 3) <= THIRD_TOL:
        return "right_third"
    return "left" if x < 0.5 else "right"


def thirds_distance(x: float, y: float) -> float:
    return min(math.hypot(x - gx, y - gy) for gx in (1 / 3, 2 / 3) for gy in (1 / 3, 2 / 3))


def headroom_label(top: float) -> str:
    if top < HEADROOM_CUT:
        return "cut"
    if top < HEADROOM_TIGHT:
        return "tight"
    return "good" if top <= HEADROOM_LOOSE else "loose"


def face_framing(height: float) -> str:
    return "close_up" if height >= CLOSE_UP else "medium" if height >= MEDIUM else "wide"


def union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def ui_overlap(box: Box, grid: int = 60) -> tuple[float, list[str]]:
    """(share of ``box`` inside the union of UI_ZONES, names of the zones it touches)."""
    x0, y0, x1, y1 = box
    hit = [name for name, (a, b, c, d) in UI_ZONES.items() if min(x1, c) > max(x0, a) and min(y1, d) > max(y0, b)]
    if x1 <= x0 or y1 <= y0:
        return 0.0, hit
    xs = x0 + (np.arange(grid) + 0.5) * (x1 - x0) / grid
    ys = y0 + (np.arange(grid) + 0.5) * (y1 - y0) / grid
    gx, gy = np.meshgrid(xs, ys)
    inside = np.zeros(gx.shape, bool)
    for a, b, c, d in UI_ZONES.values():
        inside |= (gx >= a) & (gx <= c) & (gy >= b) & (gy <= d)
    return float(inside.mean()), hit


def pose_box(landmarks: list[float] | None) -> Box | None:
    if not landmarks:
        return None
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 4)
    seen = pts[(pts[:, 3] >= 0.5) & (pts[:, 0] >= 0) & (pts[:, 0] <= 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= 1)]
    if len(seen) < 2:
        return None
    return float(seen[:, 0].min()), float(seen[:, 1].min()), float(seen[:, 0].max()), float(seen[:, 1].max())


def shot_bounds(inputs: Mapping[str, pa.Table], duration: float) -> list[tuple[float, float]]:
    """Shots as (start, end) from cut_analysis (module docstring); one shot without it."""
    cuts = []
    for r in rows_of(inputs, "cut_analysis") or []:
        a, b = float(r["start_s"]), float(r["end_s"])
        cuts.append(a if r.get("kind") == "hard_cut" else (a + b) / 2)
    edges = [0.0, *sorted(c for c in cuts if 0.0 < c < duration), duration]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b - a > 1e-6]


def face_boxes(media, context: AnalyzerContext) -> dict[float, list[Box]] | None:
    """Face boxes per sample time from the shared faces pass, when a face analyzer computed it."""
    if not any(n in context.inputs for n in FACE_TABLES):
        return None
    from ..passes import faces as faces_pass

    found = faces_pass.faces(media, context.models, context.device, context.settings.people_fps)
    out: dict[float, list[Box]] = {float(t): [] for t in found.times}
    for t, box in zip(found.det_times, found.face_box):
        out[float(t)].append(tuple(float(v) for v in box))
    return out


def at(mapping: Mapping[float, Any], t: float) -> Any:
    """The value at the key nearest ``t`` within TOL_S (None when there is none)."""
    best = min(mapping, key=lambda k: abs(k - t), default=None)
    return mapping[best] if best is not None and abs(best - t) <= TOL_S else None


def frame_figures(frame: np.ndarray) -> tuple[float, float]:
    """(luma_balance, symmetry) of an RGB frame."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY).astype(np.float64)
    half = max(1, grey.shape[1] // 2)  # a one-pixel-wide frame compares its column with itself
    left, right = grey[:, :half].mean(), grey[:, grey.shape[1] - half :].mean()
    balance = (right - left) / (right + left) if right + left > 1e-6 else 0.0
    thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    symmetry = 1.0 - float(np.abs(thumb - thumb[:, ::-1]).mean()) / 255.0
    return float(balance), symmetry


def sample_rows(media, context: AnalyzerContext) -> tuple[list[dict[str, Any]], bool]:
    """One dict of figures per sampled frame (the module docstring's per-sample values)."""
    inputs = context.inputs
    faces = face_boxes(media, context)
    poses = {float(r["start_s"]): r for r in rows_of(inputs, "body_pose") or [] if r.get("level") == "frame"}
    objects: dict[float, list[tuple[str, Box]]] = {}
    for r in rows_of(inputs, "object_detection") or []:
        for d in r.get("boxes") or []:
            if d.get("t") is not None and d.get("box"):
                objects.setdefault(round(float(d["t"]), 3), []).append((r.get("label") or "", tuple(d["box"])))
    times = np.asarray(media.frame_times, dtype=np.float64)
    out = []
    for i, t in enumerate(times.tolist()):
        luma, symmetry = frame_figures(media.frames[i])
        s: dict[str, Any] = {"t": t, "luma_balance": luma, "symmetry": symmetry}
        face_list = at(faces, t) if faces is not None else None
        face = max(face_list, key=area) if face_list else None
        pose = at(poses, t)
        pbox = pose_box(pose.get("landmarks")) if pose else None
        things = at(objects, t) or []
        people = [b for label, b in things if label == "person"]
        subject, source = union(face, pbox), "+".join(n for n, b in (("face", face), ("pose", pbox)) if b)
        if subject is None and people:
            subject, source = max(people, key=area), "objects"
        s["faces"] = len(face_list) if face_list is not None else None
        if subject is not None:
            if face is not None:
                x, y = (face[0] + face[2]) / 2, face[1] + EYE_LEVEL * (face[3] - face[1])
                framing = face_framing(face[3] - face[1])
            else:
                x, y = (subject[0] + subject[2]) / 2, (subject[1] + subject[3]) / 2
                framing = (POSE_FRAMING.get(pose.get("visible_part"), "wide") if pbox is not None
                           else "wide" if subject[3] - subject[1] < 0.5 else "medium")
            s.update(subject_source=source, subject_x=x, subject_y=y, thirds_distance=thirds_distance(x, y),
                     headroom=max(0.0, subject[1]), subject_size=area(subject), framing=framing)
        weighted = ([subject] if subject is not None else []) + [b for label, b in things if b is not subject]
        weights = [area(b) for b in weighted]
        if sum(weights) > 0:
            s["box_balance"] = 2 * sum(w * ((b[0] + b[2]) / 2 - 0.5) for w, b in zip(weights, weighted)) / sum(weights)
        out.append(s)
    return out, faces is not None


def summarise(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and most common labels over samples (module docstring)."""
    row: dict[str, Any] = {"samples": len(samples)}
    faces = [s["faces"] for s in samples if s.get("faces") is not None]
    row["faces"] = max(faces) if faces else None
    for key in ("luma_balance", "symmetry", "box_balance", "subject_x", "subject_y", "thirds_distance",
                "headroom", "subject_size"):
        values = [s[key] for s in samples if s.get(key) is not None]
        if values:
            row[key] = round(float(np.median(values)), 4)
    for key in ("subject_source", "framing"):
        labels = [s[key] for s in samples if s.get(key)]
        if labels:
            row[key] = Counter(labels).most_common(1)[0][0]
    if row.get("subject_x") is not None:
        row["placement"] = placement_of(row["subject_x"])
        row["on_thirds"] = row["thirds_distance"] <= THIRDS_NEAR
        row["headroom_label"] = headroom_label(row["headroom"])
    return row


def text_rows(inputs: Mapping[str, pa.Table]) -> tuple[list[dict[str, Any]], int]:
    """Rows for text_overlay tracks with a box, and the number of tracks without one."""
    rows, boxless = [], 0
    for t in rows_of(inputs, "text_overlay") or []:
        if any(t.get(k) is None for k in ("box_x", "box_y", "box_w", "box_h")):
            boxless += 1
            continue
        x, y = float(t["box_x"]), float(t["box_y"])  # top-left corner, fractions of the frame
        box = (x, y, x + float(t["box_w"]), y + float(t["box_h"]))
        share, zones = ui_overlap(box)
        rows.append({"start_s": float(t["start_s"]), "end_s": float(t["end_s"]), "level": "text",
                     "text": t.get("text"), "ui_zones": zones, "ui_overlap": round(share, 4),
                     "text_safe": share <= SAFE_MAX_OVERLAP,
                     "detail": "inside the UI-safe area" if share <= SAFE_MAX_OVERLAP
                     else f"{share:.0%} under {', '.join(zones)}"})
    return rows, boxless


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    duration = float(media.duration_s)
    inputs = context.inputs
    samples, faces_read = sample_rows(media, context)
    sources = sorted(inputs) + (["faces pass"] if faces_read else [])
    rows: list[dict[str, Any]] = []
    for k in range(max(1, math.ceil(duration - 1e-6))):
        a, b = float(k), min(float(k + 1), duration)
        inside = [s for s in samples if a <= s["t"] < b]
        if b > a and inside:
            rows.append({"start_s": a, "end_s": round(b, 3), "level": "second", **summarise(inside)})
    for index, (a, b) in enumerate(shot_bounds(inputs, duration), start=1):
        inside = [s for s in samples if a <= s["t"] < b]
        if inside:
            rows.append({"start_s": round(a, 3), "end_s": round(b, 3), "level": "shot", "shot_index": index,
                         **summarise(inside)})
    texts, boxless = text_rows(inputs)
    rows += texts
    subject = [s for s in samples if s.get("subject_x") is not None]
    centred = (sum(placement_of(s["subject_x"]) == "centred" for s in subject) / len(subject)) if subject else None
    thirds = (sum(s["thirds_distance"] <= THIRDS_NEAR for s in subject) / len(subject)) if subject else None
    unsafe = sum(not t["text_safe"] for t in texts)
    video = {"start_s": 0.0, "end_s": round(duration, 3), "level": "video", **summarise(samples),
             "detail": (f"subject in {len(subject)} of {len(samples)} samples; centred {centred:.0%}, on thirds "
                        f"{thirds:.0%}" if subject else f"no subject in {len(samples)} samples")
             + (f"; {unsafe} of {len(texts)} texts outside the UI-safe area" if "text_overlay" in inputs else "")}
    rows.append(video)
    for row in rows:
        row["sources"] = sources

    missing = [n for n in (*INPUTS, *OPTIONAL) if n not in inputs]
    metadata: dict[str, Any] = {
        "subject_samples": len(subject), "centred_share": None if centred is None else round(centred, 3),
        "thirds_share": None if thirds is None else round(thirds, 3), "unsafe_texts": unsafe if texts else None,
        "sources": ", ".join(sources) or "none",
    }
    if boxless:
        metadata["texts_without_box"] = boxless
    if missing:
        metadata["missing_tables"] = ", ".join(missing)
    if not inputs:
        metadata["note"] = "no input table: only the luminance balance was measured, nothing claimed"
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)] if inputs else [],
                          metadata={k: v for k, v in metadata.items() if v is not None})


SPEC = AnalyzerSpec(
    name="composition_analysis",
    modality="visual",
    description="Subject placement (thirds, centred), headroom, size, framing, balance and symmetry per "
                "second and shot; on-screen text inside TikTok's UI-safe area",
    version="1",
    columns=COLUMNS,
    run=run,
    depends_on=(),
    optional_inputs=(*INPUTS, *OPTIONAL),
    passes=("faces",),
    settings=("people_fps",),
    main_figure="thirds_share",
    timeline_label="CASE WHEN level = 'shot' AND placement IS NOT NULL THEN 'composition: ' || placement || ', ' "
                   "|| framing WHEN level = 'text' AND NOT text_safe THEN 'text under the TikTok UI' END",
)
