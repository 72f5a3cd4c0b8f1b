"""YOLO detection through ultralytics: the registry loader, batched inference, and a tiny test model.

The registry specs ``yolov8n`` (CPU groups) and ``yolov8x`` (GPU groups) name a weights file: a local
``.pt``/``.onnx`` path (or a folder holding one), or a release asset name such as ``yolov8n.pt`` or
``yolo11x.pt``. An asset name is looked up in ``<model store>/ultralytics/`` and downloaded there from
the ultralytics release on machines that reach GitHub; elsewhere :class:`ModelUnavailable` names the
setting. ultralytics is imported with ``YOLO_OFFLINE=1`` (no online checks), ``YOLO_AUTOINSTALL=False``
(it never pip-installs at run time) and its settings file under the model store.

:meth:`YoloDetector.detect` runs frames in batches of the group's ``batch_size`` (fp16 on CUDA);
ultralytics letterboxes each batch (portrait frames keep their aspect, padded to a multiple of the
stride) and maps the boxes back to the frame it was given, so boxes are in the displayed frame's
pixels.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import types
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model_registry import ModelUnavailable, ResolvedModel, inference

WEIGHT_SUFFIXES = (".pt", ".onnx", ".torchscript", ".engine")
RELEASE_URL = "https://github.com/ultralytics/assets/releases/download/{tag}/{name}"
RELEASE_TAG = "v8.3.0"
SETTINGS = {"yolov8n": "TIKTOK_ASSETS_OBJECT_MODEL", "yolov8x": "TIKTOK_ASSETS_OBJECT_MODEL_GPU"}


def import_ultralytics(store: Path) -> Any:
    """Import ultralytics with offline-safe settings (before its first import); returns the module."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    config = Path(store) / "ultralytics-config"
    config.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config))
    import ultralytics

    return ultralytics


def lapjv(cost: np.ndarray, extend_cost: bool = True, cost_limit: float = np.inf):
    """``lap.lapjv``'s contract on SciPy: the cheapest one-to-one assignment where leaving a row and a
    column unmatched costs ``cost_limit`` (so no pair above it is matched); returns (total, x, y) with
    x[row] = column or -1 and y[column] = row or -1."""
    from scipy.optimize import linear_sum_assignment

    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    x, y = np.full(n, -1, np.int64), np.full(m, -1, np.int64)
    if n == 0 or m == 0:
        return 0.0, x, y
    if not np.isfinite(cost_limit):
        rows, cols = linear_sum_assignment(cost)
        x[rows], y[cols] = cols, rows
        return float(cost[rows, cols].sum()), x, y
    big = 1e9 + float(np.abs(cost[np.isfinite(cost)]).max(initial=0.0)) * 4
    full = np.full((n + m, m + n), big)
    full[:n, :m] = np.where(np.isfinite(cost), cost, big)
    full[np.arange(n), m + np.arange(n)] = cost_limit / 2  # row left unmatched
    full[n + np.arange(m), np.arange(m)] = cost_limit / 2  # column left unmatched
    full[n:, m:] = 0.0
    rows, cols = linear_sum_assignment(full)
    total = 0.0
    for r, c in zip(rows, cols):
        if r < n and c < m and full[r, c] < big:
            x[r], y[c] = c, r
            total += cost[r, c]
    return total, x, y


def ensure_lap() -> None:
    """ultralytics' trackers import the ``lap`` package, which the lock does not hold: when it is
    absent, register a stand-in module whose ``lapjv`` runs on SciPy (same contract)."""
    if "lap" in sys.modules or importlib.util.find_spec("lap") is not None:
        return
    module = types.ModuleType("lap")
    module.__version__ = "scipy-stand-in"
    module.lapjv = lapjv
    sys.modules["lap"] = module


@dataclass
class Detections:
    """One frame's detections: boxes (N, 4) x1 y1 x2 y2 in the frame's pixels, confidences, class ids."""

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray

    def __len__(self) -> int:
        return len(self.conf)


class YoloDetector:
    """An ultralytics YOLO model on one device, with its class names."""

    def __init__(self, model: Any, resolved: ResolvedModel, kind: str, index: int):
        self.model = model
        self.resolved = resolved
        self.device = "cpu" if kind == "cpu" else f"cuda:{index}"
        self.placed_device = self.device
        self.half = kind == "cuda"
        self.names = {int(k): str(v) for k, v in dict(model.names).items()}

    def detect(self, frames: Sequence[np.ndarray], batch_size: int = 1, conf: float = 0.1, iou: float = 0.7,
               imgsz: int = 640, max_det: int = 100) -> list[Detections]:
        """Detections of RGB uint8 ``frames``, ``batch_size`` frames per model call."""
        out: list[Detections] = []
        step = max(1, int(batch_size))
        for start in range(0, len(frames), step):
            # ultralytics reads numpy images as BGR
            batch = [np.ascontiguousarray(np.asarray(f)[..., ::-1]) for f in frames[start:start + step]]
            with inference(self.resolved.model_id):
                results = self.model.predict(batch, batch=len(batch), conf=conf, iou=iou, imgsz=imgsz,
                                             max_det=max_det, half=self.half, device=self.device, verbose=False)
            for result in results:
                boxes = result.boxes.cpu().numpy()
                out.append(Detections(boxes.xyxy.astype(np.float32), boxes.conf.astype(np.float32),
                                      boxes.cls.astype(np.int64)))
        return out


