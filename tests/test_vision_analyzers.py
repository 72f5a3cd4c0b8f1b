"""Vision analyzers (scenes, camera, colour, quality, effects) on generated clips with known truth.

Every clip is drawn here from a textured "photo" (a smooth colour field with random ellipses and
boxes): a window moved over it is a pan or tilt, a shrinking window a zoom. Clips are 180x320 at
30 fps, a few seconds each, encoded with ``encode_frames`` and decoded into a media cache.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import analyze, encode_frames, make_media
from PIL import Image, ImageDraw

from tiktok_assets.analyzers import _motion, _shots, get_spec, run_analyzer
from tiktok_assets.analyzers.base import AnalyzerContext, AnalyzerError

W, H, FPS = 180, 320, 30
VISION = ("scene_segmentation", "camera_analysis", "color_analysis", "content_quality", "visual_effects")


def photo(seed: int, tint=(128, 128, 128), size=(900, 1200)) -> np.ndarray:
    """A textured picture: a smooth colour field around ``tint`` with random ellipses and boxes."""
    import cv2

    rng = np.random.default_rng(seed)
    w, h = size
    low = np.clip(np.asarray(tint, np.float32) + rng.normal(0, 45, (6, 5, 3)), 0, 255).astype(np.float32)
    img = Image.fromarray(np.clip(cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(260):
        x, y, s = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(6, 60)
        colour = tuple(int(c) for c in np.clip(np.asarray(tint) + rng.normal(0, 70, 3), 0, 255))
        box = [x, y, x + s, y + s * rng.uniform(0.5, 1.5)]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return np.asarray(img)


def crop(img: np.ndarray, cx: float, cy: float, cw: float) -> np.ndarray:
    """The window ``cw`` wide (clip aspect) centred at (cx, cy) of ``img``, resized to the clip size."""
    import cv2

    scale = W / cw
    ch = cw * H / W
    m = np.float32([[scale, 0, -(cx - cw / 2) * scale], [0, scale, -(cy - ch / 2) * scale]])
    return cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def pictures():
    return {
        "P": photo(1, (170, 120, 90)),
        "Q": photo(2, (60, 110, 190)),
        "R": photo(3, (90, 170, 80)),
        "S": photo(4, (200, 200, 60)),
    }


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Encode frames and decode them into a media cache: ``clip(name, frames)``."""
    root = tmp_path_factory.mktemp("vision")

    def build(name: str, frames):
        folder = root / name
        folder.mkdir()
        return make_media(encode_frames(folder / f"{name}.mp4", frames, fps=FPS), folder, video_id=name)

    return build


def rows_of(name, media, settings, inputs=None):
    rows, run = analyze(name, media, settings, inputs)
    spec = get_spec(name)
    assert spec.main_figure in run.metadata, f"{name} does not show its main figure"
    return rows, run


def label_at(rows, t):
    return next(r for r in rows if r["start_s"] <= t < r["end_s"])


# --------------------------------------------------------------------------------------------- camera

CAMERA_TRUTH = [  # (start, end, label) of the camera clip, one shot
    (0, 2, "static"), (2, 4, "pan_right"), (4, 6, "pan_left"), (6, 8, "zoom_in"),
    (8, 10, "zoom_out"), (10, 12, "tilt_down"), (12, 14, "tilt_up"), (14, 16, "shake"),
]


@pytest.fixture(scope="module")
def camera_media(clip, pictures):
    rng = np.random.default_rng(7)
    p = pictures["P"]
    cx, cy, cw = 450.0, 600.0, 360.0
    speed = 0.25 * 360 / FPS  # a quarter of the window width per second
    frames = []
    for i in range(16 * FPS):
        t = i / FPS
        if 2 <= t < 4:
            cx += speed  # the window moves right: the camera pans right, the content moves left
        elif 4 <= t < 6:
            cx -= speed
        elif 6 <= t < 8:
            cw *= np.exp(-0.25 / FPS)  # a smaller window: the content grows (zoom in)
        elif 8 <= t < 10:
            cw *= np.exp(0.25 / FPS)
        elif 10 <= t < 12:
            cy += speed  # the window moves down: the camera tilts down, the content moves up
        elif 12 <= t < 14:
            cy -= speed
        jitter = rng.uniform(-10, 10, 2) if t >= 14 else (0.0, 0.0)
        frames.append(crop(p, cx + jitter[0], cy + jitter[1], cw))
    return clip("camera", frames)


