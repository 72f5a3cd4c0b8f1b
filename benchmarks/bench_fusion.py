"""Benchmark the fusion analyzers cross_analyzer_intelligence and composition_analysis.

Run: ``python benchmarks/bench_fusion.py [--seconds 49] [--repeat 3] [--workdir DIR]``.

The sample recipe clip (generated, 360x640, speech and music) is stretched to ``--seconds`` and
decoded once. The upstream analyzers they read run first, once (their time is printed for
context, model loads included); then each fusion analyzer runs ``--repeat`` times on those tables
and the median is reported as seconds and realtime factor (processing time / video duration).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import prepare_clip  # noqa: E402

from tiktok_assets.analyzers import AnalyzerContext, get_spec, run_analyzer  # noqa: E402
from tiktok_assets.config import load_settings  # noqa: E402

UPSTREAM = ["cut_analysis", "eye_tracking", "body_pose", "background_segmentation", "speech_transcription",
            "audio_environment", "audio_analysis", "speech_rate"]
FUSION = ["cross_analyzer_intelligence", "composition_analysis"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=49.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    media, decode_s = prepare_clip(args.seconds, 360, 640, args.workdir)
    settings = load_settings()
    duration = media.duration_s
    print(f"{duration:.1f}s clip, {media.meta.width}x{media.meta.height}; decode {decode_s:.2f}s")
    tables, examined = {}, {}
    for name in UPSTREAM:
        spec = get_spec(name)
        context = AnalyzerContext(video_id=media.video_id, settings=settings,
                                  inputs={d: tables[d] for d in spec.depends_on if d in tables},
                                  input_examined={d: examined[d] for d in spec.depends_on if d in examined})
        began = time.perf_counter()
        run = run_analyzer(spec, media, context)
        tables[name], examined[name] = run.table, run.examined
        print(f"upstream {name:<26}{time.perf_counter() - began:>8.2f}s{run.table.num_rows:>6} rows")
    print(f"\n{'fusion analyzer':<30}{'median s':>10}{'x realtime':>12}{'rows':>7}")
    for name in FUSION:
        spec = get_spec(name)
        context = AnalyzerContext(video_id=media.video_id, settings=settings,
                                  inputs={d: tables[d] for d in spec.depends_on if d in tables},
                                  input_examined={d: examined[d] for d in spec.depends_on if d in examined})
        times, rows = [], 0
        for _ in range(max(1, args.repeat)):
            began = time.perf_counter()
            run = run_analyzer(spec, media, context)
            times.append(time.perf_counter() - began)
            rows = run.table.num_rows
        seconds = statistics.median(times)
        print(f"{name:<30}{seconds:>10.3f}{seconds / duration:>12.4f}{rows:>7}")
        print(f"  {run.metadata}")


if __name__ == "__main__":
    main()
