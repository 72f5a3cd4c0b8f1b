"""Automation: an inbox sensor that registers new videos, and a nightly backfill schedule.

* ``inbox_sensor`` watches ``$TIKTOK_ASSETS_HOME/inbox/``: every video file dropped there and every
  URL line in ``inbox/urls.txt`` becomes a partition, and a run of ``analyze_video`` is requested for
  it (once: the run key names the video IDs); videos registered in the same tick share runs of up to
  ``TIKTOK_ASSETS_PARTITIONS_PER_RUN``. A registered file is moved to ``inbox/processed/`` (the
  registry points there); where it cannot be moved it is marked in the sensor's cursor instead.
  The cursor (JSON: ``files``: path -> [size, mtime_ns, key]; ``urls``: line -> key) means an
  unchanged file is never hashed twice and a URL line is resolved once. Symlinks are not followed.
  A tick that starts nothing says why: the inbox is missing, a file is still being written, or
  there is nothing new.
* ``nightly_backfill`` (03:00) asks, per registered video, for the assets Dagster reports stale
  (code version, model or setting changed upstream), missing or failed, plus their dependents;
  neighbouring videos that need the same assets share a run (a partition range of up to
  ``TIKTOK_ASSETS_PARTITIONS_PER_RUN`` videos). A video
  whose nightly run failed ``TIKTOK_ASSETS_MAX_NIGHTLY_FAILURES`` times in a row is parked: the tick
  log names it with the reason and its ``source_video`` partition gets an observation ``parked``.
* ``score_after_success`` / ``score_after_failure`` request a ``score_video`` run of the same videos
  when a run of one video or a range ends, whatever its outcome, so a failed analyzer lowers the
  score instead of blocking it.
"""

import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from .assets import MEDIA_KEY, SCORES_KEY, SOURCE_KEY, videos_partitions
from .catalog import warehouse
from .config import Settings, load_settings
from .ingest import VIDEO_SUFFIXES, IngestError, register_source
from .retention import media_available

INBOX_URLS = "urls.txt"
SCORE_JOB = "score_video"
PROCESSED = "processed"


@dataclass(frozen=True)
class InboxFile:
    path: Path
    size: int
    mtime_ns: int


@dataclass
class InboxScan:
    """What the inbox holds now: settled files, files still changing, URL lines, refused entries."""

    ready: list[InboxFile] = field(default_factory=list)
    settling: list[InboxFile] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)


def scan_inbox(inbox: Path, min_age_s: float = 10.0, now: float | None = None) -> InboxScan:
    """Video files (top level, not symlinks) and URL lines in ``inbox``; files changed in the last
    ``min_age_s`` seconds are ``settling`` (a partial copy would get the wrong content ID)."""
    scan = InboxScan()
    if not inbox.is_dir():
        return scan
    now = time.time() if now is None else now
    for path in sorted(inbox.iterdir()):
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        if path.is_symlink():
            scan.refused.append((path, "symlinks are not followed; move or copy the video into the inbox"))
            continue
        if not path.is_file():
            continue
        stat = path.stat()
        item = InboxFile(path, stat.st_size, stat.st_mtime_ns)
        (scan.ready if now - stat.st_mtime >= min_age_s else scan.settling).append(item)
    urls = inbox / INBOX_URLS
    if urls.is_symlink():
        scan.refused.append((urls, "symlinks are not followed; write the URLs into the inbox's own urls.txt"))
    elif urls.is_file():
        for line in urls.read_text(errors="replace").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                scan.urls.append(line)
        scan.urls = list(dict.fromkeys(scan.urls))
    return scan


def inbox_sources(inbox: Path, min_age_s: float = 10.0) -> list[str]:
    """Settled video files and URL lines waiting in the inbox folder (sorted, without duplicates).

    Symlinks are skipped (they could point anywhere outside the inbox)."""
    scan = scan_inbox(inbox, min_age_s)
    return list(dict.fromkeys([*(str(f.path) for f in scan.ready), *scan.urls]))


@dataclass
class InboxTick:
    """The result of one pass over the inbox."""

    keys: list[str]
    cursor: dict[str, Any]
    settling: list[str]
    inbox_missing: bool = False