def test_camera_labels_pans_zooms_tilts_static_and_shake(camera_media, settings):
    rows, run = rows_of("camera_analysis", camera_media, settings)
    checked = 0
    for start, end, label in CAMERA_TRUTH:
        inside = [r for r in rows if r["start_s"] >= start - 0.05 and r["end_s"] <= end + 0.05]
        assert inside, f"no segment inside {start}-{end}s"
        for row in inside:
            assert row["motion"] == label, (start, end, row)
            checked += 1
    assert checked >= 12
    # Sign conventions: pan > 0 is a camera turning right (content moving left), tilt > 0 up, zoom > 0 in.
    assert label_at(rows, 3.0)["pan"] == pytest.approx(0.25, abs=0.04)
    assert label_at(rows, 5.0)["pan"] == pytest.approx(-0.25, abs=0.04)
    assert label_at(rows, 7.0)["zoom"] == pytest.approx(0.25, abs=0.04)
    assert label_at(rows, 9.0)["zoom"] == pytest.approx(-0.25, abs=0.04)
    assert label_at(rows, 11.0)["tilt"] < -0.1
    assert label_at(rows, 13.0)["tilt"] > 0.1
    assert label_at(rows, 1.0)["magnitude"] < 0.01
    assert run.metadata["dominant_motion"] in {label for _, _, label in CAMERA_TRUTH}
    assert run.examined == [(0.0, camera_media.duration_s)]


WHIPS = [(1.3, 360.0, 0.0, "pan_right"), (2.3, 0.0, 300.0, "tilt_down"), (3.3, -360.0, 0.0, "pan_left"),
         (4.3, 0.0, -300.0, "tilt_up")]  # (start, window move right/down in picture px, camera label)


def test_camera_labels_whip_pans_by_their_direction(clip, pictures, settings):
    """Whip pans (the window races a whole frame width or half its height in 8 smeared frames) are
    pans and tilts the way the camera turned, not shake: the corner tracker loses them, the
    frame-to-frame phase correlation does not."""
    import cv2

    p = pictures["P"]
    cx, cy, frames = 300.0, 500.0, []
    for i in range(int(5.5 * FPS)):
        t, smear = i / FPS, (0.0, 0.0)
        for start, dx, dy, _label in WHIPS:
            u0, u1 = (np.clip((t - start - k / FPS) * FPS / 8, 0, 1) for k in (1, 0))
            step = u1 * u1 * (3 - 2 * u1) - u0 * u0 * (3 - 2 * u0)  # smoothstep over 8 frames
            cx, cy = cx + dx * step, cy + dy * step
            smear = (smear[0] + abs(dx * step) * W / 360, smear[1] + abs(dy * step) * W / 360)
        frame = crop(p, cx, cy, 360)
        if max(smear) >= 2:
            frame = cv2.blur(frame, (max(1, round(smear[0])), max(1, round(smear[1]))))
        frames.append(frame)
    media = clip("whips", frames)
    cut_rows, cut_run = analyze("cut_analysis", media, settings)
    assert [r for r in cut_rows if r["kind"] == "hard_cut"] == []
    rows, run = rows_of("camera_analysis", media, settings, {"cut_analysis": cut_run.table})
    for start, _dx, _dy, label in WHIPS:
        row = label_at(rows, start + 4 / FPS)
        assert (row["motion"], row["sweep"]) == (label, True), (start, row)
    assert label_at(rows, 3.5)["pan"] < -0.3 < 0.3 < label_at(rows, 1.5)["pan"]  # camera terms: right > 0
    assert label_at(rows, 2.5)["tilt"] < -0.3 < 0.3 < label_at(rows, 4.5)["tilt"]  # up > 0
    assert (label_at(rows, 0.5)["motion"], label_at(rows, 0.5)["sweep"]) == ("static", False)
    assert run.metadata["fast_sweeps"] == 4


