"""Editing effects with their time spans: flashes, fades, speed changes, strong zooms, split screens.

Kinds (column ``kind``; ``detail`` refines it, ``strength`` is its size):

* ``flash``: the mean luma of the full-rate low-res stream jumps by >= ``FLASH_RISE`` grey levels
  above the level both before and after, for at most ``FLASH_MAX_S``, and its brightest (darkest)
  frame is white (black) or the picture before or after it made brighter (darker): one gain and
  offset explain it (``FLASH_MIN_GAIN``, ``FLASH_MAX_RESIDUAL``), so a pan over a bright spot is no
  flash; the level before a flash is never that of another flash (the drop after a white flash is
  no blink to black); ``detail`` ``bright`` (a white/light flash) or ``dark`` (a blink to black);
  strength = the jump (0-255).
* ``fade_in`` / ``fade_out``: a steady luma ramp of >= ``FADE_MIN_S`` from / to a black or white
  picture (``_tone``'s one definition, shared with cut_analysis: grey mean <= 24 or >= 231 with
  std < 12, or 85 % of the pixels that dark or light under a caption that stays on screen); ``detail``
  ``from_black``, ``to_white`` ...; span =
  the ramp; strength = the luma range covered. Found from the luma curve (also at the clip's first
  and last frame, where cut_analysis's blend test has no frames on one side).
* ``freeze``: inside one shot, >= ``FREEZE_MIN_S`` of identical consecutive frames (mean absolute
  grey difference <= ``DUP_MAX``) with motion both before and after (a picture that stops and goes
  on; a still held to the end of a shot is not told apart from a still shot; frames inside
  dissolves and fades count as neither repeats nor motion); strength = seconds.
* ``slow_motion``: inside one shot, a ~1 s window where the others move and exact repeats make up
  25 % or more *beyond the video's own cadence* (at most 85 % in all): the slowed-down footage of
  frame duplication. The cadence is the low quartile of the repeat shares of all moving windows, so 15 fps
  content in a 30 fps container (every picture twice) is not slow motion; strength = estimated
  speed against that cadence (share of new frames relative to it, 0.5 = half speed). Slow
  motion by interpolation or from high-speed capture has no repeated frames and is not seen.
* ``speed_jump``: a frame step inside a shot that changes the picture >= ``JUMP_RATIO`` times more
  than the steps around it (dropped frames, a speed ramp, a jump cut too small for a cut);
  strength = that ratio.
* ``zoom_in`` / ``zoom_out``: the camera-motion fit (``_motion``) grows/shrinks the picture at
  >= ``ZOOM_RATE_MIN`` (log size per second) by a total of >= ``ZOOM_TOTAL_MIN``, counting only
  steps whose fit most tracked corners agree on (``ZOOM_MIN_INLIERS``) and that spread over the
  frame (``ZOOM_MIN_SPREAD``); strength = the relative size change (0.8 = 1.8x).
* ``split_screen``: a straight edge across >= ``SPLIT_COVER`` of the frame's width (height) in its
  middle 80 %, reaching both borders, the only such line (bar edges aside), with texture on both
  sides (not a letterbox bar), in >= 2 sampled frames;
  ``detail`` ``horizontal`` / ``vertical``; ``region`` = the line's position (share of height /
  width); strength = the share of the line that is edge. Sampled frames (2 fps) are used; one
  frame without the detection inside a held span is tolerated.
* ``picture_in_picture``: a rectangle of straight edges (>= 12 % of the frame side each way, under
  60 %) with a textured inside that differs in colour from its surroundings (colour-histogram TV
  distance >= ``BOX_COLOUR_MIN``), where the surroundings are a picture too (under ``FLAT_AROUND``
  of the band around the box within ``FLAT_TOL`` grey levels of its median: a photo on a plain
  background with a caption is one picture, not an inset), in >= 2 sampled frames; ``region`` = [x0, y0, x1, y1] as
  shares of the frame; strength = that colour distance.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..passes import frame_stats, motion
from . import _motion, _shots, _tone
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

FLASH_RISE = 50.0
FLASH_MAX_S = 0.5
FLASH_MIN_GAIN = 0.05  # a flash to 95 % white keeps a trace of the picture
FLASH_MAX_RESIDUAL = 0.5  # share of the flash's mean change that the gain/offset fit leaves
FADE_MIN_S = 0.2
FADE_MIN_RANGE = 40.0
DUP_MAX = 0.15
MOVE_MIN = 1.0
FREEZE_MIN_S = 0.5
SLOW_WINDOW_S = 1.0
SLOW_DUP_SHARE = (0.25, 0.85)
CADENCE_PERCENTILE = 25
JUMP_RATIO = 4.0
JUMP_MIN = 4.0
ZOOM_RATE_MIN = 0.35
ZOOM_TOTAL_MIN = float(np.log(1.2))
ZOOM_MIN_INLIERS = 0.6
ZOOM_MIN_SPREAD = 0.3
EDGE_MIN = 24.0
SPLIT_COVER = 0.85
SPLIT_BORDER = 0.05
SPLIT_BAR = 0.06
TEXTURE_MIN = 6.0
BOX_MIN, BOX_MAX = 0.12, 0.6
BOX_COVER = 0.8
BOX_TOL = 0.03
BOX_COLOUR_MIN = 0.3
FLAT_TOL, FLAT_AROUND = 6.0, 0.6

COLUMNS = (
    pa.field("kind", pa.string()),
    pa.field("detail", pa.string()),
    pa.field("strength", pa.float64()),
    pa.field("region", pa.list_(pa.float64())),
)


def luma_curve(lowres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean grey level and black/white tone (``_tone``) of every lowres frame."""
    return _tone.luma_curve(lowres)


