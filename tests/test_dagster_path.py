"""The Dagster path equals the CLI: CLI runs are `analyze_video` runs, a failed analyzer lowers the
score (scoring runs after every run, via the run status sensors), staleness is Dagster's (code
versions carry model and settings, changes propagate downstream), the nightly schedule re-runs
exactly what is stale, missing or failed and parks a video that keeps failing, and analyzers see
the status of what they read.

Uses the generated sample video with the cheap analyzers (cut_analysis, its five dependents,
audio_analysis); an analyzer is made to fail honestly by corrupting its input (the cached audio).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import dagster as dg
import pytest
from helpers import sql

from tiktok_assets import cli
from tiktok_assets.analyzers import all_specs
from tiktok_assets.config import load_settings

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::dagster.BetaWarning")]

CUT_DEPENDENTS = {"camera_analysis", "color_analysis", "content_quality", "scene_segmentation", "visual_effects"}
CHEAP = ["audio_analysis", *sorted(CUT_DEPENDENTS)]




def latest_score(key: str) -> tuple[float, list[str]]:
    ((score, failed),) = sql(f"SELECT score, analyzers_failed FROM reconstruction_scores WHERE video_id = '{key}'")
    return score, list(failed)


@pytest.fixture(scope="module")
def video(module_home, sample):
    """The sample, analyzed through the CLI with the cheap analyzers (cut_analysis pulled in), two
    steps at once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOK_ASSETS_THREADS", "2")
        key, ok = cli.analyze(load_settings(), sample.path, only=CHEAP)
    assert ok
    return key


def test_the_cli_runs_steps_whose_inputs_are_ready_side_by_side(video):
    """The CLI's run (one process, models loaded once) starts the steps that wait only for the
    ingest together: the audio step runs beside the frames step, not after it."""
    instance = cli.ensure_instance(load_settings())
    first = [r for r in instance.get_runs() if r.job_name == "analyze_video"
             and r.tags.get("tiktok_assets/launched_by") == "cli"][-1]
    assert first.status == dg.DagsterRunStatus.SUCCESS
    stats = {s.step_key: s for s in instance.get_run_step_stats(first.run_id)}
    audio, frames = stats["audio_analyzers"], stats["frames_analyzers"]
    assert max(audio.start_time, frames.start_time) < min(audio.end_time, frames.end_time), "ran one after the other"


@pytest.fixture(scope="module")
def original_audio(video) -> bytes:
    return (load_settings().media_dir / video / "audio.wav").read_bytes()


@pytest.fixture()
def broken_audio(video, original_audio):
    """The cached audio of the video replaced by garbage for the duration of a test."""
    path = load_settings().media_dir / video / "audio.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00not a wave file at all")
    yield path
    path.write_bytes(original_audio)


def job_run(key: str, names: list[str], tags: dict | None = None) -> dg.DagsterRun:
    from tiktok_assets.definitions import ANALYZE_JOB, defs

    instance = cli.ensure_instance(load_settings())
    result = defs.resolve_job_def(ANALYZE_JOB).execute_in_process(
        partition_key=key, asset_selection=[dg.AssetKey(n) for n in names], instance=instance,
        raise_on_error=False, tags=tags or {},
    )
    return instance.get_run_by_id(result.run_id)


def test_only_pulls_in_the_transitive_closure(monkeypatch):
    import tiktok_assets.analyzers as analyzers

    base = all_specs()["cut_analysis"]
    chain = {
        "a": dataclasses.replace(base, name="a"),
        "b": dataclasses.replace(base, name="b", depends_on=("a",)),
        "c": dataclasses.replace(base, name="c", depends_on=("b",)),
        "d": dataclasses.replace(base, name="d"),
    }
    monkeypatch.setattr(analyzers, "all_specs", lambda: chain)
    assert cli._selection(["c"], decoded=True) == ["a", "b", "c"]
    assert cli._selection(["c", "d"], decoded=False) == ["source_video", "media", "a", "b", "c", "d"]


def test_cli_runs_are_analyze_video_runs_followed_by_a_score_run(video):
    instance = cli.ensure_instance(load_settings())
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": video}))
    jobs = [r.job_name for r in reversed(runs)]
    assert jobs[:2] == ["analyze_video", "score_video"], jobs
    assert "__ephemeral_asset_job__" not in jobs
    analysis, scoring = list(reversed(runs))[:2]
    assert scoring.tags["tiktok_assets/scores_after"] == analysis.run_id
    keys = {k.to_user_string() for k in analysis.asset_selection}
    assert keys == {"source_video", "media", "cut_analysis", *CHEAP}
    # a score exists, and counts the analyzers that ran (cut + 6), none failed
    ((succeeded, failed),) = sql(
        f"SELECT analyzers_succeeded, analyzers_failed FROM reconstruction_scores WHERE video_id = '{video}'")
    assert succeeded == 7 and list(failed) == []


