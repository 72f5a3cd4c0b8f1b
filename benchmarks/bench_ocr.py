"""OCR engines on the same generated frames (CER by language, size and style) and text_overlay's speed.

1. Accuracy: 360x640 frames (what ``text_overlay`` reads at the default 640 long side) over a packaged
   photo, one line each, German (umlauts, ß) and English, sizes 14-120 px (glyph size in frame pixels;
   x3 in a 1080x1920 source), styles outline / shadow / box / caption / plain, straight and slanted
   8 degrees. Each engine detects and reads the whole frame; CER = edit distance / truth length of the
   lines joined top to bottom.
2. Speed: ``text_overlay`` on a 49 s 1080x1920 clip (the sample recipe with a text overlay in most
   shots), after one warm-up run that loads the model: seconds and realtime factor.

Usage: python benchmarks/bench_ocr.py [--engines rapidocr,easyocr] [--skip-speed] [--skip-accuracy]
"""

from __future__ import annotations

import argparse
import json
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

W, H = 360, 640
SIZES = (14, 18, 24, 32, 48, 72, 120)
PHRASES = {
    "de": ["Grüße aus Köln", "Übung macht Spaß", "Jetzt Teil 2 ansehen", "Link in der Bio", "Schöne Grüße",
           "Öffnungszeiten", "Süßes Frühstück", "Straße", "Bär", "Süß", "Öl"],
    "en": ["Link in bio", "Follow for part 2", "Wait for it", "Best pasta ever", "Save this recipe",
           "Comment below", "Try this", "Wow", "Yes", "Go"],
}


def photo(i: int) -> Image.Image:
    from skimage import data

    pics = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    pic = Image.fromarray(pics[i % len(pics)])
    scale = max(W / pic.width, H / pic.height)
    pic = pic.resize((int(pic.width * scale) + 1, int(pic.height * scale) + 1), Image.BICUBIC)
    return pic.crop((0, 0, W, H))


def fitting_phrase(lang: str, size: int, k: int) -> str:
    fits = [p for p in PHRASES[lang] if font(size).getbbox(p)[2] <= W - 60]
    return fits[k % len(fits)]


def accuracy_frames() -> list[dict]:
    cases = []
    k = 0
    for lang in ("de", "en"):
        for size in SIZES:
            for style in STYLES:
                for angle in (0.0, 8.0):
                    text = fitting_phrase(lang, size, k)
                    img = photo(k)
                    tw = font(size).getbbox(text)[2]
                    y = 120 + (k * 37) % max(1, H - 300 - size)
                    draw_text(img, text, size, ((W - tw) / 2, y), style, angle)
                    cases.append({"lang": lang, "size": size, "style": style, "angle": angle, "text": text,
                                  "image": np.asarray(img)})
                    k += 1
    return cases


def read_all(engine, image: np.ndarray) -> str:
    reads = _ocr.read_image(engine, image)
    reads.sort(key=lambda r: (float(r.quad[:, 1].mean()), float(r.quad[:, 0].mean())))
    return " ".join(r.text for r in reads)


def accuracy(engines: list[str]) -> dict:
    cases = accuracy_frames()
    loader = process_loader(load_settings())
    results: dict = {}
    for name in engines:
        engine = loader.load(_ocr.MODEL_IDS[name], "cpu")
        read_all(engine, cases[0]["image"])  # warm-up
        rows, began = [], time.perf_counter()
        for case in cases:
            hyp = read_all(engine, case["image"])
            rows.append({**{k: v for k, v in case.items() if k != "image"}, "hyp": hyp,
                         "cer": _ocr.character_error_rate(case["text"], hyp)})
        results[name] = {"rows": rows, "seconds_per_frame": (time.perf_counter() - began) / len(cases)}
    return results


def print_tables(results: dict) -> None:
    names = list(results)
    print(f"\nCER (mean over {len(STYLES)} styles x straight/slanted), frames {W}x{H}")
    print(f"{'lang':<5}{'size':>5}" + "".join(f"{n:>12}" for n in names))
    for lang in ("de", "en"):
        for size in SIZES:
            cells = [np.mean([r["cer"] for r in results[n]["rows"] if r["lang"] == lang and r["size"] == size])
                     for n in names]
            print(f"{lang:<5}{size:>5}" + "".join(f"{c:>12.3f}" for c in cells))
    print("\nCER on text >= 24 px by style (both languages)")
    for style in [*STYLES, "slanted"]:
        cells = []
        for n in names:
            sel = [r["cer"] for r in results[n]["rows"] if r["size"] >= 24
                   and (r["angle"] > 0 if style == "slanted" else r["style"] == style and r["angle"] == 0)]
            cells.append(np.mean(sel))
        print(f"{style:<10}" + "".join(f"{c:>12.3f}" for c in cells))
    print("\nSummary (CER on text >= 24 px; < 24 px)")
    for lang in ("de", "en"):
        for n in names:
            big = [r["cer"] for r in results[n]["rows"] if r["lang"] == lang and r["size"] >= 24]
            small = [r["cer"] for r in results[n]["rows"] if r["lang"] == lang and r["size"] < 24]
            print(f"  {lang} {n:<10} {np.mean(big):.3f}   {np.mean(small):.3f}")
    for n in names:
        print(f"  {n}: {results[n]['seconds_per_frame']:.2f} s per frame (detect + read)")
    worst = defaultdict(list)
    for n in names:
        for r in results[n]["rows"]:
            if r["size"] >= 24 and r["cer"] > 0.05:
                worst[n].append(f"{r['lang']} {r['size']}px {r['style']}{' slanted' if r['angle'] else ''}: "
                                f"{r['text']!r} -> {r['hyp']!r}")
    for n, items in worst.items():
        print(f"\n{n}: {len(items)} reads of >= 24 px text above 5 % CER")
        for item in items[:12]:
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
    began = time.perf_counter()
    run = run_analyzer(spec, media, context)
    seconds = time.perf_counter() - began
    truth = recipe["texts"]
    found = sum(1 for t in truth if any(_ocr.character_error_rate(t["text"], r["text"]) <= 0.05
                                        and abs(r["start_s"] - t["start_s"]) <= 0.5 for r in run.table.to_pylist()))
    print(f"\ntext_overlay on {media.duration_s:.1f}s 1080x1920 ({len(media.frame_times)} sampled frames): "
          f"{seconds:.2f}s = {seconds / media.duration_s:.3f}x realtime; {run.table.num_rows} tracks, "
          f"{found}/{len(truth)} planted overlays found (CER <= 5 %, start within 0.5 s)")
    print("  " + ", ".join(f"{k}={v}" for k, v in run.metadata.items() if k.startswith(("frames_", "lines_"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="rapidocr,easyocr")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    if not args.skip_accuracy:
        print_tables(accuracy([e.strip() for e in args.engines.split(",") if e.strip()]))
    if not args.skip_speed:
        speed()


if __name__ == "__main__":
    main()