def _weights_in(folder: Path) -> Path:
    found = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if len(found) != 1:
        raise ModelUnavailable(f"folder {folder} should hold exactly one YOLO weights file ({', '.join(WEIGHT_SUFFIXES)}), "
                               f"found {len(found)}")
    return found[0]


def _github_reachable(timeout_s: float = 3.0) -> bool:
    try:
        with socket.create_connection(("github.com", 443), timeout_s):
            return True
    except OSError:
        return False


def _asset(name: str, store: Path, setting: str) -> Path:
    """A release asset in the model store, downloaded first where GitHub answers."""
    if Path(name).name != name or not name.endswith(".pt"):
        raise ModelUnavailable(f"YOLO model {name!r} is neither a local file nor a release asset name like "
                               f"yolov8n.pt; set {setting}")
    target = Path(store) / "ultralytics" / name
    if target.is_file():
        return target
    if not _github_reachable():
        raise ModelUnavailable(f"YOLO weights {name} are not in {target.parent} and GitHub is not reachable "
                               f"(no COCO weights ship offline); set {setting} to a local .pt/.onnx file")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{name}.part-{os.getpid()}")
    try:
        urllib.request.urlretrieve(RELEASE_URL.format(tag=RELEASE_TAG, name=name), tmp)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelUnavailable(f"YOLO weights {name} could not be downloaded ({type(exc).__name__}); "
                               f"set {setting} to a local .pt/.onnx file") from exc
    return target


def load_model(resolved: ResolvedModel, kind: str, index: int, store: Path) -> YoloDetector:
    """Registry loader of ``yolov8n``/``yolov8x``: a local file or folder, or a release asset name."""
    setting = SETTINGS.get(resolved.model_id, "TIKTOK_ASSETS_OBJECT_MODEL")
    path = Path(resolved.path).expanduser()
    if resolved.origin == "hub":
        path = _asset(resolved.path, store, setting)
    elif path.is_dir():
        path = _weights_in(path)
    if not path.is_file():
        raise ModelUnavailable(f"YOLO weights {path} do not exist; set {setting}")
    import_ultralytics(store)
    from ultralytics import YOLO

    try:
        model = YOLO(str(path), task="detect")
    except Exception as exc:  # noqa: BLE001 - torch/onnx/format errors come in many types
        raise ModelUnavailable(f"YOLO weights {path} could not be loaded ({type(exc).__name__}: {exc}); "
                               f"set {setting} to a detection model") from exc
    if getattr(model, "task", "detect") != "detect":
        raise ModelUnavailable(f"YOLO weights {path} are a {model.task} model, not a detector; set {setting}")
    return YoloDetector(model, resolved, kind, index)


def coco_names() -> dict[int, str]:
    """The 80 COCO class names, from the dataset file shipped in ultralytics."""
    import yaml

    spec = importlib.util.find_spec("ultralytics")
    folder = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
    if folder is None:
        raise ModelUnavailable("ultralytics is not installed")
    names = yaml.safe_load((folder / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
    return {int(k): str(v) for k, v in names.items()}


def _calibration_images():
    """Noise, a flat grey and two bundled photos (scikit-image) as a (4, 3, 320, 192) tensor in 0..1."""
    import torch
    from skimage import data
    from skimage.transform import resize

    rng = np.random.default_rng(0)
    pictures = [rng.random((320, 192, 3)), np.full((320, 192, 3), 0.45)]
    pictures += [resize(photo, (320, 192, 3), anti_aliasing=True) for photo in (data.astronaut(), data.chelsea())]
    return torch.from_numpy(np.stack(pictures).astype(np.float32)).permute(0, 3, 1, 2).contiguous()


def tiny_random_yolo(folder: Path, seed: int = 0) -> Path:
    """Save a randomly initialised YOLOv8n (``yolov8n.yaml``) with the 80 COCO class names to ``folder``.

    For tests of the code path only: its boxes mean nothing. Batch-norm statistics come from noise
    images and the last class convolutions are rescaled so that confidences spread over 0..1 (a
    fresh model scores every box ~0.05 whatever the picture) and a few boxes pass the thresholds.
    """
    import torch

    import_ultralytics(folder.parent)
    from ultralytics import YOLO

    torch.manual_seed(seed)
    model = YOLO("yolov8n.yaml", task="detect")
    net = model.model
    # batch-norm statistics from a few noise images keep activations O(1) through the random layers
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average
    calibration = _calibration_images()
    net.train()
    with torch.no_grad():
        net(calibration)
    net.eval()
    # class logits: unit spread, shifted so that about 1 in 500 anchor-class pairs scores above 0.5
    convs = [branch[-1] for branch in net.model[-1].cv3]
    seen: list[torch.Tensor] = []
    hooks = [conv.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().flatten())) for conv in convs]
    with torch.no_grad():
        for conv in convs:
            torch.nn.init.normal_(conv.weight)
            torch.nn.init.zeros_(conv.bias)
        net(calibration)
        logits = torch.cat(seen)
        scale = 1.0 / float(logits.std())
        picked = logits[torch.randperm(logits.numel())[:200_000]] * scale
        shift = -float(torch.quantile(picked, 0.998))
        for conv in convs:
            conv.weight.mul_(scale)
            conv.bias.fill_(shift)
    for hook in hooks:
        hook.remove()
    net.names = coco_names()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny-yolov8n-random.pt"
    model.save(str(path))
    return folder
