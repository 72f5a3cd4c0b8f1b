"""End-to-end benchmark: `tiktok-assets analyze` on a generated clip, every analyzer, one process.

Run: ``python benchmarks/bench_pipeline.py [--seconds 60] [--width 1080 --height 1920]``.
Prints each step's time from Dagster and the realtime factor (processing time / video duration) of
the whole run, model loading included, in a fresh data root.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=1920)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tiktok-bench-pipeline-"))
    os.environ["TIKTOK_ASSETS_HOME"] = str(workdir / "home")

    from tiktok_assets.cli import analyze
    from tiktok_assets.config import load_settings
    from tiktok_assets.media import MediaCache
    from tiktok_assets.sample_video import generate_sample_video

    video = workdir / "clip.mp4"
    generate_sample_video(video, width=args.width, height=args.height, min_duration_s=args.seconds)
    settings = load_settings()
    began = time.perf_counter()
    key, ok = analyze(settings, str(video))
    elapsed = time.perf_counter() - began
    duration = MediaCache(settings.media_dir / key).duration_s
    print(f"\n{duration:.1f}s clip at {args.width}x{args.height}, {os.cpu_count()} CPU cores, all steps ok: {ok}")
    print(f"end to end: {elapsed:.1f}s = {elapsed / duration:.3f}x realtime (processing time / duration)")


if __name__ == "__main__":
    main()
