"""Objects, products and content safety (issue 13).

object_detection: no COCO weights can be had offline, so these tests use a tiny *randomly
initialised* YOLOv8n built from ``yolov8n.yaml`` (``_yolo.tiny_random_yolo``). They test plumbing,
not accuracy: batching by the group's batch size, letterboxing of portrait frames, boxes mapped back
to the displayed frame, timestamps, track rows. The tracker itself is tested on detections with
known boxes. Without weights the analyzer raises ModelUnavailable naming the setting.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from array_media import media_from_arrays
from helpers import placed_on_gpu_recording_batches
from skimage import data

from tiktok_assets.analyzers import AnalyzerContext, _yolo, get_spec, object_detection, run_analyzer
from tiktok_assets.analyzers._yolo import Detections
from tiktok_assets.model_registry import ModelLoader, ModelUnavailable, ResolvedModel
from tiktok_assets.model_registry.resource import FakeModelLoader


def _portrait(photo: np.ndarray, background: int, top: int) -> np.ndarray:
    """A 640x360 portrait frame: ``photo`` (cropped to 360 wide) on a flat background from row ``top``."""
    frame = np.full((640, 360, 3), background, np.uint8)
    piece = photo[: 640 - top, :360]
    frame[top : top + piece.shape[0], : piece.shape[1]] = piece
    return frame


@pytest.fixture(scope="module")
def portraits() -> list[np.ndarray]:
    astronaut, cat, coffee = data.astronaut(), data.chelsea(), data.coffee()
    return [_portrait(astronaut[::2, ::2], 90, 150), _portrait(cat, 200, 300), _portrait(coffee, 30, 100),
            _portrait(astronaut, 120, 0), _portrait(cat[:, 60:], 60, 40)]


@pytest.fixture(scope="module")
def tiny_yolo(tmp_path_factory):
    """The random tiny YOLO on the CPU through the registry's loader (plumbing only)."""
    folder = _yolo.tiny_random_yolo(tmp_path_factory.mktemp("tiny-yolo") / "yolov8n")
    resolved = ResolvedModel("tiny random yolov8n", str(folder), "fake (random weights)", "yolov8n")
    return _yolo.load_model(resolved, "cpu", 0, folder.parent)


def test_frames_go_in_batches_letterboxed_and_boxes_map_back_to_the_displayed_frame(tiny_yolo, portraits):
    shapes: list[tuple[int, ...]] = []
    hook = tiny_yolo.model.model.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape)))
    try:
        batched = tiny_yolo.detect(portraits, batch_size=2, conf=0.1)
    finally:
        hook.remove()
    # 5 frames in batches of 2: 2 + 2 + 1; portrait 360x640 letterboxed to 384 wide (a stride multiple)
    assert shapes == [(2, 3, 640, 384), (2, 3, 640, 384), (1, 3, 640, 384)]
    single = tiny_yolo.detect(portraits, batch_size=1, conf=0.1)
    assert sum(len(d) for d in batched) > 0, "the random model must produce boxes for this test to mean anything"
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.05)
        np.testing.assert_array_equal(a.cls, b.cls)
    # the same pictures at twice the size (nearest-neighbour) give the model the same letterboxed input:
    # the boxes must come back at twice the coordinates, in the larger frame's pixels
    doubled = tiny_yolo.detect([f.repeat(2, 0).repeat(2, 1) for f in portraits], batch_size=2, conf=0.1)
    for a, b in zip(batched, doubled):
        assert len(a) == len(b)
        np.testing.assert_allclose(b.xyxy, 2 * a.xyxy, atol=0.5)
        assert (b.xyxy >= 0).all() and (b.xyxy[:, [0, 2]] <= 720).all() and (b.xyxy[:, [1, 3]] <= 1280).all()


def _moving(frames: int, start: tuple[float, float], speed: float, size: tuple[float, float]) -> list[np.ndarray]:
    return [np.array([start[0] + speed * i, start[1], start[0] + speed * i + size[0], start[1] + size[1]],
                     np.float32) for i in range(frames)]