def brightened(frames: np.ndarray | None, tones: np.ndarray | None, peak: int, around: tuple[int, ...],
               tone: int) -> bool:
    """Whether frame ``peak`` is white/black (``tone``, as ``tones`` has it) or one of the frames
    ``around`` made brighter or darker (one gain and offset), not another picture."""
    if frames is None:
        return True
    if tones is not None and tones[peak] == tone:
        return True
    return any(
        _tone.tonal_step(frames[j], frames[peak], FLASH_MIN_GAIN, FLASH_MAX_RESIDUAL, FLASH_RISE / 2) is not None
        for j in around if 0 <= j < len(frames)
    )


def flashes(y: np.ndarray, times: np.ndarray, fps: float, frames: np.ndarray | None = None,
            tones: np.ndarray | None = None) -> list[dict]:
    """Brief brightness spikes (and blinks to black) that come back down (see the docstring);
    ``frames`` and their ``tones``: the low-res frames, to check that the peak is the same picture
    brightened."""
    found = []
    longest = max(2, int(round(FLASH_MAX_S * fps)))
    taken = np.zeros(len(y), dtype=bool)  # frames of the flashes found so far
    for sign, detail, tone in ((1.0, "bright", _tone.WHITE), (-1.0, "dark", _tone.BLACK)):
        v = sign * y
        t = 1
        while t < len(v):
            calm = v[max(0, t - 3) : t][~taken[max(0, t - 3) : t]]  # the level before, no other flash
            if taken[t] or calm.size == 0 or v[t] - calm.min() < FLASH_RISE:
                t += 1
                continue
            before = calm.min()
            stop = min(len(v), t + longest + 1)
            inside = v[t:stop]
            top = int(inside.argmax())
            peak = float(inside[top])
            back = top + np.flatnonzero(inside[top:] < peak - FLASH_RISE)
            if back.size == 0:
                t += 1
                continue
            end = t + int(back[0])
            after = float(np.median(v[end : end + 3]))
            if peak - after >= FLASH_RISE and end - t <= longest and brightened(frames, tones, t + top, (t - 1, end), tone):
                taken[t:end] = True
                found.append({
                    "start_s": float(times[t]), "end_s": float(times[end]), "kind": "flash", "detail": detail,
                    "strength": round(min(peak - before, peak - after), 1),
                })
                t = end + 1
            else:
                t += 1
    return found


