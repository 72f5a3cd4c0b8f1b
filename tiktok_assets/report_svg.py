"""The HTML report's two figures as hand-written inline SVG: the timeline and the score bars.

Plain SVG elements (rect, line, polyline, text, image) with text as text, so a browser searches and
selects it; nothing is rasterised except the keyframes, which are JPEG data URIs with ids
``keyframe-<n>``. Writing the markup directly takes milliseconds where a plotting library took over
a second per report, on the scoring step's critical path.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .analyzers.base import MODALITIES

COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
WIDTH = 1300  # px of the whole figure
LEFT, RIGHT = 170, 20  # px for the row titles, and after the plot
KEYFRAME_H, LANE_H, PACE_H, COVERAGE_H, AXIS_H = 120, 30, 60, 16, 42
FONT = "font-family=\"DejaVu Sans, Arial, sans-serif\""
TICK_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 3600)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, text: str, size: float = 9, anchor: str = "start", extra: str = "") -> str:
    return (f"<text x=\"{_num(x)}\" y=\"{_num(y)}\" font-size=\"{_num(size)}\" text-anchor=\"{anchor}\" "
            f"dominant-baseline=\"middle\" {extra}>{html.escape(text)}</text>")


def tick_step(duration: float, most: int = 12) -> float:
    """The smallest of ``TICK_STEPS`` that puts at most ``most`` ticks on ``duration`` seconds."""
    return next((s for s in TICK_STEPS if duration / s <= most), TICK_STEPS[-1])


class _Rows:
    """Figure rows stacked top to bottom on one time axis: ``x(t)`` maps seconds to px."""

    def __init__(self, duration: float) -> None:
        self.right = max(duration, 1e-3)
        self.plot_w = WIDTH - LEFT - RIGHT
        self.parts: list[str] = []
        self.y = 0.0

    def x(self, t: float) -> float:
        return LEFT + min(max(t, 0.0), self.right) / self.right * self.plot_w

    def row(self, height: float, title: str | None, draw: Callable[[float, float], None]) -> None:
        """A row ``height`` px tall with ``title`` at its left; ``draw(top, height)`` fills it."""
        top = self.y
        self.parts.append(f"<rect x=\"{LEFT}\" y=\"{_num(top)}\" width=\"{self.plot_w}\" height=\"{_num(height)}\" "
                          "fill=\"none\" stroke=\"#bbb\"/>")
        if title:
            self.parts.append(_text(LEFT - 6, top + height / 2, title, 10, "end"))
        draw(top, height)
        self.y += height

    def axis(self) -> None:
        """Ticks and their seconds under the rows, and the axis title."""
        step = tick_step(self.right)
        top = self.y
        for t in np.arange(0.0, self.right + 1e-9, step):
            x = self.x(float(t))
            self.parts.append(f"<line x1=\"{_num(x)}\" y1=\"0\" x2=\"{_num(x)}\" y2=\"{_num(top + 4)}\" "
                              "stroke=\"#000\" stroke-opacity=\"0.08\"/>")
            self.parts.append(_text(x, top + 12, _num(float(t)), 9, "middle"))
        self.parts.append(_text(LEFT + self.plot_w / 2, top + 30, "seconds", 10, "middle"))
        self.y += AXIS_H

    def svg(self, clip_id: str) -> str:
        height = _num(self.y)
        clip = (f"<defs><clipPath id=\"{clip_id}\"><rect x=\"{LEFT}\" y=\"0\" width=\"{self.plot_w}\" "
                f"height=\"{height}\"/></clipPath></defs>")
        return (f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" {FONT}>{clip}"
                + "".join(self.parts) + "</svg>")


def timeline_svg(duration: float, spans: Sequence[tuple[float, float]], keyframe_uris: Sequence[str] | None,
                 keyframe_shapes: Sequence[tuple[int, int]] | None,
                 lanes: Sequence[tuple[str, Sequence[tuple[float, float, str, str]]]],
                 pace: Sequence[tuple[float, float]], coverage: Sequence[Mapping[str, Any]]) -> str:
    """The keyframes (one ``<image id="keyframe-n">`` per shot, on its shot's span), one swimlane
    per lane (bars for spans, ticks for instants, labels clipped to the plot), the pace per second
    and the per-second coverage of each modality, over one time axis in seconds."""
    rows = _Rows(duration)
    parts = rows.parts
    clip = "clip-timeline"

    def keyframes(top: float, height: float) -> None:
        for index, ((a, b), uri, (h, w)) in enumerate(zip(spans, keyframe_uris or [], keyframe_shapes or []), start=1):
            x0, x1 = rows.x(a), rows.x(b)
            parts.append(f"<rect x=\"{_num(x0)}\" y=\"{_num(top)}\" width=\"{_num(max(x1 - x0, 0.5))}\" "
                         f"height=\"{_num(height)}\" fill=\"{COLOURS[index % 2]}\" fill-opacity=\"0.15\"/>")
            pic_h = height - 8
            pic_w = min(max(x1 - x0 - 2, 1.0), pic_h * w / max(h, 1))  # the picture's shape where room allows
            mid = (x0 + x1) / 2
            parts.append(f"<image id=\"keyframe-{index}\" x=\"{_num(mid - pic_w / 2)}\" y=\"{_num(top + 4)}\" "
                         f"width=\"{_num(pic_w)}\" height=\"{_num(pic_h)}\" preserveAspectRatio=\"xMidYMid slice\" "
                         f"href=\"{uri}\"/>")

    def lane(items: Sequence[tuple[float, float, str, str]], transcript: bool) -> Callable[[float, float], None]:
        def draw(top: float, height: float) -> None:
            colour_of: dict[str, str] = {}
            mid = top + height / 2
            for k, (a, b, text, analyzer) in enumerate(items):
                colour = colour_of.setdefault(analyzer, COLOURS[len(colour_of) % len(COLOURS)])
                x0, x1 = rows.x(a), rows.x(b)
                if b - a < 1e-3:
                    parts.append(f"<line x1=\"{_num(x0)}\" y1=\"{_num(top + 4)}\" x2=\"{_num(x0)}\" "
                                 f"y2=\"{_num(top + height - 4)}\" stroke=\"{colour}\" stroke-width=\"1\"/>")
                else:
                    parts.append(f"<rect x=\"{_num(x0)}\" y=\"{_num(top + 4)}\" width=\"{_num(max(x1 - x0, 0.5))}\" "
                                 f"height=\"{_num(height - 8)}\" fill=\"{colour}\" fill-opacity=\"0.45\" "
                                 f"stroke=\"{colour}\"/>")
                if text:
                    offset = 5 if (transcript and k % 2) else -5
                    parts.append(_text(x0 + 1, mid + offset, text, 8, extra=f"clip-path=\"url(#{clip})\""))
        return draw

    def pace_row(top: float, height: float) -> None:
        points = []
        for (a, p), nxt in zip(pace, [*pace[1:], (pace[-1][0] + 1, pace[-1][1])]):
            y = top + height - 4 - min(max(p, 0.0), 1.0) * (height - 8)
            points += [(rows.x(a), y), (rows.x(nxt[0]), y)]
        parts.append("<polyline fill=\"none\" stroke=\"#4e79a7\" stroke-width=\"1.5\" points=\""
                     + " ".join(f"{_num(x)},{_num(y)}" for x, y in points) + "\"/>")

    def coverage_row(modality: str) -> Callable[[float, float], None]:
        def draw(top: float, height: float) -> None:
            for row in coverage:
                if row.get(modality):
                    x0, x1 = rows.x(float(row["start_s"])), rows.x(float(row["end_s"]))
                    parts.append(f"<rect x=\"{_num(x0)}\" y=\"{_num(top + 1)}\" width=\"{_num(max(x1 - x0, 0.5))}\" "
                                 f"height=\"{_num(height - 2)}\" fill=\"#2e9e4f\" fill-opacity=\"0.7\"/>")
        return draw

    if keyframe_uris:
        rows.row(KEYFRAME_H, "shots", keyframes)
    for title, items in lanes:
        rows.row(LANE_H, title, lane(items, title == "transcript"))
    if pace:
        rows.row(PACE_H, "pace", pace_row)
    if coverage:
        for modality in MODALITIES:
            rows.row(COVERAGE_H, f"{modality} covered", coverage_row(modality))
    rows.axis()
    return rows.svg(clip)


def score_svg(scores: Mapping[str, Any]) -> str:
    """One horizontal bar per modality (0-100, its score written after it) under the total score."""
    width, left, bar_h, top = 560, 90, 22, 30
    plot_w = width - left - 60
    parts = [_text(width / 2, 14, f"score {float(scores.get('score') or 0):.1f} / 100", 12, "middle")]
    for i, modality in enumerate(MODALITIES):
        value = float(scores.get(f"{modality}_score") or 0.0)
        y = top + i * bar_h
        w = max(0.0, min(value, 100.0)) / 100.0 * plot_w
        parts.append(_text(left - 6, y + bar_h / 2, modality, 10, "end"))
        parts.append(f"<rect x=\"{left}\" y=\"{_num(y + 3)}\" width=\"{_num(w)}\" height=\"{bar_h - 6}\" "
                     f"fill=\"{COLOURS[i % len(COLOURS)]}\"/>")
        parts.append(_text(left + w + 4, y + bar_h / 2, f"{value:.1f}", 9))
    height = top + len(MODALITIES) * bar_h + 8
    parts.append(f"<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{height - 8}\" stroke=\"#444\"/>")
    return (f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" "
            f"viewBox=\"0 0 {width} {height}\" {FONT}>" + "".join(parts) + "</svg>")
