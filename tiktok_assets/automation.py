"""Automation: an inbox sensor that registers new videos, and a nightly backfill schedule.

* ``inbox_sensor`` watches ``$TIKTOK_ASSETS_HOME/inbox/``: every video file dropped there and every
  URL line in ``inbox/urls.txt`` becomes a partition, and a run of ``analyze_video`` is requested for
  it (once: the run key is the video ID).
* ``nightly_backfill`` (03:00) asks, per registered video, for the analyzers whose last run is
  missing, failed or from an older analyzer version, plus ``reconstruction_scores``.
"""

import time
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from .analyzers import all_specs
from .catalog import warehouse
from .config import Settings, load_settings
from .ingest import VIDEO_SUFFIXES, IngestError, register_source

INBOX_URLS = "urls.txt"


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


def stale_analyzers(settings: Settings, video_id: str) -> list[str]:
    """Analyzers of ``video_id`` whose last run is missing, failed or of an older version."""
    runs = warehouse(settings).read("analyzer_runs", video_id)
    latest = {r["analyzer"]: r for r in (runs.to_pylist() if runs is not None else [])}
    stale = []
    for name, spec in all_specs().items():
        run = latest.get(name)
        if run is None or run["status"] != "success" or run["code_version"] != spec.version:
            stale.append(name)
    return stale


def backfill_requests(settings: Settings, video_ids: Iterable[str], stamp: str) -> list[dg.RunRequest]:
    """One run request per video that has something to redo, selecting only what is needed."""
    requests = []
    for video_id in video_ids:
        todo = stale_analyzers(settings, video_id)
        if not todo:
            continue
        selection = [dg.AssetKey(n) for n in todo] + [dg.AssetKey("reconstruction_scores")]
        if not (settings.media_dir / video_id / "meta.json").is_file():
            selection = [dg.AssetKey("source_video"), dg.AssetKey("media"), *selection]
        requests.append(
            dg.RunRequest(
                run_key=f"nightly-{stamp}-{video_id}",
                partition_key=video_id,
                asset_selection=selection,
                tags={"tiktok_assets/reason": "nightly backfill: " + ", ".join(todo)},
            )
        )
    return requests


def build_automation(job_name: str, partitions: dg.DynamicPartitionsDefinition):
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
        description="Re-runs missing, failed or outdated analyzers of every registered video.",
    )
    def nightly_backfill(context: dg.ScheduleEvaluationContext):
        settings = load_settings()
        stamp = context.scheduled_execution_time.strftime("%Y%m%d")
        keys = context.instance.get_dynamic_partitions(partitions.name)
        requests = backfill_requests(settings, keys, stamp)
        return requests or dg.SkipReason("every video is up to date")

    return inbox_sensor, nightly_backfill
