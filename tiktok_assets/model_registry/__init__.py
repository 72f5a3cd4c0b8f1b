"""The model layer: a registry of model specs, one load path, and a Dagster resource.

``process_loader(settings).load(model_id, device)`` is how analyzers get a model (through
``AnalyzerContext.models``); ``tiktok-assets models`` lists the registry (:mod:`.listing`).
"""

from .clock import ModelTime, inference, measuring
from .errors import ModelUnavailable, ResolvedModel
from .loading import (
    ModelLoader,
    clear_cache,
    fill_batch,
    load_counts,
    onnx_session,
    parse_device,
    process_loader,
)
from .specs import REGISTRY, ModelFile, ModelSpec, get_spec, models_of

__all__ = [
    "REGISTRY",
    "ModelFile",
    "ModelLoader",
    "ModelSpec",
    "ModelTime",
    "ModelUnavailable",
    "ResolvedModel",
    "clear_cache",
    "fill_batch",
    "get_spec",
    "inference",
    "load_counts",
    "measuring",
    "models_of",
    "onnx_session",
    "parse_device",
    "process_loader",
]
