"""Benchmark the people group (faces / person passes + five analyzers) on a 49 s 1080x1920 clip.

Run: ``python benchmarks/bench_people.py [--seconds 49] [--workdir DIR]``.

The clip is built from scikit-image's astronaut photo against person-free backgrounds (coffee,
Hubble deep field, a gradient) in nine shots: close-ups, a moving bust, two people, a mirrored
close-up, a zoom, a background swap, and two shots without anybody (a person in ~42 of 49 s).
It is encoded at 30 fps with ffmpeg and decoded once into the media cache. The models are loaded
first (their load time is printed apart), then the two shared passes are timed, then each
analyzer on top of them (cut_analysis's table is given, as in the Dagster step). The people group
total = passes + analyzers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiktok_assets.analyzers import AnalyzerContext, get_spec, run_analyzer  # noqa: E402
from tiktok_assets.config import load_settings  # noqa: E402
from tiktok_assets.media import MediaCache, build_media_cache  # noqa: E402
from tiktok_assets.model_registry import process_loader  # noqa: E402
from tiktok_assets.passes import faces as faces_pass  # noqa: E402
from tiktok_assets.passes import person as person_pass  # noqa: E402

PEOPLE = ["eye_tracking", "body_pose", "background_segmentation", "age_estimation", "face_emotion"]
FPS = 30


def _background(kind: str, w: int, h: int) -> np.ndarray:
    from skimage import data

    if kind == "gradient":
        y = np.linspace(0, 1, h)[:, None, None]
        x = np.linspace(0, 1, w)[None, :, None]
        return np.clip(np.concatenate([60 + 120 * x + 0 * y, 90 + 100 * y + 0 * x, 160 - 80 * x * y], axis=2),
                       0, 255).astype(np.uint8)
    photo = {"coffee": data.coffee, "hubble": data.hubble_deep_field}[kind]()
    ph, pw = photo.shape[:2]
    side = min(pw, int(ph * w / h))
    crop = photo[:, (pw - side) // 2 : (pw - side) // 2 + side]
    return np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR))


def _scaled(photo: np.ndarray, crop: tuple[int, int, int, int], width: int, mirrored: bool = False) -> np.ndarray:
    x0, y0, x1, y1 = crop
    part = photo[y0:y1, x0:x1]
    img = np.asarray(Image.fromarray(part).resize((width, round(width * (y1 - y0) / (x1 - x0))), Image.LANCZOS))
    return img[:, ::-1] if mirrored else img


def _paste(frame: np.ndarray, img: np.ndarray, x: int, y: int) -> None:
    h, w = frame.shape[:2]
    sx0, sy0, sx1, sy1 = max(0, x), max(0, y), min(w, x + img.shape[1]), min(h, y + img.shape[0])
    if sx1 > sx0 and sy1 > sy0:
        frame[sy0:sy1, sx0:sx1] = img[sy0 - y : sy1 - y, sx0 - x : sx1 - x]


def frames(seconds: float, w: int, h: int, truth: list[int] | None = None, render: bool = True):
    """The clip's frames (see the module docstring), scaled to ``seconds``; ``truth`` gets the number
    of people in each frame."""
    from skimage import data

    a = data.astronaut()
    face, bust = (130, 30, 350, 250), (0, 0, 512, 512)
    s = w / 1080
    shots = [  # (seconds, background, [(crop, width, x, y, dx/s, dy/s, mirrored, zoom/s)])
        (6, "coffee", [(face, int(1000 * s), int(40 * s), int(420 * s), 0, 0, False, 0)]),
        (6, "gradient", [(bust, int(700 * s), int(-100 * s), int(600 * s), 60 * s, 0, False, 0)]),
        (4, "coffee", []),
        (6, "hubble", [(bust, int(620 * s), 0, int(150 * s), 0, 0, False, 0),
                       (bust, int(620 * s), int(440 * s), int(1000 * s), 0, 0, False, 0)]),
        (6, "gradient", [(face, int(1000 * s), int(40 * s), int(420 * s), 0, 0, True, 0)]),
        (3, "hubble", []),
        (3.5, "gradient", [(bust, int(900 * s), int(90 * s), int(700 * s), 0, 0, False, 0)]),
        (3.5, "coffee", [(bust, int(900 * s), int(90 * s), int(700 * s), 0, 0, False, 0)]),
        (6, "gradient", [(face, int(700 * s), int(190 * s), int(500 * s), 0, 0, False, 0.08)]),
        (5, "coffee", [(bust, int(800 * s), int(300 * s), int(650 * s), -50 * s, 0, False, 0)]),
    ]
    total = sum(d for d, _, _ in shots)
    for duration, kind, placements in shots:
        n = int(round(duration * seconds / total * FPS))
        if not render:
            if truth is not None:
                truth.extend([len(placements)] * n)
            continue
        bg = _background(kind, w, h)
        base = [(_scaled(a, crop, width, mirrored), crop, width, x, y, dx, dy, mirrored, zoom)
                for crop, width, x, y, dx, dy, mirrored, zoom in placements]
        for k in range(n):
            t = k / FPS
            frame = bg.copy()
            for img, crop, width, x, y, dx, dy, mirrored, zoom in base:
                if zoom:
                    grow = 1 + zoom * t
                    img = _scaled(a, crop, int(width * grow), mirrored)
                    x, y = int(x - width * (grow - 1) / 2), int(y - width * (grow - 1) / 2)
                _paste(frame, img, int(x + dx * t), int(y + dy * t))
            if truth is not None:
                truth.append(len(base))
            yield frame


def make_clip(path: Path, seconds: float, w: int, h: int) -> list[int]:
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
           "-pix_fmt", "yuv420p", str(path)]
    truth: list[int] = []
    with subprocess.Popen(cmd, stdin=subprocess.PIPE) as proc:
        assert proc.stdin is not None
        for frame in frames(seconds, w, h, truth):
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError("ffmpeg failed")
    return truth


def truth_figures(truth: list[int], found, table) -> str:
    """Person presence per second F1 (background_segmentation) and exact face counts per sample."""
    per_second = [np.mean([n > 0 for n in truth[s * FPS : (s + 1) * FPS]]) > 0.5
                  for s in range(int(np.ceil(len(truth) / FPS)))]
    said = [False] * len(per_second)
    for row in table.to_pylist():
        if row["level"] == "presence":
            for s in range(int(row["start_s"]), min(len(said), int(round(row["end_s"])))):
                said[s] = bool(row["person"])
    tp = sum(a and b for a, b in zip(said, per_second))
    wrong = sum(a != b for a, b in zip(said, per_second))
    f1 = 2 * tp / max(1, 2 * tp + wrong)
    counts = np.bincount(found.det_frame, minlength=len(found.frames))
    exact = sum(int(c) == truth[min(len(truth) - 1, int(round(t * FPS)))] for c, t in zip(counts, found.times))
    return (f"truth: person presence per second F1 {f1:.3f} ({sum(per_second)} of {len(per_second)} s with a "
            f"person); face count exact in {exact} of {len(found.frames)} samples")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=49.0)
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=1920)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="tiktok-bench-people-"))
    workdir.mkdir(parents=True, exist_ok=True)
    video = workdir / f"people_{args.width}x{args.height}_{int(args.seconds)}s.mp4"
    began = time.perf_counter()
    if video.exists():
        truth = []
        for _ in frames(args.seconds, args.width, args.height, truth, render=False):  # the truth only
            pass
    else:
        truth = make_clip(video, args.seconds, args.width, args.height)
        print(f"clip made in {time.perf_counter() - began:.1f}s: {video}")
    settings = load_settings()
    began = time.perf_counter()
    media_dir = workdir / "media"
    # a fresh decode (the cache keeps versions next to the link): the passes are computed again
    if media_dir.is_symlink():
        media_dir.unlink()
    shutil.rmtree(workdir / ".media.versions", ignore_errors=True)
    build_media_cache(video, media_dir, "bench-people", settings.sample_fps, settings.frame_long_side,
                      settings.lowres_short_side)
    decode_s = time.perf_counter() - began
    media = MediaCache(media_dir)
    loader = process_loader(settings)
    began = time.perf_counter()
    for model in ("mediapipe-legacy", "age-gender", "fer-emotion"):
        loader.load(model, "cpu")
    load_s = time.perf_counter() - began
    cut_ctx = AnalyzerContext(video_id=media.video_id, settings=settings)
    cuts = run_analyzer(get_spec("cut_analysis"), media, cut_ctx)
    fps = settings.people_fps
    timings: list[tuple[str, float, int]] = []
    tables = {}
    began = time.perf_counter()
    found = faces_pass.faces(media, loader, "cpu", fps)
    timings.append(("pass: faces", time.perf_counter() - began, len(found.det_frame)))
    began = time.perf_counter()
    person = person_pass.person(media, loader, "cpu", fps)
    timings.append(("pass: person", time.perf_counter() - began, int(person.found.sum())))
    for name in PEOPLE:
        context = AnalyzerContext(video_id=media.video_id, settings=settings, batch_size=8,
                                  inputs={"cut_analysis": cuts.table}, input_examined={"cut_analysis": cuts.examined})
        began = time.perf_counter()
        run = run_analyzer(get_spec(name), media, context)
        timings.append((name, time.perf_counter() - began, run.table.num_rows))
        tables[name] = run.table
    duration = media.duration_s
    print(f"\npeople group: {duration:.1f}s clip, {media.meta.width}x{media.meta.height}, "
          f"{len(found.frames)} frames at {fps:g} fps read, {os.cpu_count()} CPU cores")
    print(f"{'step':<26}{'seconds':>10}{'x realtime':>12}{'rows':>8}")
    print(f"{'decode (media, apart)':<26}{decode_s:>10.2f}{decode_s / duration:>12.3f}")
    print(f"{'model loads (apart)':<26}{load_s:>10.2f}{load_s / duration:>12.3f}")
    total = 0.0
    for name, seconds, rows in timings:
        total += seconds
        print(f"{name:<26}{seconds:>10.2f}{seconds / duration:>12.3f}{rows:>8}")
    print(f"{'people group total':<26}{total:>10.2f}{total / duration:>12.3f}")
    print(truth_figures(truth, found, tables["background_segmentation"]))


if __name__ == "__main__":
    main()
