"""CUDA libraries the GPU paths need beyond the driver, found before a model is placed on a GPU.

CTranslate2's 4.x wheels (faster-whisper) are CUDA 12 builds: they open ``libcublas.so.12`` the
first time a model multiplies, not when it loads, so a machine with only CUDA 13 (the lock's torch
brings cuBLAS 13) would fail in the middle of a transcription. :func:`ctranslate2_cublas_problem`
asks up front: the library on the loader's path, or the PyPI package ``nvidia-cublas-cu12`` (loaded
from its folder by full path, after which CTranslate2's lookup by name finds it), or a reason.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
from pathlib import Path

CTRANSLATE2_CUBLAS = ("libcublasLt.so.12", "libcublas.so.12")  # what CTranslate2 4.x opens (Lt first)
CUBLAS_PACKAGE = "nvidia-cublas-cu12"


def _package_lib_dirs() -> list[Path]:
    """``nvidia/cublas/lib`` folders of installed NVIDIA wheels (the CUDA 12 layout)."""
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return []
    roots = list(spec.submodule_search_locations or []) if spec else []
    return [Path(root) / "cublas" / "lib" for root in roots if (Path(root) / "cublas" / "lib").is_dir()]


def _open(names: tuple[str, ...], folder: Path | None) -> bool:
    try:
        for name in names:
            ctypes.CDLL(str(folder / name) if folder else name, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True


@functools.cache
def ctranslate2_cublas_problem() -> str | None:
    """None when cuBLAS 12 can be opened (now loaded for CTranslate2), else what to install."""
    if _open(CTRANSLATE2_CUBLAS, None):
        return None
    for folder in _package_lib_dirs():
        if _open(CTRANSLATE2_CUBLAS, folder):
            return None
    return (f"CTranslate2 needs CUDA 12's cuBLAS ({CTRANSLATE2_CUBLAS[1]}), which is neither on the library "
            f"path nor installed as the PyPI package {CUBLAS_PACKAGE} (requirements-gpu.lock)")