def parse_cursor(text: str | None) -> dict[str, Any]:
    """The sensor cursor as ``{"files": {...}, "urls": {...}}`` (empty for a missing or old cursor)."""
    try:
        raw = json.loads(text) if text else {}
    except json.JSONDecodeError:
        raw = {}
    raw = raw if isinstance(raw, dict) else {}
    files = raw.get("files") if isinstance(raw.get("files"), dict) else {}
    urls = raw.get("urls") if isinstance(raw.get("urls"), dict) else {}
    return {"files": dict(files), "urls": dict(urls)}


def _move_to_processed(path: Path) -> Path:
    """Move ``path`` into ``processed/`` next to it (a numbered name when taken); return the new path."""
    folder = path.parent / PROCESSED
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.stem}-{n}{path.suffix}"
        n += 1
    os.replace(path, target)
    return target


def register_inbox(
    settings: Settings, log=None, min_age_s: float = 10.0, cursor: dict[str, Any] | None = None
) -> InboxTick:
    """Register the settled inbox files and new URL lines; a bad entry is logged and skipped.

    Files are moved to ``processed/`` and registered there; a file that cannot be moved is
    registered in place and remembered in the cursor with its size and mtime, so it is not hashed
    again while unchanged. URL lines already in the cursor are not resolved again."""
    inbox = settings.home / "inbox"
    cursor = parse_cursor(None) if cursor is None else {"files": dict(cursor["files"]), "urls": dict(cursor["urls"])}
    if not inbox.is_dir():
        return InboxTick([], cursor, [], inbox_missing=True)
    scan = scan_inbox(inbox, min_age_s)
    for path, why in scan.refused:
        if log:
            log(f"skipping inbox entry {path.name!r}: {why}")
    keys: list[str] = []
    files = {}
    for item in scan.ready:
        seen = cursor["files"].get(str(item.path))
        if seen and seen[:2] == [item.size, item.mtime_ns]:
            files[str(item.path)] = seen
            if seen[2]:
                keys.append(seen[2])
            continue  # unchanged since a previous tick: not hashed again
        key = None
        try:
            try:
                target = _move_to_processed(item.path)
            except OSError as exc:
                target = item.path
                if log:
                    log(f"could not move {item.path.name!r} to {PROCESSED}/ ({exc}); remembering it in the cursor")
            key = register_source(settings, str(target))
            keys.append(key)
        except (IngestError, ValueError, OSError) as exc:
            if log:
                log(f"skipping inbox entry {str(item.path)!r}: {exc}")
        if target == item.path:  # still in the inbox: mark it (a failed one is retried when it changes)
            files[str(item.path)] = [item.size, item.mtime_ns, key]
    for item in scan.settling:
        seen = cursor["files"].get(str(item.path))
        if seen:
            files[str(item.path)] = seen
    urls = {}
    for line in scan.urls:
        key = cursor["urls"].get(line)
        if key is None:
            try:
                key = register_source(settings, line)
            except (IngestError, ValueError, OSError) as exc:
                if log:
                    log(f"skipping inbox entry {line!r}: {exc}")
                continue
        urls[line] = key
        keys.append(key)
    return InboxTick(list(dict.fromkeys(keys)), {"files": files, "urls": urls}, [f.path.name for f in scan.settling])


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


def failed_videos_of_run(instance: dg.DagsterInstance, run: dg.DagsterRun, videos: list[str]) -> set[str]:
    """The videos of ``videos`` (those ``run`` covers) that failed in it: every one for a failed
    one-video run or a step that crashed, else those its steps named (``failed_videos``)."""
    if run.status != dg.DagsterRunStatus.FAILURE:
        return set()
    if len(videos) <= 1:
        return set(videos)
    named: set[str] = set()
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = record.dagster_event.step_failure_data if record.dagster_event else None
        meta = data.user_failure_data.metadata if data and data.user_failure_data else {}
        listed = getattr(meta.get("failed_videos"), "value", None)
        if not listed:
            return set(videos)  # a crash, not a per-video failure
        named.update(v.strip() for v in str(listed).split(","))
    return named & set(videos) if named else set(videos)


