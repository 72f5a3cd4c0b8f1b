"""Measured coverage: which parts of the media an analyzer really read.

:class:`TrackedMedia` wraps a :class:`~tiktok_assets.media.MediaCache` (composition, same
attributes). Its ``frames``, ``lowres`` and ``audio`` are :class:`TrackedArray` views that record
the indices along the first axis that the analyzer reads, without copying any data:

* an int, a slice (with or without step), an index array or list, a boolean mask, or a tuple key
  whose first element is one of these (``frames[i, ::4]``) records exactly those indices;
* iteration records each item as it is yielded (an analyzer that stops early read only the start);
* anything else that hands out the data as a whole (``np.asarray``, ufuncs, ``.astype``, ``.mean``,
  arithmetic, ``frames[..., 0]``) records the whole stream; so does ``audio_path`` for the audio,
  since a model given the file reads all of it.

:meth:`TrackedMedia.read_spans` turns the records into time spans: sampled or low-res frame ``i``
stands for ``[t_i, t_{i+1})`` (the last one up to the end of the video), audio sample ``k`` for
``[k / rate, (k + 1) / rate)`` (the last one up to the end of the video). The union over the
three streams is what the analyzer read.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

Span = tuple[float, float]

# Attributes that describe an array without reading its contents.
_DESCRIPTIVE = frozenset({"shape", "dtype", "ndim", "size", "itemsize", "nbytes"})


class AccessLog:
    """Indices read along the first axis of one stream of ``length`` items (a boolean mask)."""

    def __init__(self, length: int):
        self.length = int(length)
        self.read = np.zeros(self.length, dtype=bool)

    def whole(self) -> None:
        self.read[:] = True

    def record(self, key: Any) -> None:
        """Mark what indexing with ``key`` reads along the first axis."""
        if isinstance(key, tuple):
            if not key:
                self.whole()
                return
            key = key[0]
        if key is None or key is Ellipsis:
            self.whole()
        elif isinstance(key, slice):
            self.read[key] = True
        elif isinstance(key, (int, np.integer)):
            if -self.length <= int(key) < self.length:
                self.read[int(key)] = True
        else:
            index = np.asarray(key)
            if index.dtype == bool:
                if index.ndim == 0:
                    self.whole()
                elif index.shape[0] == self.length:
                    self.read |= index.reshape(self.length, -1).any(axis=1)
            elif index.size and np.issubdtype(index.dtype, np.integer):
                flat = index.reshape(-1)
                self.read[flat[(flat >= -self.length) & (flat < self.length)]] = True
            elif index.size:
                self.whole()

    def runs(self) -> list[tuple[int, int]]:
        """Read indices as half-open runs ``(first, stop)``."""
        if not self.read.any():
            return []
        edges = np.flatnonzero(np.diff(np.concatenate(([0], self.read.view(np.int8), [0]))))
        return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]

    @property
    def share(self) -> float:
        return float(self.read.mean()) if self.length else 0.0


def _plain(value: Any) -> Any:
    return value.data if isinstance(value, TrackedArray) else value


class TrackedArray:
    """An array view that records which first-axis indices are read (see the module docstring)."""

    def __init__(self, data: np.ndarray, log: AccessLog):
        self.data = data
        self.log = log

    def __getitem__(self, key: Any) -> Any:
        self.log.record(key)
        return self.data[key]

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self.data)):
            self.log.read[i] = True
            yield self.data[i]

    def __len__(self) -> int:
        return len(self.data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        self.log.whole()
        data = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return np.array(data, copy=True) if copy else data

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        self.log.whole()
        return getattr(ufunc, method)(*[_plain(x) for x in inputs], **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        self.log.whole()
        return func(*[_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()})

    def __getattr__(self, name: str) -> Any:
        if name in ("data", "log"):
            raise AttributeError(name)
        if name not in _DESCRIPTIVE:
            self.log.whole()
        return getattr(self.data, name)

    def __repr__(self) -> str:
        return f"TrackedArray(shape={self.data.shape}, dtype={self.data.dtype}, read={self.log.share:.0%})"


def _binary(op: Any, reflected: bool = False) -> Any:
    def method(self: TrackedArray, other: Any) -> Any:
        self.log.whole()
        return op(_plain(other), self.data) if reflected else op(self.data, _plain(other))

    return method


for _name, _op in {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
    "floordiv": operator.floordiv, "pow": operator.pow, "matmul": operator.matmul,
    "and": operator.and_, "or": operator.or_,
}.items():
    setattr(TrackedArray, f"__{_name}__", _binary(_op))
    setattr(TrackedArray, f"__r{_name}__", _binary(_op, reflected=True))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(TrackedArray, f"__{_name}__", _binary(getattr(operator, _name)))
TrackedArray.__hash__ = None  # type: ignore[assignment]  # like ndarray: __eq__ is elementwise


class TrackedMedia:
    """A :class:`MediaCache` seen by one analyzer run, recording what it reads."""

    def __init__(self, media: Any):
        self.media = media
        self.frames_log = AccessLog(media.meta.frame_shape[0])
        self.lowres_log = AccessLog(media.meta.lowres_shape[0])
        self._audio: TrackedArray | None = None
        self._frames: TrackedArray | None = None
        self._lowres: TrackedArray | None = None
        self.audio_log: AccessLog | None = None
        self.audio_path_used = False

    # Pass-through facts (reading them reads no media).
    meta = property(lambda self: self.media.meta)
    video_id = property(lambda self: self.media.video_id)
    duration_s = property(lambda self: self.media.duration_s)
    has_audio = property(lambda self: self.media.has_audio)
    directory = property(lambda self: self.media.directory)
    sample_rate = property(lambda self: self.media.sample_rate)
    frame_times = property(lambda self: self.media.frame_times)
    lowres_times = property(lambda self: self.media.lowres_times)

    @property
    def frames(self) -> TrackedArray:
        if self._frames is None:
            self._frames = TrackedArray(self.media.frames, self.frames_log)
        return self._frames

    @property
    def lowres(self) -> TrackedArray:
        if self._lowres is None:
            self._lowres = TrackedArray(self.media.lowres, self.lowres_log)
        return self._lowres

    @property
    def audio(self) -> TrackedArray:
        if self._audio is None:
            data = self.media.audio
            self.audio_log = AccessLog(len(data))
            self._audio = TrackedArray(data, self.audio_log)
        return self._audio

    @property
    def audio_path(self) -> Path | None:
        path = self.media.audio_path
        if path is not None:
            self.audio_path_used = True
        return path

    def read_spans(self) -> list[Span]:
        """Time spans of the video that the analyzer read in any stream (merged, sorted)."""
        duration = float(self.duration_s)
        spans: list[Span] = []
        for log, times in ((self.frames_log, self.media.frame_times), (self.lowres_log, self.media.lowres_times)):
            times = np.asarray(times, dtype=np.float64)
            for first, stop in log.runs():
                end = float(times[stop]) if stop < len(times) else duration
                spans.append((0.0 if first == 0 else float(times[first]), end))
        if self.audio_path_used:
            spans.append((0.0, duration))
        elif self.audio_log is not None:
            rate, length = float(self.sample_rate), self.audio_log.length
            # The audio can end a few ms before the last frame: reading its end covers the rest.
            spans += [(a / rate, duration if b == length else b / rate) for a, b in self.audio_log.runs()]
        return merge_spans(spans, duration)


def merge_spans(spans: list[Span], duration: float | None = None) -> list[Span]:
    """Sorted union of spans, clipped to ``[0, duration]``; empty spans are dropped."""
    clipped = []
    for a, b in spans:
        a, b = max(0.0, float(a)), float(b)
        if duration is not None:
            b = min(b, float(duration))
        if b > a:
            clipped.append((a, b))
    merged: list[Span] = []
    for a, b in sorted(clipped):
        if merged and a <= merged[-1][1] + 1e-9:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def intersect_spans(left: list[Span], right: list[Span]) -> list[Span]:
    """Intersection of two span lists (each merged first)."""
    out: list[Span] = []
    a_spans, b_spans = merge_spans(left), merge_spans(right)
    i = j = 0
    while i < len(a_spans) and j < len(b_spans):
        start = max(a_spans[i][0], b_spans[j][0])
        end = min(a_spans[i][1], b_spans[j][1])
        if end > start:
            out.append((start, end))
        if a_spans[i][1] < b_spans[j][1]:
            i += 1
        else:
            j += 1
    return out


def total(spans: list[Span]) -> float:
    return sum(b - a for a, b in merge_spans(spans))
