"""Automation: an inbox sensor that registers new videos, and a nightly backfill schedule.

* ``inbox_sensor`` watches ``$TIKTOK_ASSETS_HOME/inbox/``: every video file dropped there and every
  URL line in ``inbox/urls.txt`` becomes a partition, and a run of ``analyze_video`` is requested for
  it (once: the run key is the video ID). A registered file is moved to ``inbox/processed/`` (the
  registry points there); where it cannot be moved it is marked in the sensor's cursor instead.
  The cursor (JSON: ``files``: path -> [size, mtime_ns, key]; ``urls``: line -> key) means an
  unchanged file is never hashed twice and a URL line is resolved once. Symlinks are not followed.
  A tick that starts nothing says why: the inbox is missing, a file is still being written, or
  there is nothing new.
* ``nightly_backfill`` (03:00) asks, per registered video, for the analyzers whose last run is
  missing, failed or from an older analyzer version, plus ``reconstruction_scores``.
"""

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from .analyzers import all_specs
from .catalog import warehouse
from .config import Settings, load_settings
from .ingest import VIDEO_SUFFIXES, IngestError, register_source

INBOX_URLS = "urls.txt"
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
        tick = register_inbox(settings, log=context.log.warning, cursor=parse_cursor(context.cursor))
        cursor = json.dumps(tick.cursor, sort_keys=True)
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        new = [k for k in tick.keys if k not in known]
        if new:
            return dg.SensorResult(
                run_requests=[dg.RunRequest(run_key=f"inbox-{k}", partition_key=k) for k in new],
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
        description="Re-runs missing, failed or outdated analyzers of every registered video.",
    )
    def nightly_backfill(context: dg.ScheduleEvaluationContext):
        settings = load_settings()
        stamp = context.scheduled_execution_time.strftime("%Y%m%d")
        keys = context.instance.get_dynamic_partitions(partitions.name)
        requests = backfill_requests(settings, keys, stamp)
        return requests or dg.SkipReason("every video is up to date")

    return inbox_sensor, nightly_backfill
