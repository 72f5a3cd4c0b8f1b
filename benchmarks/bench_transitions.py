"""Edit-detection quality of cut_analysis on generated clips with exact truth (``tests/transition_clips``
and ``tests/face_cut_clips``): hard-cut and gradual-transition F1, edits inside flashes and whips.

Run: ``python benchmarks/bench_transitions.py [--compare OLD_CUT_ANALYSIS.py] [--held-out 10 45]``.
Three sets: the test seeds of ``tests/test_transitions.py``, held-out seeds (5 shots, random fps),
and a stress set (the held-out seeds with pans of 40-150 px/s instead of 8-30), plus the same-face
cut clips of ``tests/test_cut_same_face.py``. Every clip is encoded and decoded once (media cache at
the settings' low resolution); ``--compare`` scores another version of the module (e.g.
``git show HEAD~3:tiktok_assets/analyzers/cut_analysis.py > /tmp/old.py``) on the same frames.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import transition_clips as tc  # noqa: E402
from helpers import encode_frames, make_media  # noqa: E402

from tiktok_assets.analyzers import cut_analysis  # noqa: E402

TEST_SEEDS = {101: 24, 102: 30, 103: 60, 104: 24, 105: 30, 106: 60, 107: 30}


def load_module(path: Path):
    """Another version of cut_analysis, loaded as a sibling module (its relative imports work)."""
    spec = importlib.util.spec_from_file_location("tiktok_assets.analyzers._cut_analysis_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows_of(module, media) -> list[dict]:
    """cut_analysis rows (start_s, end_s, kind) from ``module.detect`` on the media's low-res frames."""
    times = media.lowres_times
    fps = media.meta.fps or len(times) / max(media.duration_s, 1e-6)
    if "times" in inspect.signature(module.detect).parameters:  # as run() calls it (an older version may not)
        _, events = module.detect(media.lowres, fps, times=np.asarray(times))
    else:
        _, events = module.detect(media.lowres, fps)
    return [{"start_s": float(times[a]), "end_s": float(times[b]), "kind": kind} for a, b, kind, _ in events]


def stress_shot(rng: np.random.Generator, pics: list[np.ndarray], fps: int, last: int | None):
    """``transition_clips._shot`` with pans of 40-150 px/s."""
    choices = [i for i in range(len(pics)) if i != last] if rng.random() < 0.8 else list(range(len(pics)))
    index = int(rng.choice(choices))
    img = pics[index]
    speed = rng.uniform(40, 150) / fps
    angle = rng.uniform(0, 2 * np.pi)
    zoom_rate = float(np.exp(rng.choice([0.0, rng.uniform(-0.08, 0.08)]) / fps))
    shot = tc.Shot(img, rng.uniform(0.3, 0.7) * img.shape[1], rng.uniform(0.3, 0.7) * img.shape[0],
                   speed * np.cos(angle), speed * np.sin(angle), rng.uniform(1.0, 1.3), zoom_rate)
    return shot, index


def face_clips():
    """(name, fps, frames, cut times) of the same-face cut clips and the one-shot sweeps."""
    import test_cut_same_face as t
    from face_cut_clips import FaceShot, background, make_clip

    for name, (fps, shots) in t.CLIPS.items():
        clip = make_clip(shots, t.SECONDS, fps)
        yield name, fps, clip.frames, clip.cut_times
    for fps in (30, 60):
        for far, log_zoom in ((60.0, 0.0), (50.0, 0.3)):
            clip = make_clip([FaceShot(background("coffee"), sweep=(0.5, 3 / fps, far, log_zoom), pan=(10, 4))],
                             [1.2], fps)
            yield f"sweep_{fps}_{far:g}_{log_zoom:g}", fps, clip.frames, []


def f1(truth: int, found: int, hits: int) -> float:
    precision, recall = hits / max(found, 1), hits / max(truth, 1)
    return 2 * precision * recall / max(precision + recall, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", type=Path, default=None, help="another cut_analysis.py to score alongside")
    parser.add_argument("--held-out", type=int, nargs=2, default=(10, 45), metavar=("FIRST", "LAST"))
    args = parser.parse_args()
    modules = {"current": cut_analysis}
    if args.compare:
        modules["compare"] = load_module(args.compare)
    work = Path(tempfile.mkdtemp(prefix="tiktok-bench-transitions-"))
    held = range(args.held_out[0], args.held_out[1] + 1)
    sets = {"test": [(s, f, 4, False) for s, f in TEST_SEEDS.items()],
            "held-out": [(s, None, 5, False) for s in held],
            "stress": [(s, None, 5, True) for s in held]}
    original_shot = tc._shot
    for set_name, entries in sets.items():
        totals = {m: {"cut": [0, 0, 0], "gradual": [0, 0, 0], "inside": 0} for m in modules}
        for seed, fps, shots, stress in entries:
            tc._shot = stress_shot if stress else original_shot
            try:
                clip = tc.make_clip(seed, fps=fps, shots=shots)
            finally:
                tc._shot = original_shot
            name = f"{set_name}_{seed}"
            folder = work / name
            folder.mkdir()
            media = make_media(encode_frames(folder / "clip.mp4", clip.frames, fps=clip.fps), folder, video_id=name)
            for label, module in modules.items():
                result = tc.score(rows_of(module, media), clip)
                for group in ("cut", "gradual"):
                    for k, key in enumerate(("truth", "found", "hits")):
                        totals[label][group][k] += result[group][key]
                totals[label]["inside"] += len(result["inside_calm"])
        for label, t in totals.items():
            print(f"{set_name:9s} {label:8s} hard F1 {f1(*t['cut']):.3f} (truth/found/hits {t['cut']}) "
                  f"gradual F1 {f1(*t['gradual']):.3f} ({t['gradual']}) inside flash/whip {t['inside']}",
                  flush=True)
    for name, fps, frames, truth in face_clips():
        folder = work / name
        folder.mkdir()
        media = make_media(encode_frames(folder / "clip.mp4", frames, fps=fps), folder, video_id=name)
        for label, module in modules.items():
            cuts = [r["start_s"] for r in rows_of(module, media) if r["kind"] == "hard_cut"]
            hits = sum(any(abs(c - t) <= 1.0 / fps + 1e-6 for c in cuts) for t in truth)
            print(f"face {name:22s} {label:8s} cuts {hits}/{len(truth)} found, {len(cuts) - hits} extra", flush=True)


if __name__ == "__main__":
    main()