def nightly_failure_streak(
    instance: dg.DagsterInstance, job_name: str, video_id: str,
    runs: list[tuple[dg.DagsterRun, list[str]]] | None = None, failed_cache: dict[str, set[str]] | None = None,
) -> list[dg.DagsterRun]:
    """The failed nightly runs of ``video_id`` (alone or in a range, failed for this video) since
    its last successful run, newest first. ``runs``: the job's recent runs with the videos each
    covers, newest first (see :func:`runs_with_videos`)."""
    runs = runs_with_videos(instance, job_name) if runs is None else runs
    failed_cache = {} if failed_cache is None else failed_cache
    streak = []
    for run, videos in runs:
        if video_id not in videos:
            continue
        if run.status == dg.DagsterRunStatus.SUCCESS:
            break
        if run.status != dg.DagsterRunStatus.FAILURE:
            continue
        if run.run_id not in failed_cache:
            failed_cache[run.run_id] = failed_videos_of_run(instance, run, videos)
        if video_id in failed_cache[run.run_id]:
            if NIGHTLY_TAG in run.tags:
                streak.append(run)
        else:
            break  # a range run in which this video succeeded
    return streak


def runs_with_videos(instance: dg.DagsterInstance, job_name: str, limit: int = 500) -> list[tuple[dg.DagsterRun, list[str]]]:
    """The job's recent runs, newest first, each with the videos it covers."""
    from .execution import run_partition_keys

    order = list(instance.get_dynamic_partitions(videos_partitions.name))
    return [(run, run_partition_keys(instance, run, videos_partitions.name, order))
            for run in instance.get_runs(filters=dg.RunsFilter(job_name=job_name), limit=limit)]


def park_reason(instance: dg.DagsterInstance, streak: list[dg.DagsterRun], video_id: str | None = None) -> str:
    """One sentence: how often and where the video failed (the steps, and the analyzers they
    named for this video), and how to unpark it."""
    last = streak[0]
    steps, analyzers = set(), set()
    for record in instance.all_logs(last.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        if not (event and event.step_key):
            continue
        steps.add(event.step_key)
        data = event.step_failure_data.user_failure_data
        text = data.description or "" if data else ""
        if video_id and f"{video_id}: " in text:  # a range run: this video's part of the message
            text = text.split(f"{video_id}: ", 1)[1].split("; ")[0]
        analyzers.update(re.findall(r"(?:^|[,;] |\()([a-z_]+): ", text))
    named = f" ({', '.join(sorted(analyzers))})" if analyzers else ""
    where = f" (last run {last.run_id[:8]}, failed: {', '.join(sorted(steps)) or 'run'}{named})"
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
    """Run requests for the videos with stale, missing or failed assets (and their dependents),
    except videos parked after ``settings.max_nightly_failures`` failed nightly runs in a row.
    Neighbouring videos (in the order they were added) that need the same assets share a run, a
    partition range of up to ``settings.partitions_per_run`` videos. The scores follow in their own
    run (the scoring sensors)."""
    from .execution import RANGE_END_TAG, RANGE_START_TAG

    job_keys = [k for k in job_keys if k != SCORES_KEY]
    todo_by_video = outdated_assets(instance, asset_graph, video_ids, job_keys)
    runs = runs_with_videos(instance, job_name) if todo_by_video else []
    failed_cache: dict[str, set[str]] = {}
    wanted: dict[str, tuple[tuple[dg.AssetKey, ...], str]] = {}
    for video_id in video_ids:
        reasons = todo_by_video.get(video_id)
        if not reasons:
            continue
        streak = nightly_failure_streak(instance, job_name, video_id, runs, failed_cache)
        if len(streak) >= settings.max_nightly_failures:
            reason = park_reason(instance, streak, video_id)
            if log:
                log(f"video {video_id} {reason}")
            _mark_parked(instance, video_id, reason)
            continue
        if not media_available(settings, video_id):  # an evicted cache is decoded again by the steps
            for key in (SOURCE_KEY, MEDIA_KEY):
                reasons.setdefault(key, "source file and media cache missing")
        selection = tuple(k for k in job_keys if k in reasons)
        wanted[video_id] = (selection, ", ".join(f"{k.to_user_string()} ({reasons[k]})" for k in selection))
    blocks: list[list[str]] = []
    previous: str | None = None
    for video_id in video_ids:  # contiguous neighbours with the same selection, at most K per run
        if video_id in wanted:
            block = blocks[-1] if blocks else None
            if (block and previous == block[-1] and wanted[block[0]][0] == wanted[video_id][0]
                    and len(block) < settings.partitions_per_run):
                block.append(video_id)
            else:
                blocks.append([video_id])
        previous = video_id
    requests = []
    for block in blocks:
        selection, summary = wanted[block[0]]
        tags = {REASON_TAG: ("nightly backfill: " + summary)[:4000], NIGHTLY_TAG: stamp}
        if len(block) == 1:
            requests.append(dg.RunRequest(
                run_key=f"nightly-{stamp}-{block[0]}", partition_key=block[0], asset_selection=list(selection),
                tags=tags,
            ))
        else:
            requests.append(dg.RunRequest(
                run_key=f"nightly-{stamp}-{block[0]}..{block[-1]}", asset_selection=list(selection),
                tags={**tags, RANGE_START_TAG: block[0], RANGE_END_TAG: block[-1],
                      REASON_TAG: (f"nightly backfill of {len(block)} videos: " + summary)[:4000]},
            ))
    return requests


def score_request(instance: dg.DagsterInstance, settings: Settings, run: dg.DagsterRun) -> dg.RunRequest | None:
    """The ``score_video`` run to follow a finished run of videos (one, or a range: the score run
    covers the same videos), or None when the run was itself scoring, none of its videos was ever
    ingested, or the scores were already written (in the run or by the CLI after it)."""
    from .execution import RANGE_END_TAG, RANGE_START_TAG, run_partition_keys

    videos = run_partition_keys(instance, run, videos_partitions.name)
    if not videos or run.job_name == SCORE_JOB or SCORES_AFTER_TAG in run.tags:
        return None
    store = warehouse(settings)
    if not any(store.read("videos", v) is not None for v in videos):
        return None
    if instance.get_runs(filters=dg.RunsFilter(tags={SCORES_AFTER_TAG: run.run_id}), limit=1):
        return None
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SCORES_KEY, asset_partitions=[videos[-1]]), limit=1
    ).records
    if latest and latest[0].run_id == run.run_id:
        return None
    tags = {SCORES_AFTER_TAG: run.run_id, REASON_TAG: f"score after run {run.run_id[:8]} ({run.status.value})"}
    if len(videos) == 1:
        return dg.RunRequest(run_key=f"score-{run.run_id}", partition_key=videos[0], tags=tags)
    return dg.RunRequest(
        run_key=f"score-{run.run_id}",
        tags={**tags, RANGE_START_TAG: run.tags[RANGE_START_TAG], RANGE_END_TAG: run.tags[RANGE_END_TAG]},
    )


