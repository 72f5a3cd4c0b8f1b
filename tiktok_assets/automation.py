"""Automation: an inbox sensor that registers new videos, and a nightly backfill schedule.

* ``inbox_sensor`` watches ``$TIKTOK_ASSETS_HOME/inbox/``: every video file dropped there and every
  URL line in ``inbox/urls.txt`` becomes a partition, and a run of ``analyze_video`` is requested for
  it (once: the run key is the video ID).
* ``nightly_backfill`` (03:00) asks, per registered video, for the assets Dagster reports stale
  (code version, model or setting changed upstream), missing or failed, plus their dependents. A video
  whose nightly run failed ``TIKTOK_ASSETS_MAX_NIGHTLY_FAILURES`` times in a row is parked: the tick
  log names it with the reason and its ``source_video`` partition gets an observation ``parked``.
* ``score_after_success`` / ``score_after_failure`` request a ``score_video`` run when a run of a
  video ends, whatever its outcome, so a failed analyzer lowers the score instead of blocking it.
"""

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from .assets import MEDIA_KEY, SCORES_KEY, SOURCE_KEY, videos_partitions
from .catalog import warehouse
from .config import Settings, load_settings
from .ingest import VIDEO_SUFFIXES, IngestError, register_source

INBOX_URLS = "urls.txt"
SCORE_JOB = "score_video"


def inbox_sources(inbox: Path, min_age_s: float = 10.0) -> list[str]:
    """Video files and URL lines waiting in the inbox folder (sorted, without duplicates).

    Files changed in the last ``min_age_s`` seconds are left for the next tick: they may still be
    being copied, and a partial file would get the wrong content ID.
    """
    if not inbox.is_dir():
        return []
    now = time.time()
    sources = [
        str(p) for p in sorted(inbox.iterdir())
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and now - p.stat().st_mtime >= min_age_s
    ]
    urls = inbox / INBOX_URLS
    if urls.is_file():
        for line in urls.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                sources.append(line)
    return list(dict.fromkeys(sources))


def register_inbox(settings: Settings, log=None, min_age_s: float = 10.0) -> list[str]:
    """Register every inbox source; a bad one is logged and skipped, not fatal for the rest."""
    keys = []
    for source in inbox_sources(settings.home / "inbox", min_age_s):
        try:
            keys.append(register_source(settings, source))
        except (IngestError, ValueError, OSError) as exc:
            if log:
                log(f"skipping inbox entry {source!r}: {exc}")
    return list(dict.fromkeys(keys))


NIGHTLY_TAG = "tiktok_assets/nightly"
REASON_TAG = "tiktok_assets/reason"
SCORES_AFTER_TAG = "tiktok_assets/scores_after"
PARKED_KEY = "parked"


def _asset_graph_view(instance: dg.DagsterInstance, asset_graph) -> Any:
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
    from dagster._core.definitions.temporal_context import TemporalContext

    return AssetGraphView(
        temporal_context=TemporalContext(effective_dt=datetime.now(UTC), last_event_id=None),
        instance=instance, asset_graph=asset_graph,
    )


def _downstream(asset_graph, keys: Iterable[dg.AssetKey]) -> set[dg.AssetKey]:
    """``keys`` and everything that depends on them, transitively."""
    todo, seen = list(keys), set()
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(asset_graph.get(key).child_keys)
    return seen


