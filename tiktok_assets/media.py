"""Probe a video and decode it once into the media cache that every analyzer reads.

One pass over the container produces:

* ``frames.u8``: frames sampled at ``sample_fps``, scaled so the long side is ``frame_long_side``
  (RGB, uint8, shape in ``meta.json``), with their times in ``frame_times.npy``;
* ``lowres.u8``: every decoded frame at a small size (short side ``lowres_short_side``) for
  analyzers that need the full frame rate (cuts, flashes, speed changes, camera motion), with
  ``lowres_times.npy``;
* ``audio.wav``: 16 kHz mono PCM, absent when the video has no audio track.

The cache for a video is built in a temporary folder and swapped in with a rename, so a failed
decode leaves the previous cache untouched.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import wave
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

AUDIO_RATE = 16_000


class MediaError(RuntimeError):
    """A video that cannot be read; the message is one sentence meant for the user."""


@dataclass(frozen=True)
class ProbeInfo:
    duration_s: float
    fps: float
    width: int
    height: int
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    size_bytes: int


def _open(path: Path):
    import av

    if not path.is_file():
        raise MediaError(f"video file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"{path.name} is empty (0 bytes), not a video")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path.name} is not a readable video file ({exc.strerror or exc})") from exc


def probe(path: Path) -> ProbeInfo:
    """Read container facts without decoding; raise MediaError for non-videos and empty ones."""
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path.name} has no video stream")
        vs = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = None
        if vs.duration is not None and vs.time_base is not None:
            duration = float(vs.duration * vs.time_base)
        if not duration and container.duration:
            duration = container.duration / 1_000_000
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else 0.0
        if vs.frames and fps <= 0 and duration:
            fps = vs.frames / duration
        info = ProbeInfo(
            duration_s=float(duration or 0.0),
            fps=round(fps, 3),
            width=int(vs.codec_context.width or 0),
            height=int(vs.codec_context.height or 0),
            video_codec=vs.codec_context.name,
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            size_bytes=path.stat().st_size,
        )
    if info.duration_s <= 0 or info.width <= 0 or info.height <= 0:
        raise MediaError(f"{path.name} has zero length or no picture size; nothing to analyze")
    return info


@dataclass(frozen=True)
class MediaMeta:
    video_id: str
    duration_s: float
    fps: float
    width: int
    height: int
    has_audio: bool
    sample_fps: float
    frame_shape: tuple[int, int, int, int]
    lowres_shape: tuple[int, int, int, int]
    audio_samples: int
    decoded_frames: int


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def _scaled(width: int, height: int, long_side: int | None = None, short_side: int | None = None):
    if long_side is not None:
        scale = min(1.0, long_side / max(width, height))
    else:
        scale = min(1.0, short_side / min(width, height))
    return _even(width * scale), _even(height * scale)


def build_media_cache(
    source: Path,
    out_dir: Path,
    video_id: str,
    sample_fps: float,
    frame_long_side: int,
    lowres_short_side: int,
    log=None,
) -> MediaMeta:
    """Decode ``source`` once into ``out_dir`` (replaced atomically); return the cache's meta."""
    import av

    info = probe(source)
    fw, fh = _scaled(info.width, info.height, long_side=frame_long_side)
    lw, lh = _scaled(info.width, info.height, short_side=lowres_short_side)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        meta = _decode(source, tmp, video_id, info, sample_fps, (fw, fh), (lw, lh), log)
        (tmp / "meta.json").write_text(json.dumps(asdict(meta), indent=2))
        _swap_in(tmp, out_dir)
    except av.error.FFmpegError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MediaError(f"{source.name} could not be decoded ({exc.strerror or exc})") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _swap_in(tmp: Path, out_dir: Path) -> None:
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _decode(source, tmp, video_id, info, sample_fps, frame_size, lowres_size, log) -> MediaMeta:
    import av

    fw, fh = frame_size
    lw, lh = lowres_size
    frame_times: list[float] = []
    lowres_times: list[float] = []
    audio_samples = 0
    next_sample = 0.0
    step = 1.0 / sample_fps
    last_logged = 0.0
    with _open(source) as container, open(tmp / "frames.u8", "wb") as frames_out, open(
        tmp / "lowres.u8", "wb"
    ) as lowres_out:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        streams = [vs]
        wav = None
        resampler = None
        if container.streams.audio:
            streams.append(container.streams.audio[0])
            wav = wave.open(str(tmp / "audio.wav"), "wb")  # noqa: SIM115 - closed in finally
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(AUDIO_RATE)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
        start = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        try:
            for packet in container.demux(*streams):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    continue  # a damaged packet: skip it, keep the rest of the video
                for frame in decoded:
                    if packet.stream.type == "video":
                        t = max(0.0, float(frame.time or 0.0) - start)
                        lowres_out.write(frame.to_ndarray(width=lw, height=lh, format="rgb24").tobytes())
                        lowres_times.append(t)
                        if t + 1e-6 >= next_sample:
                            img = frame.to_ndarray(width=fw, height=fh, format="rgb24")
                            frames_out.write(img.tobytes())
                            frame_times.append(t)
                            next_sample = (math.floor(t / step + 1e-6) + 1) * step
                        if log is not None and t - last_logged >= 10:
                            last_logged = t
                            log(f"decoded {t:.0f}s of {info.duration_s:.0f}s")
                    elif wav is not None:
                        for out in resampler.resample(frame):
                            pcm = out.to_ndarray().reshape(-1)
                            wav.writeframes(pcm.astype("<i2").tobytes())
                            audio_samples += pcm.size
            if resampler is not None:
                for out in resampler.resample(None):
                    pcm = out.to_ndarray().reshape(-1)
                    wav.writeframes(pcm.astype("<i2").tobytes())
                    audio_samples += pcm.size
        finally:
            if wav is not None:
                wav.close()
    if not frame_times:
        raise MediaError(f"{source.name} contains no decodable video frames (corrupt or truncated)")
    if wav is not None and audio_samples == 0:
        (tmp / "audio.wav").unlink()
    np.save(tmp / "frame_times.npy", np.asarray(frame_times, dtype=np.float64))
    np.save(tmp / "lowres_times.npy", np.asarray(lowres_times, dtype=np.float64))
    decoded_duration = lowres_times[-1] + (1.0 / info.fps if info.fps else 0.0)
    duration = max(decoded_duration, min(audio_samples / AUDIO_RATE, info.duration_s))
    if info.duration_s and decoded_duration < 0.5 * info.duration_s:
        raise MediaError(
            f"{source.name} is truncated: only {decoded_duration:.1f}s of {info.duration_s:.1f}s decode"
        )
    return MediaMeta(
        video_id=video_id,
        duration_s=round(duration, 3),
        fps=info.fps,
        width=info.width,
        height=info.height,
        has_audio=audio_samples > 0,
        sample_fps=sample_fps,
        frame_shape=(len(frame_times), fh, fw, 3),
        lowres_shape=(len(lowres_times), lh, lw, 3),
        audio_samples=audio_samples,
        decoded_frames=len(lowres_times),
    )


