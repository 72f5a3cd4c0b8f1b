"""Whole pipeline against the sum of its unavoidable parts, measured in one run of this script.

Run: ``python benchmarks/bench_pipeline.py [--seconds 49] [--width 1080 --height 1920]``.

The clip is representative, not mostly silent: the sample recipe's pictures (cuts, a dissolve,
text, motion) at the given size, and a dense soundtrack (English and German espeak-ng sentences over
~60 % of the clip, a music bed under part of the speech, music alone at the end, noise bursts).

1. **Pipeline**: ``tiktok-assets analyze <clip>`` in a fresh process and a fresh data root (every
   analyzer, model loading, the Dagster run with its steps side by side in threads, scoring,
   eviction): its wall time.
2. **Unavoidable parts**, each in the same order in a second fresh process, one after another:
   importing the libraries the work needs (PyAV, NumPy, faster-whisper, ONNX Runtime), a bare PyAV
   decode of every video and audio frame, loading whisper, one plain ``transcribe`` of the whole
   audio (one language detection, VAD filter, word timestamps) and one YAMNet pass over the audio.
3. **The other models' analyzers alone**: the analyzers that run a model the parts do not (OCR,
   MediaPipe, NudeNet, FER, age/gender, the speech emotion classifier), each run by itself in that
   second process on the pipeline's data root (their model load and their own pre- and
   post-processing included: an upper bound of their models' inference). The MediaPipe face and
   person passes are computed there by the first analyzer that reads each, also when the
   pipeline's media cache was kept with the passes it stored (they are deleted first).

It prints the ratio of the pipeline to the parts (a lower bound of the unavoidable work, so the
ratio is an upper bound) and to the parts plus the other models' analyzers (an upper bound of it,
so the ratio is a lower bound): the true ratio lies between the two (the issue's target: at most
1.3). Then the run's steps as a timeline (they overlap: the audio step runs beside the picture
steps) and each analyzer's seconds inside the pipeline (stretched where steps shared the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def make_clip(workdir: Path, seconds: float, width: int, height: int) -> tuple[Path, float]:
    """The sample's pictures at ``width``x``height`` with the dense soundtrack; (path, speech share)."""
    from bench_audio import dense_soundtrack

    from tiktok_assets.sample_video import generate_sample_video, write_wav
    from tiktok_assets.vad import speech_spans

    pictures, wav, clip = workdir / "pictures.mp4", workdir / "soundtrack.wav", workdir / "clip.mp4"
    generate_sample_video(pictures, width=width, height=height, min_duration_s=seconds)
    audio = dense_soundtrack(seconds)
    write_wav(wav, audio)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(pictures), "-i", str(wav), "-map", "0:v", "-map", "1:a",
         "-t", str(seconds), "-c:v", "copy", "-c:a", "aac", "-b:a", "128k", str(clip)],
        check=True,
    )
    speech = sum(b - a for a, b in speech_spans(audio)) / seconds
    return clip, speech


def unavoidable_parts(clip: Path) -> dict[str, float]:
    """Runs in a fresh process: the parts no implementation of this pipeline can skip."""
    parts: dict[str, float] = {}
    began = time.perf_counter()
    import av
    import numpy as np
    import onnxruntime  # noqa: F401 - YAMNet's runtime
    from faster_whisper import WhisperModel  # noqa: F401

    parts["imports"] = time.perf_counter() - began

    began = time.perf_counter()
    with av.open(str(clip)) as container:
        streams = [container.streams.video[0], container.streams.audio[0]]
        streams[0].thread_type = "AUTO"
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=16_000)
        chunks = []
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if packet.stream.type == "audio":
                    chunks += [f.to_ndarray()[0] for f in resampler.resample(frame)]
    audio = np.concatenate(chunks).astype(np.float32)
    parts["decode (bare PyAV, every frame + audio)"] = time.perf_counter() - began

    from tiktok_assets.config import load_settings
    from tiktok_assets.model_registry import process_loader

    loader = process_loader(load_settings())
    began = time.perf_counter()
    model = loader.load("faster-whisper", "cpu")
    parts["whisper load"] = time.perf_counter() - began

    began = time.perf_counter()
    segments, _info = model.transcribe(audio, beam_size=5, vad_filter=True, word_timestamps=True)
    words = sum(len(s.words or []) for s in segments)
    parts["whisper transcribe (one language detection)"] = time.perf_counter() - began
    parts["_words"] = words

    from types import SimpleNamespace

    from tiktok_assets.analyzers._yamnet import PATCH_HOP_S, frame_scores

    began = time.perf_counter()
    context = SimpleNamespace(models=loader, device="cpu", batch_size=16)
    scores, _resolved = frame_scores(audio, loader.settings.model_store, PATCH_HOP_S, context)
    parts["YAMNet load + one pass"] = time.perf_counter() - began
    parts["_yamnet_patches"] = len(scores.starts)
    return parts