def outdated_assets(
    instance: dg.DagsterInstance, asset_graph, video_ids: list[str], job_keys: Iterable[dg.AssetKey]
) -> dict[str, dict[dg.AssetKey, str]]:
    """Per video: the assets of the job that Dagster reports stale, missing or failed, plus their
    dependents, each with the reason (``stale: ...``, ``missing``, ``failed``, ``dependent``)."""
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.storage.partition_status_cache import AssetPartitionStatus

    job_keys = list(job_keys)
    resolver = CachingStaleStatusResolver(instance, asset_graph, _asset_graph_view(instance, asset_graph))
    failed: dict[dg.AssetKey, set[str]] = {}
    for key in job_keys:
        statuses = instance.get_status_by_partition(key, video_ids, videos_partitions) or {}
        failed[key] = {v for v, st in statuses.items() if st == AssetPartitionStatus.FAILED}
    out = {}
    for video_id in video_ids:
        reasons: dict[dg.AssetKey, str] = {}
        for key in job_keys:
            status = resolver.get_status(key, video_id)
            if video_id in failed[key]:
                reasons[key] = "failed"
            elif status == StaleStatus.MISSING:
                reasons[key] = "missing"
            elif status == StaleStatus.STALE:
                causes = resolver.get_stale_root_causes(key, video_id)
                reasons[key] = "stale: " + "; ".join(sorted({c.reason for c in causes})) if causes else "stale"
        for key in _downstream(asset_graph, list(reasons)):
            if key in job_keys:
                reasons.setdefault(key, "dependent")
        if reasons:
            out[video_id] = reasons
    return out


def nightly_failure_streak(instance: dg.DagsterInstance, job_name: str, video_id: str) -> list[dg.DagsterRun]:
    """The failed nightly runs of ``video_id`` since its last successful run, newest first."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, tags={"dagster/partition": video_id}), limit=50)
    streak = []
    for run in runs:
        if run.status == dg.DagsterRunStatus.SUCCESS:
            break
        if run.status == dg.DagsterRunStatus.FAILURE and NIGHTLY_TAG in run.tags:
            streak.append(run)
    return streak


def park_reason(instance: dg.DagsterInstance, streak: list[dg.DagsterRun]) -> str:
    """One sentence: how often and where the video failed, and how to unpark it."""
    last = streak[0]
    steps = sorted({
        r.dagster_event.step_key
        for r in instance.all_logs(last.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        if r.dagster_event and r.dagster_event.step_key
    })
    where = f" (last run {last.run_id[:8]}, failed: {', '.join(steps) or 'run'})"
    return (f"parked after {len(streak)} failed nightly runs in a row{where}; "
            "a successful manual run (UI or `tiktok-assets analyze`) unparks it")


def _mark_parked(instance: dg.DagsterInstance, video_id: str, reason: str) -> None:
    """Record the parking as an observation of the video's `source_video` partition (shown in the
    UI on that partition), once per reason."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=SOURCE_KEY, asset_partitions=[video_id]), limit=1
    ).records
    if records:
        obs = records[0].asset_observation
        if obs is not None and getattr(obs.metadata.get(PARKED_KEY), "value", None) == reason:
            return
    instance.report_runless_asset_event(
        dg.AssetObservation(SOURCE_KEY, partition=video_id, metadata={PARKED_KEY: reason})
    )


def backfill_requests(
    instance: dg.DagsterInstance, settings: Settings, asset_graph, job_name: str, job_keys: Iterable[dg.AssetKey],
    video_ids: list[str], stamp: str, log=None,
) -> list[dg.RunRequest]:
    """One run request per video with stale, missing or failed assets (and their dependents),
    except videos parked after ``settings.max_nightly_failures`` failed nightly runs in a row.
    The score follows in its own run (the scoring sensors)."""
    job_keys = [k for k in job_keys if k != SCORES_KEY]
    todo_by_video = outdated_assets(instance, asset_graph, video_ids, job_keys)
    requests = []
    for video_id, reasons in todo_by_video.items():
        streak = nightly_failure_streak(instance, job_name, video_id)
        if len(streak) >= settings.max_nightly_failures:
            reason = park_reason(instance, streak)
            if log:
                log(f"video {video_id} {reason}")
            _mark_parked(instance, video_id, reason)
            continue
        if not (settings.media_dir / video_id / "meta.json").is_file():  # the cache was deleted
            for key in (SOURCE_KEY, MEDIA_KEY):
                reasons.setdefault(key, "media cache missing")
        selection = [k for k in job_keys if k in reasons]
        summary = ", ".join(f"{k.to_user_string()} ({reasons[k]})" for k in selection)
        requests.append(
            dg.RunRequest(
                run_key=f"nightly-{stamp}-{video_id}",
                partition_key=video_id,
                asset_selection=selection,
                tags={REASON_TAG: ("nightly backfill: " + summary)[:4000], NIGHTLY_TAG: stamp},
            )
        )
    return requests