def test_failed_analyzer_run_is_scored_by_the_failure_sensor(video, broken_audio):
    from tiktok_assets.definitions import defs

    instance = cli.ensure_instance(load_settings())
    before, _ = latest_score(video)
    run = job_run(video, ["audio_analysis"])
    assert run.status == dg.DagsterRunStatus.FAILURE and run.job_name == "analyze_video"
    failures = [r.dagster_event for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)]
    assert [e.step_key for e in failures] == ["audio_analyzers"]
    assert failures[0].step_failure_data.user_failure_data.description.startswith("audio_analysis: ")
    run_failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
    sensor = defs.resolve_sensor_def("score_after_failure")
    context = dg.build_run_status_sensor_context(
        sensor_name="score_after_failure", dagster_event=run_failure, dagster_instance=instance, dagster_run=run,
        repository_def=defs.get_repository_def(),
    )
    request = sensor(context)
    assert isinstance(request, dg.RunRequest), request
    assert request.partition_key == video and request.tags["tiktok_assets/scores_after"] == run.run_id
    # what the daemon does with the request: a score_video run of that partition
    scored = defs.resolve_job_def("score_video").execute_in_process(
        partition_key=request.partition_key, instance=instance, tags=request.tags)
    assert scored.success
    after, failed = latest_score(video)
    assert failed == ["audio_analysis"] and after < before
    # the sensor does not ask twice for the same run
    again = sensor(dg.build_run_status_sensor_context(
        sensor_name="score_after_failure", dagster_event=run_failure, dagster_instance=instance, dagster_run=run,
        repository_def=defs.get_repository_def()))
    assert isinstance(again, dg.SkipReason)


def _bumped_defs(monkeypatch, **versions: str) -> dg.Definitions:
    """The code location as it would load after bumping the given analyzers' versions."""
    import tiktok_assets.assets as assets_module
    from tiktok_assets.definitions import build_definitions

    specs = {n: dataclasses.replace(s, version=versions.get(n, s.version)) for n, s in all_specs().items()}
    monkeypatch.setattr(assets_module, "all_specs", lambda: specs)
    return build_definitions()


def _statuses(defs: dg.Definitions, key: str) -> dict[str, str]:
    from dagster._core.definitions.data_version import CachingStaleStatusResolver

    from tiktok_assets.automation import _asset_graph_view

    instance = cli.ensure_instance(load_settings())
    graph = defs.resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, _asset_graph_view(instance, graph))
    names = ["source_video", "media", "cut_analysis", *CHEAP]
    return {n: resolver.get_status(dg.AssetKey(n), key).value for n in names}


def test_code_versions_carry_model_and_settings(home, monkeypatch):
    from tiktok_assets.versions import analyzer_code_version, media_code_version

    speech = all_specs()["speech_transcription"]
    base = analyzer_code_version(speech, load_settings())
    assert base.startswith(speech.version + "-")
    monkeypatch.setenv("TIKTOK_ASSETS_LANGUAGES", "de")
    assert analyzer_code_version(speech, load_settings()) != base
    monkeypatch.setenv("TIKTOK_ASSETS_WHISPER_MODEL", "small")
    small = analyzer_code_version(speech, load_settings())
    assert small != base
    # a local model folder: replacing its weights changes the version without renaming anything
    folder = home / "my-whisper"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"x" * 10)
    monkeypatch.setenv("TIKTOK_ASSETS_WHISPER_MODEL", str(folder))
    first = analyzer_code_version(speech, load_settings())
    (folder / "model.bin").write_bytes(b"x" * 11)
    assert analyzer_code_version(speech, load_settings()) != first
    # what an analyzer reads is part of its version: the decoding settings (through media) and upstreams
    cut, camera = all_specs()["cut_analysis"], all_specs()["camera_analysis"]
    media, cut_v, camera_v = (media_code_version(load_settings()), analyzer_code_version(cut, load_settings()),
                              analyzer_code_version(camera, load_settings()))
    assert analyzer_code_version(dataclasses.replace(cut, version="bumped"), load_settings()).startswith("bumped-")
    monkeypatch.setenv("TIKTOK_ASSETS_SAMPLE_FPS", "4")
    assert media_code_version(load_settings()) != media
    assert analyzer_code_version(cut, load_settings()) != cut_v
    assert analyzer_code_version(camera, load_settings()) != camera_v


