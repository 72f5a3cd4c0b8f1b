"""Edit points from the low-resolution full-rate stream: hard cuts, dissolves and fades.

* Frame change ``d[i]`` is the total-variation distance between colour histograms (8x8x8 RGB bins)
  of frames ``i-1`` and ``i``, raised to the mean absolute pixel change when two shots share a
  palette.
* A **hard cut** is a change above ``CUT_MIN``, well above its neighbourhood's median, >=
  ``SIDE_CONTRAST`` times the median of each side (~0.5 s) and ``NEIGHBOUR_CONTRAST`` times both
  neighbouring steps, each scaled to the same time step (one jump, not a step of a dissolve or of
  fast motion; at a variable frame rate a step over a dropped frame spans twice the time), that
  - is not part of a *spike*: frame ``k``, at most ``flash_len`` (3 frames or 0.12 s) frames far
    from it, then ``k``'s picture again (a flash or blink, reported by ``visual_effects``);
  - is not a step of a brightness ramp: frame ``i`` is frame ``i-1`` under one global gain and
    offset (residual <= ``GAIN_MAX_RESIDUAL`` of the change) and so is the step before or after it,
    in the same direction (a fade: large histogram changes, but no new picture);
  - is not inside a *whip pan*: a run of >= 3 steps that change the picture or move it by >=
    ``WHIP_FAST_SHIFT`` of which a quarter (and two, one by >= ``WHIP_FAST_SHIFT``) are big moves of one
    picture (phase correlation of consecutive frames: peak >= ``WHIP_RESPONSE`` and shift >=
    ``WHIP_SHIFT``, or for smeared steps peak >= ``WHIP_WEAK_RESPONSE``, shift >=
    ``WHIP_FAST_SHIFT`` and a neighbouring step alike);
  - is not the same picture moved in one step (dropped frames, which visual_effects reports as a
    speed jump): phase correlation finds a shift with peak >= ``JUMP_RESPONSE`` *and* frame
    ``i-1`` moved by it matches frame ``i`` over the whole overlap, colour by colour: at most
    ``MOVED_MAX_CHANGED`` of the pixels differ by more than ``MOVED_GREY`` levels (a large centred
    face alone gives a strong peak at a small shift when the background behind it changed).
* A **fade** (``fade_in`` / ``fade_out``) is a monotone brightness ramp of >= ``FADE_MIN_STEPS``
  frame steps and ``FADE_MIN_S`` into or out of a black or white picture (``_tone``'s one
  definition, shared with visual_effects: grey mean <= 24 or >= 231 with std < 12, or 85 % of the
  pixels that dark or light under a caption that stays on screen) whose frames are
  blends of its two ends and whose black/white run is not a spike. Its span runs from the last
  frame before the ramp to the first frame after it: the ramp is walked frame by frame from the
  black/white run while the distance to that tone keeps growing by >= ``RAMP_STEP`` grey levels
  (and ``RAMP_RELATIVE`` of it), outwards, and inside the run while it still shrinks.
* A **dissolve** is found by a local search (see :func:`dissolves`): a span free of cuts, spikes,
  fades and whip pans whose frames, shrunk to ~24 pixels so that motion inside the shots hardly
  matters, are blends of its two ends with a steadily rising mix; it is widened while it stays
  one and its ends are where a straight line through the mix weights meets 0 and 1. One coherent
  camera motion must not explain it: when every ~0.1 s step across it fits one similarity
  transform with >= ``COHERENT_INLIERS`` of the tracked corners and the picture moves or scales by
  >= ``COHERENT_MOTION`` overall, or a third of its steps are big moves of one picture, it is a
  fast zoom or pan, not an edit.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..passes import frame_stats
from ..passes.frame_stats import joint_histograms as histograms
from ..passes.frame_stats import tv_distance
from . import _motion, _tone
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

CUT_MIN = 0.3
CUT_CONTRAST = 2.5
FLASH_FRAMES = 3
FLASH_S = 0.12
NEIGHBOUR_CONTRAST = 1.5
SIDE_CONTRAST = 2.0
JUMP_RESPONSE = 0.4
MOVED_GREY = 24.0  # levels (any colour channel) above which an aligned pixel counts as changed
MOVED_MAX_CHANGED = 0.2  # share of changed pixels up to which a step is the same picture moved
MOVED_MIN_OVERLAP = 0.25  # share of the frame left after the shift needed to check the residual
WHIP_RESPONSE = 0.2
WHIP_SHIFT = 0.03
WHIP_WEAK_RESPONSE = 0.1
WHIP_FAST_SHIFT = 0.1
WHIP_RUN_CHANGE = 0.15
FADE_MIN_S = 0.15
DISSOLVE_MIN = 0.3
BLEND_MAX_RESIDUAL = 0.3
DISSOLVE_SPANS_S = (0.25, 0.4, 0.6, 0.85, 1.2, 1.7)
TINY_SIDE = 24
MIX_RISING = 0.9
MIX_MIDDLE = (0.25, 0.75)
MIX_EDGE = 0.03
MIX_CORE = (0.15, 0.85)
MIN_SHOT_S = 0.25
GAIN_MAX_RESIDUAL = 0.4  # share of the mean absolute change left after the gain/offset fit
GAIN_MIN_SLOPE = 0.2  # a fade keeps the picture: its gain is positive
GAIN_MIN_CHANGE = 1.0  # grey levels; smaller steps say nothing about a ramp
FADE_MIN_STEPS = 2
RAMP_STEP = 0.4
RAMP_RELATIVE = 0.005
COHERENT_INLIERS = 0.85
COHERENT_MOTION = 0.1

Event = tuple[int, int, str, float]  # (first frame, last frame, kind, strength)

COLUMNS = (
    pa.field("kind", pa.string()),
    pa.field("strength", pa.float64()),
    pa.field("frame_index", pa.int64()),
    pa.field("shot_index", pa.int64()),
)


def frame_changes(frames: np.ndarray, hists: np.ndarray) -> np.ndarray:
    """Change into each frame from the previous one (0 for the first frame)."""
    change = np.zeros(len(frames), dtype=np.float64)
    if len(frames) < 2:
        return change
    change[1:] = tv_distance(hists[1:], hists[:-1])
    for i in range(1, len(frames)):
        mad = np.abs(frames[i].astype(np.int16) - frames[i - 1].astype(np.int16)).mean() / 80.0
        change[i] = max(change[i], min(1.0, mad))
    return change


def tonal_step(prev: np.ndarray, cur: np.ndarray) -> float | None:
    """Signed mean grey change when ``cur`` is ``prev`` under one global gain (>= ``GAIN_MIN_SLOPE``)
    and offset (residual <= ``GAIN_MAX_RESIDUAL`` of a change >= ``GAIN_MIN_CHANGE``), else None:
    one step of a fade to or from black or white, or of any brightness/contrast ramp."""
    return _tone.tonal_step(prev, cur, GAIN_MIN_SLOPE, GAIN_MAX_RESIDUAL, GAIN_MIN_CHANGE)


def on_ramp(frames: np.ndarray, i: int) -> bool:
    """True when the step into frame i and the step before or after it are one brightness ramp."""
    here = tonal_step(frames[i - 1], frames[i])
    if not here:
        return False
    for j in (i - 1, i + 1):
        if 1 <= j < len(frames):
            other = tonal_step(frames[j - 1], frames[j])
            if other and other * here > 0:
                return True
    return False


def flash_len(fps: float) -> int:
    """Longest flash in frames: ``FLASH_FRAMES`` or ``FLASH_S`` seconds, whichever is more."""
    return max(FLASH_FRAMES, int(round(FLASH_S * (fps or 30.0))))


def spikes(hists: np.ndarray, fps: float) -> np.ndarray:
    """Per frame: True when the step into it belongs to a short spike (a flash or blink).

    A spike is a frame ``k``, up to ``flash_len`` frames that differ strongly from it
    (>= ``CUT_MIN``), and then a frame ``j`` whose picture is ``k``'s again (< ``CUT_MIN / 2``):
    the steps into ``k+1 .. j`` are marked; no new shot began there.
    """
    n = len(hists)
    marked = np.zeros(n, dtype=bool)
    longest = flash_len(fps)
    for k in range(n - 2):
        far = 0.0
        for j in range(k + 1, min(n, k + longest + 2)):
            d = float(tv_distance(hists[j], hists[k]))
            if j >= k + 2 and far >= CUT_MIN and d < CUT_MIN / 2:
                marked[k + 1 : j + 1] = True
                break
            far = max(far, d)
    return marked


def shift_step(prev: np.ndarray, cur: np.ndarray) -> tuple[float, float, float]:
    """(dx, dy in short sides, peak response) of the translation that best maps ``prev`` onto ``cur``
    (phase correlation of the grey frames under a Hann window; response 0 for frames under 8 px)."""
    import cv2

    a, b = _tone.grey(prev), _tone.grey(cur)
    if min(a.shape) < 8:
        return 0.0, 0.0, 0.0
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a, b, window)
    short = min(a.shape)
    return float(dx) / short, float(dy) / short, float(response)


def moved_picture(prev: np.ndarray, cur: np.ndarray) -> bool:
    """True when ``cur`` is ``prev`` moved by one translation: phase correlation finds a peak >=
    ``JUMP_RESPONSE`` and, after shifting ``prev`` by it, at most ``MOVED_MAX_CHANGED`` of the
    overlapping pixels differ by more than ``MOVED_GREY`` levels in any colour channel (softened
    frames). A peak alone is not enough: a large centred face that stays while the rest of the
    picture changes gives one too. When the shift leaves less than ``MOVED_MIN_OVERLAP`` of the
    frame to compare, the peak decides."""
    import cv2

    dx, dy, response = shift_step(prev, cur)
    if response < JUMP_RESPONSE:
        return False
    h, w = prev.shape[:2]
    short = min(h, w)
    sx, sy = dx * short, dy * short
    bx, by = int(np.ceil(abs(sx))) + 1, int(np.ceil(abs(sy))) + 1
    if (w - 2 * bx) * (h - 2 * by) < MOVED_MIN_OVERLAP * w * h or w <= 2 * bx or h <= 2 * by:
        return True
    a = prev.astype(np.float32).reshape(h, w, -1)
    b = cur.astype(np.float32).reshape(h, w, -1)
    shift = np.float32([[1, 0, sx], [0, 1, sy]])
    moved = cv2.warpAffine(a, shift, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved = cv2.GaussianBlur(moved, (0, 0), 1.0).reshape(h, w, -1)
    b = cv2.GaussianBlur(b, (0, 0), 1.0).reshape(h, w, -1)
    residual = np.abs(moved - b)[by : h - by, bx : w - bx].max(axis=2)
    return float((residual > MOVED_GREY).mean()) <= MOVED_MAX_CHANGED


def whip_step(frames: np.ndarray, i: int) -> float:
    """How far (short sides) the step into frame i moves one picture (a whip pan or fast pan),
    0.0 when it does not (a new picture, or little motion).

    Either one translation maps frame i-1 onto frame i with a phase-correlation peak >=
    ``WHIP_RESPONSE`` and a shift >= ``WHIP_SHIFT`` of the short side, or, for the fastest, smeared
    steps, the peak is >= ``WHIP_WEAK_RESPONSE`` with a shift >= ``WHIP_FAST_SHIFT`` and a
    neighbouring step shows the same: a run of big moves along one axis (a cut is one step whose
    neighbours hardly move).
    """
    def move(j: int) -> tuple[float, float, float] | None:
        return shift_step(frames[j - 1], frames[j]) if 1 <= j < len(frames) else None

    dx, dy, response = move(i)
    shift = float(np.hypot(dx, dy))
    if response >= WHIP_RESPONSE and shift >= WHIP_SHIFT:
        return shift
    if response < WHIP_WEAK_RESPONSE or shift < WHIP_FAST_SHIFT:
        return 0.0
    for j in (i - 1, i + 1):
        other = move(j)
        if other is None:
            continue
        ox, oy, o_response = other
        same_axis = (abs(ox) > abs(oy)) == (abs(dx) > abs(dy))
        if o_response >= WHIP_WEAK_RESPONSE and np.hypot(ox, oy) >= WHIP_FAST_SHIFT and same_axis:
            return shift
    return 0.0


def in_whip(frames: np.ndarray, change: np.ndarray, i: int, memo: dict[int, float]) -> bool:
    """True when the step into frame i lies in a whip pan: a run of >= 3 steps that all change the
    picture (>= ``WHIP_RUN_CHANGE``) or move it fast (a whip step of >= ``WHIP_FAST_SHIFT``: with
    dropped frames a whip's colours do not change that much at every step) of which at least a
    quarter, and two, are whip steps
    (:func:`whip_step`), one of them moving >= ``WHIP_FAST_SHIFT`` (a steady fast pan is no whip:
    a cut inside it stays a cut); its smeared first and last steps count with it."""
    n = len(change)

    def moving(j: int) -> bool:
        if change[j] >= WHIP_RUN_CHANGE:
            return True
        if j not in memo:
            memo[j] = whip_step(frames, j)
        return memo[j] >= WHIP_FAST_SHIFT

    first, last = i, i
    while first > 1 and moving(first - 1):
        first -= 1
    while last + 1 < n and moving(last + 1):
        last += 1
    if last - first < 2:
        return False
    for j in range(first, last + 1):
        if j not in memo:
            memo[j] = whip_step(frames, j)
    moves = [memo[j] for j in range(first, last + 1)]
    hits = sum(m > 0 for m in moves)
    return hits >= max(2, (last - first + 1) / 4) and max(moves) >= WHIP_FAST_SHIFT


def hard_cuts(change: np.ndarray, hists: np.ndarray, fps: float, frames: np.ndarray,
              spike: np.ndarray | None = None, times: np.ndarray | None = None) -> list[int]:
    """Frame indices where a new shot begins (see the module docstring). With the frames' ``times``,
    a neighbouring step is compared as if it had lasted as long as step i (variable frame rate: a
    step over a dropped frame of a dissolve changes twice as much as its neighbours)."""
    half = max(3, int(round(fps / 2)))
    spike = spikes(hists, fps) if spike is None else spike
    gaps = np.diff(np.asarray(times, dtype=np.float64)) if times is not None and len(times) == len(change) else None
    cuts: list[int] = []
    whips: dict[int, float] = {}

    def neighbour(i: int, j: int) -> float:
        """Step j's change over the time step i took."""
        if not 1 <= j < len(change):
            return 0.0
        if gaps is None or gaps[j - 1] <= 0:
            return float(change[j])
        return float(change[j]) * float(gaps[i - 1]) / float(gaps[j - 1])

    for i in range(1, len(change)):
        if change[i] < CUT_MIN:
            continue
        around = np.concatenate([change[max(1, i - half) : i], change[i + 1 : i + 1 + half]])
        baseline = float(np.median(around)) if around.size else 0.0
        if change[i] < CUT_CONTRAST * baseline + 0.05:
            continue
        if change[i] < NEIGHBOUR_CONTRAST * max(neighbour(i, i - 1), neighbour(i, i + 1)):
            continue  # one step of a run of big changes: a dissolve or fast motion, not one jump
        sides = [float(np.median(part)) for part in (change[max(1, i - half) : i], change[i + 1 : i + 1 + half])
                 if part.size]
        if sides and change[i] < SIDE_CONTRAST * max(sides):
            continue  # the first or last step of a dissolve: the changes go on on one side
        if spike[i]:
            continue  # a flash: the picture from before it comes back
        if on_ramp(frames, i):
            continue  # a fade: the same picture, brighter or darker
        if in_whip(frames, change, i, whips):
            continue  # a whip pan: one shot, smeared by fast camera motion
        if moved_picture(frames[i - 1], frames[i]):
            continue  # the same picture moved in one step (dropped frames): visual_effects' speed_jump
        if cuts and i - cuts[-1] < half // 2:
            if change[i] > change[cuts[-1]]:
                cuts[-1] = i
            continue
        cuts.append(i)
    return cuts


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of every run of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _blend_fit(frames: np.ndarray, a: int, b: int) -> tuple[float, np.ndarray]:
    """Residual share and mix weights of frames a..b explained as blends of frames a and b."""
    first = frames[a].astype(np.float32).ravel()
    last = frames[b].astype(np.float32).ravel()
    delta = last - first
    norm = float(delta @ delta)
    if norm <= 0:
        return 1.0, np.zeros(b - a + 1)
    alphas, residuals = [], []
    for i in range(a, b + 1):
        x = frames[i].astype(np.float32).ravel() - first
        alpha = float(np.clip(x @ delta / norm, 0, 1))
        alphas.append(alpha)
        residuals.append(np.abs(x - alpha * delta).mean())
    return float(np.mean(residuals) / (np.abs(delta).mean() + 1e-6)), np.asarray(alphas)


def _is_blend(frames: np.ndarray, a: int, b: int) -> tuple[bool, np.ndarray]:
    """Whether frames a..b are blends of its ends with a rising mix, and the mix weights."""
    residual, alphas = _blend_fit(frames, a, b)
    rising = np.corrcoef(np.arange(len(alphas)), alphas)[0, 1] if alphas.std() > 0 else 0.0
    return residual <= BLEND_MAX_RESIDUAL and rising >= 0.9, alphas


def fades(frames: np.ndarray, hists: np.ndarray, cuts: list[int], fps: float = 30.0,
          spike: np.ndarray | None = None, luma: tuple[np.ndarray, np.ndarray] | None = None) -> list[Event]:
    """Brightness ramps into (``fade_out``) and out of (``fade_in``) black or white pictures.

    A ramp shorter than ``FADE_MIN_S`` and one around a black/white run inside a short spike (the
    picture before it comes back within a flash's length) is a flash or blink, not a fade.
    """
    n = len(frames)
    if n < 2:
        return []
    spike = spikes(hists, fps) if spike is None else spike
    shortest = max(FADE_MIN_STEPS, int(round(FADE_MIN_S * (fps or 30.0))))
    mean, tone = _tone.luma_curve(frames) if luma is None else luma
    cut_set = set(cuts)
    found: list[Event] = []
    for extreme, distance in (
        (_tone.black(tone), mean),
        (_tone.white(tone), 255.0 - mean),
    ):
        for a, b in _runs(extreme):
            if spike[a : b + 1].all() or (b + 1 < n and spike[a : b + 2].all()):
                continue  # a flash to white or a blink to black
            for kind, edge, out in (("fade_out", a, -1), ("fade_in", b, 1)):
                outer = edge  # walk away from the black/white run while the picture keeps coming
                while 0 <= outer + out < n and max(outer, outer + out) not in cut_set:
                    rise = distance[outer + out] - distance[outer]
                    if rise < max(RAMP_STEP, RAMP_RELATIVE * distance[outer + out]):
                        break
                    outer += out
                inner = edge  # the ramp goes on inside the run until the picture is flat
                while a <= inner - out <= b and max(inner, inner - out) not in cut_set \
                        and distance[inner] - distance[inner - out] >= RAMP_STEP:
                    inner -= out
                first, last = sorted((outer, inner))
                if last - first < shortest:
                    continue
                strength = float(tv_distance(hists[outer], hists[inner]))
                if strength < DISSOLVE_MIN or not _is_blend(frames, first, last)[0]:
                    continue
                found.append((first, last, kind, strength))
    return found


def explained_by_motion(frames: np.ndarray, first: int, last: int, fps: float) -> bool:
    """True when one coherent camera motion carries the picture through frames first..last."""
    n = len(frames)
    step = _motion.pair_step(fps)
    end = min(last + 1, n - 1)
    marks = list(range(max(0, first - 1), end + 1, step))
    if marks[-1] < end:
        marks.append(end)
    pairs = list(zip(marks[:-1], marks[1:]))
    motions = _motion.track(frames, np.arange(n) / (fps or 30.0), pairs)
    if not motions or any(m is None or m.inlier_share < COHERENT_INLIERS for m in motions):
        return False
    scale = abs(sum(m.log_scale for m in motions))
    shift = float(np.hypot(sum(m.dx for m in motions), sum(m.dy for m in motions)))
    return max(scale, shift) >= COHERENT_MOTION


def tiny_frames(frames: np.ndarray) -> np.ndarray:
    """Frames shrunk to about ``TINY_SIDE`` pixels on the short side and softened, float32 (N, P):
    small motion inside a shot hardly changes them, a change of picture does."""
    import cv2

    h, w = frames.shape[1:3]
    scale = min(1.0, TINY_SIDE / max(1, min(h, w)))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = []
    for frame in frames:
        small = cv2.resize(np.ascontiguousarray(frame), size, interpolation=cv2.INTER_AREA).astype(np.float32)
        if min(size) >= 4:
            small = cv2.GaussianBlur(small, (0, 0), 0.8)
        out.append(small.ravel())
    return np.asarray(out, dtype=np.float32).reshape(len(frames), -1)


def blend_fit(tiny: np.ndarray, a: int, b: int) -> tuple[float, np.ndarray, float]:
    """(residual share, mix weights, mean end difference) of frames a..b as blends of frames a and b."""
    first = tiny[a]
    delta = tiny[b] - first
    norm = float(delta @ delta)
    size = float(np.abs(delta).mean()) if delta.size else 0.0
    if norm <= 0:
        return 1.0, np.zeros(b - a + 1), 0.0
    x = tiny[a : b + 1] - first
    alphas = np.clip(x @ delta / norm, 0.0, 1.0)
    residual = np.abs(x - alphas[:, None] * delta[None, :]).mean(axis=1)
    return float(residual.mean() / (size + 1e-6)), alphas, size


def whip_frames(frames: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Per frame: True inside a whip pan (see :func:`in_whip`)."""
    mask = np.zeros(len(change), dtype=bool)
    memo: dict[int, float] = {}
    i = 1
    while i < len(change):
        if change[i] >= WHIP_RUN_CHANGE and in_whip(frames, change, i, memo):
            j = i
            while j + 1 < len(change) and change[j + 1] >= WHIP_RUN_CHANGE:
                j += 1
            mask[i - 1 : j + 1] = True
            i = j + 1
        else:
            i += 1
    return mask


def mix_span(alphas: np.ndarray) -> tuple[int, int]:
    """First and last frame (offsets into ``alphas``) of a rising mix: the frames before it starts
    and after it ends, where a straight line through the mix weights between ``MIX_CORE`` meets 0
    and 1 (the weights of unmixed frames are not exactly 0 or 1 when the shots move)."""
    core = np.flatnonzero((alphas > MIX_CORE[0]) & (alphas < MIX_CORE[1]))
    if core.size >= 2:
        slope, offset = np.polyfit(core.astype(np.float64), alphas[core], 1)
        if slope > 0:
            start = int(np.floor(-offset / slope)) - 1
            end = int(np.ceil((1 - offset) / slope)) + 1
            return max(0, min(start, int(core[0]) - 1)), min(len(alphas) - 1, max(end, int(core[-1]) + 1))
    inside = np.flatnonzero((alphas > MIX_EDGE) & (alphas < 1 - MIX_EDGE))
    if inside.size == 0:
        return 0, len(alphas) - 1
    return max(0, int(inside[0]) - 1), min(len(alphas) - 1, int(inside[-1]) + 1)


def swept(frames: np.ndarray, first: int, last: int) -> bool:
    """True when at least a third of the steps in frames first..last move one picture far
    (:func:`whip_step`): a fast pan, smeared too much for the corner tracker."""
    steps = range(max(1, first + 1), last + 1)
    return len(steps) > 0 and sum(whip_step(frames, j) > 0 for j in steps) >= len(steps) / 3


def dissolves(frames: np.ndarray, hists: np.ndarray, cuts: list[int], fps: float,
              spike: np.ndarray | None = None, change: np.ndarray | None = None,
              luma: tuple[np.ndarray, np.ndarray] | None = None) -> list[Event]:
    """Gradual transitions between shots: fades (see :func:`fades`) and dissolves.

    Dissolves are searched locally: for every frame as the middle and every span length in
    ``DISSOLVE_SPANS_S``, the frames of the span are fitted as blends of its two end frames on
    tiny, softened frames (:func:`tiny_frames`). A span is a dissolve candidate when its ends
    differ (colour histograms >= ``DISSOLVE_MIN`` apart), the fit leaves <= ``BLEND_MAX_RESIDUAL``
    of the end difference, the mix rises steadily (correlation with time >= ``MIX_RISING``) and
    reaches ``MIX_MIDDLE`` at the middle frame, and no hard cut, flash, fade, whip pan or black or
    white end lies in it. Candidates are taken best fit first, each widened while it stays a
    blend, trimmed to the frames whose mix is strictly between 0 and 1, and dropped when one
    coherent camera motion explains it (:func:`explained_by_motion`) or it overlaps one taken.
    Pieces less than ``MIN_SHOT_S`` apart are joined into one dissolve.
    """
    spike = spikes(hists, fps) if spike is None else spike
    luma = _tone.luma_curve(frames) if luma is None else luma
    found = fades(frames, hists, cuts, fps, spike, luma)
    n = len(frames)
    if n < 5:
        return found
    if change is None:
        change = frame_changes(frames, hists)
    blocked = spike.copy()
    blocked[cuts] = True
    blocked |= whip_frames(frames, change)
    for first, last, _, _ in found:
        blocked[first : last + 1] = True
    blocked_before = np.concatenate([[0], np.cumsum(blocked)])
    tiny = tiny_frames(frames)
    _mean, tone = luma
    flat_end = _tone.black(tone) | _tone.white(tone)  # a black or white end: a fade's business
    halves = sorted({max(2, int(round(span * (fps or 30.0) / 2)) + 1) for span in DISSOLVE_SPANS_S})

    def span_fit(a: int, b: int) -> tuple[float, np.ndarray] | None:
        """The blend fit of frames a..b when it is one (see the docstring), else None."""
        if a < 0 or b >= n or blocked_before[b + 1] - blocked_before[a + 1] > 0:
            return None  # a cut, flash, fade or whip between the ends
        if float(tv_distance(hists[a], hists[b])) < DISSOLVE_MIN:
            return None
        if flat_end[a] or flat_end[b]:
            return None
        residual, alphas, _ = blend_fit(tiny, a, b)
        if residual > BLEND_MAX_RESIDUAL:
            return None
        rising = float(np.corrcoef(np.arange(len(alphas)), alphas)[0, 1]) if alphas.std() > 0 else 0.0
        return (residual, alphas) if rising >= MIX_RISING else None

    def fit(c: int, w: int) -> tuple[float, np.ndarray] | None:
        result = span_fit(c - w, c + w)
        return result if result is not None and MIX_MIDDLE[0] <= result[1][w] <= MIX_MIDDLE[1] else None

    candidates = []
    for c in range(1, n - 1):
        for w in halves:
            result = fit(c, w)
            if result is not None:
                candidates.append((result[0], c, w))
    taken: list[tuple[int, int]] = []
    for _, c, w in sorted(candidates):
        if any(c - w <= last and first <= c + w for first, last in taken):
            continue
        a, b = c - w, c + w  # widen each side while the frames stay blends of the ends
        step = max(1, int(round((fps or 30.0) / 20)))
        longest = int(round(DISSOLVE_SPANS_S[-1] * (fps or 30.0))) + 2
        grown = True
        while grown:
            grown = False
            for side in (-1, 1):  # one step on each side per round
                a2, b2 = (a - step, b) if side < 0 else (a, b + step)
                if b2 - a2 <= longest and span_fit(a2, b2) is not None:
                    a, b, grown = a2, b2, True
        _, alphas, _ = blend_fit(tiny, a, b)
        first, last = mix_span(alphas)
        first, last = a + first, a + last
        if any(first <= t_last and t_first <= last for t_first, t_last in taken):
            continue
        if explained_by_motion(frames, first, last, fps) or swept(frames, first, last):
            continue  # a fast zoom or pan, not an edit
        taken.append((first, last))
    return sorted(found + merge_close(taken, hists, int(round(MIN_SHOT_S * (fps or 30.0)))))


def merge_close(spans: list[tuple[int, int]], hists: np.ndarray, gap: int) -> list[Event]:
    """Dissolve events from spans, joining spans less than ``gap`` frames apart: no shot is that
    short, so they are two pieces of one dissolve that fast motion kept from fitting as one."""
    merged: list[list[int]] = []
    for first, last in sorted(spans):
        if merged and first - merged[-1][1] < gap:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [(a, b, "dissolve", float(tv_distance(hists[a], hists[b]))) for a, b in merged]


def detect(
    frames: np.ndarray, fps: float, hists: np.ndarray | None = None, luma: tuple[np.ndarray, np.ndarray] | None = None,
    times: np.ndarray | None = None,
) -> tuple[np.ndarray, list[Event]]:
    """Frame changes and all edit points, sorted: (first, last, kind, strength) per event
    (``hists`` and ``luma``: the frames' :func:`histograms` and grey-level mean and tone, when
    already at hand; ``times``: the frames' times, for variable frame rates)."""
    hists = histograms(frames) if hists is None else np.asarray(hists)
    change = frame_changes(frames, hists)
    spike = spikes(hists, fps)
    cuts = hard_cuts(change, hists, fps, frames, spike, times)
    events: list[Event] = [(i, i, "hard_cut", float(change[i])) for i in cuts]
    events += dissolves(frames, hists, cuts, fps, spike, change, luma)
    return change, sorted(events)


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    frames = media.lowres
    times = media.lowres_times
    fps = media.meta.fps or (len(times) / max(media.duration_s, 1e-6))
    stats = frame_stats.stats(media)
    _, events = detect(frames, fps, stats.hist, (np.asarray(stats.luma_mean), np.asarray(stats.tone)),
                       np.asarray(times))
    rows = []
    for shot_index, (first, last, kind, strength) in enumerate(events, start=1):
        rows.append(
            {
                "start_s": round(float(times[first]), 3),
                "end_s": round(float(times[last]), 3),
                "kind": kind,
                "strength": round(strength, 4),
                "frame_index": int(first),
                "shot_index": shot_index,
            }
        )
    minutes = media.duration_s / 60 if media.duration_s else 1.0
    shots = len(rows) + 1
    cuts = sum(r["kind"] == "hard_cut" for r in rows)
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, media.duration_s)],
        metadata={
            "cuts": cuts,
            "transitions": len(rows),
            "cuts_per_minute": round(cuts / minutes, 2),  # hard cuts only; fades and dissolves are not cuts
            "transitions_per_minute": round(len(rows) / minutes, 2),
            "mean_shot_length_s": round(media.duration_s / shots, 2),
            "frames_compared": int(len(frames)),
        },
    )


SPEC = AnalyzerSpec(
    name="cut_analysis",
    modality="visual",
    description="Hard cuts, dissolves and fades with time and strength; cut rate",
    version="5",
    columns=COLUMNS,
    run=run,
    passes=("frame_stats",),
    main_figure="cuts",
    timeline_label="kind",
)