def test_camera_never_measures_across_cuts(clip, pictures, settings):
    p, q = pictures["P"], pictures["Q"]
    shots = [crop(p, 300, 600, 360)] * 45 + [crop(p, 480, 640, 360)] * 45 + [crop(q, 450, 600, 360)] * 45
    media = clip("cuts", shots)
    cut_rows, cut_run = analyze("cut_analysis", media, settings)
    cut_times = [r["start_s"] for r in cut_rows if r["kind"] == "hard_cut"]
    assert cut_times == pytest.approx([1.5, 3.0], abs=0.05)
    rows, run = rows_of("camera_analysis", media, settings, {"cut_analysis": cut_run.table})
    assert {r["motion"] for r in rows} == {"static"}, rows
    for row in rows:
        assert not any(row["start_s"] < c < row["end_s"] for c in cut_times), row
    assert run.metadata["cuts_from"] == "cut_analysis"
    # without cut_analysis's table the shots are not made up: a clear error names what is missing
    with pytest.raises(AnalyzerError, match="cut_analysis table of cuts.*cut_analysis is failed"):
        run_analyzer(get_spec("camera_analysis"), media, AnalyzerContext(
            video_id="cuts", settings=settings, input_runs={"cut_analysis": {"status": "failed"}}))
    shot_list = _shots.shot_list(media, AnalyzerContext(video_id="cuts", settings=settings,
                                                        inputs={"cut_analysis": cut_run.table}))
    first_frames = {s.first for s in shot_list.shots[1:]}
    for i, j in _motion.shot_pairs(shot_list, _motion.pair_step(FPS)):
        assert not any(i < f <= j for f in first_frames)


# --------------------------------------------------------------------------------------------- colour

def test_colour_flat_fields_dominant_rgb_palette_and_temperature(clip, settings):
    red, blue = (200, 40, 40), (30, 90, 200)
    green, yellow = (40, 160, 60), (230, 200, 40)
    two = np.zeros((H, W, 3), np.uint8)
    two[: int(H * 0.6)] = green
    two[int(H * 0.6) :] = yellow
    frames = [np.full((H, W, 3), red, np.uint8)] * 45 + [np.full((H, W, 3), blue, np.uint8)] * 45 + [two] * 45
    media = clip("colour", frames)
    rows, run = rows_of("color_analysis", media, settings)
    segments = [r for r in rows if r["level"] == "segment"]
    video = [r for r in rows if r["level"] == "video"]
    assert len(video) == 1 and video[0]["start_s"] == 0.0
    for t, colour in ((0.7, red), (2.2, blue), (3.7, green)):
        row = label_at(segments, t)
        assert np.abs(np.subtract(row["palette_rgb"][0], colour)).max() <= 10, (t, row)
        assert row["dominant_hex"] == row["palette_hex"][0]
    last = label_at(segments, 3.7)
    assert last["palette_share"][:2] == pytest.approx([0.6, 0.4], abs=0.05)
    assert np.abs(np.subtract(last["palette_rgb"][1], yellow)).max() <= 10
    assert label_at(segments, 0.7)["tone"] == "warm"
    assert label_at(segments, 2.2)["tone"] == "cool"
    assert label_at(segments, 0.7)["palette_share"] == [1.0]
    assert label_at(segments, 3.7)["brightness"] > label_at(segments, 2.2)["brightness"]
    assert run.metadata["palette"].startswith("#")


# --------------------------------------------------------------------------------------------- quality

