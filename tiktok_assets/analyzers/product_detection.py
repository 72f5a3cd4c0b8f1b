"""Products on screen, from the object tracks of ``object_detection`` (no second detector pass).

A track is a product when its COCO class is in :data:`CATEGORIES` (beverage, food, electronics,
fashion, sports, beauty, home, vehicle). People, animals, street furniture and large furniture
(chair, couch, bed, table) are not products; COCO has no class for shoes, cosmetics or clothing,
so those are not found. One row per product track:

* ``track_id``, ``label`` (COCO class), ``category``, ``confidence_mean`` (from the track);
* ``time_on_screen_s``: sampled frames with the object x the sampling step (a frame stands for one
  step), at most the span ``end_s - start_s``;
* ``area_mean``/``area_max``: box area as a share of the frame;
* ``centred_share``: share of its frames whose box centre lies in the middle third of the frame
  both ways; ``centred``: ``centred_share >= 0.5``;
* ``prominence`` (0..1) = ``min(1, area_mean / 0.15) x (0.5 + 0.5 x centred_share)``: a product
  filling 15 % of the frame in the centre scores 1, the same off-centre 0.5;
* ``in_hand_share``: share of the track's frames in which a seen hand landmark of ``body_pose``
  (wrist, index, pinky or thumb with visibility >= 0.5, from the body_pose frame row within half a
  sampling step of the box) lies inside the box grown by 10 % of its size; ``held_up``: in a hand
  in at least ``HELD_SHARE`` of its frames. Both null when ``body_pose`` has no table for the video
  (then ``metadata.hands`` says so).

Without the object tracks (``object_detection`` could not load its model, or failed) the analyzer
raises the same kind of error and produces no rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa

from ..model_registry import ModelUnavailable
from .base import AnalyzerContext, AnalyzerError, AnalyzerOutput, AnalyzerSpec

PROMINENT_AREA = 0.15
CENTRED_SHARE = 0.5
HELD_SHARE = 0.3
HAND_LANDMARKS = (15, 16, 17, 18, 19, 20, 21, 22)  # MediaPipe pose: wrists, pinkies, index fingers, thumbs
SEEN = 0.5
GROW = 0.1

CATEGORIES: dict[str, str] = {
    **dict.fromkeys(("bottle", "wine glass", "cup"), "beverage"),
    **dict.fromkeys(("banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut",
                     "cake", "bowl", "fork", "knife", "spoon"), "food"),
    **dict.fromkeys(("tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "toaster"),
                    "electronics"),
    **dict.fromkeys(("backpack", "umbrella", "handbag", "tie", "suitcase"), "fashion"),
    **dict.fromkeys(("frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
                     "skateboard", "surfboard", "tennis racket"), "sports"),
    **dict.fromkeys(("hair drier", "toothbrush"), "beauty"),
    **dict.fromkeys(("book", "clock", "vase", "scissors", "teddy bear"), "home"),
    **dict.fromkeys(("bicycle", "car", "motorcycle"), "vehicle"),
}

COLUMNS = (
    pa.field("track_id", pa.int64()),
    pa.field("label", pa.string()),
    pa.field("category", pa.string()),
    pa.field("confidence_mean", pa.float64()),
    pa.field("time_on_screen_s", pa.float64()),
    pa.field("area_mean", pa.float64()),
    pa.field("area_max", pa.float64()),
    pa.field("centred_share", pa.float64()),
    pa.field("centred", pa.bool_()),
    pa.field("prominence", pa.float64()),
    pa.field("in_hand_share", pa.float64()),
    pa.field("held_up", pa.bool_()),
)


def centred(box: list[float]) -> bool:
    """Whether a normalised box's centre lies in the middle third of the frame both ways."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return 1 / 3 <= cx <= 2 / 3 and 1 / 3 <= cy <= 2 / 3


