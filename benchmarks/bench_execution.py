"""Execution-layer benchmark: Dagster job runs against the CLI, backfills against single runs.

Run: ``python benchmarks/bench_execution.py [--videos 10] [--cli-videos 4]``. Prints, measured in
one run on this machine (each part in a fresh data root and a fresh process; the one-video runs of
(b) that get a process each share one data root):

(a) a one-video job run of the sample (11 s, 360x640) through a real Dagster run with the executor
    the UI uses (``execute_job(reconstructable(analyze_job))``: multiprocess, one process per group
    step), followed by its score run as the sensor would ask, against ``tiktok-assets analyze`` of
    the same video: wall time of each process, and the ratio (target <= 1.5);
(b) a backfill of N small generated videos (3 s, 96x160, speech) as one multi-video run (the
    ``BackfillPolicy`` range a UI backfill gets) against N one-video runs: ratio (target >= 3),
    measured two ways: each run in a process of its own, as Dagster's run launcher starts one per
    run (its imports and code location load included: what a backfill saves in a deployment), and
    all runs one after another in one process, whose step-process server stays warm (the runs
    alone: a lower bound of the saving);
(c) ``analyze`` of several videos in one process: the time per video from the second video on
    against the first video's analysis (its model loads included, the process start-up and
    imports not): ratio (target <= 1.2).
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

COLOURS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple", "cyan", "magenta",
           "gray", "brown", "pink", "navy", "olive", "teal"]


def make_small_videos(folder: Path, count: int) -> list[Path]:
    """``count`` different 3 s 96x160 videos: two colours with a cut at 1.5 s, espeak speech."""
    folder.mkdir(parents=True, exist_ok=True)
    speech = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(speech), "hello world, this is a test"], check=True)
    paths = []
    for i in range(count):
        a, b = COLOURS[i % len(COLOURS)], COLOURS[(i * 3 + 1) % len(COLOURS)]
        path = folder / f"v{i:02d}.mp4"
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"color=c={a}:s=96x160:r=25:d=1.5",
             "-f", "lavfi", "-i", f"color=c={b}:s=96x160:r=25:d={1.5 + i * 0.04:.2f}", "-i", str(speech),
             "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v];[2:a]apad[a]", "-map", "[v]", "-map", "[a]",
             "-t", f"{3 + i * 0.04:.2f}", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
            check=True,
        )
        paths.append(path)
    return paths


def analyze_job_spawn():
    """The job with the multiprocess executor's default start method (spawn: every step process
    imports everything anew), for comparison with the forkserver the project configures."""
    import dagster as dg

    from tiktok_assets.definitions import STEP_DEPENDENCIES, analyze_job, load_gpu_groups

    return analyze_job().with_executor_def(dg.multiprocess_executor.configured({
        "tag_concurrency_limits": load_gpu_groups().executor_tag_limits(), "step_dependency_config": STEP_DEPENDENCIES,
    }))


def _job_run(paths: list[str], score: bool, in_process: bool = False, spawn: bool = False) -> dict:
    """One analyze_video run over ``paths`` (one video or a range) with the UI's executor (or, with
    ``in_process``, every step in this process; with ``spawn``, the default start method)."""
    import dagster as dg

    from tiktok_assets.automation import score_request
    from tiktok_assets.cli import add_sources, ensure_instance, partition_tags
    from tiktok_assets.config import load_settings
    from tiktok_assets.definitions import analyze_job, analyze_job_in_process, score_job_in_process

    settings = load_settings()
    instance = ensure_instance(settings)
    keys = add_sources(settings, paths, instance)
    began = time.perf_counter()
    job = analyze_job_in_process if in_process else analyze_job
    if spawn:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_execution import analyze_job_spawn as job
    with dg.execute_job(dg.reconstructable(job), instance, tags=partition_tags(keys),
                        raise_on_error=False) as result:
        ok, run_id = result.success, result.run_id
    if score:
        request = score_request(instance, settings, instance.get_run_by_id(run_id))
        if request is not None:
            with dg.execute_job(dg.reconstructable(score_job_in_process), instance, raise_on_error=False,
                                tags={**request.tags, **partition_tags(keys)}) as scored:
                ok = ok and scored.success
    return {"seconds": time.perf_counter() - began, "ok": ok}


def part(name: str, args: list[str], home: Path | None = None) -> dict:
    """Run one part in a fresh process and data root (or ``home``); its JSON result plus the process
    wall time."""
    home = home or Path(tempfile.mkdtemp(prefix=f"tiktok-bench-exec-{name}-"))
    env = {**os.environ, "TIKTOK_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--part", name, *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"part {name} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = wall
    return result


def run_part(name: str, paths: list[str]) -> dict:
    if name == "job":  # (a) UI-like job run of one video, then its score run
        return _job_run(paths, score=True)
    if name == "job_in_process":  # (a) the same with the in-process executor
        return _job_run(paths, score=True, in_process=True)
    if name == "job_spawn":  # (a) the same with spawned step processes
        return _job_run(paths, score=True, spawn=True)
    if name == "cli":  # (a) the CLI, in this (fresh) process
        from tiktok_assets.cli import main

        began = time.perf_counter()
        code = main(["analyze", *paths])
        return {"seconds": time.perf_counter() - began, "ok": code == 0}
    if name == "range":  # (b) one run over all videos
        return _job_run(paths, score=False)
    if name == "singles":  # (b) one run per video
        runs = [_job_run([p], score=False) for p in paths]
        return {"seconds": sum(r["seconds"] for r in runs), "ok": all(r["ok"] for r in runs)}
    if name == "many":  # (c) first video alone, then the rest in one call, same process
        import tiktok_assets.definitions  # noqa: F401 - imports and code location: start-up, not analysis
        from tiktok_assets.cli import analyze_many
        from tiktok_assets.config import load_settings

        settings = load_settings()
        began = time.perf_counter()
        _, ok_first = analyze_many(settings, paths[:1])
        first = time.perf_counter() - began
        began = time.perf_counter()
        _, ok_rest = analyze_many(settings, paths[1:])
        rest = time.perf_counter() - began
        return {"first_s": first, "rest_s": rest, "ok": ok_first and ok_rest}
    raise SystemExit(f"unknown part {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--cli-videos", type=int, default=4)
    parser.add_argument("--parts", default="abc", help="which of (a), (b), (c) to run, e.g. 'a'")
    parser.add_argument("--part")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.part:
        import contextlib

        with contextlib.redirect_stdout(sys.stderr):  # only the JSON line on stdout
            result = run_part(args.part, args.paths)
        print(json.dumps(result))
        return

    from tiktok_assets.sample_video import generate_sample_video

    work = Path(tempfile.mkdtemp(prefix="tiktok-bench-exec-"))
    sample = work / "sample.mp4"
    generate_sample_video(sample)
    small = [str(p) for p in make_small_videos(work / "small", max(args.videos, args.cli_videos))]
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start")

    if "a" in args.parts:
        report_a(sample)
    if "b" in args.parts:
        report_b(small[:args.videos])
    if "c" in args.parts:
        report_c(small[:args.cli_videos])
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


def report_a(sample: Path) -> None:
    job, cli = part("job", [str(sample)]), part("cli", [str(sample)])
    inproc = part("job_in_process", [str(sample)])
    spawn = part("job_spawn", [str(sample)])
    print("\n(a) one video (the 11 s sample), wall time of a fresh process each")
    print(f"  job run (multiprocess, forkserver, as in the UI) + score run: {job['process_s']:6.1f}s  ok={job['ok']}")
    print(f"  job run (multiprocess, spawned steps) + score:   {spawn['process_s']:6.1f}s  ok={spawn['ok']}")
    print(f"  job run (in-process executor) + score run:       {inproc['process_s']:6.1f}s  ok={inproc['ok']}")
    print(f"  tiktok-assets analyze:                           {cli['process_s']:6.1f}s  ok={cli['ok']}")
    print(f"  ratio job / CLI: {job['process_s'] / cli['process_s']:.2f}  (target <= 1.5); "
          f"in-process job / CLI: {inproc['process_s'] / cli['process_s']:.2f}")



def report_b(videos: list[str]) -> None:
    ranged, singles = part("range", videos), part("singles", videos)
    shared = Path(tempfile.mkdtemp(prefix="tiktok-bench-exec-own-"))  # one instance, as in a deployment
    own = [part("range", [video], shared) for video in videos]  # a process per run
    own_s, own_ok = sum(r["process_s"] for r in own), all(r["ok"] for r in own)
    print(f"\n(b) backfill of {len(videos)} small videos through Dagster")
    print("  each run in a process of its own (as the run launcher starts runs; imports and code location load")
    print("  included):")
    print(f"    one multi-video run:  {ranged['process_s']:6.1f}s  ok={ranged['ok']}")
    print(f"    {len(videos)} one-video runs:    {own_s:6.1f}s  ok={own_ok}")
    print(f"    speed-up: {own_s / ranged['process_s']:.2f}x  (target >= 3)")
    print("  the runs alone (one after another in one process, its step-process server warm; a lower bound):")
    print(f"    one multi-video run:  {ranged['seconds']:6.1f}s")
    print(f"    {len(videos)} one-video runs:    {singles['seconds']:6.1f}s  ok={singles['ok']}")
    print(f"    speed-up: {singles['seconds'] / ranged['seconds']:.2f}x")



def report_c(videos: list[str]) -> None:
    many = part("many", videos)
    per_video = many["rest_s"] / (len(videos) - 1)
    print(f"\n(c) analyze {len(videos)} small videos in one process")
    print(f"  first video (models loaded): {many['first_s']:6.1f}s")
    print(f"  per video from the second:   {per_video:6.1f}s  ({len(videos) - 1} videos in "
          f"{many['rest_s']:.1f}s)  ok={many['ok']}")
    print(f"  ratio: {per_video / many['first_s']:.2f}  (target <= 1.2)")


if __name__ == "__main__":
    main()
