"""Shared intermediates on disk: one atomic ``.npz`` per pass inside the media-cache version.

``<media>/.<id>.versions/<version>/passes/<name>-<pass version>[-<key>].npz`` is written once:
the first process to ask takes an exclusive ``flock`` on ``passes/<name>.lock``, computes, writes
to a private temporary file and renames it into place; a process that asks meanwhile waits on the
lock and then reads the file. A missing file (never computed, deleted by hand) is computed again.
The folder goes away with its cache version, so a re-decode never sees old intermediates.

Measured coverage stays honest: an analyzer given a :class:`~tiktok_assets.media_access.TrackedMedia`
that reads an intermediate is recorded as having read the media it was computed from
(:func:`mark_audio`, :func:`mark_lowres`, :func:`lowres_view`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from . import VERSIONS

log = logging.getLogger("tiktok_assets.passes")
FOLDER = "passes"


def base_media(media: Any) -> Any:
    """The plain :class:`MediaCache` behind a TrackedMedia (reading it records nothing)."""
    from ..media_access import TrackedMedia

    return media.media if isinstance(media, TrackedMedia) else media


def pass_path(media: Any, name: str, key: str = "") -> Path:
    """Where pass ``name`` (optionally for ``key``) of this media-cache version lives."""
    suffix = f"-{key}" if key else ""
    return Path(base_media(media).directory) / FOLDER / f"{name}-{VERSIONS[name]}{suffix}.npz"


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _write_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def cached(
    media: Any, name: str, compute: Callable[[], dict[str, np.ndarray]], key: str = ""
) -> dict[str, np.ndarray]:
    """Pass ``name``'s arrays for this media: read from its cache version, or computed once
    (under a file lock, so concurrent processes compute it once) and stored atomically."""
    path = pass_path(media, name, key)
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            return _load(path)
    try:
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path.parent / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only cache: compute without storing
        log.warning("cannot store the %s pass in %s (%s); computing it in memory", name, path.parent, exc)
        return compute()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if path.is_file():  # another process finished it while we waited
            with contextlib.suppress(OSError, ValueError):
                return _load(path)
        began = time.perf_counter()
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        _write_atomic(path, arrays)
        log.info("computed the %s pass for %s in %.2fs", name, base_media(media).video_id, time.perf_counter() - began)
        return arrays
    finally:
        os.close(fd)


def mark_audio(media: Any) -> None:
    """Record that the analyzer read the whole audio (an intermediate computed from all of it)."""
    from ..media_access import TrackedMedia

    if isinstance(media, TrackedMedia):
        media.audio.log.whole()


def mark_lowres(media: Any, indices: Iterable[int] | None = None) -> None:
    """Record low-res frames ``indices`` (all when None) as read."""
    from ..media_access import TrackedMedia

    if not isinstance(media, TrackedMedia):
        return
    if indices is None:
        media.lowres_log.whole()
    else:
        media.lowres_log.record(np.fromiter(indices, dtype=np.int64))


def lowres_view(media: Any, array: np.ndarray) -> Any:
    """``array`` (first axis = low-res frame) as seen by the analyzer: indexing it records those frames."""
    from ..media_access import TrackedArray, TrackedMedia

    return TrackedArray(array, media.lowres_log) if isinstance(media, TrackedMedia) else array
