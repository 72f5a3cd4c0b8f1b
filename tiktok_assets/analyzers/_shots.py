"""Shots and segments shared by the vision analyzers (not an analyzer itself).

Edit points come from the ``cut_analysis`` table only: an analyzer that needs shots declares
``depends_on=("cut_analysis",)`` and gets the table in ``context.inputs``. Nothing here runs
cut_analysis; when its table is missing (its run failed, never ran, or is not handed over), the
analyzer stops with an :class:`~.base.AnalyzerError` that says so. Shots partition the low-resolution full-rate stream: a hard cut starts a new shot
at its frame; a gradual transition (dissolve, fade) ends one shot and starts the next at its
middle frame, and its frames are flagged in :attr:`ShotList.in_transition` so that motion and
shot signatures can leave them out. (A fast zoom or pan that looks like a dissolve is rejected by
cut_analysis itself, so every transition it gives is taken as an edit point.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import AnalyzerContext, AnalyzerError


@dataclass(frozen=True)
class Transition:
    """An edit point on the lowres stream: frames ``first..last`` (inclusive) and its kind."""

    first: int
    last: int
    kind: str


@dataclass(frozen=True)
class Shot:
    """Frames ``first..last`` (inclusive) of the lowres stream and the time span they cover."""

    index: int
    first: int
    last: int
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Segment:
    """A piece of one shot (never crosses an edit point)."""

    shot_index: int
    first: int
    last: int
    start_s: float
    end_s: float


@dataclass
class ShotList:
    shots: list[Shot]
    transitions: list[Transition]
    in_transition: np.ndarray  # bool per lowres frame
    frame_shot: np.ndarray  # shot index per lowres frame
    times: np.ndarray
    source: str  # "cut_analysis" (its table)

    def crosses_edit(self, i: int, j: int) -> bool:
        """True when frames i..j (i < j) are not inside one shot or touch a gradual transition."""
        return bool(self.frame_shot[i] != self.frame_shot[j] or self.in_transition[i : j + 1].any())

    def segments(self, length_s: float) -> list[Segment]:
        """Every shot cut into near-equal pieces of about ``length_s`` seconds."""
        out: list[Segment] = []
        for shot in self.shots:
            pieces = max(1, int(round(shot.duration_s / length_s)))
            edges = np.linspace(shot.start_s, shot.end_s, pieces + 1)
            for a, b in zip(edges[:-1], edges[1:]):
                idx = np.flatnonzero((self.times >= a - 1e-6) & (self.times < b - 1e-6))
                idx = idx[(idx >= shot.first) & (idx <= shot.last)]
                if idx.size == 0:
                    continue
                out.append(Segment(shot.index, int(idx[0]), int(idx[-1]), round(float(a), 3), round(float(b), 3)))
        return out


def edit_points(media, context: AnalyzerContext) -> tuple[list[Transition], str]:
    """Hard cuts and gradual transitions from cut_analysis's table (AnalyzerError when missing)."""
    times = media.lowres_times
    table = context.inputs.get("cut_analysis")
    if table is None:
        status = (context.input_runs.get("cut_analysis") or {}).get("status", "missing")
        raise AnalyzerError(
            f"shots need the cut_analysis table of {context.video_id}, but it was not handed over "
            f"(cut_analysis is {status}); run cut_analysis for this video first"
        )
    found = []
    for row in table.select(["end_s", "kind", "frame_index"]).to_pylist():
        first = int(row["frame_index"])
        last = first if row["kind"] == "hard_cut" else int(np.abs(times - row["end_s"]).argmin())
        found.append(Transition(first, max(first, last), row["kind"]))
    return sorted(found, key=lambda e: e.first), "cut_analysis"


def shot_list(media, context: AnalyzerContext) -> ShotList:
    """The video's shots over the lowres stream (see the module docstring)."""
    times = np.asarray(media.lowres_times, dtype=np.float64)
    n = len(times)
    events, source = edit_points(media, context)
    mask = np.zeros(n, dtype=bool)
    starts = [0]
    for event in events:
        if event.kind == "hard_cut":
            boundary = event.first
        else:
            mask[event.first : event.last + 1] = True
            boundary = (event.first + event.last + 1) // 2
        if 0 < boundary < n and boundary > starts[-1]:
            starts.append(boundary)
    shots = []
    frame_shot = np.zeros(n, dtype=np.int64)
    for k, first in enumerate(starts):
        last = starts[k + 1] - 1 if k + 1 < len(starts) else n - 1
        start_s = 0.0 if k == 0 else float(times[first])
        end_s = float(times[starts[k + 1]]) if k + 1 < len(starts) else float(media.duration_s)
        shots.append(Shot(k, first, last, round(start_s, 3), round(max(end_s, start_s), 3)))
        frame_shot[first : last + 1] = k
    return ShotList(shots, events, mask, frame_shot, times, source)


def frames_in(frame_times: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """Indices of sampled frames whose time lies in [start_s, end_s)."""
    return np.flatnonzero((frame_times >= start_s - 1e-6) & (frame_times < end_s - 1e-6))