def test_quality_grade_drops_for_blur_and_noise(clip, pictures, settings):
    import cv2

    rng = np.random.default_rng(3)
    sharp = [crop(pictures["P"], 400 + i, 600, 360) for i in range(45)]
    versions = {
        "sharp": sharp,
        "blurred": [cv2.GaussianBlur(f, (0, 0), 2.0) for f in sharp],
        "noisy": [np.clip(f + rng.normal(0, 20, f.shape), 0, 255).astype(np.uint8) for f in sharp],
    }
    grades, videos = {}, {}
    for name, frames in versions.items():
        rows, run = rows_of("content_quality", clip(f"quality_{name}", frames), settings)
        videos[name] = next(r for r in rows if r["level"] == "video")
        grades[name] = run.metadata["grade"]
        assert grades[name] == videos[name]["grade"]
        assert all(0 <= r["grade"] <= 100 for r in rows)
    assert grades["sharp"] > 85
    assert grades["blurred"] < grades["sharp"] - 15
    assert grades["noisy"] < grades["sharp"] - 15
    assert videos["blurred"]["sharpness_index"] < 0.5 * videos["sharp"]["sharpness_index"]
    assert videos["noisy"]["noise_sigma"] > 5 * max(videos["sharp"]["noise_sigma"], 1.0)


def test_blockiness_sees_a_block_grid():
    import cv2

    from tiktok_assets.analyzers import content_quality

    smooth = cv2.GaussianBlur(photo(5)[:320, :320], (0, 0), 1.0)
    blocks = cv2.resize(cv2.resize(smooth, (40, 40), interpolation=cv2.INTER_AREA), (320, 320),
                        interpolation=cv2.INTER_NEAREST)
    clean = content_quality.blockiness(content_quality.grey(smooth), 1.0)
    blocky = content_quality.blockiness(content_quality.grey(blocks), 1.0)
    assert clean < 0.05 and blocky > 0.5
    assert content_quality.blockiness(content_quality.grey(smooth), 0.2) is None  # grid too fine to see


# --------------------------------------------------------------------------------------------- effects

def test_fades_and_flash_found_at_their_times(clip, pictures, settings):
    frames = []
    for i in range(150):  # fade in 0-0.5 s, fade out to black 2-3 s, black until 5 s
        t = i / FPS
        f = crop(pictures["P"], 400 + i, 600, 360).astype(np.float32)
        f *= min(1.0, t / 0.5) * (1.0 if t < 2 else max(0.0, 1 - (t - 2.0)))
        frames.append(f.astype(np.uint8))
    for i in range(90):  # fade in from black 5-5.5 s, a white flash 6.0-6.1 s
        t = 5 + i / FPS
        f = crop(pictures["Q"], 400 + i, 600, 360).astype(np.float32) * min(1.0, (t - 5.0) / 0.5)
        frames.append(np.full_like(f, 255).astype(np.uint8) if 6.0 <= t < 6.1 - 1e-9 else f.astype(np.uint8))
    rows, run = rows_of("visual_effects", clip("fades", frames), settings)
    by_kind = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    fade_out = by_kind["fade_out"][0]
    assert fade_out["detail"] == "to_black"
    assert fade_out["start_s"] == pytest.approx(2.0, abs=0.2) and fade_out["end_s"] == pytest.approx(3.0, abs=0.2)
    fade_ins = sorted(by_kind["fade_in"], key=lambda r: r["start_s"])
    assert [r["detail"] for r in fade_ins] == ["from_black", "from_black"]
    assert fade_ins[0]["start_s"] == pytest.approx(0.0, abs=0.2) and fade_ins[0]["end_s"] == pytest.approx(0.5, abs=0.2)
    assert fade_ins[1]["start_s"] == pytest.approx(5.0, abs=0.2) and fade_ins[1]["end_s"] == pytest.approx(5.5, abs=0.2)
    (flash,) = by_kind["flash"]
    assert flash["detail"] == "bright"
    assert flash["start_s"] == pytest.approx(6.0, abs=0.2) and flash["end_s"] == pytest.approx(6.1, abs=0.2)
    assert set(by_kind) == {"fade_in", "fade_out", "flash"}, by_kind.keys()
    assert run.metadata["effects"] == len(rows)