def test_bytetrack_links_known_boxes_into_tracks_with_spans_and_positions():
    """Detections with known boxes (not a model's): a person walking right over 10 frames, a cup
    from frame 4 to 9 (weak on frame 6: kept by ByteTrack's second stage), a one-frame blip."""
    person = _moving(10, (20, 100), 6, (120, 400))
    cup = _moving(10, (250, 500), 0, (40, 60))
    dets = []
    for i in range(10):
        boxes, conf, cls = [person[i]], [0.9], [0]
        if i >= 4:
            boxes.append(cup[i])
            conf.append(0.15 if i == 6 else 0.7)
            cls.append(41)
        if i == 2:
            boxes.append(np.array([300, 20, 340, 60], np.float32))
            conf.append(0.6)
            cls.append(67)
        dets.append(Detections(np.stack(boxes), np.array(conf, np.float32), np.array(cls)))
    tracks = object_detection.link(dets, sample_fps=2.0)
    assert [len(t.hits) for t in tracks] == [10, 6]  # the blip is never confirmed
    times = 1.0 + np.arange(10) * 0.5  # the frames' times (a video whose first sample is at 1 s)
    names = {0: "person", 41: "cup", 67: "cell phone"}
    person_row, cup_row = (object_detection.track_row(t, times, 360, 640, 6.0, 0.5, names, "m") for t in tracks)
    assert person_row["label"] == "person" and (person_row["start_s"], person_row["end_s"]) == (1.0, 6.0)
    assert cup_row["label"] == "cup" and (cup_row["start_s"], cup_row["end_s"]) == (3.0, 6.0)
    assert [b["t"] for b in cup_row["boxes"]] == [3.0, 3.5, 4.0, 4.5, 5.0, 5.5]
    assert cup_row["boxes"][2]["conf"] == pytest.approx(0.15)
    assert cup_row["confidence_max"] == pytest.approx(0.7) and cup_row["peak_s"] == 3.0
    # detector boxes, normalised to the 360x640 frame
    assert cup_row["box_mean"] == pytest.approx([250 / 360, 500 / 640, 290 / 360, 560 / 640], abs=1e-4)
    assert person_row["boxes"][9]["box"] == pytest.approx([74 / 360, 100 / 640, 194 / 360, 500 / 640], abs=1e-4)
    assert cup_row["area_mean"] == pytest.approx(40 * 60 / (360 * 640), abs=1e-4)
    assert cup_row["size_class"] == "small" and person_row["size_class"] == "large"
    assert cup_row["position"] == "bottom-right" and person_row["position"] == "left"


def test_position_grid_and_size_classes():
    assert object_detection.position_name(0.5, 0.5) == "center"
    assert object_detection.position_name(0.1, 0.1) == "top-left"
    assert object_detection.position_name(0.5, 0.9) == "bottom"
    assert object_detection.position_name(0.99, 0.5) == "right"
    assert [object_detection.size_class(a) for a in (0.01, 0.02, 0.149, 0.15)] == ["small", "medium", "medium",
                                                                                    "large"]


def test_analyzer_tracks_a_static_clip_once_per_object_and_loads_the_model_once(settings, tiny_yolo, portraits,
                                                                               tmp_path):
    """8 sampled frames of one still picture: every confident random box is one track over the whole
    clip, with per-frame boxes at the frames' times (plumbing; the random model's classes mean nothing)."""
    frames = np.stack([portraits[0]] * 8)
    media = media_from_arrays(tmp_path / "still", frames, fps=2.0, video_id="still")
    loader = FakeModelLoader(settings, tmp_path / "models", {"yolov8n": _yolo.tiny_random_yolo})
    context = AnalyzerContext(video_id="still", settings=settings, device="cpu", batch_size=3, models=loader)
    run = run_analyzer(get_spec("object_detection"), media, context)
    again = run_analyzer(get_spec("object_detection"), media, context)
    assert loader.counts["yolov8n"] == 1
    assert run.table.to_pylist() == again.table.to_pylist()
    rows = run.table.to_pylist()
    direct = tiny_yolo.detect([portraits[0]], conf=object_detection.DETECT_CONF)[0]
    confident = direct.conf >= 0.25
    assert confident.sum() >= 1 and len(rows) == int(confident.sum())
    expected = np.array(sorted(map(tuple, direct.xyxy[confident] / [360, 640, 360, 640])))
    np.testing.assert_allclose(sorted(tuple(r["box_mean"]) for r in rows), expected, atol=2e-4)
    for row in rows:
        assert (row["start_s"], row["end_s"], row["frames"]) == (0.0, 4.0, 8)
        assert [b["t"] for b in row["boxes"]] == [0.5 * i for i in range(8)]
        assert row["label"] in tiny_yolo.names.values() and row["model"] == "tiny random yolov8n"
        assert all(0.0 <= v <= 1.0 for v in row["box_mean"])
    assert run.examined == [(0.0, 4.0)]
    assert run.metadata["tracks"] == len(rows) and run.metadata["frames"] == 8


