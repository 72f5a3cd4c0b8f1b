"""The Dagster UI path: `dagster dev` loads the code location, lists partitions and runs a partition.

This talks to the real webserver over GraphQL (what the browser does) instead of clicking.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tiktok_assets.cli import add_sources, ensure_instance
from tiktok_assets.config import PROJECT_DIR, load_settings

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload
    return payload["data"]


@pytest.fixture()
def dagster_dev(home):
    settings = load_settings()
    ensure_instance(settings)
    port = free_port()
    log = open(home / "dagster-dev.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(PROJECT_DIR / "workspace.yaml"),
         "-p", str(port), "-h", "127.0.0.1"],
        cwd=PROJECT_DIR, env={**os.environ, "DAGSTER_HOME": str(settings.dagster_home)},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/server_info", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(1)
    else:
        pytest.fail("dagster dev did not answer within 180 s")
    assert proc.poll() is None, (home / "dagster-dev.log").read_text()[-3000:]
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def test_ui_lists_assets_and_partitions_and_runs_a_partition(dagster_dev, sample):
    url = dagster_dev
    settings = load_settings()
    key = add_sources(settings, [sample.path])[0]
    data = graphql(url, "{ workspaceOrError { ... on Workspace { locationEntries { name "
                        "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
    (entry,) = data["workspaceOrError"]["locationEntries"]
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    nodes = graphql(url, "{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    groups = {n["assetKey"]["path"][0]: n["groupName"] for n in nodes}
    assert groups["cut_analysis"] == "vision_analyzers" and groups["speech_transcription"] == "audio_analyzers"
    assert groups["source_video"] == "ingest" and groups["reconstruction_scores"] == "reconstruction"
    partitions = graphql(url, '{ assetNodeOrError(assetKey: {path: ["media"]}) { ... on AssetNode { partitionKeys } } }')
    assert key in partitions["assetNodeOrError"]["partitionKeys"]

    params = {
        "selector": {
            "repositoryLocationName": entry["name"], "repositoryName": "__repository__", "jobName": "analyze_video",
            "assetSelection": [{"path": [p]} for p in ("source_video", "media", "cut_analysis")],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
        "runConfigData": {},
    }
    launched = graphql(url, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = None
    deadline = time.time() + 300
    while time.time() < deadline:
        status = graphql(url, f'{{ runOrError(runId: "{run_id}") {{ ... on Run {{ status }} }} }}')["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    assert status == "SUCCESS"
    # the run wrote the same warehouse the CLI reads
    from tiktok_assets.catalog import connect

    con = connect(settings)
    cuts = con.execute(f"SELECT count(*) FROM cut_analysis WHERE video_id = '{key}' AND kind = 'hard_cut'").fetchone()
    con.close()
    assert cuts[0] == len(sample.cuts_s)
