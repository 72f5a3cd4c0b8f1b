"""Loader functions of registry models that need no analyzer code: ``(resolved, kind, index, store)``."""

from __future__ import annotations

import logging
from pathlib import Path

from .cuda_libs import ctranslate2_cublas_problem
from .errors import ModelUnavailable, ResolvedModel
from .loading import device_name, onnx_session, operator_threads

log = logging.getLogger("tiktok_assets")


def whisper(resolved: ResolvedModel, kind: str, index: int, store: Path):
    """A faster-whisper (CTranslate2) model: int8 on the CPU, float16 on ``cuda:<index>``; on the CPU
    (logged) when CUDA 12's cuBLAS, which CTranslate2 opens at its first multiplication, is missing.
    ``placed_device`` says where it runs."""
    from faster_whisper import WhisperModel

    if kind == "cuda":
        problem = ctranslate2_cublas_problem()
        if problem:
            log.warning("faster-whisper: %s; it runs on the cpu", problem)
            kind, index = "cpu", 0
    compute_type = "float16" if kind == "cuda" else "int8"
    try:
        model = WhisperModel(resolved.path, device=kind, device_index=index, compute_type=compute_type,
                             cpu_threads=operator_threads(), local_files_only=False)
    except Exception as exc:  # noqa: BLE001 - hub/network/CUDA errors come in many types
        raise ModelUnavailable(
            f"faster-whisper model {resolved.path!r} could not be loaded ({type(exc).__name__}); set "
            "TIKTOK_ASSETS_WHISPER_MODEL to 'base' (packaged) or a local CTranslate2 folder"
        ) from exc
    model.placed_device = device_name(kind, index)
    return model


class OnnxModel:
    """An ONNX Runtime session and the device it really runs on."""

    def __init__(self, session, placed_device: str):
        self.session = session
        self.placed_device = placed_device


def silero_vad(resolved: ResolvedModel, kind: str, index: int, store: Path) -> OnnxModel:
    """The Silero VAD graph shipped in faster-whisper (CPU: it is tiny and runs per 32 ms chunk)."""
    session, placed = onnx_session(Path(resolved.path), "cpu", 0, "silero-vad", threads=1)
    return OnnxModel(session, placed)
