"""Benchmark the vision analyzers on a 60 s 1080x1920 generated clip.

Run: ``python benchmarks/bench_vision.py [--seconds 60] [--width 1080 --height 1920]``.
cut_analysis runs first and its table is handed to the five analyzers that depend on it (as the
Dagster assets do; without the table they stop with an error and never compute the cuts themselves).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import prepare_clip, report, time_analyzers  # noqa: E402

VISION = ["cut_analysis", "scene_segmentation", "camera_analysis", "color_analysis", "content_quality",
          "visual_effects"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=1920)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    media, decode_s = prepare_clip(args.seconds, args.width, args.height, args.workdir)
    results = time_analyzers(VISION, media)
    report("vision analyzers (cut_analysis table given)", media, decode_s, results)


if __name__ == "__main__":
    main()