def hands_by_time(pose_rows: list[dict]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(frame times, seen hand points (N, 2) per time) from body_pose's ``frame`` rows."""
    times, points = [], []
    for row in sorted((r for r in pose_rows if r.get("level") == "frame" and r.get("landmarks")),
                      key=lambda r: r["start_s"]):
        marks = np.asarray(row["landmarks"], np.float64).reshape(-1, 4)
        hands = marks[list(HAND_LANDMARKS)]
        times.append(float(row["start_s"]))
        points.append(hands[hands[:, 3] >= SEEN, :2])
    return np.asarray(times), points


def in_hand(box: list[float], t: float, hands: tuple[np.ndarray, list[np.ndarray]], step: float) -> bool:
    """Whether a seen hand point near time ``t`` lies inside ``box`` grown by ``GROW`` of its size."""
    times, points = hands
    if times.size == 0:
        return False
    i = int(np.argmin(np.abs(times - t)))
    if abs(times[i] - t) > step / 2 + 1e-6 or points[i].size == 0:
        return False
    x1, y1, x2, y2 = box
    gx, gy = GROW * (x2 - x1), GROW * (y2 - y1)
    p = points[i]
    inside = (p[:, 0] >= x1 - gx) & (p[:, 0] <= x2 + gx) & (p[:, 1] >= y1 - gy) & (p[:, 1] <= y2 + gy)
    return bool(inside.any())


def product_row(track: dict, step: float, hands: tuple[np.ndarray, list[np.ndarray]] | None = None) -> dict | None:
    """The row of one object track, or None when its class is not a product."""
    category = CATEGORIES.get(track["label"])
    if category is None:
        return None
    boxes = [b["box"] for b in track["boxes"] or []]
    areas = [max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) for b in boxes] or [track["area_mean"]]
    share = float(np.mean([centred(b) for b in boxes])) if boxes else float(centred(track["box_mean"]))
    area = float(track["area_mean"])
    span = track["end_s"] - track["start_s"]
    held = None
    if hands is not None and track["boxes"]:
        held = float(np.mean([in_hand(b["box"], float(b["t"]), hands, step) for b in track["boxes"]]))
    return {
        "start_s": track["start_s"],
        "end_s": track["end_s"],
        "track_id": track["track_id"],
        "label": track["label"],
        "category": category,
        "confidence_mean": track["confidence_mean"],
        "time_on_screen_s": round(min(span, track["frames"] * step), 3),
        "area_mean": round(area, 5),
        "area_max": round(float(max(areas)), 5),
        "centred_share": round(share, 3),
        "centred": share >= CENTRED_SHARE,
        "prominence": round(min(1.0, area / PROMINENT_AREA) * (0.5 + 0.5 * share), 4),
        "in_hand_share": None if held is None else round(held, 3),
        "held_up": None if held is None else held >= HELD_SHARE,
    }


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    table = context.inputs.get("object_detection")
    if table is None:
        status = (context.input_runs.get("object_detection") or {}).get("status", "missing")
        if status == "model_unavailable":
            raise ModelUnavailable("product_detection needs the object tracks, and object_detection has no YOLO "
                                   "weights here; set TIKTOK_ASSETS_OBJECT_MODEL (on a GPU: "
                                   "TIKTOK_ASSETS_OBJECT_MODEL_GPU) to a COCO model")
        raise AnalyzerError(f"product_detection needs the object_detection table of this video (object_detection "
                            f"is {status}); run object_detection first")
    step = 1.0 / float(media.meta.sample_fps)
    pose = context.inputs.get("body_pose")
    hands = hands_by_time(pose.to_pylist()) if pose is not None else None
    rows = [row for track in table.to_pylist() if (row := product_row(track, step, hands)) is not None]
    rows.sort(key=lambda r: (r["start_s"], r["track_id"]))
    screen: defaultdict[str, float] = defaultdict(float)
    for row in rows:
        screen[row["category"]] += row["time_on_screen_s"]
    counts = Counter(r["label"] for r in rows)
    metadata = {
        "products": ", ".join(f"{label} {k}" for label, k in counts.most_common(8)) or "none",
        "product_tracks": len(rows),
        "screen_time_s": ", ".join(f"{c} {s:.1f}" for c, s in sorted(screen.items(), key=lambda x: -x[1])) or "none",
        "hands": "from body_pose" if hands is not None else "no body_pose table: held_up not computed",
        "held_up": sum(1 for r in rows if r["held_up"]),
    }
    return AnalyzerOutput(rows=rows, examined=[(0.0, float(media.duration_s))], metadata=metadata)


SPEC = AnalyzerSpec(
    name="product_detection",
    modality="visual",
    description="Products (COCO product classes with a category) from the object tracks: time on screen and "
                "prominence (box area, centred)",
    version="2",
    columns=COLUMNS,
    run=run,
    depends_on=("object_detection",),
    optional_inputs=("body_pose",),
    main_figure="products",
    timeline_label="category || ': ' || label",
)
