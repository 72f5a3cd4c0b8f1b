"""Helpers for tests: decode a video into a media cache, run an analyzer, encode test clips."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from tiktok_assets.analyzers import AnalyzerContext, get_spec, run_analyzer
from tiktok_assets.media import MediaCache, build_media_cache


def make_media(video: Path, out_dir: Path, video_id: str = "test", sample_fps: float = 2.0) -> MediaCache:
    """Decode ``video`` into a media cache under ``out_dir`` (what the `media` asset does)."""
    build_media_cache(Path(video), out_dir / video_id, video_id, sample_fps, 640, 96)
    return MediaCache(out_dir / video_id)


def analyze(name: str, media: MediaCache, settings, inputs=None):
    """Run one analyzer the way the Dagster asset does; returns (rows as dicts, AnalyzerRun).

    An analyzer that needs shots gets cut_analysis's table (run here first when not given, as the
    CLI pulls it in) and its examined spans."""
    spec = get_spec(name)
    inputs, examined = dict(inputs or {}), {}
    if "cut_analysis" in spec.depends_on and "cut_analysis" not in inputs:
        _, upstream = analyze("cut_analysis", media, settings)
        inputs["cut_analysis"], examined["cut_analysis"] = upstream.table, upstream.examined
    context = AnalyzerContext(video_id=media.video_id, settings=settings, inputs=inputs, input_examined=examined)
    result = run_analyzer(spec, media, context)
    return result.table.to_pylist(), result


# one x264 thread: with several, two encodes of the same frames on a loaded machine are not always
# byte-identical (2 of 30 differed under 3 busy loops; with one thread 30 of 30 were identical, at
# ~15 % more encode time), and a test's media should not change between runs
X264_DETERMINISTIC = ("-threads", "1")


def encode_frames(path: Path, frames, fps: int = 30, audio: np.ndarray | None = None) -> Path:
    """Encode RGB uint8 frames (and optional 16 kHz mono audio) to an H.264 MP4 with ffmpeg (the same
    file for the same frames on every run)."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-"]
    wav = None
    if audio is not None:
        from tiktok_assets.sample_video import write_wav

        wav = path.with_suffix(".wav")
        write_wav(wav, audio)
        cmd += ["-i", str(wav), "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", *X264_DETERMINISTIC, "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p",
            str(path)]
    subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f, dtype=np.uint8).tobytes() for f in frames),
                   check=True)
    if wav is not None:
        wav.unlink()
    return path


def drop_frames(video: Path, out: Path) -> Path:
    """Re-encode ``video`` without every 7th and 11th frame, keeping the other frames' times: a
    variable frame rate whose steps over a dropped frame span twice the time."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-vf",
                    "select='not(eq(mod(n\\,7)\\,3))*not(eq(mod(n\\,11)\\,5))'", "-vsync", "vfr",
                    "-c:v", "libx264", *X264_DETERMINISTIC, "-preset", "veryfast", "-crf", "12", str(out)], check=True)
    return out


def read_truth(video: Path) -> dict:
    return json.loads(video.with_suffix(".truth.json").read_text())


def sql(query: str) -> list[tuple]:
    """Rows of ``query`` against the warehouse views of the current data root."""
    from tiktok_assets.catalog import connect
    from tiktok_assets.config import load_settings

    con = connect(load_settings())
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def placed_on_gpu_recording_batches(model, monkeypatch) -> list[int]:
    """Make an ONNX-backed ``model`` (``session`` + ``placed_device``) act as if placed on a GPU while
    its real session keeps running on the CPU; returns the list that fills with each run's batch size."""
    sizes: list[int] = []
    real_run = model.session.run

    class Recorder:
        def run(self, outputs, feed):
            sizes.append(next(iter(feed.values())).shape[0])
            return real_run(outputs, feed)

    monkeypatch.setattr(model, "session", Recorder())
    monkeypatch.setattr(model, "placed_device", "cuda:0")
    return sizes
