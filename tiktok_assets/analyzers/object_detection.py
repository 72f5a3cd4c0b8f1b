"""Objects as tracks: YOLO (ultralytics) on every sampled frame, linked across frames by ByteTrack.

The detector is the registry model ``yolov8n`` (``TIKTOK_ASSETS_OBJECT_MODEL``) on the CPU and
``yolov8x`` (``TIKTOK_ASSETS_OBJECT_MODEL_GPU``) on a GPU: a local ``.pt``/``.onnx`` or a release
asset name (module :mod:`._yolo`). Without weights it raises ``ModelUnavailable`` (no rows, not
covered). Frames go through the model in batches of the group's ``batch_size``; ultralytics
letterboxes them and maps the boxes back onto the displayed frame. Detections with confidence
>= ``DETECT_CONF`` feed ultralytics' ``BYTETracker`` (its default thresholds: tracks start at 0.25,
weaker boxes only extend them; lost tracks are kept ``TRACK_BUFFER_S`` seconds). A track is reported
once confirmed (seen on two sampled frames, or on the first frame), from its first frame on.

One row per track. ``start_s`` is the time of its first sampled frame, ``end_s`` that of its last
plus one sampling step (clipped to the video). Boxes are normalised to the displayed frame (0..1,
x1 y1 x2 y2).

* ``track_id``: ByteTrack's id within the video; ``label``/``class_id``: the class most often
  detected on the track (ties: the larger summed confidence);
* ``frames``: sampled frames with a detection; ``confidence_mean``/``confidence_max``;
* ``box_mean``: mean box; ``box_peak``: the box of the most confident detection, at ``peak_s``;
* ``area_mean``: mean box area as a share of the frame; ``size_class``: ``small`` below
  ``SMALL_AREA`` (2 %), ``large`` from ``LARGE_AREA`` (15 %), ``medium`` between;
* ``center_x``/``center_y``: mean box centre; ``position``: its cell of a 3x3 grid (``top-left`` ..
  ``center`` .. ``bottom-right``);
* ``boxes``: the per-frame detections, compact: ``t`` (frame time), ``box`` (x1 y1 x2 y2, 4
  decimals), ``conf``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from ._yolo import Detections, ensure_lap
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

IMGSZ = 640
DETECT_CONF = 0.1  # = ByteTrack's low threshold: weaker boxes are never used
NMS_IOU = 0.7
MAX_DET = 100
TRACK_BUFFER_S = 2.0
TRACKER = {"track_high_thresh": 0.25, "track_low_thresh": 0.1, "new_track_thresh": 0.25,
           "match_thresh": 0.8, "fuse_score": True}
SMALL_AREA = 0.02
LARGE_AREA = 0.15

BOX = pa.struct([("t", pa.float64()), ("box", pa.list_(pa.float32())), ("conf", pa.float32())])
COLUMNS = (
    pa.field("track_id", pa.int64()),
    pa.field("label", pa.string()),
    pa.field("class_id", pa.int64()),
    pa.field("frames", pa.int64()),
    pa.field("confidence_mean", pa.float64()),
    pa.field("confidence_max", pa.float64()),
    pa.field("box_mean", pa.list_(pa.float64())),
    pa.field("box_peak", pa.list_(pa.float64())),
    pa.field("peak_s", pa.float64()),
    pa.field("area_mean", pa.float64()),
    pa.field("size_class", pa.string()),
    pa.field("center_x", pa.float64()),
    pa.field("center_y", pa.float64()),
    pa.field("position", pa.string()),
    pa.field("boxes", pa.list_(BOX)),
    pa.field("model", pa.string()),
)


class _TrackerInput:
    """Detections in the form BYTETracker reads (``conf``, ``cls``, ``xywh``, boolean indexing)."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray):
        self.xyxy, self.conf, self.cls = xyxy, conf, cls

    @property
    def xywh(self) -> np.ndarray:
        xy = (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2
        return np.concatenate([xy, self.xyxy[:, 2:] - self.xyxy[:, :2]], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index) -> _TrackerInput:
        return _TrackerInput(self.xyxy[index], self.conf[index], self.cls[index])


@dataclass
class Track:
    """One tracked object: per-frame (frame index, box in pixels, confidence, class id)."""

    track_id: int
    hits: list[tuple[int, np.ndarray, float, int]] = field(default_factory=list)


def link(detections: list[Detections], sample_fps: float, buffer_s: float = TRACK_BUFFER_S) -> list[Track]:
    """ByteTrack over per-frame detections (in frame order). A track's hits are the detector's boxes
    (not the Kalman-smoothed ones) of every frame it was matched on, its first (unconfirmed) frame
    included; tracks never confirmed are dropped."""
    ensure_lap()
    from ultralytics.trackers.byte_tracker import BYTETracker

    tracker = BYTETracker(SimpleNamespace(**TRACKER, track_buffer=max(1, round(buffer_s * sample_fps))))
    tracks: dict[int, Track] = {}
    confirmed: set[int] = set()
    for index, det in enumerate(detections):
        boxes = _TrackerInput(np.asarray(det.xyxy, np.float32).reshape(-1, 4), np.asarray(det.conf, np.float32),
                              np.asarray(det.cls, np.float32))
        out = np.asarray(tracker.update(boxes, None)).reshape(-1, 8)
        confirmed.update(int(i) for i in out[:, 4])
        for strack in tracker.tracked_stracks:
            if strack.frame_id != tracker.frame_id:
                continue
            idx = int(strack.idx)
            track = tracks.setdefault(int(strack.track_id), Track(int(strack.track_id)))
            track.hits.append((index, boxes.xyxy[idx].copy(), float(boxes.conf[idx]), int(det.cls[idx])))
    kept = [t for t in tracks.values() if t.track_id in confirmed]
    return sorted(kept, key=lambda t: (t.hits[0][0], t.track_id))


def position_name(cx: float, cy: float) -> str:
    """The 3x3 grid cell of a normalised point: ``top-left`` .. ``center`` .. ``bottom-right``."""
    row = ("top", "middle", "bottom")[min(2, int(cy * 3))]
    col = ("left", "center", "right")[min(2, int(cx * 3))]
    if row == "middle":
        return "center" if col == "center" else col
    return row if col == "center" else f"{row}-{col}"


def size_class(area: float) -> str:
    return "small" if area < SMALL_AREA else "large" if area >= LARGE_AREA else "medium"


def track_row(track: Track, times: np.ndarray, width: int, height: int, duration: float, step: float,
              names: dict[int, str], model: str) -> dict:
    """The table row of one track (see the module docstring)."""
    scale = np.array([width, height, width, height], np.float64)
    boxes = np.clip(np.stack([h[1] for h in track.hits]).astype(np.float64) / scale, 0.0, 1.0)
    conf = np.array([h[2] for h in track.hits])
    votes: Counter[int] = Counter(h[3] for h in track.hits)
    weight: defaultdict[int, float] = defaultdict(float)
    for h in track.hits:
        weight[h[3]] += h[2]
    class_id = max(votes, key=lambda c: (votes[c], weight[c]))
    first, last = track.hits[0][0], track.hits[-1][0]
    peak = int(np.argmax(conf))
    mean = boxes.mean(axis=0)
    area = float(np.mean((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
    cx, cy = float((mean[0] + mean[2]) / 2), float((mean[1] + mean[3]) / 2)
    return {
        "start_s": round(float(times[first]), 3),
        "end_s": round(min(float(times[last]) + step, duration), 3),
        "track_id": track.track_id,
        "label": names.get(class_id, str(class_id)),
        "class_id": class_id,
        "frames": len(track.hits),
        "confidence_mean": round(float(conf.mean()), 4),
        "confidence_max": round(float(conf.max()), 4),
        "box_mean": [round(float(v), 4) for v in mean],
        "box_peak": [round(float(v), 4) for v in boxes[peak]],
        "peak_s": round(float(times[track.hits[peak][0]]), 3),
        "area_mean": round(area, 5),
        "size_class": size_class(area),
        "center_x": round(cx, 4),
        "center_y": round(cy, 4),
        "position": position_name(cx, cy),
        "boxes": [{"t": round(float(times[h[0]]), 3), "box": [round(float(v), 4) for v in b], "conf": round(h[2], 4)}
                  for h, b in zip(track.hits, boxes)],
        "model": model,
    }


def model_id_for(device: str) -> str:
    """``yolov8x`` (the GPU setting) on a CUDA device, ``yolov8n`` otherwise."""
    return "yolov8x" if str(device).startswith("cuda") else "yolov8n"


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    detector = context.models.load(model_id_for(context.device), context.device)
    frames = media.frames
    times = np.asarray(media.frame_times, dtype=np.float64)
    duration = float(media.duration_s)
    n = len(times)
    if n == 0:
        return AnalyzerOutput(rows=[], examined=[], metadata={"note": "the video has no sampled frames"})
    height, width = frames[0].shape[:2]
    batch = max(1, int(context.batch_size))
    detections: list[Detections] = []
    for start in range(0, n, batch):
        chunk = [frames[i] for i in range(start, min(n, start + batch))]
        detections += detector.detect(chunk, batch_size=batch, conf=DETECT_CONF, iou=NMS_IOU, imgsz=IMGSZ,
                                      max_det=MAX_DET)
    sample_fps = float(media.meta.sample_fps)
    step = 1.0 / sample_fps
    tracks = link(detections, sample_fps)
    model = detector.resolved.name
    rows = [track_row(t, times, width, height, duration, step, detector.names, model) for t in tracks]
    counts = Counter(r["label"] for r in rows)
    metadata = {
        "model": model,
        "device": detector.placed_device,
        "tracks": len(rows),
        "detections": int(sum(len(d) for d in detections)),
        "frames": n,
        "objects": ", ".join(f"{label} {k}" for label, k in counts.most_common(8)) or "none",
    }
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="object_detection",
    modality="visual",
    description="Objects (80 COCO classes, YOLO via ultralytics) tracked across sampled frames with ByteTrack: "
                "one row per track with class, span, mean/peak box, size and screen position",
    version="1",
    columns=COLUMNS,
    run=run,
    model="yolov8n",
    main_figure="objects",
    timeline_label="label",
    model_packages=("ultralytics",),
)
