"""Camera motion between pairs of low-res frames (sparse optical flow, ``analyzers._motion``),
computed once per video and pair list.

camera_analysis and visual_effects measure the same pairs (``step`` apart inside each shot); the
first to ask computes them, the other reads the file. The file name holds a hash of the pairs, so a
different pair list (other shots, other step) is a different file. Reading the motions records the
two frames of every pair as read, as tracking them did.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from . import store

_FIELDS = ("dt", "dx", "dy", "log_scale", "rotation", "points", "inlier_share", "spread")


def _key(pairs: np.ndarray, times: np.ndarray) -> str:
    digest = hashlib.sha1(np.ascontiguousarray(pairs, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(times, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


def pair_motions(media: Any, times: np.ndarray, pairs: list[tuple[int, int]]) -> list:
    """:class:`~tiktok_assets.analyzers._motion.PairMotion` (or None) for each (i, j) pair."""
    from ..analyzers import _motion

    base = store.base_media(media)
    index = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    times = np.asarray(times, dtype=np.float64)

    def compute() -> dict[str, np.ndarray]:
        found = _motion.track(base.lowres, times, [tuple(p) for p in index.tolist()])
        ok = np.array([m is not None for m in found], dtype=bool)
        values = np.zeros((len(found), len(_FIELDS)), dtype=np.float64)
        for k, m in enumerate(found):
            if m is not None:
                values[k] = [getattr(m, f) for f in _FIELDS]
        return {"pairs": index, "ok": ok, "values": values}

    arrays = store.cached(media, "motion", compute, key=_key(index, times)) if len(index) else {
        "pairs": index, "ok": np.zeros(0, bool), "values": np.zeros((0, len(_FIELDS)))}
    store.mark_lowres(media, index.ravel().tolist())
    out = []
    for (i, j), ok, row in zip(arrays["pairs"].tolist(), arrays["ok"], arrays["values"]):
        if not ok:
            out.append(None)
            continue
        fields = dict(zip(_FIELDS, row.tolist()))
        fields["points"] = int(fields["points"])
        out.append(_motion.PairMotion(int(i), int(j), **fields))
    return out