def inbox_requests(new: list[str], per_run: int) -> list[dg.RunRequest]:
    """Runs for videos registered in one tick: they are added to the partition list together, in
    this order, so each block of up to ``per_run`` of them is a contiguous range (one run)."""
    from .execution import RANGE_END_TAG, RANGE_START_TAG

    requests = []
    for i in range(0, len(new), per_run):
        block = new[i:i + per_run]
        if len(block) == 1:
            requests.append(dg.RunRequest(run_key=f"inbox-{block[0]}", partition_key=block[0]))
        else:
            requests.append(dg.RunRequest(
                run_key=f"inbox-{block[0]}..{block[-1]}",
                tags={RANGE_START_TAG: block[0], RANGE_END_TAG: block[-1]},
            ))
    return requests


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
        tick = register_inbox(settings, log=context.log.warning, cursor=parse_cursor(context.cursor))
        cursor = json.dumps(tick.cursor, sort_keys=True)
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        new = [k for k in tick.keys if k not in known]
        if new:
            return dg.SensorResult(
                run_requests=inbox_requests(new, settings.partitions_per_run),
                dynamic_partitions_requests=[partitions.build_add_request(new)],
                cursor=cursor,
            )
        if cursor != (context.cursor or ""):
            context.update_cursor(cursor)
        if tick.inbox_missing:
            return dg.SkipReason(f"inbox missing: create {settings.home / 'inbox'} and drop videos or a urls.txt there")
        if tick.settling:
            return dg.SkipReason(f"file still being written: {', '.join(tick.settling)} (waiting until it stops changing)")
        return dg.SkipReason("nothing new in the inbox")

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

    @dg.sensor(
        name="dead_run_reaper",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks runs whose process is gone (kill -9, closed terminal) as failed and frees the "
        "pool slots they or any ended run still hold, so a limit-1 GPU pool never stays blocked.",
    )
    def dead_run_reaper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        from .run_guard import reap_dead_runs

        freed = reap_dead_runs(context.instance, context.log.warning)
        return dg.SkipReason(f"freed the slots of {len(freed)} run(s)" if freed else "no dead runs")

    return [inbox_sensor, score_after_success, score_after_failure, dead_run_reaper], nightly_backfill