def test_speed_changes_freeze_slow_motion_and_jump(clip, pictures, settings):
    frames, x = [], 300.0
    for i in range(7 * FPS):
        t = i / FPS
        if 1.5 <= t < 2.5:
            pass  # frozen picture
        elif 3.5 <= t < 5.5:
            x += 3 if i % 2 == 0 else 0  # every picture shown twice: half speed
        elif i == 6 * FPS:
            x += 40  # a jump
        else:
            x += 3
        frames.append(crop(pictures["P"], x, 600, 360))
    rows, _ = rows_of("visual_effects", clip("speed", frames), settings)
    kinds = {r["kind"]: r for r in rows}
    assert set(kinds) == {"freeze", "slow_motion", "speed_jump"}, rows
    assert kinds["freeze"]["start_s"] == pytest.approx(1.5, abs=0.2)
    assert kinds["freeze"]["end_s"] == pytest.approx(2.5, abs=0.2)
    assert kinds["slow_motion"]["start_s"] == pytest.approx(3.5, abs=0.2)
    assert kinds["slow_motion"]["end_s"] == pytest.approx(5.5, abs=0.2)
    assert kinds["slow_motion"]["strength"] == pytest.approx(0.5, abs=0.1)
    assert kinds["speed_jump"]["start_s"] == pytest.approx(6.0, abs=0.1)


