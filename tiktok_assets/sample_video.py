"""Generate the sample video (demo and tests) from ``resources/sample_video.json``.

The clip has hard cuts at known times, a text overlay and English then German speech spoken by
espeak-ng, so analyzers can be checked against ground truth. The truth actually produced (cut
times on frame boundaries, speech spans measured from the synthesized audio) is written to
``<video>.truth.json`` beside the video. Needs the ``ffmpeg`` and ``espeak-ng`` programs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .config import RESOURCES_DIR

RATE = 16_000


@dataclass
class SampleTruth:
    path: str
    duration_s: float
    width: int
    height: int
    fps: int
    cuts_s: list[float]
    texts: list[dict] = field(default_factory=list)
    speech: list[dict] = field(default_factory=list)


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"`{name}` is not installed; install the Debian package `{package}`")
    return path


def speak(text: str, voice: str, wpm: int = 150) -> np.ndarray:
    """Synthesize ``text`` with espeak-ng; 16 kHz mono float32."""
    espeak = require_tool("espeak-ng", "espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run([espeak, "-v", voice, "-s", str(wpm), "-w", str(raw), text], check=True)
        audio, rate = read_wav(raw)
    if rate != RATE:
        import soxr

        audio = soxr.resample(audio, rate, RATE).astype(np.float32)
    return audio


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        channels = wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32) / 32768
    return pcm.reshape(-1, channels).mean(axis=1), rate


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())


def voiced_span(audio: np.ndarray, threshold: float = 0.01) -> tuple[float, float]:
    """First and last sample above ``threshold``, in seconds."""
    idx = np.flatnonzero(np.abs(audio) > threshold)
    if idx.size == 0:
        return 0.0, 0.0
    return idx[0] / RATE, (idx[-1] + 1) / RATE


def _font(size: int) -> ImageFont.ImageFont:
    for candidate in ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",):
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)


def _shot_frame(kind: str, color, w: int, h: int, t: float, rng_seed: int) -> Image.Image:
    base = np.zeros((h, w, 3), dtype=np.float32)
    ys = np.linspace(0.6, 1.0, h)[:, None, None]
    base[:] = np.asarray(color, dtype=np.float32) * ys
    img = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    if kind == "circle":
        cx = w / 2 + w * 0.25 * np.sin(t * 2.0)
        cy = h * 0.55
        r = w * 0.15
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(240, 240, 240))
    elif kind == "texture":
        rng = np.random.default_rng(rng_seed)
        for _ in range(40):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            s = rng.uniform(8, 40)
            shade = tuple(int(c) for c in rng.integers(0, 255, 3))
            draw.rectangle([x, y, x + s, y + s], fill=shade)
    elif kind == "bars":
        offset = int(t * 40) % 60
        for x in range(-60 + offset, w, 60):
            draw.rectangle([x, 0, x + 25, h], fill=(250, 230, 120))
    return img


def generate_sample_video(
    out_path: Path,
    recipe_path: Path = RESOURCES_DIR / "sample_video.json",
    width: int | None = None,
    height: int | None = None,
    min_duration_s: float | None = None,
) -> SampleTruth:
    """Render the recipe to ``out_path`` (H.264 + AAC MP4) and write its ground truth JSON."""
    ffmpeg = require_tool("ffmpeg", "ffmpeg")
    recipe = json.loads(Path(recipe_path).read_text())
    w, h, fps = width or recipe["width"], height or recipe["height"], recipe["fps"]
    scale = w / recipe["width"]
    audio_parts, speech_truth = [], []
    for item in recipe["speech"]:
        clip = speak(item["text"], item["voice"], item.get("wpm", 150))
        lead, tail = voiced_span(clip)
        audio_parts.append((item["start_s"], clip))
        speech_truth.append(
            {
                "lang": item["lang"],
                "text": item["text"],
                "start_s": round(float(item["start_s"] + lead), 3),
                "end_s": round(float(item["start_s"] + tail), 3),
            }
        )
    speech_end = max(s["end_s"] for s in speech_truth) if speech_truth else 0.0
    duration = max(min_duration_s or recipe["min_duration_s"], speech_end + 0.6)
    n_frames = int(round(duration * fps))
    duration = n_frames / fps
    audio = np.zeros(int(duration * RATE), dtype=np.float32)
    for start, clip in audio_parts:
        i = int(start * RATE)
        clip = clip[: max(0, audio.size - i)]
        audio[i : i + clip.size] += clip * 0.9

    shots = recipe["shots"]
    cuts = _cut_times([s["length_s"] for s in shots], duration, fps)
    font = _font(int(44 * scale))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "audio.wav"
        write_wav(wav_path, audio)
        cmd = [
            ffmpeg, "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
            "-i", str(wav_path),
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(fps * 2),
            "-c:a", "aac", "-b:a", "96k", "-shortest", str(out_path),
        ]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        assert proc.stdin is not None
        for i in range(n_frames):
            t = i / fps
            shot_index = sum(1 for c in cuts if c <= t + 1e-9)
            shot = shots[shot_index % len(shots)]
            img = _shot_frame(shot["kind"], shot["color"], w, h, t, rng_seed=shot_index)
            for text in recipe["texts"]:
                if text["start_s"] <= t < text["end_s"]:
                    draw = ImageDraw.Draw(img)
                    box = draw.textbbox((0, 0), text["text"], font=font)
                    x = (w - (box[2] - box[0])) / 2
                    y = h * 0.2
                    draw.rectangle([x - 10, y - 8, x + box[2] - box[0] + 10, y + box[3] + 8], fill=(0, 0, 0))
                    draw.text((x, y), text["text"], font=font, fill=(255, 255, 255))
            proc.stdin.write(img.tobytes())
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed to encode {out_path}")
    truth = SampleTruth(
        path=str(out_path), duration_s=round(duration, 3), width=w, height=h, fps=fps,
        cuts_s=cuts, texts=recipe["texts"], speech=speech_truth,
    )
    out_path.with_suffix(".truth.json").write_text(json.dumps(asdict(truth), indent=2))
    return truth


def _cut_times(lengths: list[float], duration: float, fps: int) -> list[float]:
    """Cut times on frame boundaries; the shot pattern repeats until the clip ends.

    No cut is placed in the last half second, where it could not be seen as a cut.
    """
    cuts, t, i = [], 0.0, 0
    while True:
        t += lengths[i % len(lengths)]
        i += 1
        cut = round(round(t * fps) / fps, 4)
        if cut >= duration - 0.5:
            return cuts
        cuts.append(cut)