def test_without_weights_the_analyzer_names_the_setting(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(_yolo, "_github_reachable", lambda timeout_s=3.0: False)
    own = dataclasses.replace(settings, model_store=tmp_path / "store")
    media = media_from_arrays(tmp_path / "m", np.zeros((2, 64, 36, 3), np.uint8), fps=2.0)
    context = AnalyzerContext(video_id="arrays", settings=own, models=ModelLoader(own))
    with pytest.raises(ModelUnavailable, match="TIKTOK_ASSETS_OBJECT_MODEL"):
        run_analyzer(get_spec("object_detection"), media, context)
    missing = dataclasses.replace(own, object_model=str(tmp_path / "nowhere" / "model.pt"))
    with pytest.raises(ModelUnavailable, match="TIKTOK_ASSETS_OBJECT_MODEL"):
        ModelLoader(missing).load("yolov8n", "cpu")
    assert object_detection.model_id_for("cuda:0") == "yolov8x" and object_detection.model_id_for("cpu") == "yolov8n"


def test_a_local_weights_file_is_loaded_through_the_registry(settings, tiny_yolo, tmp_path):
    folder = _yolo.tiny_random_yolo(tmp_path / "local")
    own = dataclasses.replace(settings, object_model=str(next(Path(folder).glob("*.pt"))))
    detector = ModelLoader(own).load("yolov8n", "cpu")
    assert detector.resolved.origin == "local path" and len(detector.names) == 80
    assert (detector.names[0], detector.names[41], detector.names[67]) == ("person", "cup", "cell phone")


def test_lapjv_stand_in_matches_brute_force_with_a_cost_limit():
    """The SciPy stand-in for ``lap.lapjv`` (ultralytics' trackers need it): optimal assignment where
    an unmatched row and column together cost ``cost_limit``, checked against every matching."""
    import itertools

    rng = np.random.default_rng(3)
    for n, m in ((3, 3), (2, 4), (4, 2), (3, 5)):
        cost = rng.random((n, m))
        limit = 0.5
        _, x, y = _yolo.lapjv(cost, extend_cost=True, cost_limit=limit)
        best = np.inf
        for k in range(min(n, m) + 1):
            for rows in itertools.combinations(range(n), k):
                for cols in itertools.permutations(range(m), k):
                    best = min(best, sum(cost[r, c] for r, c in zip(rows, cols)) + (n + m - 2 * k) * limit / 2)
        got = sum(cost[r, x[r]] for r in range(n) if x[r] >= 0) + ((x < 0).sum() + (y < 0).sum()) * limit / 2
        assert got == pytest.approx(best)
        assert all(y[x[r]] == r for r in range(n) if x[r] >= 0)
        assert all(cost[r, x[r]] <= limit for r in range(n) if x[r] >= 0)


# --- content_safety (the real NudeNet 320n graph, offline) -----------------------------------------
# Positives (explicit or suggestive classes) cannot be tested with generated media or the bundled
# photos: these tests show that the packaged model runs, finds the astronaut's face class, maps its
# box onto the displayed frame and flags nothing on non-explicit pictures; the flag rule is tested
# on given per-frame findings.


def _placed(photo: np.ndarray, x: int, y: int, size=(640, 360)) -> np.ndarray:
    frame = np.full((*size, 3), 70, np.uint8)
    frame[y : y + photo.shape[0], x : x + photo.shape[1]] = photo[: size[0] - y, : size[1] - x]
    return frame


@pytest.fixture(scope="module")
def nudenet(settings):
    return ModelLoader(settings).load("nudenet-320n", "cpu")


def test_nudenet_batches_reproduce_the_package_detector_on_bundled_photos(nudenet):
    from nudenet.nudenet import NudeDetector

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), _placed(data.astronaut()[::2, ::2], 40, 100)]
    ours = nudenet.detect(photos, batch_size=3)
    reference = NudeDetector()
    for photo, found in zip(photos, ours):
        expected = reference.detect(np.ascontiguousarray(photo[..., ::-1]))  # the package reads BGR like cv2
        assert [d["class"] for d in expected] == [label for label, _, _ in found]
        for want, (_, conf, box) in zip(expected, found):
            x, y, w, h = want["box"]
            assert conf == pytest.approx(want["score"], abs=2e-3)
            np.testing.assert_allclose(box, [x, y, x + w, y + h], atol=1.5)
    assert [label for label, _, _ in ours[0]] == ["FACE_FEMALE"]
    assert nudenet.resolved.origin == "PyPI package nudenet"  # size and sha256 checked by the registry


