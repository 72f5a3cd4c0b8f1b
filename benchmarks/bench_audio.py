"""Time the audio analyzers on a generated 60 s clip at 360x640.

Run: ``python benchmarks/bench_audio.py [seconds] [--sample]``.

By default the clip's soundtrack is dense: English and German espeak-ng sentences with short
pauses over most of the clip, a music bed (plucked chords) under part of the speech, a music-only
stretch and a few clicks and noise bursts, so every analyzer has work for the whole duration.
``--sample`` uses the project's sample recipe stretched by ``common.prepare_clip`` instead (its
speech lasts ~11 s, the rest is silent).

Each analyzer runs once to load its model (and compile numba for librosa), then once timed;
``speech_transcription`` runs first so the analyzers that read its table get it. YAMNet scores are
normally memoised per process (``audio_environment`` and ``sound_effects`` share them); the
memo is bypassed here so each timed run includes its own YAMNet inference, as it would in a
separate Dagster step process.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import prepare_clip, report, time_analyzers

from tiktok_assets.analyzers import _yamnet
from tiktok_assets.config import load_settings
from tiktok_assets.media import MediaCache, build_media_cache
from tiktok_assets.sample_video import speak, write_wav

RATE = 16_000
ANALYZERS = [
    "speech_transcription",
    "audio_analysis",
    "speech_rate",
    "speech_flow",
    "speech_emotion",
    "audio_environment",
    "sound_effects",
]
SENTENCES = (
    ("Hello everyone, welcome back to my kitchen.", "en-us"),
    ("Today we are making a quick tomato pasta for two people.", "en-us"),
    ("Um, first you boil the water and add some salt.", "en-us"),
    ("Guten Abend, heute kochen wir zusammen eine schnelle Pasta.", "de"),
    ("Äh, zuerst schneiden wir die Zwiebeln und den Knoblauch.", "de"),
    ("Then we fry everything in olive oil for about five minutes.", "en-us"),
    ("Danach kommen die Tomaten dazu, und alles köchelt zehn Minuten.", "de"),
    ("Don't forget to follow for more recipes like this one!", "en-us"),
)


def chords(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for k in range(int(np.ceil(seconds / 0.5))):
        sel = (t >= 0.5 * k) & (t < 0.5 * (k + 1))
        local = t[sel] - 0.5 * k
        root = (220.0, 293.66, 329.63, 220.0)[k % 4]
        for ratio in (1.0, 1.25, 1.5):
            for h in range(1, 5):
                out[sel] += np.exp(-3 * local) * np.sin(2 * np.pi * root * ratio * h * local) / h
    return (0.05 * out).astype(np.float32)


def dense_soundtrack(duration_s: float, script: list[str] | None = None) -> np.ndarray:
    """Speech with pauses for ~2/3 of the clip (music under part of it), music alone, effects;
    the sentences spoken, in order, are appended to ``script`` when given."""
    audio = np.zeros(int(duration_s * RATE), np.float32)
    t, i = 0.4, 0
    speech_until = duration_s * 0.7
    while t < speech_until:
        text, voice = SENTENCES[i % len(SENTENCES)]
        clip = speak(text, voice)[: int((duration_s - t) * RATE)]
        start = int(t * RATE)
        audio[start : start + clip.size] += 0.8 * clip
        if script is not None:
            script.append(text)
        t += clip.size / RATE + (0.4 if i % 3 else 1.1)
        i += 1
    bed = chords(duration_s)
    music_from = int(duration_s * 0.35 * RATE)
    audio[music_from:] += 0.5 * bed[music_from:]
    audio[int(speech_until * RATE) :] += bed[int(speech_until * RATE) :]
    rng = np.random.default_rng(0)
    for at in np.arange(5.0, duration_s - 1.0, 9.0):
        n = int(0.25 * RATE)
        j = int(at * RATE)
        audio[j : j + n] += (0.25 * rng.standard_normal(n)).astype(np.float32)
    return np.clip(audio, -1, 1)


def dense_clip(duration_s: float, width: int, height: int) -> tuple[MediaCache, float]:
    workdir = Path(tempfile.mkdtemp(prefix="tiktok-bench-audio-"))
    wav, video = workdir / "audio.wav", workdir / f"bench_audio_{int(duration_s)}s.mp4"
    write_wav(wav, dense_soundtrack(duration_s))
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=size={width}x{height}:rate=30:duration={duration_s}", "-i", str(wav),
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
         "-shortest", str(video)],
        check=True,
    )
    settings = load_settings()
    began = time.perf_counter()
    build_media_cache(video, workdir / "media", "bench", settings.sample_fps, settings.frame_long_side,
                      settings.lowres_short_side)
    return MediaCache(workdir / "media"), time.perf_counter() - began


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    duration = float(args[0]) if args else 60.0
    if "--sample" in sys.argv:
        media, decode_s = prepare_clip(duration, 360, 640)
        title = "audio analyzers (sample recipe)"
    else:
        media, decode_s = dense_clip(duration, 360, 640)
        title = "audio analyzers (dense speech/music soundtrack)"
    _yamnet._cached_scores = lambda key, m, context=None: _yamnet.frame_scores(m.audio, Path(key[4]), key[3], context)
    results = time_analyzers(ANALYZERS, media)
    report(title, media, decode_s, results)


if __name__ == "__main__":
    main()