def fades(y: np.ndarray, tones: np.ndarray, times: np.ndarray, fps: float) -> list[dict]:
    """Luma ramps from or to a black or white picture (see the docstring)."""
    found = []
    n = len(y)
    shortest = max(2, int(round(FADE_MIN_S * fps)))
    for tone, extreme, distance in (
        ("black", _tone.black(tones), y),
        ("white", _tone.white(tones), 255.0 - y),
    ):
        runs = _runs(extreme)
        for a, b in runs:
            for direction in (-1, 1):  # -1: fade out into the run, +1: fade in out of it
                edge = a if direction < 0 else b
                k = edge
                while 0 <= k + direction < n:
                    here, nxt = distance[k], distance[k + direction]
                    if nxt - here < max(0.4, 0.005 * nxt):
                        break
                    k += direction
                inner = edge  # the ramp may go on inside the black/white run until it is flat
                while a <= inner - direction <= b and distance[inner] - distance[inner - direction] >= 0.4:
                    inner -= direction
                length = abs(k - inner)
                covered = abs(distance[k] - distance[inner])
                if length < shortest or covered < FADE_MIN_RANGE:
                    continue
                first, last = sorted((k, inner))
                span = (float(times[first]), float(times[last]))
                kind = "fade_out" if direction < 0 else "fade_in"
                detail = f"to_{tone}" if direction < 0 else f"from_{tone}"
                found.append({"start_s": span[0], "end_s": span[1], "kind": kind, "detail": detail,
                              "strength": round(float(covered), 1)})
    return found


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of every run of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def frame_steps(lowres: np.ndarray) -> np.ndarray:
    """Mean absolute grey difference into each lowres frame from the one before (0 for the first)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    steps = np.zeros(len(lowres))
    previous = None
    for i, frame in enumerate(lowres):
        g = np.asarray(frame, dtype=np.float32) @ weights
        if previous is not None:
            steps[i] = float(np.abs(g - previous).mean())
        previous = g
    return steps


def repeat_cadence(steps: np.ndarray, dup: np.ndarray, ignore: np.ndarray, shots: _shots.ShotList,
                   window: int) -> float:
    """Share of repeated frames that is the content's own frame rate, not an effect.

    A low percentile (``CADENCE_PERCENTILE``, the video's normal speed is its fastest part) of
    the repeat shares of all ~1 s windows of moving shots (freezes left out): 0 for content at the container's
    rate, ~0.5 for 15 fps content in a 30 fps container (every picture shown twice), ~0.2 for
    24 fps with pulldown. Capped below ``SLOW_DUP_SHARE[1]``.
    """
    shares = []
    for shot in shots.shots:
        idx = np.arange(shot.first + 1, shot.last + 1)
        usable = ~ignore[idx]
        if idx.size < window or not usable.any():
            continue
        moving = steps[idx][~dup[idx] & usable]
        if moving.size == 0 or np.median(moving) < MOVE_MIN:
            continue
        for start in range(0, idx.size - window + 1, max(1, window // 2)):
            part = usable[start : start + window]
            if part.any():
                shares.append(float(dup[idx][start : start + window][part].mean()))
    shares = [v for v in shares if v <= SLOW_DUP_SHARE[1]]  # freezes say nothing about the cadence
    if not shares:
        return 0.0
    return float(min(np.percentile(shares, CADENCE_PERCENTILE), SLOW_DUP_SHARE[1] - 0.05))


def speed_changes(steps: np.ndarray, shots: _shots.ShotList, fps: float, ignore: np.ndarray) -> list[dict]:
    """Freezes, slow motion by repeated frames and jumps, all inside single shots.

    Frames in ``ignore`` (flashes, fades, black or white pictures) count neither as repeats nor
    as motion.
    """
    found = []
    times = shots.times
    ignore = ignore.copy()
    ignore[1:] |= ignore[:-1]  # the step out of an ignored frame tells nothing either
    dup = (steps <= DUP_MAX) & ~ignore
    window = max(4, int(round(SLOW_WINDOW_S * fps)))
    cadence = repeat_cadence(steps, dup, ignore, shots, window)
    for shot in shots.shots:
        lo, hi = shot.first + 1, shot.last  # steps into frames lo..hi stay inside the shot
        if hi - lo < 3:
            continue
        idx = np.arange(lo, hi + 1)
        st, du, usable = steps[idx], dup[idx], ~ignore[idx]
        moving = st[~du & usable]
        if moving.size == 0 or np.median(moving) < MOVE_MIN:
            continue  # a still shot: repeated frames are no effect
        def moves(part: np.ndarray, ok: np.ndarray) -> bool:
            part = part[ok & (part > DUP_MAX)]
            return bool(part.size >= 2 and np.median(part) >= MOVE_MIN)

        for a, b in _runs(du):
            seconds = (b - a + 1) / fps
            lead = slice(max(0, a - window), a)
            tail = slice(b + 1, b + 1 + window)
            if seconds >= FREEZE_MIN_S and moves(st[lead], usable[lead]) and moves(st[tail], usable[tail]):
                found.append({"start_s": float(times[idx[a] - 1]), "end_s": float(times[idx[b] + 1]),
                              "kind": "freeze", "detail": "repeated frames", "strength": round(seconds, 2)})
        slow = np.zeros(len(idx), dtype=bool)
        for start in range(0, len(idx) - window + 1, max(1, window // 2)):
            part = du[start : start + window]
            share = part.mean()
            longest = max((b - a + 1 for a, b in _runs(part)), default=0)
            others = st[start : start + window][~part & usable[start : start + window]]
            extra = (share - cadence) / (1 - cadence)  # repeats beyond the content's own frame rate
            if SLOW_DUP_SHARE[0] <= extra and share <= SLOW_DUP_SHARE[1] and longest <= 4 and others.size \
                    and np.median(others) >= MOVE_MIN:
                slow[start : start + window] = True
        typical = int(round(cadence / (1 - cadence)))  # repeats in a row that are the cadence itself
        for a, b in _runs(slow):
            held = [(p, q) for p, q in _runs(du[a : b + 1]) if q - p + 1 > typical]
            if not held:
                continue
            a, b = a + held[0][0], a + held[-1][1]  # from the first to the last repeat beyond the cadence
            share = float(du[a : b + 1].mean())
            end = float(times[idx[b] + 1]) if idx[b] + 1 < len(times) else float(times[idx[b]])
            found.append({"start_s": float(times[idx[a] - 1]), "end_s": end, "kind": "slow_motion",
                          "detail": "repeated frames", "strength": round((1 - share) / (1 - cadence), 2)})
        half = max(2, window // 2)
        for k in range(len(idx)):
            if du[k] or not usable[k]:
                continue
            near = np.concatenate([st[max(0, k - half) : k], st[k + 1 : k + 1 + half]])
            near_ok = np.concatenate([usable[max(0, k - half) : k], usable[k + 1 : k + 1 + half]])
            near = near[near_ok & (near > DUP_MAX)]
            if near.size < 3:
                continue
            base = float(np.median(near))
            if st[k] >= JUMP_MIN and st[k] >= JUMP_RATIO * max(base, 0.5):
                found.append({"start_s": float(times[idx[k] - 1]), "end_s": float(times[idx[k]]),
                              "kind": "speed_jump", "detail": "picture jumps between two frames",
                              "strength": round(st[k] / max(base, 0.5), 2)})
    return found


def strong_zooms(motions: list[_motion.PairMotion | None], shots: _shots.ShotList) -> list[dict]:
    """Spans of fast zooming from the camera-motion pairs (see the docstring)."""
    found = []
    run: list[_motion.PairMotion] = []

    def close() -> None:
        total = sum(m.log_scale for m in run)
        if run and abs(total) >= ZOOM_TOTAL_MIN:
            found.append({
                "start_s": float(shots.times[run[0].i]), "end_s": float(shots.times[run[-1].j]),
                "kind": "zoom_in" if total > 0 else "zoom_out", "detail": "picture scale change",
                "strength": round(float(np.expm1(abs(total))), 3),
            })

    for m in motions:
        trusted = m is not None and m.inlier_share >= ZOOM_MIN_INLIERS and m.spread >= ZOOM_MIN_SPREAD
        rate = m.log_scale / m.dt if trusted else None
        fast = rate is not None and abs(rate) >= ZOOM_RATE_MIN
        joins = fast and run and np.sign(rate) == np.sign(run[-1].log_scale) and m.i <= run[-1].j \
            and shots.frame_shot[m.i] == shots.frame_shot[run[-1].i]
        if joins:
            run.append(m)
            continue
        close()
        run = [m] if fast else []
    close()
    return found


def _edge_maps(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grey, horizontal-edge map, vertical-edge map): colour steps across 2 pixels above EDGE_MIN."""
    import cv2

    f = np.ascontiguousarray(frame)

    def strongest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # numpy, not cv2: frames under 3 pixels give empty differences, which cv2 cannot take; the
        # uint8 difference and the channel maximum as element-wise maxima (a reduction over an axis
        # of 3 is ~20x slower)
        d = np.maximum(a, b) - np.minimum(a, b)
        return np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2]) > EDGE_MIN

    h_edges = np.zeros(f.shape[:2], dtype=bool)
    v_edges = np.zeros(f.shape[:2], dtype=bool)
    h_edges[1:-1, :] = strongest(f[2:, :], f[:-2, :])  # row y+1 against y-1
    v_edges[:, 1:-1] = strongest(f[:, 2:], f[:, :-2])
    grey = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return grey, h_edges, v_edges


