"""The Dagster side of the model layer: a resource handing out the per-process loader, and a fake.

``ModelsResource().loader()`` is the process-wide :class:`ModelLoader` of the environment's settings
(each step process loads a model once, however many analyzers or partitions it runs). The fake
hands out a *randomly initialised* tiny model of the real architecture for the models it is told
to provide and raises :class:`ModelUnavailable` for all others: it never makes up outputs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg

from ..config import Settings, load_settings
from .errors import ModelUnavailable, ResolvedModel
from .loading import ModelLoader, _import, parse_device, process_loader
from .specs import REGISTRY


class ModelsResource(dg.ConfigurableResource):
    """Model loading for analyzer steps (``loader().load(model_id, device)``)."""

    def loader(self) -> ModelLoader:
        return process_loader(load_settings())


def tiny_wav2vec2_classifier(folder: Path, labels: tuple[str, ...], seed: int = 0) -> Path:
    """Save a tiny randomly initialised wav2vec2 audio classifier (+ feature extractor) to ``folder``."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(seed)
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, classifier_proj_size=16, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
    )
    Wav2Vec2ForSequenceClassification(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, do_normalize=True,
                             return_attention_mask=True).save_pretrained(folder)
    return folder


class FakeModelLoader:
    """A loader for tests: ``provide`` maps model ids to a function ``(folder) -> model folder`` that
    builds a tiny random model; that folder is loaded with the registry's real loader. Every other
    model raises ModelUnavailable. Loads are counted in ``counts``."""

    def __init__(self, settings: Settings, workdir: Path, provide: dict[str, Any] | None = None):
        self.settings = settings
        self.workdir = Path(workdir)
        self.provide = dict(provide or {})
        self.counts: Counter[str] = Counter()
        self._models: dict[tuple[str, str], Any] = {}

    def resolve(self, model_id: str) -> ResolvedModel:
        spec = REGISTRY[model_id]
        if model_id not in self.provide:
            raise ModelUnavailable(f"model {model_id} is not provided by the fake loader (set {spec.setting or '-'})")
        folder = self.workdir / model_id
        if not folder.exists():
            self.provide[model_id](folder)
        return ResolvedModel(f"tiny random {model_id}", str(folder), "fake (random weights)", model_id)

    def load(self, model_id: str, device: str = "cpu", path: str | None = None) -> Any:
        kind, index = parse_device(device)
        key = (model_id, f"{kind}:{index}")
        if key not in self._models:
            resolved = self.resolve(model_id)
            self._models[key] = _import(REGISTRY[model_id].loader)(resolved, kind, index, self.workdir)
            self.counts[model_id] += 1
        return self._models[key]


class FakeModelsResource(ModelsResource):
    """``ModelsResource`` for tests: a :class:`FakeModelLoader` providing ``provide`` (model ids with a
    tiny random model builder in :data:`FAKE_BUILDERS`) under ``workdir``."""

    workdir: str
    provide: list[str] = []

    def loader(self) -> FakeModelLoader:  # type: ignore[override]
        key = (self.workdir, tuple(self.provide))
        if key not in _FAKES:
            _FAKES[key] = FakeModelLoader(load_settings(), Path(self.workdir), {m: FAKE_BUILDERS[m] for m in self.provide})
        return _FAKES[key]


_FAKES: dict[tuple[str, tuple[str, ...]], FakeModelLoader] = {}


FAKE_BUILDERS = {
    "speech-emotion": lambda folder: tiny_wav2vec2_classifier(folder, ("calm", "tense", "cheerful")),
    "qwen2-vl-2b": lambda folder: _import("tiktok_assets.model_registry.tiny_vlm:tiny_qwen2_vl")(folder),
    "yolov8n": lambda folder: _import("tiktok_assets.analyzers._yolo:tiny_random_yolo")(folder),
    "yolov8x": lambda folder: _import("tiktok_assets.analyzers._yolo:tiny_random_yolo")(folder),
}
