"""Shared benchmark plumbing: make a long sample clip, decode it once, time analyzers on it.

Benchmarks are scripts, not tests: they print seconds and realtime factors (processing time /
video duration; below 1 is faster than realtime) measured in one run on this machine.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from tiktok_assets.analyzers import AnalyzerContext, get_spec, run_analyzer
from tiktok_assets.config import load_settings
from tiktok_assets.media import MediaCache, build_media_cache
from tiktok_assets.sample_video import generate_sample_video


def prepare_clip(duration_s: float, width: int, height: int, workdir: Path | None = None) -> tuple[MediaCache, float]:
    """Generate the sample recipe stretched to ``duration_s`` and decode it; returns (media, decode seconds)."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="tiktok-bench-"))
    video = workdir / f"bench_{width}x{height}_{int(duration_s)}s.mp4"
    if not video.exists():
        generate_sample_video(video, width=width, height=height, min_duration_s=duration_s)
    settings = load_settings()
    began = time.perf_counter()
    build_media_cache(video, workdir / "media", "bench", settings.sample_fps, settings.frame_long_side,
                      settings.lowres_short_side)
    return MediaCache(workdir / "media"), time.perf_counter() - began


def time_analyzers(names: list[str], media: MediaCache, repeat_first: bool = True) -> list[tuple[str, float, int]]:
    """Run each analyzer (once to warm up model loading when ``repeat_first``) and time it."""
    settings = load_settings()
    inputs: dict = {}
    results = []
    for name in names:
        spec = get_spec(name)
        context = AnalyzerContext(video_id=media.video_id, settings=settings,
                                  inputs={d: inputs[d] for d in spec.depends_on if d in inputs})
        if repeat_first:
            run_analyzer(spec, media, context)  # loads models / compiles numba once
        began = time.perf_counter()
        run = run_analyzer(spec, media, context)
        results.append((name, time.perf_counter() - began, run.table.num_rows))
        inputs[name] = run.table
    return results


def report(title: str, media: MediaCache, decode_s: float, results: list[tuple[str, float, int]]) -> None:
    duration = media.duration_s
    print(f"\n{title}: {duration:.1f}s clip, {media.meta.width}x{media.meta.height}, "
          f"{media.meta.decoded_frames} frames, {os.cpu_count()} CPU cores")
    print(f"{'step':<24}{'seconds':>10}{'x realtime':>12}{'rows':>8}")
    print(f"{'decode (media)':<24}{decode_s:>10.2f}{decode_s / duration:>12.3f}{'':>8}")
    total = decode_s
    for name, seconds, rows in results:
        total += seconds
        print(f"{name:<24}{seconds:>10.2f}{seconds / duration:>12.3f}{rows:>8}")
    print(f"{'total':<24}{total:>10.2f}{total / duration:>12.3f}")