def split_line(frame: np.ndarray, maps: tuple | None = None) -> tuple[str, float, float] | None:
    """(orientation, position share, edge cover) of a straight line dividing the frame, or None.

    The line must run from border to border (edge pixels within ``SPLIT_BORDER`` of both ends),
    be the only such line in its orientation apart from a parallel one within ``SPLIT_BAR`` (the
    other side of a divider bar; several far apart are stripes or blinds), and have texture on
    both sides (not a letterbox bar).
    """
    grey, h_edges, v_edges = maps or _edge_maps(frame)
    h, w = grey.shape
    best = None
    for orientation, edges, size in (("horizontal", h_edges, h), ("vertical", v_edges.T, w)):
        image = grey if orientation == "horizontal" else grey.T
        length = edges.shape[1]
        cover = edges.mean(axis=1)
        lo, hi = int(0.1 * size), int(0.9 * size)
        if hi <= lo:
            continue
        k = lo + int(cover[lo:hi].argmax())
        if cover[k] < SPLIT_COVER:
            continue
        margin = max(1, int(SPLIT_BORDER * length))
        line = edges[max(0, k - 1) : k + 2].any(axis=0)
        if not (line[:margin].any() and line[-margin:].any()):
            continue  # stops short of a border: a box or panel, not a split
        strong = np.flatnonzero(cover >= SPLIT_COVER)
        if np.any(np.abs(strong - k) > max(3, SPLIT_BAR * size)):
            continue  # more full lines elsewhere: a pattern, not a split
        above, below = image[max(0, k - 40) : k - 2], image[k + 3 : k + 43]
        if above.size == 0 or below.size == 0 or above.std() < TEXTURE_MIN or below.std() < TEXTURE_MIN:
            continue  # a bar or border, not two pictures
        if best is None or cover[k] > best[2]:
            best = (orientation, k / size, float(cover[k]))
    return best