def test_nudenet_on_a_gpu_feeds_one_batch_shape_with_the_same_findings(nudenet, monkeypatch):
    """On a GPU the short last batch is filled up to the batch size (the CUDA provider re-plans on
    every new input shape); the findings equal the unpadded ones. The real graph, run on the CPU."""
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), _placed(data.astronaut()[::2, ::2], 40, 100)]
    expected = nudenet.detect(photos, batch_size=3)
    shapes = placed_on_gpu_recording_batches(nudenet, monkeypatch)
    found = nudenet.detect(photos, batch_size=3)
    assert shapes == [3, 3] and len(found) == len(photos)
    for got, want in zip(found, expected, strict=True):
        assert [(label, round(conf, 5)) for label, conf, _ in got] == [(label, round(conf, 5)) for label, conf, _ in want]


def test_content_safety_finds_the_face_span_and_flags_photos_safe(settings, tmp_path):
    """10 sampled frames (2 fps): the astronaut at half size from 0 to 2 s, then the coffee cup, the
    rocket and the cat. Her face (173..274 x 83..180 in the 512 px photo) must come back as one
    FACE_FEMALE span at its place in the portrait frame."""
    half = data.astronaut()[::2, ::2]
    frames = [_placed(half, 40, 100)] * 4 + [_placed(data.coffee()[::2, ::2], 0, 200)] * 3
    frames += [_placed(data.rocket()[::2, ::2], 10, 300)] * 2 + [_placed(data.chelsea(), 0, 150)]
    media = media_from_arrays(tmp_path / "photos", np.stack(frames), fps=2.0, video_id="photos")
    context = AnalyzerContext(video_id="photos", settings=settings, batch_size=4)
    run = run_analyzer(get_spec("content_safety"), media, context)
    rows = run.table.to_pylist()
    spans = [r for r in rows if r["level"] == "span"]
    faces = [r for r in spans if r["label"] == "FACE_FEMALE"]
    assert len(faces) == 1 and (faces[0]["start_s"], faces[0]["end_s"], faces[0]["frames"]) == (0.0, 2.0, 4)
    face = np.array([40 + 173 / 2, 100 + 83 / 2, 40 + 274 / 2, 100 + 180 / 2]) / [360, 640, 360, 640]
    np.testing.assert_allclose(faces[0]["box_peak"], face, atol=0.02)
    assert [h["t"] for h in faces[0]["hits"]] == [0.0, 0.5, 1.0, 1.5]
    assert not [r for r in spans if r["category"] != "none"]
    video = [r for r in rows if r["level"] == "video"]
    assert len(video) == 1 and video[0]["flag"] == "safe" and (video[0]["start_s"], video[0]["end_s"]) == (0.0, 5.0)
    assert run.metadata["flag"] == "safe" and run.examined == [(0.0, 5.0)]