MODEL_PASSES = ("faces", "person")  # shared passes that run a model the parts do not (MediaPipe)


def other_models_alone(home: Path, key: str, names: list[str]) -> dict[str, float]:
    """Each analyzer in ``names`` run by itself on the pipeline's data root (inputs as the pipeline
    left them; the media cache is decoded again first if it was evicted, not counted; the stored
    :data:`MODEL_PASSES` are deleted first, so that their inference is counted once): its seconds."""
    os.environ["TIKTOK_ASSETS_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    from tiktok_assets.analyzers import all_specs
    from tiktok_assets.config import load_settings
    from tiktok_assets.retention import ensure_media_cache
    from tiktok_assets.steps import run_analyzer_step

    settings = load_settings()
    with ensure_media_cache(settings, key) as media:
        # the MediaPipe passes the pipeline stored are model inference too: computed again here, once,
        # by the first analyzer that reads each (the other passes run no model the parts leave out)
        for name in MODEL_PASSES:
            for stored in (Path(media.directory) / "passes").glob(f"{name}-*.npz"):
                stored.unlink()
    seconds = {}
    for name in names:
        result = run_analyzer_step(settings, all_specs()[name], key, "cpu", 16, refresh=False)
        seconds[name] = result.run.seconds
    return seconds


def pipeline(clip: Path, home: Path) -> tuple[float, str]:
    env = {**os.environ, "TIKTOK_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tiktok_assets.cli", "analyze", str(clip)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"analyze failed ({done.returncode})")
    key = next(line.split()[1].rstrip(":") for line in done.stdout.splitlines() if line.startswith("video "))
    return seconds, key


def run_records(home: Path, key: str) -> tuple[dict[str, tuple[float, float]], dict[str, float], float]:
    """(Dagster step -> (start, end) epoch seconds, analyzer -> seconds, clip duration) from the data root."""
    os.environ["TIKTOK_ASSETS_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    import dagster as dg

    from tiktok_assets.catalog import warehouse
    from tiktok_assets.config import load_settings

    settings = load_settings()
    store = warehouse(settings)
    video = store.read("videos", key).to_pylist()[0]
    # analyzers that did not succeed (e.g. model_unavailable) ran no model: left out
    analyzers = {r["analyzer"]: float(r["seconds"]) for r in store.read("analyzer_runs", key).to_pylist()
                 if r["status"] == "success"}
    steps: dict[str, float] = {}
    with dg.DagsterInstance.get() as instance:
        for run in instance.get_runs():
            for stat in instance.get_run_step_stats(run.run_id):
                if stat.end_time and stat.start_time:
                    steps[f"{run.job_name}/{stat.step_key}"] = (stat.start_time, stat.end_time)
    return steps, analyzers, float(video["duration_s"])


def covered(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of ``intervals``."""
    total, end = 0.0, -float("inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=49.0)
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=1920)
    parser.add_argument("--parts-of", help=argparse.SUPPRESS)  # internal: measure the parts of this clip
    parser.add_argument("--alone", help=argparse.SUPPRESS)  # internal: home,key,analyzer,... to run alone
    args = parser.parse_args()
    if args.parts_of:
        parts = unavoidable_parts(Path(args.parts_of))
        if args.alone:
            home, key, *names = args.alone.split(",")
            parts["_alone"] = other_models_alone(Path(home), key, names)
        print(json.dumps(parts))
        return
    workdir = Path(tempfile.mkdtemp(prefix="tiktok-bench-pipeline-"))
    clip, speech = make_clip(workdir, args.seconds, args.width, args.height)
    print(f"clip: {args.seconds:.0f}s at {args.width}x{args.height}, speech over {speech:.0%} of it, "
          f"{os.cpu_count()} CPU cores", flush=True)

    total, key = pipeline(clip, workdir / "home")
    steps, analyzers, duration = run_records(workdir / "home", key)
    others = other_model_analyzers(analyzers)
    done = subprocess.run([sys.executable, __file__, "--parts-of", str(clip),
                           "--alone", ",".join([str(workdir / "home"), key, *others])],
                          cwd=ROOT, check=True, capture_output=True, text=True)
    parts = json.loads(done.stdout.strip().splitlines()[-1])
    alone = parts.pop("_alone")

    unavoidable = sum(v for k, v in parts.items() if not k.startswith("_"))
    print(f"\n{'unavoidable part (one after another)':<48}{'seconds':>9}")
    for name, seconds in parts.items():
        if not name.startswith("_"):
            print(f"{name:<48}{seconds:>9.2f}")
    print(f"{'sum':<48}{unavoidable:>9.2f}   ({parts['_words']} words, {parts['_yamnet_patches']} YAMNet patches)")
    print(f"\n{'other models: analyzer alone (upper bound)':<48}{'seconds':>9}{'in the run':>12}")
    for name, seconds in sorted(alone.items(), key=lambda kv: -kv[1]):
        print(f"{name:<48}{seconds:>9.2f}{analyzers.get(name, 0.0):>12.2f}")
    print(f"{'sum':<48}{sum(alone.values()):>9.2f}")

    began = min(a for a, _b in steps.values())
    print(f"\n{'pipeline step (Dagster), from the first start':<48}{'start':>9}{'end':>9}{'seconds':>9}")
    for name, (a, b) in sorted(steps.items(), key=lambda kv: kv[1][0]):
        print(f"{name:<48}{a - began:>9.2f}{b - began:>9.2f}{b - a:>9.2f}")
    print(f"\n{'analyzer inside the run (analyzer_runs)':<48}{'seconds':>9}")
    for name, seconds in sorted(analyzers.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.1:
            print(f"{name:<48}{seconds:>9.2f}")
    in_steps = covered(list(steps.values()))
    print(f"(analyzers under 0.1 s left out) analyzers together {sum(analyzers.values()):.1f}s; steps "
          f"together {sum(b - a for a, b in steps.values()):.1f}s, covering {in_steps:.1f}s of wall time; outside "
          f"any step (process start, imports, run set-up, between the runs) {total - in_steps:.1f}s")
    print(f"\npipeline end to end: {total:.1f}s = {total / duration:.3f}x realtime for {duration:.1f}s of video")
    print(f"unavoidable parts:   {unavoidable:.1f}s = {unavoidable / duration:.3f}x realtime")
    print(f"ratio pipeline / unavoidable parts: {total / unavoidable:.2f} (target <= 1.3; an upper bound)")
    upper = unavoidable + sum(alone.values())
    print(f"with the other models' analyzers run alone counted as unavoidable ({upper:.1f}s = "
          f"{upper / duration:.3f}x realtime): {total / upper:.2f} (a lower bound; the true ratio lies between)")


def other_model_analyzers(analyzers: dict[str, float]) -> list[str]:
    """The analyzers of this run that ran a model the parts process does not run."""
    from tiktok_assets.analyzers import all_specs

    in_parts = {"speech_transcription", "audio_environment", "sound_effects"}  # whisper, YAMNet
    specs = all_specs()
    return [name for name in analyzers if name in specs and specs[name].model and name not in in_parts]


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
