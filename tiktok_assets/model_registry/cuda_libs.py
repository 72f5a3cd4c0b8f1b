"""CUDA libraries the GPU paths need beyond the driver, found before a model is placed on a GPU.

CTranslate2's 4.x wheels (faster-whisper) are CUDA 12 builds: they open ``libcublas.so.12`` the
first time a model multiplies, not when it loads, so a machine with only CUDA 13 (the lock's torch
brings cuBLAS 13) would fail in the middle of a transcription. :func:`ctranslate2_cublas_problem`
asks up front: the cuBLAS the installed CTranslate2 names (read from its library) on the loader's
path, or in an NVIDIA wheel (``nvidia-cublas-cu12``: loaded from its folder by full path, after
which CTranslate2's lookup by name finds it), or a reason naming what to install.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import mmap
import re
from pathlib import Path

DEFAULT_CUBLAS_MAJOR = "12"  # CTranslate2 4.x wheels, when the library cannot be read
CUBLAS_PACKAGE = "nvidia-cublas-cu12"


def _package_dirs(name: str) -> list[Path]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    return [Path(root) for root in (spec.submodule_search_locations or [])] if spec else []


def ctranslate2_cublas_major() -> str:
    """The cuBLAS major version the installed CTranslate2 library opens (``libcublas.so.<n>``)."""
    for root in _package_dirs("ctranslate2"):
        libs = sorted(root.parent.glob("ctranslate2.libs/libctranslate2*.so*")) + sorted(root.glob("libctranslate2*.so*"))
        for lib in libs:
            with open(lib, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                found = re.search(rb"libcublas\.so\.(\d+)", data)
                major = found.group(1).decode() if found else None
            if major:
                return major
    return DEFAULT_CUBLAS_MAJOR


def _lib_dirs(major: str) -> list[Path]:
    """Folders of installed NVIDIA wheels that hold cuBLAS ``major`` (CUDA 12 and CUDA 13 layouts)."""
    return [root / sub / "lib" for root in _package_dirs("nvidia") for sub in ("cublas", f"cu{major}")
            if (root / sub / "lib" / f"libcublas.so.{major}").is_file()]


def _open(names: tuple[str, ...], folder: Path | None) -> bool:
    try:
        for name in names:
            ctypes.CDLL(str(folder / name) if folder else name, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True


@functools.cache
def ctranslate2_cublas_problem() -> str | None:
    """None when CTranslate2's cuBLAS can be opened (now loaded for it), else what to install."""
    major = ctranslate2_cublas_major()
    names = (f"libcublasLt.so.{major}", f"libcublas.so.{major}")  # Lt first: cuBLAS needs it
    if _open(names, None):
        return None
    for folder in _lib_dirs(major):
        if _open(names, folder):
            return None
    package = CUBLAS_PACKAGE if major == "12" else f"nvidia-cublas (CUDA {major})"
    return (f"CTranslate2 needs CUDA {major}'s cuBLAS ({names[1]}), which is neither on the library path "
            f"nor installed as the PyPI package {package} (requirements-gpu.lock)")
