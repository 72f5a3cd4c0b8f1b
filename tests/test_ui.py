"""The Dagster UI path: plain `dagster dev` from the repo root (no DAGSTER_HOME) loads the code
location, sees the CLI's videos and runs, shows unsynced assets, and runs a partition in which one
analyzer fails: the failed step shows as failed and a new, lower score follows within a minute.

This talks to the real webserver over GraphQL (what the browser does) instead of clicking.
"""

import os
import time

import pytest
from dagster_dev import graphql, running_dagster_dev
from helpers import sql

from tiktok_assets.cli import analyze, ensure_instance
from tiktok_assets.config import load_settings
from tiktok_assets.definitions import load_gpu_groups

pytestmark = pytest.mark.slow

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""




@pytest.fixture(scope="module")
def cli_video(module_home, sample):
    """The sample analyzed by the CLI (cut_analysis + audio_analysis) before the UI starts."""
    key, ok = analyze(load_settings(), sample.path, only=["cut_analysis", "audio_analysis"])
    assert ok
    return key


@pytest.fixture(scope="module")
def dagster_dev(module_home, cli_video):
    """Plain `dagster dev` from the repo root WITHOUT DAGSTER_HOME (only TIKTOK_ASSETS_HOME), with a
    different sample fps than the CLI used, and with a pool slot count that gpu_groups.yaml does
    not say (the code location must put it back when it loads)."""
    settings = load_settings()
    instance = ensure_instance(settings)
    pool, limit = next(iter(load_gpu_groups().pool_limits().items()))
    instance.event_log_storage.set_concurrency_slots(pool, limit + 7)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["TIKTOK_ASSETS_SAMPLE_FPS"] = "3"
    with running_dagster_dev(env, module_home / "dagster-dev.log") as url:
        yield url


RUNS = "query Runs($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results { jobName status } } } }"
STALE = ("query Stale($p: String) { assetNodes { assetKey { path } staleStatus(partition: $p) "
         "staleCauses(partition: $p) { reason } } }")


def runs_tagged(url: str, key: str, value: str) -> list[tuple[str, str]]:
    """(job, status) of the runs with that tag, oldest first."""
    data = graphql(url, RUNS, {"f": {"tags": [{"key": key, "value": value}]}})["runsOrError"]["results"]
    return [(r["jobName"], r["status"]) for r in reversed(data)]


def run_status(url: str, run_id: str, timeout_s: float = 300) -> dict:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        run = graphql(url, f'{{ runOrError(runId: "{run_id}") {{ ... on Run {{ status endTime '
                           'stepStats { stepKey status } } } }')["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return run
        time.sleep(2)
    pytest.fail(f"run {run_id} did not finish within {timeout_s} s")


def test_plain_dagster_dev_sees_the_cli_data_and_a_failed_analyzer_lowers_the_score(dagster_dev, cli_video, sample):
    url, key = dagster_dev, cli_video
    settings = load_settings()
    data = graphql(url, "{ workspaceOrError { ... on Workspace { locationEntries { name "
                        "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
    (entry,) = data["workspaceOrError"]["locationEntries"]
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    nodes = graphql(url, "{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    groups = {n["assetKey"]["path"][0]: n["groupName"] for n in nodes}
    assert groups["cut_analysis"] == "frames_analyzers" and groups["speech_transcription"] == "audio_analyzers"
    assert groups["source_video"] == "ingest" and groups["reconstruction_scores"] == "reconstruction"

    # the same instance as the CLI: its partition and its runs (as analyze_video / score_video)
    partitions = graphql(url, '{ assetNodeOrError(assetKey: {path: ["media"]}) { ... on AssetNode { partitionKeys } } }')
    assert key in partitions["assetNodeOrError"]["partitionKeys"]
    assert runs_tagged(url, "dagster/partition", key) == [("analyze_video", "SUCCESS"), ("score_video", "SUCCESS")]
    # the pool slot count came back from gpu_groups.yaml when the code location loaded
    instance = ensure_instance(settings)
    for pool, limit in load_gpu_groups().pool_limits().items():
        assert instance.event_log_storage.get_concurrency_info(pool).slot_count == limit
    # the UI runs with sample fps 3, the CLI decoded at 2: media and every analyzer are unsynced
    status = {n["assetKey"]["path"][0]: n["staleStatus"] for n in graphql(url, STALE, {"p": key})["assetNodes"]}
    assert status["source_video"] == "FRESH"
    assert status["media"] == status["cut_analysis"] == status["audio_analysis"] == "STALE"
    assert status["speech_transcription"] == "MISSING"

    # a run where one analyzer fails (its cached audio is corrupt): failed step, then a lower score
    (before, failed_before), = sql(f"SELECT score, analyzers_failed FROM reconstruction_scores WHERE video_id = '{key}'")
    assert list(failed_before) == []
    audio = settings.media_dir / key / "audio.wav"
    audio.write_bytes(b"RIFF\x00\x00\x00\x00this is no wave file")
    params = {
        "selector": {
            "repositoryLocationName": entry["name"], "repositoryName": "__repository__", "jobName": "analyze_video",
            "assetSelection": [{"path": [p]} for p in ("cut_analysis", "audio_analysis")],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
        "runConfigData": {},
    }
    launched = graphql(url, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run = run_status(url, launched["run"]["runId"])
    assert run["status"] == "FAILURE"
    steps = {s["stepKey"]: s["status"] for s in run["stepStats"]}
    assert steps == {"frames_analyzers": "SUCCESS", "audio_analyzers": "FAILURE"}  # one step per GPU group
    deadline = run["endTime"] + 60
    while time.time() < deadline:
        (score, failed), = sql(f"SELECT score, analyzers_failed FROM reconstruction_scores WHERE video_id = '{key}'")
        if list(failed) == ["audio_analysis"]:
            break
        time.sleep(2)
    assert list(failed) == ["audio_analysis"], "no new score within 60 s of the failed run"
    assert score < before
    print(f"new score {time.time() - run['endTime']:.1f}s after the failed run ended: {before:.1f} -> {score:.1f}")
    assert [job for job, _ in runs_tagged(url, "tiktok_assets/scores_after", launched["run"]["runId"])] == ["score_video"]
    # the multiprocess run wrote the same warehouse the CLI reads; cut_analysis is in sync again
    cuts = sql(f"SELECT count(*) FROM cut_analysis WHERE video_id = '{key}' AND kind = 'hard_cut'")
    assert cuts[0][0] == len(sample.cuts_s)
    status = {n["assetKey"]["path"][0]: n["staleStatus"] for n in graphql(url, STALE, {"p": key})["assetNodes"]}
    assert status["cut_analysis"] == "FRESH" and status["audio_analysis"] == "STALE"
