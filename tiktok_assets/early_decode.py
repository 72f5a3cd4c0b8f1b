"""A head start: a run's first video file is decoded in a helper process while Dagster starts.

Before the run's ``media`` step can decode anything, the command spends about two seconds on one
core importing Dagster, opening the instance and planning the run, while decoding a 49 s
1080x1920 clip keeps both cores of a 2-core machine busy for about three. So the command starts
the decode of its first local video file in a helper process at once (:func:`head_start`). The
helper holds the partition's lock while it decodes (:func:`media_store.partition_lock`); the
``media`` step takes the same lock, so it waits for the helper and then finds the version it
published. Versions are keyed by the source's bytes and the decode settings, so the step uses the
helper's work only when it would have produced the same (a file changed since, or other settings,
is decoded again by the step).

The helper only saves time: it decodes nothing that the step would not, it stays silent (a video
it cannot decode is met and reported by the step), it gives way when someone else already holds
the lock, and the command stops it when it ends. URLs get no head start (the step downloads them
first), nor does a file over the size limit; the helper skips a video whose media cache is on disk.

Runs of the multiprocess executor (UI, sensors, schedule) get the same for their first video
(:func:`start_for_video`, from ``executors/multiprocess.py``) while the fork server imports its
modules: from the fetched copy when ``source_video`` ran before, else from the registered file.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .config import Settings


def start(settings: Settings, sources: Sequence[str]) -> subprocess.Popen | None:
    """Start decoding the first local file among ``sources`` (URLs are skipped) in a helper process,
    when it passes :func:`ingest.source_record`'s checks and the size limit; None otherwise."""
    from .ids import is_url
    from .ingest import IngestError, source_record

    for source in sources:
        if is_url(source.strip()):
            continue
        try:
            path = Path(source_record(settings, source)["source"])
        except (IngestError, ValueError, OSError):
            return None  # the command names the problem itself
        return _spawn(settings, path, None)  # a file's video ID is its content's: the helper hashes it
    return None


def start_for_video(settings: Settings, video_id: str) -> subprocess.Popen | None:
    """Start decoding a registered video in a helper process (a run's first video, while the run's
    steps start): its fetched copy when ``source_video`` ran before, else its registered file
    (checked again as at registration); None when its media cache is on disk, for a URL not
    fetched yet, or on any doubt."""
    from .ingest import IngestError, registered_source, source_record, video_file
    from .media import cache_ready

    try:
        if cache_ready(settings.media_dir / video_id):
            return None
        return _spawn(settings, video_file(settings, video_id), video_id)  # what source_video fetched
    except (IngestError, ValueError, OSError):
        pass
    try:
        record = registered_source(settings, video_id)
        if record.get("kind") != "file":
            return None
        path = Path(source_record(settings, record["source"])["source"])
        return _spawn(settings, path, video_id, verify=True)  # only if its content is still the video's
    except (IngestError, ValueError, OSError, KeyError):
        return None


def _spawn(settings: Settings, path: Path, video_id: str | None, verify: bool = False) -> subprocess.Popen | None:
    """The helper process decoding ``path`` into the media cache of ``video_id`` (None: the ID of
    the file's content, as a local file's; ``verify``: only if that is the file's content ID, so a
    file changed since it was registered is left to ``source_video`` to refuse); None for a file over
    the size limit (the step refuses it: not worth reading)."""
    if path.stat().st_size > settings.max_file_bytes:
        return None
    command = [
        sys.executable, "-m", "tiktok_assets.early_decode", (f"={video_id}" if verify else video_id) or "-", str(path),
        str(settings.media_dir),
        repr(settings.sample_fps), str(settings.frame_long_side), str(settings.lowres_short_side),
        repr(settings.max_duration_s),
    ]
    package_root = str(Path(__file__).resolve().parent.parent)  # importable however this one was
    python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": python_path})


@contextlib.contextmanager
def running(helper: subprocess.Popen | None) -> Iterator[subprocess.Popen | None]:
    """The block with ``helper`` decoding; at its end the helper is stopped (if it still runs) and
    waited for, so that no decode outlives the command or run that started it."""
    try:
        yield helper
    finally:
        if helper is not None:
            if helper.poll() is None:
                helper.terminate()
            helper.wait()


def head_start(settings: Settings, sources: Sequence[str]):
    """The CLI's head start for ``sources`` (:func:`start`) for the duration of a block."""
    return running(start(settings, sources))


def decode(video_id: str | None, path: Path, media_dir: Path, sample_fps: float, frame_long_side: int,
           lowres_short_side: int, max_duration_s: float, verify: bool = False) -> bool:
    """The helper's work: decode ``path`` into the media cache of ``video_id`` (None: its content's
    ID) under the partition's lock, unless the lock is taken, a complete cache is already there or,
    with ``verify``, the file's content ID is not ``video_id``; returns whether it ran."""
    from . import media_store
    from .ids import file_content_id, validate_key
    from .media import build_media_cache, cache_ready

    key = validate_key(video_id) if video_id else file_content_id(path)
    if verify and file_content_id(path) != key:
        return False
    out_dir = media_dir / key
    if cache_ready(out_dir):
        return False
    with media_store.partition_lock(out_dir, blocking=False) as free:
        if not free:  # the step (or another command) is decoding it already
            return False
        build_media_cache(path, out_dir, key, sample_fps, frame_long_side, lowres_short_side,
                          max_duration_s=max_duration_s)
    return True


def main(argv: Sequence[str]) -> int:
    """``python -m tiktok_assets.early_decode ID PATH MEDIA_DIR SAMPLE_FPS LONG_SIDE SHORT_SIDE MAX_S``;
    ID: the video ID, ``=ID`` (only if it is the file's content ID) or ``-`` (the content ID)."""
    video_id, path, media_dir, fps, long_side, short_side, max_s = argv
    verify = video_id.startswith("=")
    video_id = video_id.lstrip("=")
    gc.disable()  # a short-lived process that makes no reference cycles worth collecting: ~4 % less CPU
    try:
        decode(None if video_id == "-" else video_id, Path(path), Path(media_dir), float(fps), int(long_side),
               int(short_side), float(max_s), verify)
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001 - the step decodes again and reports what is wrong
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