def _segments_1d(edges: np.ndarray, min_len: int) -> list[tuple[int, int, int]]:
    """(line, first, last) of edge runs at least ``min_len`` long along each row of ``edges``."""
    import cv2

    closed = cv2.morphologyEx(edges.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((1, 5), np.uint8)) > 0
    out = []
    for line in np.flatnonzero(closed.sum(axis=1) >= min_len):
        for a, b in _runs(closed[line]):
            if b - a + 1 >= min_len:
                out.append((int(line), a, b))
    return out


def _covered(edges: np.ndarray, line: int, a: int, b: int, spread: int = 1) -> float:
    """Best share of edge pixels over ``a..b`` on ``line`` or its ``spread`` neighbours each side."""
    lines = edges[max(0, line - spread) : line + spread + 1, a : b + 1]
    return float(lines.mean(axis=1).max()) if lines.size else 0.0


def inset_box(frame: np.ndarray, maps: tuple | None = None) -> tuple[tuple[float, float, float, float], float] | None:
    """The largest picture-in-picture rectangle, ((x0, y0, x1, y1) shares, colour gap), or None.

    Pairs of long vertical edge runs with matching ends propose a box; its top and bottom must be
    straight edges over ``BOX_COVER`` of its width, its inside textured and coloured unlike the
    band around it.
    """
    grey, h_edges, v_edges = maps or _edge_maps(frame)
    h, w = grey.shape
    cols = [c for c in _segments_1d(v_edges.T, int(BOX_MIN * h)) if c[2] - c[1] + 1 <= BOX_MAX * h]
    tol_y = max(2, int(BOX_TOL * h))
    best, best_area = None, 0
    for i, (x0, top0, bottom0) in enumerate(cols):
        for x1, top1, bottom1 in cols[i + 1 :]:
            if not BOX_MIN * w <= x1 - x0 <= BOX_MAX * w:
                continue
            if abs(top0 - top1) > tol_y or abs(bottom0 - bottom1) > tol_y:
                continue
            if x0 < 2 or x1 > w - 3:
                continue
            top = max(range(max(2, min(top0, top1) - 2), max(top0, top1) + 3),
                      key=lambda y: _covered(h_edges, y, x0, x1, 0))
            bottom = max(range(min(bottom0, bottom1) - 2, min(h - 3, max(bottom0, bottom1) + 2) + 1),
                         key=lambda y: _covered(h_edges, y, x0, x1, 0), default=None)
            if bottom is None or bottom - top < BOX_MIN * h:
                continue
            y0, y1 = top, bottom
            area = (x1 - x0) * (y1 - y0)
            if area <= best_area:
                continue
            if min(_covered(h_edges, y0, x0, x1), _covered(h_edges, y1, x0, x1)) < BOX_COVER:
                continue
            inside = np.asarray(frame[y0 + 2 : y1 - 1, x0 + 2 : x1 - 1]).reshape(-1, 3)
            if inside.size == 0 or grey[y0 + 2 : y1 - 1, x0 + 2 : x1 - 1].std() < TEXTURE_MIN:
                continue  # a flat box is a sticker or caption panel, not a picture
            band = np.zeros((h, w), dtype=bool)
            band[max(0, y0 - 20) : y1 + 21, max(0, x0 - 20) : x1 + 21] = True
            band[max(0, y0 - 1) : y1 + 2, max(0, x0 - 1) : x1 + 2] = False
            around = np.asarray(frame)[band]
            if around.size == 0:
                continue
            around_grey = grey[band]
            if float((np.abs(around_grey - np.median(around_grey)) <= FLAT_TOL).mean()) >= FLAT_AROUND:
                continue  # one photo on a plain background (captions aside): no picture around it
            colour_gap = float(frame_stats.tv_distance(frame_stats.joint_histograms(inside[None])[0],
                                                     frame_stats.joint_histograms(around[None])[0]))
            if colour_gap < BOX_COLOUR_MIN:
                continue
            best, best_area = ((x0 / w, y0 / h, (x1 + 1) / w, (y1 + 1) / h), colour_gap), area
    return best


