"""Content safety: NudeNet's body-part detector on every sampled frame, merged into spans, and a
per-video flag.

The model is the registry's ``nudenet-320n``: the YOLOv8n-layout ONNX graph shipped in the
``nudenet`` wheel (18 classes: exposed/covered body parts and male/female faces; AGPL-3.0), run
with ONNX Runtime (the CUDA provider when the group runs on a GPU), in batches of the group's
``batch_size``. Each frame is padded with black at the right/bottom to a square and resized to
320x320, in BGR channel order: that is what the package's own ``NudeDetector`` feeds the network
(its ``COLOR_RGBA2BGR`` on a 3-channel picture swaps the channels and ``blobFromImage`` swaps them
back), so the scores equal the package's (measured on the bundled photos; on RGB input the coffee
photo gets a spurious ``BUTTOCKS_EXPOSED`` 0.30). Boxes with class confidence >= ``DETECT_CONF`` survive a
class-agnostic NMS (IoU ``NMS_IOU``) and are mapped back to the displayed frame.

Each class is in one category:

* ``explicit``: exposed genitalia (female, male), exposed female breast, exposed buttocks, exposed
  anus;
* ``suggestive``: covered female genitalia, covered female breast, covered buttocks, covered anus,
  exposed belly;
* ``none``: faces, feet, armpits, covered belly, exposed male breast (reported, never flagged).

Rows (``level = 'span'``): one per class and run of sampled frames where it was detected (frames
at most ``MERGE_GAP_S`` apart join one span; a frame stands for one sampling step): ``label``
(NudeNet's class name), ``category``, ``frames``, ``confidence_max``/``confidence_mean``,
``box_peak`` (x1 y1 x2 y2 of the most confident box, normalised to the frame), and ``hits``
(per frame: ``t`` and the best ``conf``). One ``level = 'video'`` row over the whole clip holds
``flag`` and ``flag_reason``:

* ``explicit`` when an explicit class reaches ``EXPLICIT_CONF`` (0.6) on at least ``MIN_FRAMES``
  (2) sampled frames (1 for a video of one sampled frame);
* else ``suggestive`` when an explicit or suggestive class reaches ``SUGGESTIVE_CONF`` (0.5) on at
  least ``MIN_FRAMES`` frames;
* else ``safe``.

Requiring two frames keeps one-frame false positives from flagging a video; the thresholds are
this project's choice, not NudeNet's.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..model_registry import ResolvedModel, fill_batch, inference, onnx_session
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

INPUT_SIZE = 320
DETECT_CONF = 0.25
NMS_IOU = 0.45
MERGE_GAP_S = 1.0
EXPLICIT_CONF = 0.6
SUGGESTIVE_CONF = 0.5
MIN_FRAMES = 2

# the graph's output order (a fact of the nudenet 3.4 package)
LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)
EXPLICIT = frozenset({"FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED",
                      "BUTTOCKS_EXPOSED", "ANUS_EXPOSED"})
SUGGESTIVE = frozenset({"FEMALE_GENITALIA_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED", "ANUS_COVERED",
                        "BELLY_EXPOSED"})

HIT = pa.struct([("t", pa.float64()), ("conf", pa.float32())])
COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("label", pa.string()),
    pa.field("category", pa.string()),
    pa.field("frames", pa.int64()),
    pa.field("confidence_max", pa.float64()),
    pa.field("confidence_mean", pa.float64()),
    pa.field("box_peak", pa.list_(pa.float64())),
    pa.field("hits", pa.list_(HIT)),
    pa.field("flag", pa.string()),
    pa.field("flag_reason", pa.string()),
    pa.field("model", pa.string()),
)


def category(label: str) -> str:
    return "explicit" if label in EXPLICIT else "suggestive" if label in SUGGESTIVE else "none"


class NudeNetModel:
    """The 320n ONNX graph in an ONNX Runtime session."""

    def __init__(self, session, placed_device: str, resolved: ResolvedModel):
        self.session = session
        self.placed_device = placed_device
        self.resolved = resolved
        self.input_name = session.get_inputs()[0].name

    def detect(self, frames, batch_size: int = 1, conf: float = DETECT_CONF) -> list[list[tuple[str, float, np.ndarray]]]:
        """Per RGB uint8 frame: (label, confidence, box x1 y1 x2 y2 in the frame's pixels), best first."""
        out = []
        step = max(1, int(batch_size))
        for start in range(0, len(frames), step):
            chunk = [np.asarray(f) for f in frames[start:start + step]]
            blob = np.stack([square_input(f) for f in chunk])
            if self.placed_device != "cpu":
                blob = fill_batch(blob, step)  # one input shape on a GPU; zip below drops the extra rows
            with inference("nudenet-320n"):
                raw = self.session.run(None, {self.input_name: blob})[0]
            for frame, pred in zip(chunk, raw):
                side = max(frame.shape[:2])
                out.append(decode(pred, side / INPUT_SIZE, frame.shape[1], frame.shape[0], conf))
        return out


def square_input(frame: np.ndarray) -> np.ndarray:
    """(3, 320, 320) float32 in 0..1, BGR: the RGB frame padded with black at the right/bottom to a
    square, then resized (as the nudenet package prepares its input)."""
    import cv2

    h, w = frame.shape[:2]
    side = max(h, w)
    padded = np.zeros((side, side, 3), np.uint8)
    padded[:h, :w] = frame[..., ::-1]
    small = cv2.resize(padded, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(small.transpose(2, 0, 1), dtype=np.float32) / 255.0


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores)
    areas = np.maximum(0, boxes[:, 2] - boxes[:, 0]) * np.maximum(0, boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        x1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(0, x2 - x1) * np.maximum(0, y2 - y1)
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return keep


def decode(pred: np.ndarray, scale: float, width: int, height: int, conf: float) -> list[tuple[str, float, np.ndarray]]:
    """One image's (22, anchors) output -> detections in the frame's pixels."""
    table = pred.T
    scores = table[:, 4:]
    cls = scores.argmax(axis=1)
    best = scores[np.arange(len(cls)), cls]
    mask = best >= conf
    if not mask.any():
        return []
    cx, cy, bw, bh = (table[mask, k] for k in range(4))
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1) * scale
    boxes = np.clip(boxes, 0, [width, height, width, height])
    best, cls = best[mask], cls[mask]
    return [(LABELS[int(cls[i])], float(best[i]), boxes[i]) for i in nms(boxes, best, NMS_IOU)]


def load_model(resolved: ResolvedModel, kind: str, index: int, store: Path) -> NudeNetModel:
    """Registry loader of ``nudenet-320n`` (ONNX Runtime, CUDA provider when asked and present)."""
    session, placed = onnx_session(Path(resolved.path), kind, index, "nudenet-320n")
    return NudeNetModel(session, placed, resolved)


def spans(times: np.ndarray, per_frame: list[dict[str, tuple[float, np.ndarray]]], step: float,
          duration: float, width: int, height: int, model: str) -> list[dict]:
    """Span rows: per label, runs of frames at most MERGE_GAP_S apart."""
    by_label: dict[str, list[tuple[int, float, np.ndarray]]] = defaultdict(list)
    for i, found in enumerate(per_frame):
        for label, (conf, box) in found.items():
            by_label[label].append((i, conf, box))
    rows = []
    scale = np.array([width, height, width, height], np.float64)
    for label, hits in by_label.items():
        runs = [[hits[0]]]
        for hit in hits[1:]:
            if times[hit[0]] - times[runs[-1][-1][0]] <= MERGE_GAP_S + 1e-6:
                runs[-1].append(hit)
            else:
                runs.append([hit])
        for run in runs:
            conf = np.array([h[1] for h in run])
            peak = run[int(np.argmax(conf))]
            rows.append({
                "start_s": round(float(times[run[0][0]]), 3),
                "end_s": round(min(float(times[run[-1][0]]) + step, duration), 3),
                "level": "span",
                "label": label,
                "category": category(label),
                "frames": len(run),
                "confidence_max": round(float(conf.max()), 4),
                "confidence_mean": round(float(conf.mean()), 4),
                "box_peak": [round(float(v), 4) for v in np.clip(peak[2] / scale, 0, 1)],
                "hits": [{"t": round(float(times[h[0]]), 3), "conf": round(h[1], 4)} for h in run],
                "model": model,
            })
    return sorted(rows, key=lambda r: (r["start_s"], r["label"]))


def video_flag(per_frame: list[dict[str, tuple[float, np.ndarray]]]) -> tuple[str, str]:
    """The per-video flag and the reason (the rule of the module docstring)."""
    need = min(MIN_FRAMES, max(1, len(per_frame)))
    for flag, labels, threshold in (("explicit", EXPLICIT, EXPLICIT_CONF),
                                    ("suggestive", EXPLICIT | SUGGESTIVE, SUGGESTIVE_CONF)):
        counts: dict[str, int] = defaultdict(int)
        for found in per_frame:
            for label, (conf, _) in found.items():
                if label in labels and conf >= threshold:
                    counts[label] += 1
        hit = sorted((n, label) for label, n in counts.items() if n >= need)
        if hit:
            n, label = hit[-1]
            return flag, f"{label} with confidence >= {threshold} on {n} sampled frames"
    return "safe", (f"no explicit class >= {EXPLICIT_CONF} and no suggestive class >= {SUGGESTIVE_CONF} "
                    f"on {need} or more sampled frames")


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    model = context.models.load("nudenet-320n", context.device)
    frames = media.frames
    times = np.asarray(media.frame_times, dtype=np.float64)
    duration = float(media.duration_s)
    n = len(times)
    if n == 0:
        return AnalyzerOutput(rows=[], examined=[], metadata={"note": "the video has no sampled frames"})
    height, width = frames[0].shape[:2]
    batch = max(1, int(context.batch_size))
    per_frame: list[dict[str, tuple[float, np.ndarray]]] = []
    for start in range(0, n, batch):
        chunk = [frames[i] for i in range(start, min(n, start + batch))]
        for found in model.detect(chunk, batch_size=batch):
            best: dict[str, tuple[float, np.ndarray]] = {}
            for label, conf, box in found:
                if label not in best or conf > best[label][0]:
                    best[label] = (conf, box)
            per_frame.append(best)
    step = 1.0 / float(media.meta.sample_fps)
    name = model.resolved.name
    rows = spans(times, per_frame, step, duration, width, height, name)
    flag, reason = video_flag(per_frame)
    rows.append({"start_s": 0.0, "end_s": round(duration, 3), "level": "video", "flag": flag, "flag_reason": reason,
                 "frames": n, "model": name})
    flagged = sorted({r["label"] for r in rows if r.get("category") in ("explicit", "suggestive")})
    metadata = {"flag": flag, "flag_reason": reason, "model": name, "device": model.placed_device,
                "spans": len(rows) - 1, "flagged_classes": ", ".join(flagged) or "none"}
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="content_safety",
    modality="visual",
    description="Body-part detection (NudeNet 320n ONNX) per sampled frame merged into spans, and a per-video "
                "flag: safe / suggestive / explicit",
    version="1",
    columns=COLUMNS,
    run=run,
    model="nudenet-320n",
    main_figure="flag",
    timeline_label="CASE WHEN level = 'span' AND category <> 'none' THEN category || ': ' || label END",
    model_packages=("nudenet",),
)