def test_strong_zoom_split_screen_and_picture_in_picture(clip, pictures, settings):
    import cv2

    frames, cw = [], 400.0
    for i in range(3 * FPS):  # a fast zoom in between 1 and 2 s (about 2x)
        if FPS <= i < 2 * FPS:
            cw *= np.exp(-0.7 / FPS)
        frames.append(crop(pictures["P"], 450, 600, cw))
    for i in range(2 * FPS):  # 3-5 s: two pictures, one above the other, moving apart
        f = crop(pictures["Q"], 300 + i, 400, 360)
        f[H // 2 :] = crop(pictures["R"], 500 - i, 700, 360)[H // 2 :]
        frames.append(f)
    for i in range(2 * FPS):  # 5-7 s: an inset picture over a panning one
        f = crop(pictures["P"], 300 + 2 * i, 600, 360).copy()
        f[20:148, 90:162] = cv2.resize(crop(pictures["R"], 400, 500 + i, 300), (72, 128), interpolation=cv2.INTER_AREA)
        frames.append(f)
    rows, _ = rows_of("visual_effects", clip("layout", frames), settings)
    kinds = {r["kind"]: r for r in rows}
    assert set(kinds) == {"zoom_in", "split_screen", "picture_in_picture"}, rows
    zoom = kinds["zoom_in"]
    assert zoom["start_s"] == pytest.approx(1.0, abs=0.2) and zoom["end_s"] == pytest.approx(2.0, abs=0.2)
    assert zoom["strength"] == pytest.approx(np.expm1(0.7), abs=0.2)
    split = kinds["split_screen"]
    assert split["detail"] == "horizontal" and split["region"][0] == pytest.approx(0.5, abs=0.03)
    assert split["start_s"] == pytest.approx(3.0, abs=0.5) and split["end_s"] == pytest.approx(5.0, abs=0.5)
    pip = kinds["picture_in_picture"]
    assert pip["region"] == pytest.approx([90 / W, 20 / H, 162 / W, 148 / H], abs=0.03)
    assert pip["start_s"] == pytest.approx(5.0, abs=0.5) and pip["end_s"] == pytest.approx(7.0, abs=0.5)


# --------------------------------------------------------------------------------------------- scenes

def test_scene_bridges_a_short_cutaway(clip, pictures, settings):
    p, q, r, s = pictures["P"], pictures["Q"], pictures["R"], pictures["S"]
    frames = [crop(p, 400 + i, 600, 360) for i in range(60)]  # A: 0-2 s
    frames += [crop(q, 450, 600, 360)] * 30  # B, a 1 s cut-away: 2-3 s
    frames += [crop(p, 480 + i, 630, 360) for i in range(60)]  # A again, elsewhere in the photo: 3-5 s
    frames += [crop(r, 450, 600, 360)] * 90  # C: 5-8 s, a scene of its own
    frames += [crop(s, 450 - i, 600, 360) for i in range(45)]  # D: 8-9.5 s
    media = clip("scenes", frames)
    cut_rows, cut_run = analyze("cut_analysis", media, settings)
    assert [r["start_s"] for r in cut_rows] == pytest.approx([2.0, 3.0, 5.0, 8.0], abs=0.05)
    for inputs in ({}, {"cut_analysis": cut_run.table}):
        rows, run = rows_of("scene_segmentation", media, settings, inputs)
        spans = [t for r in rows for t in (r["start_s"], r["end_s"])]
        assert spans == pytest.approx([0, 5, 5, 8, 8, 9.5], abs=0.05)
        assert [r["shot_count"] for r in rows] == [3, 1, 1]
        assert rows[0]["cutaway_shots"] == 1
        assert run.metadata["scenes"] == 3
        assert all(len(r["signature"]) == 64 and sum(r["signature"]) == pytest.approx(1, abs=0.01) for r in rows)
        assert all(h.startswith("#") and len(h) == 7 for r in rows for h in r["palette_hex"])


def test_scene_rule_on_shot_looks():
    from tiktok_assets.analyzers import scene_segmentation

    def look(colour):
        hist = np.zeros(64)
        hist[colour] = 1.0
        return hist, np.array([50.0, 10.0 * colour, 0.0]), np.array([0])

    a, b, c = look(0), look(21), look(42)
    # A B A B: two subjects of one scene, no cut-away
    assert scene_segmentation.group_shots([a, b, a, b], [2, 2, 2, 2]) == ([0, 0, 0, 0], set())
    # A B A with a short B: one scene, B is its cut-away
    assert scene_segmentation.group_shots([a, b, a], [2, 1, 2]) == ([0, 0, 0], {1})
    # A B A with a long B, and A B C A with B C longer than MAX_CUTAWAY_S: no bridge
    assert scene_segmentation.group_shots([a, b, a], [2, 6, 2])[0] == [0, 1, 2]
    assert scene_segmentation.group_shots([a, b, c, a], [2, 3, 3, 2])[0] == [0, 1, 2, 3]
    assert scene_segmentation.group_shots([a, b, c, a], [2, 1, 1, 2]) == ([0, 0, 0, 0], {1, 2})


# --------------------------------------------------------------------------------------------- all

def test_vision_analyzers_registered_in_the_frames_group(settings):
    import yaml

    groups = yaml.safe_load(settings.gpu_groups_file.read_text())["groups"]
    for name in VISION:
        owners = [g for g, raw in groups.items() if name in (raw.get("analyzers") or [])]
        assert owners == ["frames"], (name, owners)  # frame statistics, no model: a CPU group
        spec = get_spec(name)
        assert spec.modality == "visual" and spec.main_figure and spec.depends_on == ("cut_analysis",)


def test_vision_analyzers_on_the_sample_video(sample_media, sample, settings):
    cut_rows, cut_run = analyze("cut_analysis", sample_media, settings)
    for name in VISION:
        rows, run = rows_of(name, sample_media, settings, {"cut_analysis": cut_run.table})
        assert rows or name == "visual_effects", name
        assert all(0 <= r["start_s"] <= r["end_s"] <= sample_media.duration_s + 0.05 for r in rows)
        assert run.examined
    scenes, _ = analyze("scene_segmentation", sample_media, settings, {"cut_analysis": cut_run.table})
    assert len(scenes) == len(sample.cuts_s) + 1  # every shot of the sample is a different place
    effects, _ = analyze("visual_effects", sample_media, settings, {"cut_analysis": cut_run.table})
    assert effects == []  # hard cuts only, nothing else happens in the sample


@pytest.mark.parametrize("kind", ["one_frame", "black", "noise"])
def test_vision_analyzers_survive_degenerate_clips(clip, settings, kind):
    rng = np.random.default_rng(0)
    frames = {
        "one_frame": [np.full((H, W, 3), 90, np.uint8)],
        "black": [np.zeros((H, W, 3), np.uint8)] * 9,
        "noise": [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(30)],
    }[kind]
    media = clip(f"degenerate_{kind}", frames)
    for name in VISION:
        rows, _ = rows_of(name, media, settings)
        assert all(r["end_s"] <= media.duration_s + 0.05 for r in rows)
    camera, _ = analyze("camera_analysis", media, settings)
    assert {r["motion"] for r in camera} <= {"static", "unknown"}
    effects, _ = analyze("visual_effects", media, settings)
    assert effects == []