def score_request(instance: dg.DagsterInstance, settings: Settings, run: dg.DagsterRun) -> dg.RunRequest | None:
    """The ``score_video`` run to follow a finished run of one video, or None when the run was
    itself scoring, the video was never ingested, or the score was already written (in the run or
    by the CLI after it)."""
    video_id = run.tags.get("dagster/partition")
    if not video_id or run.job_name == SCORE_JOB or SCORES_AFTER_TAG in run.tags:
        return None
    if warehouse(settings).read("videos", video_id) is None:
        return None
    if instance.get_runs(filters=dg.RunsFilter(tags={SCORES_AFTER_TAG: run.run_id}), limit=1):
        return None
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SCORES_KEY, asset_partitions=[video_id]), limit=1
    ).records
    if latest and latest[0].run_id == run.run_id:
        return None
    return dg.RunRequest(
        run_key=f"score-{run.run_id}", partition_key=video_id,
        tags={SCORES_AFTER_TAG: run.run_id, REASON_TAG: f"score after run {run.run_id[:8]} ({run.status.value})"},
    )


def build_automation(job_name: str, partitions: dg.DynamicPartitionsDefinition, score_job):
    """The sensors (inbox, scoring after runs) and the nightly schedule."""
    @dg.sensor(
        name="inbox_sensor",
        job_name=job_name,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Registers videos dropped in $TIKTOK_ASSETS_HOME/inbox (files or urls.txt) and analyzes them.",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        settings = load_settings()
        keys = register_inbox(settings, log=context.log.warning)
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        new = [k for k in keys if k not in known]
        if not new:
            return dg.SkipReason("no new videos in the inbox")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"inbox-{k}", partition_key=k) for k in new],
            dynamic_partitions_requests=[partitions.build_add_request(new)],
        )

    @dg.schedule(
        name="nightly_backfill",
        job_name=job_name,
        cron_schedule="0 3 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Re-runs what Dagster reports stale, missing or failed (and its dependents) for every "
                    "video; parks a video after TIKTOK_ASSETS_MAX_NIGHTLY_FAILURES failed nights in a row.",
    )
    def nightly_backfill(context: dg.ScheduleEvaluationContext):
        settings = load_settings()
        stamp = context.scheduled_execution_time.strftime("%Y%m%d")
        keys = list(context.instance.get_dynamic_partitions(partitions.name))
        job = context.repository_def.get_job(job_name)
        asset_graph = context.repository_def.asset_graph
        job_keys = sorted(job.asset_layer.selected_asset_keys, key=lambda k: (k not in (SOURCE_KEY, MEDIA_KEY),
                                                                                k != SOURCE_KEY, k))
        requests = backfill_requests(
            context.instance, settings, asset_graph, job_name, job_keys, keys, stamp, log=context.log.warning
        )
        return requests or dg.SkipReason("every video is up to date (or parked)")

    def _score(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
        request = score_request(context.instance, load_settings(), context.dagster_run)
        return request or dg.SkipReason(f"run {context.dagster_run.run_id[:8]} needs no new score")

    sensor_args = dict(
        request_job=score_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING,
    )
    score_after_success = dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS, name="score_after_success",
        description="Scores a video after a successful run of it.", **sensor_args,
    )(_score)
    score_after_failure = dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.FAILURE, name="score_after_failure",
        description="Scores a video after a failed run of it: a failed analyzer lowers the score.", **sensor_args,
    )(_score)
    return [inbox_sensor, score_after_success, score_after_failure], nightly_backfill