def test_flag_rule_and_span_merging():
    from tiktok_assets.analyzers import content_safety as cs

    box = np.array([10.0, 10.0, 50.0, 50.0])

    def frames(*found):
        return [{label: (conf, box) for label, conf in f} for f in found]

    breast, belly, face = "FEMALE_BREAST_EXPOSED", "BELLY_EXPOSED", "FACE_FEMALE"
    assert cs.video_flag(frames([(breast, 0.7)], [(breast, 0.65)], []))[0] == "explicit"
    assert cs.video_flag(frames([(breast, 0.55)], [(breast, 0.58)], []))[0] == "suggestive"
    assert cs.video_flag(frames([(belly, 0.9)], [(belly, 0.9)], [(belly, 0.9)]))[0] == "suggestive"
    assert cs.video_flag(frames([(face, 0.9), (breast, 0.9)], [(face, 0.9)], [(face, 0.9)]))[0] == "safe"
    assert cs.video_flag(frames([(breast, 0.7)]))[0] == "explicit"  # a one-frame video
    flag, reason = cs.video_flag(frames([(breast, 0.7)], [(breast, 0.7)]))
    assert "FEMALE_BREAST_EXPOSED" in reason and "2 sampled frames" in reason
    assert [cs.category(x) for x in (breast, belly, face, "MALE_BREAST_EXPOSED")] == ["explicit", "suggestive", "none",
                                                                                     "none"]
    times = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    found = frames([(face, 0.8)], [(face, 0.6)], [], [(face, 0.7)], [], [], [(face, 0.9)])
    rows = cs.spans(times, found, 0.5, 3.2, 100, 100, "m")
    assert [(r["start_s"], r["end_s"], r["frames"]) for r in rows] == [(0.0, 2.0, 3), (3.0, 3.2, 1)]
    assert rows[0]["confidence_max"] == 0.8 and rows[0]["box_peak"] == [0.1, 0.1, 0.5, 0.5]


# --- product_detection (from object tracks with known boxes) -----------------------------------------


def _object_table(tracks: list[tuple[int, str, list[tuple[float, list[float], float]]]], duration: float):
    """An object_detection table (its real schema, via track_row) from (track id, label, [(t, box px, conf)])
    on a 360x640 frame sampled at 2 fps."""
    from tiktok_assets.analyzers.base import to_table
    from tiktok_assets.analyzers.object_detection import Track, track_row

    times = np.arange(0.0, duration, 0.5)
    names = {i: label for i, (_, label, _) in enumerate(tracks)}
    rows = []
    for class_id, (track_id, _, hits) in enumerate(tracks):
        track = Track(track_id, [(int(round(t * 2)), np.array(box, np.float32), conf, class_id) for t, box, conf in hits])
        rows.append(track_row(track, times, 360, 640, duration, 0.5, names, "known boxes"))
    return to_table(object_detection.SPEC, "objects", rows)


def test_products_come_from_object_tracks_with_category_screen_time_and_prominence(settings, tmp_path):
    centre_cup = [120, 240, 240, 400]  # 120x160 px in the middle: area 0.0833 of the frame
    corner_laptop = [0, 0, 90, 64]  # top-left: area 0.025
    table = _object_table([
        (1, "cup", [(t, centre_cup, 0.8) for t in (1.0, 1.5, 2.0, 3.0)]),
        (2, "laptop", [(t, corner_laptop, 0.6) for t in (0.0, 0.5)]),
        (3, "person", [(t, [0, 0, 360, 640], 0.9) for t in (0.0, 0.5, 1.0)]),
    ], duration=4.0)
    media = media_from_arrays(tmp_path / "m", np.zeros((8, 64, 36, 3), np.uint8), fps=2.0)
    context = AnalyzerContext(video_id="arrays", settings=settings, inputs={"object_detection": table},
                              input_examined={"object_detection": [(0.0, 4.0)]})
    run = run_analyzer(get_spec("product_detection"), media, context)
    rows = {r["label"]: r for r in run.table.to_pylist()}
    assert set(rows) == {"cup", "laptop"}  # a person is not a product
    cup, laptop = rows["cup"], rows["laptop"]
    assert (cup["category"], cup["start_s"], cup["end_s"], cup["time_on_screen_s"]) == ("beverage", 1.0, 3.5, 2.0)
    assert cup["area_mean"] == pytest.approx(120 * 160 / (360 * 640), abs=1e-4) and cup["centred"]
    assert cup["prominence"] == pytest.approx(120 * 160 / (360 * 640) / 0.15, abs=1e-3)
    assert (laptop["category"], laptop["time_on_screen_s"], laptop["centred"]) == ("electronics", 1.0, False)
    assert laptop["prominence"] == pytest.approx(90 * 64 / (360 * 640) / 0.15 * 0.5, abs=1e-3)
    assert run.examined == [(0.0, 4.0)]  # what object_detection examined; no media read
    assert cup["held_up"] is None and cup["in_hand_share"] is None  # no body_pose table: not computed
    assert run.metadata["hands"].startswith("no body_pose table")


