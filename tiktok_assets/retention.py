"""Media-cache retention: a video's decoded media is deleted once every analyzer is up to date on it,
and decoded again from the source file when an analyzer needs it later.

The media cache is ~2.9 MB per second of 30 fps video (sampled frames, a low-res stream of every
frame, 16 kHz audio), nearly all of the data root; the warehouse rows are what is kept. The policy is
``Settings.media_retention`` (``TIKTOK_ASSETS_MEDIA_RETENTION``):

* ``evict`` (the default): after a video is scored, its cache is deleted when the last run of every
  registered analyzer succeeded with the analyzer's current code version;
* ``keep``: caches stay until the video is decoded again with other settings.

A version that a reader pins (an open :class:`~tiktok_assets.media.MediaCache`) is never deleted; a
rebuild writes the same versioned layout (the same version name: same source, same settings) and
holds the partition's lock, so an eviction cannot take the cache away between its decode and its
first reader. Intermediates stored inside a version's folder go with it and are recomputed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import analyzers, catalog, media_store
from .config import Settings
from .ingest import IngestError, video_file
from .media import MediaCache, MediaError, build_media_cache
from .versions import code_versions
from .warehouse import MODEL_UNAVAILABLE

# last-run statuses after which nothing is left to do with the current version
SETTLED = ("success", MODEL_UNAVAILABLE)

logger = logging.getLogger("tiktok_assets")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Eviction:
    """What an eviction of one video's media cache did."""

    video_id: str
    evicted: bool
    freed_bytes: int
    reason: str  # one sentence: what was deleted, or why the cache was kept


def outdated_analyzers(settings: Settings, video_id: str) -> list[str]:
    """The registered analyzers whose last run on ``video_id`` did not settle with their current code
    version (never ran, failed, or ran an older version or other settings); a run that found its model
    unavailable is settled (a configured model changes the code version)."""
    specs = analyzers.all_specs()
    runs = catalog.warehouse(settings).read("analyzer_runs", video_id)
    latest = {r["analyzer"]: r for r in (runs.to_pylist() if runs is not None else [])}
    versions = code_versions(settings, specs)
    return [
        name for name in specs
        if (run := latest.get(name)) is None or run["status"] not in SETTLED or run["code_version"] != versions[name]
    ]


def evict_media_cache(settings: Settings, video_id: str, force: bool = False) -> Eviction:
    """Delete the media cache of ``video_id`` if every analyzer is up to date on it (any time with
    ``force``); a version that a reader holds open is kept, as is the cache while it is being rebuilt."""
    out_dir = settings.media_dir / video_id
    folder = media_store.versions_dir(out_dir)
    if out_dir.is_dir() and not out_dir.is_symlink():
        return Eviction(video_id, False, 0, "kept: a cache folder from before versions (decode it again first)")
    if not out_dir.is_symlink() and not any(folder.iterdir() if folder.is_dir() else ()):
        return Eviction(video_id, False, 0, "nothing to evict: the video has no media cache")
    if not force:
        outdated = outdated_analyzers(settings, video_id)
        if outdated:
            names = ", ".join(outdated[:5]) + (f" and {len(outdated) - 5} more" if len(outdated) > 5 else "")
            return Eviction(video_id, False, 0, f"kept: {len(outdated)} analyzer(s) not up to date ({names})")
    with media_store.partition_lock(out_dir, blocking=False) as held:
        if not held:
            return Eviction(video_id, False, 0, "kept: the cache is being rebuilt right now")
        freed, kept = media_store.evict(out_dir)
    if kept:
        return Eviction(video_id, False, freed, f"kept version(s) {', '.join(kept)}: a reader is using them")
    return Eviction(video_id, True, freed, f"evicted: {freed / 1e6:.1f} MB freed")


def evict_media_caches(
    settings: Settings, video_ids: Iterable[str] | None = None, force: bool = False
) -> list[Eviction]:
    """Evict the caches of ``video_ids`` (every video in the media folder when None); see
    :func:`evict_media_cache`."""
    if video_ids is None:
        found = set()
        for path in settings.media_dir.iterdir() if settings.media_dir.is_dir() else []:
            if path.name.startswith(".") and path.name.endswith(".versions"):
                found.add(path.name[1:-len(".versions")])
            elif not path.name.startswith("."):
                found.add(path.name)
        video_ids = sorted(found)
    return [evict_media_cache(settings, video_id, force=force) for video_id in video_ids]


def evict_if_done(settings: Settings, video_id: str, log: Log | None = None) -> Eviction | None:
    """Apply the retention policy after a video was scored: evict its cache when the policy is
    ``evict`` and every analyzer is up to date. An eviction that fails is logged, never raised (the
    score is written by then)."""
    if settings.media_retention != "evict":
        return None
    try:
        result = evict_media_cache(settings, video_id)
    except OSError as exc:
        (log or logger.warning)(f"media cache of {video_id} not evicted: {exc}")
        return None
    if result.evicted or result.freed_bytes:
        (log or logger.info)(f"media cache of {video_id} {result.reason}")
    return result


def analyzed_duration_s(settings: Settings, video_id: str) -> float:
    """The video's duration: from its media cache while that is on disk, else from its ``videos`` row."""
    try:
        with MediaCache(settings.media_dir / video_id) as media:
            return media.duration_s
    except MediaError:
        pass
    videos = catalog.warehouse(settings).read("videos", video_id)
    if videos is None or videos.num_rows == 0:
        raise MediaError(f"video {video_id} has neither a media cache nor a row in the videos table")
    return float(videos.column("duration_s")[0].as_py())


def media_available(settings: Settings, video_id: str) -> bool:
    """Whether an analyzer step can open the media cache of ``video_id``: it is on disk, or it was
    evicted and its source file is there to decode it again (no fetch or ingest needed)."""
    return (settings.media_dir / video_id / "meta.json").is_file() or source_ingested(settings, video_id)


def source_ingested(settings: Settings, video_id: str) -> bool:
    """Whether ``source_video`` fetched the video's file (an analyzer step can then always open its
    media cache: decoded again from the file when evicted). A media cache alone is not enough: the
    CLI's head start (:mod:`tiktok_assets.early_decode`) decodes a new video before it is ingested."""
    try:
        video_file(settings, video_id)
    except IngestError:
        return False
    return True


def ensure_media_cache(settings: Settings, video_id: str, log: Log | None = None) -> MediaCache:
    """An open (pinned) :class:`MediaCache` of ``video_id``; decoded again from the source file first
    when it was evicted or deleted. The caller closes it (``with ensure_media_cache(...) as media``)."""
    out_dir = settings.media_dir / video_id
    with media_store.partition_lock(out_dir):
        try:
            return MediaCache(out_dir)
        except MediaError:
            pass
        try:
            source = video_file(settings, video_id)
        except IngestError:
            raise MediaError(
                f"the media cache of video {video_id} cannot be rebuilt because its source file is missing from "
                f"{settings.videos_dir / video_id} (materialize `source_video` to fetch it again)"
            ) from None
        if log is not None:
            log(f"media cache of {video_id} is not on disk (evicted); decoding {source.name} again")
        build_media_cache(
            source, out_dir, video_id, settings.sample_fps, settings.frame_long_side, settings.lowres_short_side,
            log=log, max_duration_s=settings.max_duration_s,
        )
        return MediaCache(out_dir)
