"""How many times this process loaded each model: the misses of the per-process model caches.

Group steps log the counts at their end ("model loads in this process: whisper=1, ..."), so a
test or an operator can see from a run's log that a model loaded once per group process, not
once per video. Only modules that are already imported are looked at (nothing is loaded here).
"""

from __future__ import annotations

import sys

# model name -> (module, name of the functools.cache'd loader in it)
LOADERS = {
    "whisper": ("tiktok_assets.analyzers.speech_transcription", "load_whisper"),
    "speech_emotion": ("tiktok_assets.analyzers.speech_emotion", "load_classifier"),
    "yamnet": ("tiktok_assets.analyzers._yamnet", "load_yamnet"),
}


def model_loads() -> dict[str, int]:
    """Model -> loads in this process so far (models never loaded here are left out)."""
    counts = {}
    for name, (module_name, attr) in LOADERS.items():
        module = sys.modules.get(module_name)
        loader = getattr(module, attr, None) if module is not None else None
        info = getattr(loader, "cache_info", None)
        if info is not None and info().misses:
            counts[name] = info().misses
    return counts
