"""OCR engines on the same generated frames (CER by language, size and style) and text_overlay's speed.

1. Accuracy: 1080x1920 pictures (packaged photos) with one line each, German (umlauts, ß) and English,
   glyph sizes 14-120 px of the 1080x1920 picture, styles outline / shadow / box / caption / plain,
   straight and slanted 8 degrees, scaled to the frames ``text_overlay`` reads (long side 640 by
   default: a third of the size; 1280 with TIKTOK_ASSETS_FRAME_LONG_SIDE=1280). Each engine detects
   and reads the whole frame; CER = edits / characters of the lines joined top to bottom.
2. Speed: ``text_overlay`` on a 49 s 1080x1920 clip (the sample recipe with a text overlay in most
   shots), after one warm-up run that loads the model: seconds and realtime factor.

Usage: python benchmarks/bench_ocr.py [--runs rapidocr@640,easyocr@640,rapidocr@1280] [--skip-speed]
       [--skip-accuracy]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from text_media import STYLES, draw_text, font  # noqa: E402

from tiktok_assets.analyzers import _ocr  # noqa: E402
from tiktok_assets.config import load_settings  # noqa: E402
from tiktok_assets.model_registry import process_loader  # noqa: E402

SOURCE_W, SOURCE_H = 1080, 1920  # sizes are glyph sizes in pixels of a 1080x1920 TikTok video
SIZES = (14, 18, 24, 32, 48, 72, 120)
RESOLUTIONS = {640: (360, 640), 1280: (720, 1280)}  # TIKTOK_ASSETS_FRAME_LONG_SIDE -> frame size
PHRASES = {
    "de": ["Übung macht Spaß", "Jetzt Teil 2 ansehen", "Grüße aus Köln", "Link in der Bio", "Süßes Frühstück",
           "Öffnungszeiten", "Schöne Grüße", "Straße", "Grüße"],
    "en": ["Follow for part 2", "Save this recipe", "Best pasta ever", "Comment below", "Link in bio",
           "Wait for it", "Try this", "Wow"],
}


def photo(i: int) -> Image.Image:
    from skimage import data

    pics = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    pic = Image.fromarray(pics[i % len(pics)])
    scale = max(SOURCE_W / pic.width, SOURCE_H / pic.height)
    pic = pic.resize((int(pic.width * scale) + 1, int(pic.height * scale) + 1), Image.BICUBIC)
    return pic.crop((0, 0, SOURCE_W, SOURCE_H))


def fitting_phrase(lang: str, size: int, k: int) -> str:
    """One of the two longest phrases that fit the width (alternating), so big sizes get words, not letters."""
    fits = [p for p in PHRASES[lang] if font(size).getbbox(p)[2] <= SOURCE_W - 3 * size]
    return fits[k % min(2, len(fits))]


def accuracy_frames() -> list[dict]:
    """1080x1920 pictures with one line each (all languages, sizes, styles, straight and slanted)."""
    cases = []
    k = 0
    for lang in ("de", "en"):
        for size in SIZES:
            for style in STYLES:
                for angle in (0.0, 8.0):
                    text = fitting_phrase(lang, size, k)
                    img = photo(k)
                    tw = font(size).getbbox(text)[2]
                    y = 300 + (k * 97) % (SOURCE_H - 900)
                    draw_text(img, text, size, ((SOURCE_W - tw) / 2, y), style, angle)
                    cases.append({"lang": lang, "size": size, "style": style, "angle": angle, "text": text,
                                  "image": img})
                    k += 1
    return cases


def frame_of(img: Image.Image, long_side: int) -> np.ndarray:
    """The picture as the media cache stores it: long side ``long_side``, area-averaged."""
    import cv2

    w, h = RESOLUTIONS[long_side]
    return cv2.resize(np.asarray(img), (w, h), interpolation=cv2.INTER_AREA)


def read_all(engine, image: np.ndarray) -> str:
    reads = _ocr.read_image(engine, image)
    reads.sort(key=lambda r: (float(r.quad[:, 1].mean()), float(r.quad[:, 0].mean())))
    return " ".join(r.text for r in reads)


def accuracy(runs: list[tuple[str, int]]) -> dict:
    cases = accuracy_frames()
    loader = process_loader(load_settings())
    results: dict = {}
    for name, long_side in runs:
        engine = loader.load(_ocr.MODEL_IDS[name], "cpu")
        read_all(engine, frame_of(cases[0]["image"], long_side))  # warm-up
        rows, began = [], time.perf_counter()
        for case in cases:
            hyp = read_all(engine, frame_of(case["image"], long_side))
            ref = _ocr.clean_text(case["text"])
            rows.append({**{k: v for k, v in case.items() if k != "image"}, "hyp": hyp,
                         "edits": _ocr.character_error_rate(ref, hyp) * len(ref), "chars": len(ref)})
        results[f"{name}@{long_side}"] = {"rows": rows, "seconds_per_frame": (time.perf_counter() - began) / len(cases)}
    return results


def cer(rows: list[dict]) -> float:
    """Corpus CER: all edits over all reference characters."""
    return sum(r["edits"] for r in rows) / max(1, sum(r["chars"] for r in rows))


def print_tables(results: dict) -> None:
    names = list(results)
    print(f"\nCER (edits / characters over {len(STYLES)} styles x straight/slanted); sizes are glyph pixels in a "
          f"1080x1920 video, read on frames of the given long side")
    print(f"{'lang':<5}{'size':>5}" + "".join(f"{n:>18}" for n in names))
    for lang in ("de", "en"):
        for size in SIZES:
            cells = [cer([r for r in results[n]["rows"] if r["lang"] == lang and r["size"] == size]) for n in names]
            print(f"{lang:<5}{size:>5}" + "".join(f"{c:>18.3f}" for c in cells))
    print("\nCER on text >= 24 px by style (both languages)")
    for style in [*STYLES, "slanted"]:
        cells = [cer([r for r in results[n]["rows"] if r["size"] >= 24
                      and (r["angle"] > 0 if style == "slanted" else r["style"] == style and r["angle"] == 0)])
                 for n in names]
        print(f"{style:<10}" + "".join(f"{c:>18.3f}" for c in cells))
    print("\nSummary: CER on text >= 24 px / >= 48 px / < 24 px")
    for lang in ("de", "en"):
        for n in names:
            rows = [r for r in results[n]["rows"] if r["lang"] == lang]
            print(f"  {lang} {n:<16} {cer([r for r in rows if r['size'] >= 24]):.3f} / "
                  f"{cer([r for r in rows if r['size'] >= 48]):.3f} / {cer([r for r in rows if r['size'] < 24]):.3f}")
    for n in names:
        print(f"  {n}: {results[n]['seconds_per_frame']:.2f} s per frame (detect + read)")
    worst = defaultdict(list)
    for n in names:
        for r in results[n]["rows"]:
            if r["size"] >= 24 and r["edits"] > 0.05 * r["chars"]:
                worst[n].append(f"{r['lang']} {r['size']}px {r['style']}{' slanted' if r['angle'] else ''}: "
                                f"{r['text']!r} -> {r['hyp']!r}")
    for n, items in worst.items():
        print(f"\n{n}: {len(items)} reads of >= 24 px text above 5 % CER")
        for item in items[:10]:
            print("   ", item)


def speed(duration_s: float = 49.0) -> None:
    from tiktok_assets.analyzers import AnalyzerContext, get_spec, run_analyzer
    from tiktok_assets.media import MediaCache, build_media_cache
    from tiktok_assets.sample_video import RESOURCES_DIR, generate_sample_video

    workdir = Path(tempfile.mkdtemp(prefix="tiktok-bench-ocr-"))
    recipe = json.loads((RESOURCES_DIR / "sample_video.json").read_text())
    captions = ["LINK IN BIO", "Grüße aus Köln", "WAIT FOR IT", "Teil 2 folgt", "Best pasta ever",
                "Jetzt speichern", "Follow for more", "Süß & schnell"]
    # a 3 s overlay in most 3.5 s slots: text on screen ~75 % of the clip
    recipe["texts"] = [{"text": captions[i % len(captions)], "start_s": 0.3 + 4.0 * i, "end_s": 3.3 + 4.0 * i}
                       for i in range(int(duration_s // 4))]
    recipe_path = workdir / "recipe.json"
    recipe_path.write_text(json.dumps(recipe))
    video = workdir / "bench_ocr_1080x1920.mp4"
    generate_sample_video(video, recipe_path, width=1080, height=1920, min_duration_s=duration_s)
    settings = load_settings()
    build_media_cache(video, workdir / "media", "bench", settings.sample_fps, settings.frame_long_side,
                      settings.lowres_short_side)
    media = MediaCache(workdir / "media")
    spec = get_spec("text_overlay")
    context = AnalyzerContext(video_id="bench", settings=settings)
    run_analyzer(spec, media, context)  # loads the model
    began, cpu = time.perf_counter(), time.process_time()
    run = run_analyzer(spec, media, context)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    truth = recipe["texts"]
    found = sum(1 for t in truth if any(_ocr.character_error_rate(t["text"], r["text"]) <= 0.05
                                        and abs(r["start_s"] - t["start_s"]) <= 0.5 for r in run.table.to_pylist()))
    print(f"\ntext_overlay on {media.duration_s:.1f}s 1080x1920 ({len(media.frame_times)} sampled frames): "
          f"{seconds:.2f}s = {seconds / media.duration_s:.3f}x realtime (CPU time {cpu:.1f}s, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); {run.table.num_rows} tracks, "
          f"{found}/{len(truth)} planted overlays found (CER <= 5 %, start within 0.5 s)")
    print("  " + ", ".join(f"{k}={v}" for k, v in run.metadata.items() if k.startswith(("frames_", "lines_"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="rapidocr@640,easyocr@640,rapidocr@1280",
                        help="engine@frame long side, comma-separated")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    if not args.skip_accuracy:
        runs = [(e.split("@")[0].strip(), int(e.split("@")[1])) for e in args.runs.split(",") if e.strip()]
        print_tables(accuracy(runs))
    if not args.skip_speed:
        speed()


if __name__ == "__main__":
    main()
