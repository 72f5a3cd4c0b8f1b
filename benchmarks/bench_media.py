"""Benchmark the media step against a bare PyAV decode of the same file.

Run: ``python benchmarks/bench_media.py VIDEO [--mode media|bare] [--repeat 3]``.
``media`` builds the media cache (sampled frames, low-res stream, 16 kHz audio) into a fresh folder;
``bare`` only decodes every video and audio frame with PyAV (threaded, no conversion), the floor the
media step cannot beat. Each prints the best and median wall seconds of ``--repeat`` runs; compare the
two (or time the two commands from outside) for the media step's overhead.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import av

from tiktok_assets.config import load_settings
from tiktok_assets.media import build_media_cache


def bare_decode(video: Path) -> int:
    """Decode every frame of the file; return the number of video frames."""
    frames = 0
    with av.open(str(video)) as container:
        streams = [container.streams.video[0]]
        streams[0].thread_type = "AUTO"
        if container.streams.audio:
            streams.append(container.streams.audio[0])
        for packet in container.demux(*streams):
            for _ in packet.decode():
                frames += packet.stream.type == "video"
    return frames


def media_step(video: Path) -> int:
    """Build the media cache of ``video`` in a temporary folder; return the number of decoded frames."""
    settings = load_settings()
    folder = Path(tempfile.mkdtemp(prefix="bench-media-"))
    try:
        meta = build_media_cache(video, folder / "bench", "bench", settings.sample_fps, settings.frame_long_side,
                                 settings.lowres_short_side)
        return meta.decoded_frames
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--mode", choices=["media", "bare"], default="media")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = media_step if args.mode == "media" else bare_decode
    times = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        frames = work(args.video)
        times.append(time.perf_counter() - began)
    print(f"{args.mode}: {frames} frames, best {min(times):.2f}s, median {statistics.median(times):.2f}s")


if __name__ == "__main__":
    main()
