"""Build a media cache straight from arrays (no decoder): for sizes the decoder never produces."""

from __future__ import annotations

import json
import wave
from dataclasses import asdict
from pathlib import Path

import numpy as np

from tiktok_assets.media import AUDIO_RATE, MediaCache, MediaMeta


def media_from_arrays(out_dir: Path, frames: np.ndarray, fps: float, audio: np.ndarray | None = None,
                      video_id: str = "arrays", sample_fps: float = 2.0) -> MediaCache:
    """A media cache whose lowres stream is ``frames`` (N, H, W, 3) at ``fps`` and whose sampled frames
    are those of them at ``sample_fps``; ``audio`` is 16 kHz mono float in [-1, 1] or None."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n = len(frames)
    times = np.arange(n) / fps
    picked, next_t = [], 0.0
    for i, t in enumerate(times):
        if t + 1e-6 >= next_t:
            picked.append(i)
            next_t = (np.floor(t * sample_fps + 1e-6) + 1) / sample_fps
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "lowres.u8").write_bytes(frames.tobytes())
    (out_dir / "frames.u8").write_bytes(frames[picked].tobytes())
    np.save(out_dir / "lowres_times.npy", times)
    np.save(out_dir / "frame_times.npy", times[picked])
    samples = 0
    if audio is not None and len(audio):
        pcm = (np.clip(np.asarray(audio, np.float32), -1, 1) * 32767).astype("<i2")
        with wave.open(str(out_dir / "audio.wav"), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(AUDIO_RATE)
            wav.writeframes(pcm.tobytes())
        samples = int(pcm.size)
    duration = max(n / fps, samples / AUDIO_RATE)
    h, w = frames.shape[1:3]
    meta = MediaMeta(video_id=video_id, duration_s=round(duration, 3), fps=float(fps), width=w, height=h,
                     has_audio=samples > 0, sample_fps=sample_fps, frame_shape=(len(picked), h, w, 3),
                     lowres_shape=(n, h, w, 3), audio_samples=samples, decoded_frames=n)
    (out_dir / "meta.json").write_text(json.dumps(asdict(meta)))
    return MediaCache(out_dir)
