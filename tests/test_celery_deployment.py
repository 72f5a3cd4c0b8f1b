"""The Celery deployment: redis, a Postgres cluster and two workers (audio; vision with the pipeline
group cpu) started by ``celery_services`` (what ``resources/celery.sh`` runs), three runs of
``analyze_video`` submitted at the same time through the Celery executor.

The videos are generated here (3 s, 96x160, two flat colours, a different espeak-ng sentence each), plus
a truncated file that fails at ingest. Run 1 covers the first video and the broken one (a range), runs
2 and 3 one video each; each run asks for ingest and the audio and vision groups' assets. Asserted:
pools hold across runs (a limit-1 group's step is not even sent to Celery while another run's step
of that group is in flight, read from the Postgres event log; six claims of a limit-1 pool's slot
at the same moment take it once), each worker loaded each model once for
all runs (its log and the steps' load counts), the step after a partly failed ingest still analyzes
the good video of its run, and the warehouse holds the same rows as the same selection run in process
into a second data root. The figures (step times per group, loads per worker) are printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._utils.concurrency import ConcurrencySlotStatus

from tiktok_assets.config import load_settings
from tiktok_assets.executors import celery_services
from tiktok_assets.gpu_groups import GROUP_TAG

VIDEOS = {  # name: (first colour, second colour, sentence, words whisper must hear)
    "red": ("red", "blue", "hello world, this is a test", ("hello", "world")),
    "green": ("green", "yellow", "good morning, the weather is fine", ("good", "morning")),
    # whisper writes the numbers as digits or as words, depending on how the speech is cut
    "white": ("white", "black", "one two three four five", ("3|three", "4|four")),
}
RUN_BLOCKS = [["red", "broken"], ["green"], ["white"]]  # three runs; the first a range of two videos
WORKERS = ["audio", "vision,cpu:1"]  # one child per worker on a 2-core CI machine: one model load each
STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
               dg.DagsterEventType.ENGINE_EVENT}

# Registers the videos (in this order, so a range covers two neighbours) and runs one `analyze_video`
# per block at the same time, each in its own process forked after the imports (Dagster's logging
# set-up is not thread-safe); prints the video keys and the runs.
SUBMIT = r"""
import json, multiprocessing, sys
import dagster as dg
from tiktok_assets.cli import add_sources, partition_tags
from tiktok_assets.config import load_settings
from tiktok_assets.definitions import analyze_job
from tiktok_assets.instance import deployment_instance

args = json.loads(sys.argv[1])
settings = load_settings()
instance = deployment_instance(settings)
keys = dict(zip(args["names"], add_sources(settings, args["files"], instance)))
selection = [dg.AssetKey(name) for name in args["selection"]]

def run(block, queue):
    with dg.DagsterInstance.from_ref(instance.get_ref()) as own:
        tags = partition_tags([keys[name] for name in block])
        with dg.execute_job(dg.reconstructable(analyze_job), own, tags=tags, asset_selection=selection,
                            raise_on_error=False) as result:
            queue.put((block, result.run_id, result.success))

context = multiprocessing.get_context("fork")
queue = context.Queue()
processes = [context.Process(target=run, args=(block, queue)) for block in args["blocks"]]
for process in processes:
    process.start()
runs = [queue.get(timeout=600) for _ in processes]
for process in processes:
    process.join()
print("RESULT " + json.dumps({"keys": keys, "runs": runs}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_video(path: Path, first: str, second: str, sentence: str) -> Path:
    """3 s at 96x160: ``first`` colour, a cut at 1.5 s, ``second`` colour; ``sentence`` spoken from 0 s."""
    speech = path.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-w", str(speech), sentence], check=True)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"color=c={first}:s=96x160:r=25:d=1.5",
         "-f", "lavfi", "-i", f"color=c={second}:s=96x160:r=25:d=1.5", "-i", str(speech),
         "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v];[2:a]apad[a]",
         "-map", "[v]", "-map", "[a]", "-t", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
         str(path)],
        check=True,
    )
    speech.unlink()
    return path


