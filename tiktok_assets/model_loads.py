"""How many times this process loaded each model (registry id -> loads), for the step logs.

Group steps log the counts at their end ("model loads in this process: faster-whisper=1, ..."), so
a test or an operator can see from a run's log that a model loaded once per group process, not once
per video. Every model loads through :mod:`tiktok_assets.model_registry`, which counts the loads.
"""

from __future__ import annotations

from .model_registry.loading import load_counts


def model_loads() -> dict[str, int]:
    """Registry model id -> loads in this process so far (models never loaded here are left out)."""
    return {model_id: n for model_id, n in load_counts().items() if n}
