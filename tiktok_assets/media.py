"""Probe a video and decode it once into the media cache that every analyzer reads.

One pass over the container produces:

* ``frames.u8``: frames sampled at ``sample_fps``, scaled so the long side is ``frame_long_side``
  (RGB, uint8, shape in ``meta.json``), with their times in ``frame_times.npy``;
* ``lowres.u8``: every decoded frame at a small size (short side ``lowres_short_side``) for
  analyzers that need the full frame rate (cuts, flashes, speed changes, camera motion), with
  ``lowres_times.npy``;
* ``audio.wav``: 16 kHz mono PCM, absent when the video has no audio track.

The contract:

* pictures are upright as displayed: the container's display matrix (phone clips store portrait
  footage as landscape plus a rotation tag; 90/180/270 degrees and mirroring) is applied, and
  ``width``/``height`` are the displayed size;
* times are seconds from the video's time zero (the video stream's start), taken from each frame's
  timestamp, never from its index; audio is placed by its timestamps on the same clock (leading
  silence padded, gaps filled with silence, overlap and overhang past the video's end cut);
* a cache never changes once written (see :mod:`tiktok_assets.media_store`): a re-decode writes a
  new version and readers of the old one keep reading it;
* the duration limit is enforced on decoded time of every stream, damaged packets of any kind are
  skipped and counted, and the decode fails only if too little of the video decodes.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import struct
import threading
import wave
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from . import media_store
from .atomic_files import write_text_atomic

AUDIO_RATE = 16_000
LIMIT_TOLERANCE_S = 0.5  # decoded time may run this far past the duration limit (AAC padding, rounding)


class MediaError(RuntimeError):
    """A video that cannot be read; the message is one sentence meant for the user."""


@dataclass(frozen=True)
class Orientation:
    """How a stored picture becomes the displayed one: transpose, then flip rows and/or columns."""

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False
    rotation: int = 0  # counter-clockwise degrees applied for display (0, 90, 180, 270)
    mirrored: bool = False  # mirrored left-right after the rotation

    @classmethod
    def from_matrix(cls, matrix: tuple[int, ...] | None) -> Orientation:
        """Read FFmpeg's 3x3 display matrix (row-major, 16.16 fixed point): a stored pixel (x, y)
        is displayed at (a*x + c*y, b*x + d*y); angles are snapped to the nearest right angle."""
        if not matrix:
            return cls()
        a, b, _, c, d = matrix[:5]
        if a == b == c == d == 0:
            return cls()
        mirrored = a * d - b * c < 0
        # undo a left-right mirror (it negates the x' row: a and c) to read the rotation alone
        ra, rb = (-a, b) if mirrored else (a, b)
        return cls.from_rotation(round(-math.degrees(math.atan2(rb, ra)) / 90) % 4 * 90, mirrored)

    @classmethod
    def from_rotation(cls, rotation: int, mirrored: bool = False) -> Orientation:
        """Counter-clockwise ``rotation`` (a multiple of 90), then an optional left-right mirror."""
        transpose, flip_rows, flip_cols = {0: (False, False, False), 90: (True, True, False),
                                           180: (False, True, True), 270: (True, False, True)}[rotation % 360]
        return cls(transpose, flip_rows, flip_cols != mirrored, rotation % 360, mirrored)

    def apply(self, img: np.ndarray) -> np.ndarray:
        """The displayed picture of a stored (H, W, C) array."""
        if self.transpose:
            img = img.transpose(1, 0, 2)
        if self.flip_rows:
            img = img[::-1]
        if self.flip_cols:
            img = img[:, ::-1]
        return np.ascontiguousarray(img)

    def apply_batch(self, imgs: np.ndarray) -> np.ndarray:
        """The displayed pictures of stored (N, H, W, C) arrays (a view; contiguous only when upright)."""
        if self.transpose:
            imgs = imgs.transpose(0, 2, 1, 3)
        if self.flip_rows:
            imgs = imgs[:, ::-1]
        if self.flip_cols:
            imgs = imgs[:, :, ::-1]
        return imgs

    def stored_size(self, width: int, height: int) -> tuple[int, int]:
        """The stored (width, height) of a displayed size."""
        return (height, width) if self.transpose else (width, height)


@dataclass(frozen=True)
class ProbeInfo:
    duration_s: float
    fps: float
    width: int  # displayed width (after the rotation tag)
    height: int  # displayed height
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    size_bytes: int
    rotation: int = 0
    mirrored: bool = False
    audio_duration_s: float = 0.0


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


def _display_matrix(frame) -> tuple[int, ...] | None:
    """The display matrix a decoded frame carries (FFmpeg attaches the container's to every frame)."""
    from av.sidedata.sidedata import Type

    for data in frame.side_data:
        if data.type == Type.DISPLAYMATRIX:
            raw = bytes(data)
            return struct.unpack("<9i", raw[:36]) if len(raw) >= 36 else None
    return None


def _orientation(container) -> Orientation:
    """The display orientation of the first video stream, read from its first decodable frame."""
    import av

    try:
        for frame in container.decode(video=0):
            return Orientation.from_matrix(_display_matrix(frame))
    except av.error.FFmpegError:
        pass
    return Orientation()


def probe(path: Path) -> ProbeInfo:
    """Read container facts (and the first frame's orientation); raise MediaError for non-videos."""
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
        audio_duration = 0.0
        if audio is not None and audio.duration is not None and audio.time_base is not None:
            audio_duration = float(audio.duration * audio.time_base)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else 0.0
        if vs.frames and fps <= 0 and duration:
            fps = vs.frames / duration
        coded = (int(vs.codec_context.width or 0), int(vs.codec_context.height or 0))
        video_codec = vs.codec_context.name
        audio_codec = audio.codec_context.name if audio is not None else None
        orient = _orientation(container)
    width, height = orient.stored_size(*coded)
    info = ProbeInfo(
        duration_s=float(duration or 0.0),
        fps=round(fps, 3),
        width=width,
        height=height,
        video_codec=video_codec,
        has_audio=audio is not None,
        audio_codec=audio_codec,
        size_bytes=path.stat().st_size,
        rotation=orient.rotation,
        mirrored=orient.mirrored,
        audio_duration_s=audio_duration,
    )
    if not math.isfinite(info.duration_s) or info.duration_s <= 0 or info.width <= 0 or info.height <= 0:
        raise MediaError(f"{path.name} has zero length or no picture size; nothing to analyze")
    return info


@dataclass(frozen=True)
class MediaMeta:
    video_id: str
    duration_s: float
    fps: float
    width: int  # displayed size
    height: int
    has_audio: bool
    sample_fps: float
    frame_shape: tuple[int, int, int, int]
    lowres_shape: tuple[int, int, int, int]
    audio_samples: int
    decoded_frames: int
    rotation: int = 0  # counter-clockwise degrees applied to the stored pictures
    mirrored: bool = False  # mirrored left-right after the rotation
    damaged_packets: int = 0  # packets skipped because they did not decode
    damaged_s: float = 0.0  # media time those packets carried (as far as their durations are known)
    audio_offset_s: float | None = None  # where the audio stream's first sample sits on the video clock
    version: str = ""  # the cache version (hash of source + decode settings)


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def _scaled(width: int, height: int, long_side: int | None = None, short_side: int | None = None):
    if long_side is not None:
        scale = min(1.0, long_side / max(width, height))
    else:
        scale = min(1.0, short_side / min(width, height))
    return _even(width * scale), _even(height * scale)


def cache_ready(directory: Path) -> bool:
    """Whether a complete media cache exists at ``directory``."""
    return (Path(directory) / "meta.json").is_file()


def build_media_cache(
    source: Path,
    out_dir: Path,
    video_id: str,
    sample_fps: float,
    frame_long_side: int,
    lowres_short_side: int,
    log=None,
    max_duration_s: float | None = None,
) -> MediaMeta:
    """Decode ``source`` once into a new immutable version and point ``out_dir`` at it.

    The same source with the same settings reuses the version decoded before. A failed decode
    leaves the current version in place. ``max_duration_s`` refuses videos whose decoded time on
    any stream runs past it.
    """
    import av

    source, out_dir = Path(source), Path(out_dir)
    if max_duration_s is not None and not (math.isfinite(max_duration_s) and max_duration_s > 0):
        raise ValueError(f"max_duration_s must be a positive finite number, got {max_duration_s!r}")
    info = probe(source)
    limit = max_duration_s
    if limit is not None and max(info.duration_s, info.audio_duration_s) > limit + LIMIT_TOLERANCE_S:
        raise MediaError(
            f"{source.name} lasts {max(info.duration_s, info.audio_duration_s):.0f}s, above the limit "
            f"of {limit:.0f}s (TIKTOK_ASSETS_MAX_DURATION_S)"
        )
    settings = {"sample_fps": sample_fps, "frame_long_side": frame_long_side,
                "lowres_short_side": lowres_short_side, "video_id": video_id}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    version = media_store.version_key(source, settings)
    done = media_store.existing_version(out_dir, version)
    if done is not None:
        meta = _read_meta(done)
        if limit is None or meta.duration_s <= limit + LIMIT_TOLERANCE_S:
            media_store.point(out_dir, done)
            media_store.collect(out_dir)
            return meta
    media_store.collect(out_dir)  # temporaries left by killed decodes of this partition
    tmp, lock = media_store.new_build(out_dir)
    try:
        fw, fh = _scaled(info.width, info.height, long_side=frame_long_side)
        lw, lh = _scaled(info.width, info.height, short_side=lowres_short_side)
        meta = _decode(source, tmp, video_id, info, sample_fps, (fw, fh), (lw, lh), log, limit, version)
        write_text_atomic(tmp / "meta.json", json.dumps(asdict(meta), indent=2))
        media_store.publish(tmp, lock, out_dir, version)
    except av.error.FFmpegError as exc:
        media_store.discard_build(tmp, lock)
        raise MediaError(f"{source.name} could not be decoded ({exc.strerror or exc})") from exc
    except BaseException:
        media_store.discard_build(tmp, lock)
        raise
    return meta


class _AudioTrack:
    """16 kHz mono PCM placed by timestamp on the video clock: silence before the first sample and in
    gaps, overlapping samples dropped; kept as raw PCM until the video's end is known."""

    def __init__(self, path: Path, origin_s: float, limit_s: float | None):
        self.path = path
        self.file = open(path, "wb")  # noqa: SIM115 - closed in finish()/close()
        self.origin = round(origin_s * AUDIO_RATE)
        self.limit = None if limit_s is None else int((limit_s + LIMIT_TOLERANCE_S) * AUDIO_RATE)
        self.written = 0
        self.first: int | None = None
        self.decoded = 0

    def add(self, pcm: np.ndarray, pts: int | None) -> None:
        """Place ``pcm`` (int16) whose first sample has timestamp ``pts`` (in 1/16000 s)."""
        pos = self.written if pts is None else pts - self.origin
        self.decoded += pcm.size
        if self.first is None:
            self.first = pos
        if self.limit is not None and pos + pcm.size > self.limit:
            raise _LimitExceeded((pos + pcm.size) / AUDIO_RATE)
        if pos < self.written:  # before time zero, or overlapping what is placed: drop the overlap
            pcm = pcm[self.written - pos:]
            pos = self.written
        if pcm.size == 0:
            return
        if pos > self.written:
            self._silence(pos - self.written)
        self.file.write(pcm.astype("<i2").tobytes())
        self.written += pcm.size

    def _silence(self, n: int) -> None:
        while n > 0:
            k = min(n, AUDIO_RATE * 10)
            self.file.write(bytes(2 * k))
            self.written += k
            n -= k

    def finish(self, wav_path: Path, end_samples: int) -> int:
        """Write ``audio.wav`` of exactly ``end_samples`` (padded or cut); return the sample count."""
        self.file.close()
        with open(self.path, "rb") as raw, wave.open(str(wav_path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(AUDIO_RATE)
            left = min(self.written, end_samples)
            while left > 0:
                chunk = raw.read(2 * min(left, AUDIO_RATE * 10))
                if not chunk:
                    break
                wav.writeframes(chunk)
                left -= len(chunk) // 2
            pad = end_samples - min(self.written, end_samples)
            while pad > 0:
                k = min(pad, AUDIO_RATE * 10)
                wav.writeframes(bytes(2 * k))
                pad -= k
        self.path.unlink()
        return end_samples

    def close(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class _FrameWriter:
    """Scales decoded frames to one displayed size and appends them to a raw RGB file.

    One swscale context serves every frame (a context per frame, as ``VideoFrame.to_ndarray`` makes,
    costs more than the scaling itself); the pictures are collected in a batch, turned upright
    together and written with one call. The pixels are exactly those of ``to_ndarray``.
    """

    def __init__(self, out, size: tuple[int, int], orient: Orientation, batch: int):
        from av.video.reformatter import VideoReformatter

        self.out = out
        self.orient = orient
        self.width, self.height = orient.stored_size(*size)
        self.buffer = np.empty((batch, self.height, self.width, 3), np.uint8)
        self.count = 0
        self.reformatter = VideoReformatter()

    def add(self, frame) -> None:
        """Scale ``frame`` into the batch (swscale in this thread, which decoding threads overlap)."""
        rgb = self.reformatter.reformat(frame, width=self.width, height=self.height, format="rgb24", threads=1)
        self.buffer[self.count] = rgb.to_ndarray()
        self.count += 1
        if self.count == len(self.buffer):
            self.flush()

    def flush(self) -> None:
        """Write the collected pictures upright."""
        if self.count:
            upright = self.orient.apply_batch(self.buffer[: self.count])
            self.out.write(upright.data if upright.flags.c_contiguous else np.ascontiguousarray(upright).data)
            self.count = 0


class _Pictures:
    """Turns decoded frames into the low-res stream and the sampled frames on one worker thread, in
    order, so that scaling (swscale runs without the GIL) overlaps demuxing and decoding; at most
    ``depth`` decoded frames wait for it."""

    def __init__(self, lowres: _FrameWriter, frames: _FrameWriter, depth: int = 8):
        self.lowres, self.frames = lowres, frames
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.stopped = False
        self.thread = threading.Thread(target=self._work, name="media-pictures", daemon=True)
        self.thread.start()

    def add(self, frame, sampled: bool) -> None:
        """Queue ``frame`` for the low-res stream (and the sampled frames when ``sampled``)."""
        if self.error is not None:
            raise self.error
        self.queue.put((frame, sampled))

    def _work(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None and not self.stopped:
                try:
                    self.lowres.add(item[0])
                    if item[1]:
                        self.frames.add(item[0])
                except BaseException as exc:  # noqa: BLE001 - handed to the decoding thread
                    self.error = exc

    def finish(self) -> None:
        """Wait for the queued frames, write the last batches; raise what the worker met."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        self.lowres.flush()
        self.frames.flush()

    def stop(self) -> None:
        """Drop what is queued and end the worker (the decode failed)."""
        if self.thread.is_alive():
            self.stopped = True
            self.queue.put(None)
            self.thread.join()


class _LimitExceeded(Exception):
    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


def _decode(
    source, tmp, video_id, info, sample_fps, frame_size, lowres_size, log, limit, version
) -> MediaMeta:
    try:
        return _decode_streams(source, tmp, video_id, info, sample_fps, frame_size, lowres_size, log, limit,
                               version)
    except _LimitExceeded as exc:
        raise MediaError(
            f"{source.name} runs past the limit of {limit:.0f}s (TIKTOK_ASSETS_MAX_DURATION_S): decoding "
            f"stopped at {exc.seconds:.1f}s"
        ) from None


def _decode_streams(
    source, tmp, video_id, info, sample_fps, frame_size, lowres_size, log, limit, version
) -> MediaMeta:
    import av

    fw, fh = frame_size
    lw, lh = lowres_size
    frame_times: list[float] = []
    lowres_times: list[float] = []
    next_sample = 0.0
    step = 1.0 / sample_fps
    last_logged = 0.0
    last_t = -math.inf
    frame_end = 0.0
    damaged = {"video": 0, "audio": 0}
    packets = {"video": 0, "audio": 0}
    damaged_s = 0.0
    track: _AudioTrack | None = None
    orient = Orientation.from_rotation(info.rotation, info.mirrored)  # the probe's, so sizes agree
    with _open(source) as container, open(tmp / "frames.u8", "wb") as frames_out, open(
        tmp / "lowres.u8", "wb"
    ) as lowres_out:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        pictures = _Pictures(_FrameWriter(lowres_out, (lw, lh), orient, batch=64),
                             _FrameWriter(frames_out, (fw, fh), orient, batch=8))
        streams = [vs]
        resampler = None
        resampler_key = None
        start = float(vs.start_time * vs.time_base) if vs.start_time is not None else None
        if container.streams.audio:
            streams.append(container.streams.audio[0])
        default_step = 1.0 / info.fps if info.fps else 1 / 30

        def place_audio(outs) -> None:
            for out in outs:
                pcm = out.to_ndarray().reshape(-1)
                pts = int(out.pts) if out.pts is not None else None
                track.add(pcm, pts)

        try:
            demuxed = container.demux(*streams)
            while True:
                try:
                    packet = next(demuxed)
                except StopIteration:
                    break
                except av.error.FFmpegError as exc:  # the container itself is damaged from here on
                    if log is not None:
                        log(f"stopped reading at a damaged spot ({exc.strerror or exc})")
                    break
                kind = packet.stream.type
                if kind not in packets:
                    continue
                if packet.size:
                    packets[kind] += 1
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    damaged[kind] += 1  # skip a damaged packet of any kind, keep the rest
                    if packet.duration and packet.time_base:
                        damaged_s += float(packet.duration * packet.time_base)
                    continue
                for frame in decoded:
                    if kind == "video":
                        if start is None:
                            start = float(frame.time or 0.0)
                        t = float(frame.time) - start if frame.time is not None else last_t + default_step
                        t = max(0.0, t)
                        if t <= last_t:
                            continue  # a repeated or backwards timestamp (damaged stream)
                        if limit is not None and t > limit + LIMIT_TOLERANCE_S:
                            raise _LimitExceeded(t)
                        last_t = t
                        dur = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
                        frame_end = t + (dur or default_step)
                        sampled = t + 1e-6 >= next_sample
                        pictures.add(frame, sampled)
                        lowres_times.append(t)
                        if sampled:
                            frame_times.append(t)
                            next_sample = (math.floor(t / step + 1e-6) + 1) * step
                        if log is not None and t - last_logged >= 10:
                            last_logged = t
                            log(f"decoded {t:.0f}s of {info.duration_s:.0f}s")
                    else:
                        if track is None:
                            if start is None:
                                start = 0.0 if vs.start_time is None else float(vs.start_time * vs.time_base)
                            track = _AudioTrack(tmp / "audio.pcm", start, limit)
                        key = (frame.format.name, frame.layout.name, frame.sample_rate)
                        if key != resampler_key:  # a new stream layout (or a damaged frame's): restart
                            if resampler is not None:
                                place_audio(resampler.resample(None))
                            resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
                            resampler_key = key
                        place_audio(resampler.resample(frame))
            if resampler is not None:
                place_audio(resampler.resample(None))
            pictures.finish()
        except BaseException:
            pictures.stop()
            if track is not None:
                track.close()
            raise
    if not frame_times:
        if track is not None:
            track.close()
        raise MediaError(f"{source.name} contains no decodable video frames (corrupt or truncated)")
    np.save(tmp / "frame_times.npy", np.asarray(frame_times, dtype=np.float64))
    np.save(tmp / "lowres_times.npy", np.asarray(lowres_times, dtype=np.float64))
    decoded_duration = frame_end
    # the video's end: its last frame's end, or the stream's stated length when that is a bit longer
    # (the last frame of a still picture); audio past it is cut
    duration = decoded_duration
    if info.duration_s and decoded_duration < info.duration_s <= decoded_duration + 1.0:
        duration = info.duration_s
    audio_samples = 0
    audio_offset = None
    if track is not None:
        if track.decoded > 0:
            audio_offset = round(track.first / AUDIO_RATE, 4)
            audio_samples = track.finish(tmp / "audio.wav", round(duration * AUDIO_RATE))
        else:
            track.close()
    if info.duration_s and decoded_duration < 0.5 * info.duration_s:
        raise MediaError(
            f"{source.name} is truncated: only {decoded_duration:.1f}s of {info.duration_s:.1f}s decode"
        )
    if packets["video"] and damaged["video"] > 0.5 * packets["video"]:
        raise MediaError(
            f"{source.name} is too damaged: {damaged['video']} of {packets['video']} video packets do not decode"
        )
    if sum(damaged.values()) and log is not None:
        log(f"skipped {damaged['video']} damaged video and {damaged['audio']} damaged audio packets")
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
        rotation=orient.rotation,
        mirrored=orient.mirrored,
        damaged_packets=sum(damaged.values()),
        damaged_s=round(damaged_s, 3),
        audio_offset_s=audio_offset,
        version=version,
    )


def _read_meta(directory: Path) -> MediaMeta:
    raw = json.loads((directory / "meta.json").read_text())
    known = {f.name for f in fields(MediaMeta)}
    raw = {k: v for k, v in raw.items() if k in known}
    raw["frame_shape"] = tuple(raw["frame_shape"])
    raw["lowres_shape"] = tuple(raw["lowres_shape"])
    return MediaMeta(**raw)


class MediaCache:
    """Read access to one video's decoded media; arrays are memory-mapped, not loaded.

    ``MediaCache(media_dir / video_id)`` pins the version current at that moment: it holds a shared
    lock on it until :meth:`close` (or garbage collection), so a re-decode meanwhile neither changes
    nor deletes what this reader sees. ``directory`` is that version's folder.
    """

    def __init__(self, directory: Path):
        try:
            self.directory, self._lock = media_store.open_version(Path(directory))
        except FileNotFoundError:
            raise MediaError(f"no media cache at {directory}; materialize `media` first") from None
        self.meta = _read_meta(self.directory)

    def close(self) -> None:
        """Release the version for deletion (memory maps already opened stay valid)."""
        media_store.release(self.__dict__.pop("_lock", None))

    def __enter__(self) -> MediaCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown the fd closes with the process
            self.close()

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
        """16 kHz mono float32 in [-1, 1] on the video clock, as long as the video; empty when the
        video has no audio."""
        if self.audio_path is None:
            return np.zeros(0, dtype=np.float32)
        with wave.open(str(self.audio_path), "rb") as wav:
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        pcm = pcm[: int(round(self.duration_s * AUDIO_RATE))]
        return pcm.astype(np.float32) / 32768.0

    sample_rate = AUDIO_RATE
