"""Scenes: runs of consecutive shots that belong together (same place or subject).

Every shot (from ``cut_analysis``, see ``_shots``) gets a look from up to ``LOOK_FRAMES`` of its
low-res frames (frames inside gradual transitions left out): its 4x4x4 RGB histogram and its mean
CIELAB colour. Two shots look alike when

    distance = 0.5 * TV(histograms) + 0.5 * min(1, delta E of the mean colours / 30) <= SAME_MAX

(TV = total-variation distance, 0 same colours .. 1 disjoint). Colour is used, not layout, so a
return to the same place from another angle or after a camera move still matches; two different
places with the same colours and light are the blind spot.

Rule (overlapping links): each shot joins the scene of the shot before it if the two look alike.
Otherwise the shot looks back at most ``MAX_CUTAWAY_SHOTS`` shots further; if it looks like an
earlier shot and the shots in between (the cut-away) last at most ``MAX_CUTAWAY_S`` seconds in
total, the earlier shot's scene is extended over the cut-away to this shot (A B A and A B C A are
one scene when B / B C are short). Otherwise the shot starts a new scene.

Each scene row carries its shots, how many of them are cut-aways (bridged shots that look like no
other shot of the scene; in A B A B both subjects belong to the scene), and a compact signature,
from its own shots (cut-aways left out): the duration-weighted 4x4x4 RGB
histogram (64 shares, comparable across videos) and a 3-colour palette.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..passes import frame_stats
from . import _palette, _shots
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

LOOK_FRAMES = 8
SAME_MAX = 0.35
MAX_CUTAWAY_SHOTS = 2
MAX_CUTAWAY_S = 4.0
DELTA_E_SCALE = 30.0
PALETTE_K = 3

COLUMNS = (
    pa.field("scene_index", pa.int64()),
    pa.field("shot_count", pa.int64()),
    pa.field("first_shot", pa.int64()),
    pa.field("last_shot", pa.int64()),
    pa.field("cutaway_shots", pa.int64()),
    pa.field("duration_s", pa.float64()),
    pa.field("palette_hex", pa.list_(pa.string())),
    pa.field("signature", pa.list_(pa.float64())),
)


def coarse(hist: np.ndarray) -> np.ndarray:
    """An 8x8x8 histogram pooled to 4x4x4 (64 shares)."""
    pooled = hist.reshape(4, 2, 4, 2, 4, 2).sum(axis=(1, 3, 5)).ravel()
    return pooled / max(float(pooled.sum()), 1e-9)


def shot_looks(
    frames: np.ndarray, shots: _shots.ShotList, hists: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(4x4x4 histogram, mean Lab colour, picked frame indices) for every shot (``hists``: the
    frames' 8x8x8 histograms from the shared frame statistics; computed here when None)."""
    looks = []
    for shot in shots.shots:
        idx = np.arange(shot.first, shot.last + 1)
        clean = idx[~shots.in_transition[idx]]
        if clean.size:
            idx = clean
        picked = idx[np.linspace(0, idx.size - 1, min(LOOK_FRAMES, idx.size)).round().astype(int)]
        images = np.stack([np.asarray(frames[i]) for i in picked])
        picked_hists = frame_stats.joint_histograms(images) if hists is None else np.asarray(hists[picked])
        hist = coarse(picked_hists.mean(axis=0))
        lab = _palette.to_lab(_palette.sample_pixels(images, 4000)).mean(axis=0)
        looks.append((hist, lab, picked))
    return looks


def distance(a: tuple, b: tuple) -> float:
    """Look distance of two shots, 0 (identical) .. 1 (see the module docstring)."""
    tv = float(frame_stats.tv_distance(a[0], b[0]))
    delta_e = float(np.linalg.norm(a[1] - b[1]))
    return 0.5 * tv + 0.5 * min(1.0, delta_e / DELTA_E_SCALE)


def group_shots(looks: list, durations: list[float]) -> tuple[list[int], set[int]]:
    """Scene number per shot and the cut-away shots bridged (see the module docstring)."""
    scene = [0] * len(looks)
    bridged: set[int] = set()
    for j in range(1, len(looks)):
        if distance(looks[j - 1], looks[j]) <= SAME_MAX:
            scene[j] = scene[j - 1]
            continue
        link = None
        for i in range(j - 2, max(-1, j - 2 - MAX_CUTAWAY_SHOTS), -1):
            if sum(durations[i + 1 : j]) > MAX_CUTAWAY_S:
                break
            if distance(looks[i], looks[j]) <= SAME_MAX:
                link = i
        if link is None:
            scene[j] = scene[j - 1] + 1
            continue
        for k in range(link + 1, j + 1):
            scene[k] = scene[link]
            if k < j:
                bridged.add(k)
    # A bridged shot that looks like another shot of its scene is a second subject (A B A B), not a cut-away.
    cutaways = {
        k for k in bridged
        if all(distance(looks[k], looks[m]) > SAME_MAX for m in range(len(looks)) if m != k and scene[m] == scene[k])
    }
    return scene, cutaways


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    shots = _shots.shot_list(media, context)
    looks = shot_looks(media.lowres, shots, frame_stats.stats(media).hist)
    scene_of, cutaways = group_shots(looks, [s.duration_s for s in shots.shots])
    rows = []
    for number in sorted(set(scene_of)):
        members = [k for k, s in enumerate(scene_of) if s == number]
        first, last = shots.shots[members[0]], shots.shots[members[-1]]
        core = [k for k in members if k not in cutaways]  # the scene's look leaves cut-aways out
        weights = np.array([shots.shots[k].duration_s for k in core]) + 1e-6
        hist = np.average(np.stack([looks[k][0] for k in core]), axis=0, weights=weights)
        images = [media.lowres[i] for k in core for i in looks[k][2][:: max(1, LOOK_FRAMES // 4)]]
        colours = _palette.palette(_palette.sample_pixels(images, 4000), PALETTE_K)
        rows.append({
            "start_s": first.start_s,
            "end_s": last.end_s,
            "scene_index": len(rows),
            "shot_count": len(members),
            "first_shot": members[0],
            "last_shot": members[-1],
            "cutaway_shots": sum(1 for k in members if k in cutaways),
            "duration_s": round(last.end_s - first.start_s, 3),
            "palette_hex": [c.hex for c in colours],
            "signature": [round(float(v), 4) for v in hist],
        })
    durations = [r["duration_s"] for r in rows]
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, media.duration_s)],
        metadata={
            "scenes": len(rows),
            "shots": len(shots.shots),
            "mean_scene_length_s": round(float(np.mean(durations)), 2) if durations else 0.0,
            "longest_scene_s": round(max(durations), 2) if durations else 0.0,
            "cutaways_bridged": len(cutaways),
            "cuts_from": shots.source,
        },
    )


SPEC = AnalyzerSpec(
    name="scene_segmentation",
    modality="visual",
    description="Scenes as groups of consecutive shots of the same place or subject, with a visual signature",
    version="1",
    columns=COLUMNS,
    run=run,
    passes=("frame_stats",),
    depends_on=("cut_analysis",),
    main_figure="scenes",
    timeline_label="'scene ' || scene_index || ' (' || shot_count || CASE WHEN shot_count = 1 THEN ' shot)' ELSE ' shots)' END",
)