def selection() -> list[str]:
    from tiktok_assets.definitions import load_gpu_groups

    groups = load_gpu_groups()
    return ["source_video", "media", *groups.groups["audio"].analyzers, *groups.groups["vision"].analyzers]


def _services(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tiktok_assets.executors.celery_services", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def deployment():
    """redis, Postgres and the two workers on free loopback ports, under a data root of their own
    (in /tmp, traversable by the postgres user); everything is stopped and removed afterwards."""
    try:
        celery_services.ensure_programs()
    except celery_services.ServiceError as exc:
        pytest.skip(f"the Celery deployment needs redis-server and postgresql: {exc}")
    root = Path(tempfile.mkdtemp(prefix="tiktok-celery-", dir="/tmp"))
    root.chmod(0o755)
    home = root / "home"
    broker, database = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIKTOK_ASSETS_") or k == "TIKTOK_ASSETS_MODELS"}
    env.update({
        "TIKTOK_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
        "TIKTOK_ASSETS_EXECUTOR": "celery", "TIKTOK_ASSETS_ALLOW_PRIVATE_URLS": "1",
        "TIKTOK_ASSETS_CELERY_BROKER": f"redis://127.0.0.1:{broker}/0",
        "TIKTOK_ASSETS_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{database}/tiktok_assets",
    })
    try:
        began = time.perf_counter()
        started = _services(env, "start", *WORKERS, "--wait", "180")
        print(started.stdout, file=sys.stderr)
        assert started.returncode == 0, started.stdout + started.stderr
        print(f"services and workers up in {time.perf_counter() - began:.1f}s")
        yield {"env": env, "home": home, "root": root, "postgres_port": database}
    finally:
        stopped = _services(env, "stop")
        print(stopped.stdout, stopped.stderr, file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("celery-videos")
    files = {name: make_video(folder / f"{name}.mp4", a, b, text) for name, (a, b, text, _) in VIDEOS.items()}
    files["broken"] = folder / "broken.mp4"
    files["broken"].write_bytes(files["red"].read_bytes()[:8000])  # no moov atom: not a readable video
    return files


@pytest.fixture(scope="module")
def celery_runs(deployment, sources):
    """The three runs, submitted at once; returns the video keys, the runs and their events."""
    names = ["red", "broken", "green", "white"]
    args = {"names": names, "files": [str(sources[n]) for n in names], "blocks": RUN_BLOCKS,
            "selection": selection()}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SUBMIT, json.dumps(args)], env=deployment["env"],
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - began
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    storage = _postgres_storage(deployment["env"]["TIKTOK_ASSETS_POSTGRES_URL"])
    events = {run_id: [r.event_log_entry for r in storage.event_log_storage.get_records_for_run(run_id).records]
              for _, run_id, _ in result["runs"]}
    records = storage.run_storage.get_run_records(dg.RunsFilter(run_ids=list(events)))
    runs = {record.dagster_run.run_id: record for record in records}
    print(f"3 runs (4 videos) through the Celery executor in {wall:.1f}s (submitter process included)")
    return {"keys": result["keys"], "runs": result["runs"], "events": events, "dagster_runs": runs,
            "storage": storage, "wall_s": wall}


def _postgres_storage(url: str):
    from tiktok_assets.instance import sqlalchemy_url
    from tiktok_assets.postgres_storage import PostgresStorage

    return PostgresStorage(sqlalchemy_url(url))


def _simultaneous_claims(event_log_class, url: str, pool: str, claimers: int = 6) -> int:
    """``claimers`` threads, each with a storage of its own, claim a slot of a new limit-1 pool at the
    same moment; returns how many got one."""
    from tiktok_assets.instance import sqlalchemy_url

    stores = [event_log_class(sqlalchemy_url(url)) for _ in range(claimers)]
    stores[0].set_concurrency_slots(pool, 1)
    barrier = threading.Barrier(claimers)
    claimed = [False] * claimers

    def claim(i: int) -> None:
        barrier.wait()
        status = stores[i]._claim_concurrency_slot(pool, f"run-{i}", "vision_analyzers")
        claimed[i] = status == ConcurrencySlotStatus.CLAIMED

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(claimed)


@pytest.mark.slow
def test_simultaneous_claims_of_a_limit_one_pool_take_one_slot(deployment):
    """The race behind two runs' limit-1 steps sent together (``slot_claims.py``), 10 times over."""
    from dagster_postgres.event_log import PostgresEventLogStorage

    from tiktok_assets.instance import deployment_instance
    from tiktok_assets.postgres_storage import AtomicClaimsPostgresEventLogStorage

    url = deployment["env"]["TIKTOK_ASSETS_POSTGRES_URL"]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in deployment["env"].items():
            patch.setenv(name, value)
        with deployment_instance(load_settings()) as instance:  # what every process of the deployment builds
            assert isinstance(instance.event_log_storage, AtomicClaimsPostgresEventLogStorage)
    ours = [_simultaneous_claims(AtomicClaimsPostgresEventLogStorage, url, f"race-ours-{i}") for i in range(10)]
    upstream = [_simultaneous_claims(PostgresEventLogStorage, url, f"race-upstream-{i}") for i in range(10)]
    print(f"slots taken by 6 simultaneous claims of a limit-1 pool, 10 trials: atomic claims {ours}, "
          f"dagster-postgres' own {upstream}")
    assert ours == [1] * 10


def _steps(events) -> dict[str, dict]:
    """step key -> sent (the executor handed it to Celery), start, end, status, pid, load counts."""
    steps: dict[str, dict] = defaultdict(dict)
    for entry in events:
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        step = steps[entry.step_key]
        kind = event.event_type
        if kind == dg.DagsterEventType.ENGINE_EVENT and entry.user_message.startswith("Submitting celery task"):
            step["sent"] = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_START:
            step["start"], step["pid"] = entry.timestamp, event.pid
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            step["end"], step["status"] = entry.timestamp, kind.value
    for entry in events:
        match = re.match(r"model loads in this process: (.*)", entry.user_message or "")
        if match and entry.step_key:
            steps[entry.step_key]["loads"] = dict(kv.split("=") for kv in match.group(1).split(", "))
    return steps


@pytest.mark.slow
def test_runs_succeed_per_video_and_a_partly_failed_ingest_hands_the_good_video_on(celery_runs):
    keys = celery_runs["keys"]
    by_block = {tuple(block): (run_id, ok) for block, run_id, ok in celery_runs["runs"]}
    assert by_block[("green",)][1] and by_block[("white",)][1]
    range_run, ok = by_block[("red", "broken")]
    assert not ok and celery_runs["dagster_runs"][range_run].dagster_run.status == dg.DagsterRunStatus.FAILURE
    steps = _steps(celery_runs["events"][range_run])
    assert steps["ingest"]["status"] == "STEP_FAILURE"
    # dagster_celery's own executor would skip these (upstream step failed); here they run for `red`
    assert steps["audio_analyzers"]["status"] == steps["vision_analyzers"]["status"] == "STEP_SUCCESS"
    failure = next(e for e in celery_runs["events"][range_run]
                   if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_FAILURE)
    description = failure.dagster_event.step_failure_data.user_failure_data.description
    assert keys["broken"] in description and keys["red"] not in description


@pytest.mark.slow
def test_pools_hold_limit_one_groups_across_runs(celery_runs):
    from tiktok_assets.definitions import load_gpu_groups

    groups = load_gpu_groups()
    storage = celery_runs["storage"]
    for pool, limit in groups.pool_limits().items():
        assert storage.event_log_storage.get_concurrency_info(pool).slot_count == limit, pool
    per_run = {run_id: _steps(events) for run_id, events in celery_runs["events"].items()}
    spans = [(record.start_time, record.end_time) for record in celery_runs["dagster_runs"].values()]
    assert max(s for s, _ in spans) < min(e for _, e in spans), "the three runs did not run at the same time"
    checked = 0
    for group in groups.groups.values():
        step_key = "ingest" if group.name == groups.pipeline_group else f"{group.name}_analyzers"
        held = sorted((s["sent"], s["start"], s["end"]) for steps in per_run.values()
                      if (s := steps.get(step_key)) and "sent" in s)
        if group.limit(groups.cuda) != 1 or len(held) < 2:
            continue
        for (_, _, end), (sent, start, _) in zip(held, held[1:]):
            # the next run's step was not even handed to Celery before the previous one ended
            assert sent >= end and start >= end, (step_key, held)
        checked += 1
    assert checked == 2  # audio and vision
    print("steps per run: ready (run start, or its ingest's end) -> sent to Celery (pool), in the queue "
          "(sent -> start), ran (start -> end):")
    for run_id, steps in per_run.items():
        began = celery_runs["dagster_runs"][run_id].start_time
        for key, s in sorted(steps.items()):
            if "start" in s:
                ready = began if key == "ingest" else steps["ingest"]["end"]
                print(f"  run {run_id[:8]} {key:<17} waited {s['sent'] - ready:5.1f}s  queue {s['start'] - s['sent']:4.1f}s  "
                      f"ran {s['end'] - s['start']:5.1f}s  pid {s['pid']}  {s['status']}")


@pytest.mark.slow
def test_each_worker_loaded_each_model_once_for_all_runs(deployment, celery_runs):
    per_run = [_steps(events) for events in celery_runs["events"].values()]
    for step_key in ("audio_analyzers", "vision_analyzers"):
        ran = [steps[step_key] for steps in per_run]
        assert len({s["pid"] for s in ran}) == 1, f"{step_key} ran in several processes: {ran}"
        for s in ran:  # the counts of the worker's child process, cumulative over the runs
            assert s["loads"] and set(s["loads"].values()) == {"1"}, (step_key, s["loads"])
    assert {"faster-whisper", "yamnet"} <= set(per_run[-1]["audio_analyzers"]["loads"])
    assert "nudenet-320n" in per_run[-1]["vision_analyzers"]["loads"]
    logs = deployment["home"] / "services" / "logs"
    print("model loads per worker (its log, all runs):")
    for worker in ("audio", "vision+cpu"):
        text = (logs / f"worker-{worker}.log").read_text()
        loads = Counter(re.findall(r"loaded model (\S+) on", text))
        assert loads and set(loads.values()) == {1}, (worker, loads)
        assert len(re.findall(r"Task execute_plan\[[^\]]+\] succeeded", text)) >= 3
        print(f"  {worker}: " + ", ".join(f"{m}={n}" for m, n in sorted(loads.items())))


def _normal(value, home: str):
    """Values compared between the two data roots: floats to 1e-3, no times, paths without the root."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, str):
        return value.replace(home, "<home>")
    if isinstance(value, datetime):
        return None
    if isinstance(value, dict):
        return tuple(sorted((k, _normal(v, home)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_normal(v, home) for v in value)
    return value


def _warehouse_rows(home: Path, videos: list[str], tables: list[str]) -> dict[tuple[str, str], list]:
    from tiktok_assets.catalog import warehouse

    store = warehouse(dataclasses.replace(load_settings(), home=home))
    rows = {}
    for table in tables:
        for video in videos:
            data = store.read(table, video)
            found = data.to_pylist() if data is not None else []
            drop = {"seconds", "finished_at", "ingested_at"}
            rows[(table, video)] = sorted(
                (tuple((k, _normal(v, str(home))) for k, v in row.items() if k not in drop) for row in found), key=repr
            )
    return rows


@pytest.mark.slow
def test_the_warehouse_equals_an_in_process_run(celery_runs, deployment, sources, tmp_path_factory, monkeypatch):
    from tiktok_assets.cli import add_sources, ensure_instance, partition_tags
    from tiktok_assets.definitions import analyze_job_in_process

    home = tmp_path_factory.mktemp("in-process-home")
    monkeypatch.setenv("TIKTOK_ASSETS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.setenv("TIKTOK_ASSETS_ALLOW_PRIVATE_URLS", "1")
    for name in ("TIKTOK_ASSETS_POSTGRES_URL", "TIKTOK_ASSETS_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    instance = ensure_instance(settings)
    names = ["red", "broken", "green", "white"]
    keys = dict(zip(names, add_sources(settings, [str(sources[n]) for n in names], instance)))
    assert keys == celery_runs["keys"]
    began = time.perf_counter()
    with dg.execute_job(dg.reconstructable(analyze_job_in_process), instance, raise_on_error=False,
                        tags=partition_tags([keys[n] for n in names]), asset_selection=[dg.AssetKey(n) for n in selection()]):
        pass
    print(f"the same four videos in one in-process run: {time.perf_counter() - began:.1f}s")
    tables = ["videos", "analyzer_runs", *selection()[2:]]
    good = [keys[n] for n in VIDEOS]
    celery_rows = _warehouse_rows(deployment["home"], [*good, keys["broken"]], tables)
    local_rows = _warehouse_rows(home, [*good, keys["broken"]], tables)
    assert {k: len(v) for k, v in celery_rows.items()} == {k: len(v) for k, v in local_rows.items()}
    for key in celery_rows:
        assert celery_rows[key] == local_rows[key], key
    assert not any(celery_rows[(t, keys["broken"])] for t in tables if t != "analyzer_runs")
    # and what was heard is what was said
    for name, (_, _, _, words) in VIDEOS.items():
        heard = " ".join(dict(row)["text"].lower() for row in celery_rows[("speech_transcription", keys[name])])
        assert all(any(w in heard for w in word.split("|")) for word in words), (name, heard)
    statuses = Counter(dict(row)["status"] for video in good for row in celery_rows[("analyzer_runs", video)])
    print("analyzer runs per status (celery):", dict(statuses),
          "| rows per table:", {t: sum(len(celery_rows[(t, v)]) for v in good) for t in tables})


@pytest.mark.slow
def test_starting_again_leaves_what_runs(deployment):
    pidfiles = sorted((deployment["home"] / "services" / "workers").glob("*.pid"))
    before = {p.stem: p.read_text() for p in pidfiles}
    again = _services(deployment["env"], "start", *WORKERS)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("running already") == 4, again.stdout  # redis, postgres, two workers
    assert {p.stem: p.read_text() for p in pidfiles} == before == {"audio": before["audio"],
                                                                   "vision+cpu": before["vision+cpu"]}
    status = _services(deployment["env"], "status")
    assert "worker audio: pid" in status.stdout and status.stdout.count("answering") == 2, status.stdout
    assert "not answering" not in status.stdout and status.stdout.count(": up") == 2, status.stdout


@pytest.mark.slow
def test_a_code_location_load_sets_the_pools_on_a_fresh_instance(deployment, tmp_path, monkeypatch):
    """A new Postgres database (the data root's settings) and a Helm-style ``$DAGSTER_HOME`` whose
    dagster.yaml names another new database: loading the code location sets the slots on each."""
    import psycopg2

    from tiktok_assets.definitions import build_definitions, load_gpu_groups

    port = deployment["postgres_port"]
    con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute("CREATE DATABASE fresh_settings")
        cur.execute("CREATE DATABASE fresh_helm")
    con.close()
    expected = load_gpu_groups().pool_limits()
    for name in [k for k in os.environ if k.startswith("TIKTOK_ASSETS_") and k != "TIKTOK_ASSETS_MODELS"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TIKTOK_ASSETS_HOME", str(tmp_path / "fresh-home"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("TIKTOK_ASSETS_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{port}/fresh_settings")
    build_definitions()
    helm_home = tmp_path / "helm-dagster-home"
    helm_home.mkdir()
    helm_url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/fresh_helm"
    (helm_home / "dagster.yaml").write_text(f"storage:\n  postgres:\n    postgres_url: {helm_url}\n")
    monkeypatch.delenv("TIKTOK_ASSETS_POSTGRES_URL")
    monkeypatch.setenv("DAGSTER_HOME", str(helm_home))
    build_definitions()
    for database in ("fresh_settings", "fresh_helm"):
        storage = _postgres_storage(f"postgresql://postgres@127.0.0.1:{port}/{database}")
        slots = {pool: storage.event_log_storage.get_concurrency_info(pool).slot_count for pool in expected}
        assert slots == expected, database


def test_celery_mode_routes_each_group_to_its_queue(monkeypatch):
    """The executor and tags of ``TIKTOK_ASSETS_EXECUTOR=celery`` (no servers needed)."""
    from tiktok_assets.definitions import load_gpu_groups
    from tiktok_assets.executors import PRIORITY_TAG, build_executor, celery, step_tags

    monkeypatch.setenv("TIKTOK_ASSETS_EXECUTOR", "celery")
    monkeypatch.setenv("TIKTOK_ASSETS_CELERY_BROKER", "redis://10.0.0.5:6380/2")
    settings = load_settings()
    groups = load_gpu_groups()
    for group in groups.groups.values():
        ordered = {PRIORITY_TAG: str(group.priority)} if group.priority else {}
        assert step_tags(group, groups, settings) == {GROUP_TAG: group.name, "dagster-celery/queue": group.name,
                                                      **ordered}
    assert build_executor(groups, settings).name == "celery"
    config = celery.app_config(settings)
    assert config["broker"] == config["backend"] == "redis://10.0.0.5:6380/2"  # the backend: the broker's, unless set
    assert celery.worker_app(settings).conf.broker_url == "redis://10.0.0.5:6380/2"
    monkeypatch.setenv("TIKTOK_ASSETS_EXECUTOR", "multiprocess")
    assert step_tags(group, groups, load_settings()) == {GROUP_TAG: group.name, **ordered}


def test_worker_specs_take_groups_concurrency_and_gpu():
    from tiktok_assets.definitions import load_gpu_groups

    groups = load_gpu_groups()
    parse = celery_services.parse_workers
    specs = parse(["audio@1", "vision,cpu", "frames:5"], groups)
    cpu, vision = groups.groups["cpu"].limit(groups.cuda), groups.groups["vision"].limit(groups.cuda)
    assert [(s.name, s.concurrency, s.gpu) for s in specs] == [
        ("audio", groups.groups["audio"].limit(groups.cuda), "1"), ("vision+cpu", vision + cpu, None),
        ("frames", 5, None)]
    assert [s.name for s in parse([], groups)] == list(groups.groups)
    for bad, says in [(["nope"], "not a group"), (["audio", "audio,cpu"], "has a worker already"),
                      (["vlm,audio,frames,cpu,vision"], "at most 4"), (["audio:0"], "whole number"),
                      (["audio@x"], "index")]:
        with pytest.raises(celery_services.ServiceError, match=says):
            parse(bad, groups)


@pytest.mark.slow
def test_the_reaper_judges_only_this_hosts_runs_on_the_shared_instance(deployment, monkeypatch):
    """On Postgres a run's processes may live on another machine: a run without this host's tag is
    not failed for a PID that is not alive here; one tagged with this host still is."""
    import uuid

    from tiktok_assets.definitions import defs
    from tiktok_assets.instance import data_root_instance
    from tiktok_assets.run_guard import HOST_TAG, PID_TAG, run_is_dead

    for name, value in deployment["env"].items():
        if name.startswith("TIKTOK_ASSETS_") or name == "DAGSTER_HOME":
            monkeypatch.setenv(name, value)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    with data_root_instance(load_settings()) as instance:
        job = defs.resolve_job_def("analyze_video")
        elsewhere, here = (
            instance.create_run_for_job(job, run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED,
                                        tags={PID_TAG: gone.stdout.strip(), **extra})
            for extra in ({}, {HOST_TAG: socket.gethostname()})
        )
        assert run_is_dead(instance, elsewhere) is None
        assert run_is_dead(instance, here) is True