def _pose_rows(hands: dict[float, tuple[float, float, float]]) -> list[dict]:
    """body_pose ``frame`` rows whose right wrist is at (x, y) with visibility v at time t (all
    other landmarks unseen), in body_pose's schema."""
    rows = []
    for t, (x, y, v) in hands.items():
        marks = np.zeros((33, 4), np.float32)
        marks[16] = (x, y, 0.0, v)  # MediaPipe pose: right wrist
        rows.append({"start_s": t, "end_s": t, "level": "frame", "landmarks": marks.ravel().tolist(), "frames": 1})
    return rows


def test_a_product_in_a_hand_of_the_pose_is_held_up(settings, tmp_path):
    from tiktok_assets.analyzers import body_pose
    from tiktok_assets.analyzers.base import to_table

    centre_cup = [120, 240, 240, 400]  # normalised x 0.333-0.667, y 0.375-0.625
    table = _object_table([
        (1, "cup", [(t, centre_cup, 0.8) for t in (1.0, 1.5, 2.0, 3.0)]),
        (2, "laptop", [(t, [0, 0, 90, 64], 0.6) for t in (0.0, 0.5)]),
    ], duration=4.0)
    # the wrist holds the cup at 1.0-2.0 s; at 3.0 s it is inside the box but not seen (visibility
    # 0.2); it is near the laptop's corner only at 1.0 s, when the laptop is gone
    pose = to_table(body_pose.SPEC, "arrays", _pose_rows({
        0.0: (0.9, 0.9, 0.9), 0.5: (0.9, 0.9, 0.9), 1.0: (0.5, 0.5, 0.9), 1.5: (0.68, 0.5, 0.9),
        2.0: (0.4, 0.6, 0.8), 3.0: (0.5, 0.5, 0.2),
    }))
    media = media_from_arrays(tmp_path / "m", np.zeros((8, 64, 36, 3), np.uint8), fps=2.0)
    context = AnalyzerContext(video_id="arrays", settings=settings,
                              inputs={"object_detection": table, "body_pose": pose},
                              input_examined={"object_detection": [(0.0, 4.0)], "body_pose": [(0.0, 4.0)]})
    run = run_analyzer(get_spec("product_detection"), media, context)
    rows = {r["label"]: r for r in run.table.to_pylist()}
    # 0.68 lies in the 10 % margin of the box (x up to 0.667 + 0.033): in hand at 1.0, 1.5, 2.0 of 4 frames
    assert rows["cup"]["in_hand_share"] == pytest.approx(0.75) and rows["cup"]["held_up"] is True
    assert rows["laptop"]["in_hand_share"] == 0.0 and rows["laptop"]["held_up"] is False
    assert run.metadata["held_up"] == 1 and run.metadata["hands"] == "from body_pose"


def test_products_without_object_tracks_say_why(settings, tmp_path):
    media = media_from_arrays(tmp_path / "m", np.zeros((2, 64, 36, 3), np.uint8), fps=2.0)
    spec = get_spec("product_detection")
    unavailable = AnalyzerContext(video_id="arrays", settings=settings,
                                  input_runs={"object_detection": {"status": "model_unavailable"}})
    with pytest.raises(ModelUnavailable, match="TIKTOK_ASSETS_OBJECT_MODEL"):
        run_analyzer(spec, media, unavailable)
    from tiktok_assets.analyzers.base import AnalyzerError

    with pytest.raises(AnalyzerError, match="object_detection is failed"):
        run_analyzer(spec, media, AnalyzerContext(video_id="arrays", settings=settings,
                                                  input_runs={"object_detection": {"status": "failed"}}))