def _held(found: list, same, frame_times: np.ndarray, step: float, duration: float) -> list[tuple]:
    """(first, last, items) of detections that repeat in >= 2 sampled frames (one miss allowed)."""
    spans = []
    k = 0
    while k < len(found):
        if found[k] is None:
            k += 1
            continue
        members = [k]
        j = k + 1
        while j < len(found) and j - members[-1] <= 2:
            if found[j] is not None and same(found[members[-1]], found[j]):
                members.append(j)
            j += 1
        if len(members) >= 2:
            end = min(duration, float(frame_times[members[-1]]) + step)
            spans.append((float(frame_times[members[0]]), end, [found[m] for m in members]))
        k = members[-1] + 1
    return spans


def layouts(frames: np.ndarray, frame_times: np.ndarray, duration: float) -> list[dict]:
    """Split screens and picture-in-picture insets held over >= 2 sampled frames."""
    step = float(np.median(np.diff(frame_times))) if len(frame_times) > 1 else duration
    splits, boxes = [], []
    for frame in frames:
        frame = np.asarray(frame)
        maps = _edge_maps(frame)
        splits.append(split_line(frame, maps))
        boxes.append(inset_box(frame, maps))
    found = []
    same_line = lambda a, b: a[0] == b[0] and abs(a[1] - b[1]) < 0.02  # noqa: E731
    for start, end, items in _held(splits, same_line, frame_times, step, duration):
        found.append({"start_s": start, "end_s": end, "kind": "split_screen", "detail": items[0][0],
                      "strength": round(float(np.mean([i[2] for i in items])), 3),
                      "region": [round(float(np.median([i[1] for i in items])), 3)]})
    same_box = lambda a, b: max(abs(x - y) for x, y in zip(a[0], b[0])) < BOX_TOL  # noqa: E731
    for start, end, items in _held(boxes, same_box, frame_times, step, duration):
        found.append({"start_s": start, "end_s": end, "kind": "picture_in_picture", "detail": "inset",
                      "strength": round(float(np.mean([i[1] for i in items])), 3),
                      "region": [round(float(v), 3) for v in np.median([i[0] for i in items], axis=0)]})
    return found


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    lowres, times = media.lowres, np.asarray(media.lowres_times)
    fps = media.meta.fps or (len(times) / max(media.duration_s, 1e-6))
    duration = float(media.duration_s)
    shots = _shots.shot_list(media, context)
    stats = frame_stats.stats(media)
    y, tone = np.asarray(stats.luma_mean), np.asarray(stats.tone)
    rows = flashes(y, times, fps, lowres, tone) + fades(y, tone, times, fps)
    ignore = _tone.black(tone) | _tone.white(tone) | shots.in_transition  # a dissolve's mix is no motion
    for row in rows:
        ignore[(times >= row["start_s"] - 1e-6) & (times <= row["end_s"] + 1e-6)] = True
    rows += speed_changes(frame_steps(lowres), shots, fps, ignore)
    step = _motion.pair_step(fps)
    rows += strong_zooms(motion.pair_motions(media, times, _motion.shot_pairs(shots, step)), shots)
    rows += layouts(media.frames, np.asarray(media.frame_times), duration)
    for row in rows:
        row["start_s"] = round(row["start_s"], 3)
        row["end_s"] = round(max(row["end_s"], row["start_s"]), 3)
        row.setdefault("region", None)
    rows.sort(key=lambda r: (r["start_s"], r["kind"]))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, duration)],
        metadata={"effects": len(rows), **{f"{k}_count": v for k, v in sorted(counts.items())},
                  "cuts_from": shots.source},
    )


SPEC = AnalyzerSpec(
    name="visual_effects",
    modality="visual",
    description="Flashes, fades, freezes/slow motion/jumps, strong zooms, split screens and picture-in-picture with time spans",
    version="3",
    columns=COLUMNS,
    run=run,
    passes=("frame_stats", "motion"),
    depends_on=("cut_analysis",),
    main_figure="effects",
    timeline_label="'effect: ' || kind",
)