def test_dagster_reports_bumped_analyzer_and_its_dependents_stale(video, monkeypatch):
    from tiktok_assets.definitions import defs

    assert set(_statuses(defs, video).values()) == {"FRESH"}
    bumped = _statuses(_bumped_defs(monkeypatch, cut_analysis=all_specs()["cut_analysis"].version + ".1"), video)
    assert {n for n, s in bumped.items() if s == "STALE"} == {"cut_analysis", *CUT_DEPENDENTS}
    assert bumped["audio_analysis"] == bumped["media"] == "FRESH"
    # a decoding setting changes media's version: every analyzer below it is stale
    monkeypatch.setenv("TIKTOK_ASSETS_SAMPLE_FPS", "3")
    import tiktok_assets.assets as assets_module

    monkeypatch.setattr(assets_module, "all_specs", all_specs)
    from tiktok_assets.definitions import build_definitions

    resampled = _statuses(build_definitions(), video)
    assert resampled["source_video"] == "FRESH"  # decoding settings do not change the download
    assert {n for n, s in resampled.items() if s == "STALE"} == {"media", "cut_analysis", *CHEAP}


def test_analyzers_see_the_status_of_what_they_read(video):
    from tiktok_assets import steps

    settings = load_settings()
    spec = all_specs()["camera_analysis"]
    inputs, runs = steps.upstream_inputs(settings, spec, video)
    assert set(inputs) == {"cut_analysis"} and runs["cut_analysis"]["status"] == "success"
    assert not runs["cut_analysis"]["stale"]
    # a failed upstream is not handed over as if fresh
    steps._record_run(settings, all_specs()["cut_analysis"], video, status="failed", rows=0, seconds=0.1,
                      examined=[], model=None, error="RuntimeError: test")
    inputs, runs = steps.upstream_inputs(settings, spec, video)
    assert inputs == {} and runs["cut_analysis"]["status"] == "failed"
    # a changed cut_analysis version makes its recorded table stale for the reader
    job_run(video, ["cut_analysis"])
    bumped = {**all_specs(), "cut_analysis": dataclasses.replace(all_specs()["cut_analysis"], version="99")}
    import tiktok_assets.steps as steps_module

    original = steps_module.all_specs
    steps_module.all_specs = lambda: bumped
    try:
        inputs, runs = steps.upstream_inputs(settings, spec, video)
    finally:
        steps_module.all_specs = original
    assert set(inputs) == {"cut_analysis"} and runs["cut_analysis"]["stale"]
    assert runs["cut_analysis"]["current_version"].startswith("99-")
    assert runs["cut_analysis"]["code_version"].startswith(all_specs()["cut_analysis"].version + "-")


def _nightly(defs: dg.Definitions, day: int):
    schedule = defs.resolve_schedule_def("nightly_backfill")
    instance = cli.ensure_instance(load_settings())
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 11, day, 3, tzinfo=UTC),
                                   repository_def=defs.get_repository_def()) as context:
        return schedule.evaluate_tick(context)


def test_nightly_backfill_reruns_stale_missing_failed_and_parks(video, monkeypatch, broken_audio, original_audio):
    from tiktok_assets.automation import NIGHTLY_TAG

    broken = job_run(video, ["audio_analysis"])  # audio_analysis fails (broken input)
    assert broken.status == dg.DagsterRunStatus.FAILURE
    defs = _bumped_defs(monkeypatch, cut_analysis=all_specs()["cut_analysis"].version + ".1")
    result = _nightly(defs, 20)
    requests = {r.partition_key: r for r in result.run_requests}
    request = requests[video]
    selected = {k.to_user_string() for k in request.asset_selection}
    never_run = set(all_specs()) - {"cut_analysis", *CHEAP}
    assert selected == {"cut_analysis", *CUT_DEPENDENTS, "audio_analysis", *never_run}
    reason = request.tags["tiktok_assets/reason"]
    assert "audio_analysis (failed)" in reason and "speech_transcription (missing)" in reason
    assert "cut_analysis (stale" in reason and request.run_key == f"nightly-20261120-{video}"

    # N failed nightly runs in a row park the video, with the reason on its source_video partition
    monkeypatch.setenv("TIKTOK_ASSETS_MAX_NIGHTLY_FAILURES", "2")
    for day in (21, 22):
        run = job_run(video, ["audio_analysis"], tags={NIGHTLY_TAG: f"202611{day}"})
        assert run.status == dg.DagsterRunStatus.FAILURE
    result = _nightly(defs, 23)
    assert video not in {r.partition_key for r in result.run_requests}
    instance = cli.ensure_instance(load_settings())
    (record,) = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("source_video"), asset_partitions=[video]), limit=1).records
    parked = record.asset_observation.metadata["parked"].value
    assert parked.startswith("parked after 2 failed nightly runs in a row") and "audio_analysis" in parked
    _nightly(defs, 24)  # still parked: the reason is not recorded twice
    assert len(instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("source_video"), asset_partitions=[video]), limit=5).records) == 1
    # a successful manual run unparks it
    broken_audio.write_bytes(original_audio)
    assert job_run(video, ["audio_analysis"]).status == dg.DagsterRunStatus.SUCCESS
    assert video in {r.partition_key for r in _nightly(defs, 25).run_requests}