class MediaCache:
    """Read access to one video's decoded media; arrays are memory-mapped, not loaded."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        meta_file = self.directory / "meta.json"
        if not meta_file.is_file():
            raise MediaError(f"no media cache at {self.directory}; materialize `media` first")
        raw = json.loads(meta_file.read_text())
        raw["frame_shape"] = tuple(raw["frame_shape"])
        raw["lowres_shape"] = tuple(raw["lowres_shape"])
        self.meta = MediaMeta(**raw)

    @property
    def video_id(self) -> str:
        return self.meta.video_id

    @property
    def duration_s(self) -> float:
        return self.meta.duration_s

    @property
    def has_audio(self) -> bool:
        return self.meta.has_audio

    @property
    def audio_path(self) -> Path | None:
        path = self.directory / "audio.wav"
        return path if self.has_audio and path.is_file() else None

    @cached_property
    def frames(self) -> np.ndarray:
        """Sampled RGB frames, shape (N, H, W, 3)."""
        return np.memmap(self.directory / "frames.u8", np.uint8, "r", shape=self.meta.frame_shape)

    @cached_property
    def frame_times(self) -> np.ndarray:
        return np.load(self.directory / "frame_times.npy")

    @cached_property
    def lowres(self) -> np.ndarray:
        """Every decoded frame, small, RGB, shape (M, h, w, 3)."""
        return np.memmap(self.directory / "lowres.u8", np.uint8, "r", shape=self.meta.lowres_shape)

    @cached_property
    def lowres_times(self) -> np.ndarray:
        return np.load(self.directory / "lowres_times.npy")

    @cached_property
    def audio(self) -> np.ndarray:
        """16 kHz mono float32 in [-1, 1], cut to the video's duration (AAC padding can run
        past the last frame); empty when the video has no audio."""
        if self.audio_path is None:
            return np.zeros(0, dtype=np.float32)
        with wave.open(str(self.audio_path), "rb") as wav:
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        pcm = pcm[: int(round(self.duration_s * AUDIO_RATE))]
        return pcm.astype(np.float32) / 32768.0

    sample_rate = AUDIO_RATE
