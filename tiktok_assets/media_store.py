"""Immutable, versioned media caches: a decode never changes files that a reader may still open.

Layout of one partition ``<media>/<id>``::

    <media>/<id>                          symlink to .<id>.versions/<version>, swapped atomically
    <media>/.<id>.versions/<version>/     a complete cache, never modified again (holds a ``.lock`` file)
    <media>/.<id>.versions/.tmp-<pid>-*   a decode in progress (its builder holds an exclusive lock)
    <media>/.<id>.versions/.trash-*       a version being deleted

``<version>`` is a hash of the source bytes, the decode settings and :data:`DECODER_VERSION`, so the
same input is never decoded twice. A reader takes a shared ``flock`` on the version's ``.lock`` for
as long as it reads; an old version is deleted only when an exclusive lock can be taken, otherwise
the next decode of that partition tries again. Temporaries of killed decodes are removed the same
way (their lock died with their process).

Retention (:mod:`tiktok_assets.retention`) deletes a partition's cache altogether with :func:`evict`
under :func:`partition_lock`, a lock on the versions folder that a rebuild holds as well; a version
a reader pins survives an eviction like it survives a re-decode.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from .run_guard import process_alive

DECODER_VERSION = "2"  # bump when the decoder's output changes for the same input
LOCK_NAME = ".lock"
_LEGACY_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old|link)-(?P<pid>\d+)(?:-[0-9a-f]+)?$")


def versions_dir(out_dir: Path) -> Path:
    """The folder that holds every version of the partition ``out_dir``."""
    return out_dir.parent / f".{out_dir.name}.versions"


def version_key(source: Path, settings: dict) -> str:
    """A short hash of the source's bytes, the decode settings and the decoder version."""
    digest = hashlib.sha256(json.dumps({"decoder": DECODER_VERSION, **settings}, sort_keys=True).encode())
    with open(source, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:20]


def _try_lock(path: Path, mode: int) -> int | None:
    """An fd holding ``mode`` (LOCK_SH/LOCK_EX, non-blocking) on ``path``; None if busy or absent."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def new_build(out_dir: Path) -> tuple[Path, int]:
    """Create a private temporary folder for a decode; return it and the fd that locks it."""
    folder = versions_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    lock = tmp / LOCK_NAME
    lock.touch()
    fd = os.open(lock, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return tmp, fd


def discard_build(tmp: Path, fd: int) -> None:
    """Remove a failed decode's temporary folder."""
    shutil.rmtree(tmp, ignore_errors=True)
    os.close(fd)


def existing_version(out_dir: Path, version: str) -> Path | None:
    """The complete folder of ``version`` if it was decoded before."""
    path = versions_dir(out_dir) / version
    return path if (path / "meta.json").is_file() else None


def publish(tmp: Path, fd: int, out_dir: Path, version: str) -> Path:
    """Turn the finished ``tmp`` into version ``version``, point ``out_dir`` at it, drop unused versions."""
    target = versions_dir(out_dir) / version
    for path in tmp.iterdir():
        path.chmod(0o444)  # immutable from now on
    try:
        os.rename(tmp, target)
    except OSError:  # another decode of the same input finished first; its result is identical
        if not (target / "meta.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        os.close(fd)
    point(out_dir, target)
    collect(out_dir)
    return target


def point(out_dir: Path, target: Path) -> None:
    """Atomically make ``out_dir`` a symlink to ``target`` (a cache folder from before versions is kept
    as one more version, so its readers are not disturbed)."""
    if out_dir.is_dir() and not out_dir.is_symlink():
        legacy = versions_dir(out_dir) / f"legacy-{secrets.token_hex(4)}"
        (out_dir / LOCK_NAME).touch()
        os.replace(out_dir, legacy)
    link = out_dir.with_name(f".{out_dir.name}.link-{os.getpid()}-{secrets.token_hex(4)}")
    os.symlink(os.path.relpath(target, out_dir.parent), link)
    os.replace(link, out_dir)


def _current(out_dir: Path) -> Path | None:
    return out_dir.resolve() if out_dir.is_symlink() else None


def _remove(path: Path) -> None:
    """Delete a version or temporary folder unless someone holds its lock."""
    fd = _try_lock(path / LOCK_NAME, fcntl.LOCK_EX)
    if fd is None:
        if (path / LOCK_NAME).exists():
            return  # a reader or a running decode holds it; a later run retries
        match = re.match(r"^\.tmp-(\d+)-", path.name)
        if match and process_alive(int(match[1])):
            return  # a decode that has not taken its lock yet
    try:
        trash = path.with_name(f".trash-{secrets.token_hex(4)}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, trash)
            _delete_tree(trash)
    finally:
        if fd is not None:
            os.close(fd)


def collect(out_dir: Path) -> list[str]:
    """Remove what no reader or decode uses: old versions, temporaries of killed decodes, trash;
    return the names removed."""
    removed = []
    folder = versions_dir(out_dir)
    current = _current(out_dir)
    if folder.is_dir():
        for path in folder.iterdir():
            if current is not None and path.resolve() == current:
                continue
            if path.name.startswith(".trash-"):
                _delete_tree(path)
                removed.append(path.name)
                continue
            _remove(path)
            if not path.exists():
                removed.append(path.name)
    for path in out_dir.parent.glob(f".{out_dir.name}.*-*"):
        match = _LEGACY_TEMP.match(path.name)
        if match and match["name"] == out_dir.name and not process_alive(int(match["pid"])):
            if path.is_symlink() or path.is_file():
                path.unlink(missing_ok=True)
            else:
                shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def open_version(directory: Path, attempts: int = 100) -> tuple[Path, int | None]:
    """Resolve ``directory`` to the complete version it names and hold a shared lock on it.

    Returns the version folder and the lock's fd (None for a cache folder from before versions).
    Raises FileNotFoundError when there is no complete cache.
    """
    directory = Path(directory)
    for _ in range(attempts):
        real = directory.resolve()
        lock = real / LOCK_NAME
        if not lock.exists():
            if (real / "meta.json").is_file() and not directory.is_symlink():
                return real, None  # a cache written before versions existed
            if not directory.is_symlink():
                break
            continue  # the version was just replaced; resolve again
        try:
            fd = os.open(lock, os.O_RDONLY)
        except FileNotFoundError:
            continue
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same and (real / "meta.json").is_file():
            return real, fd
        os.close(fd)
    raise FileNotFoundError(directory)


def release(fd: int | None) -> None:
    """Let go of a reader's lock."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


@contextlib.contextmanager
def partition_lock(out_dir: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold the partition's lock (an exclusive ``flock`` on its versions folder) while its cache is
    checked and rebuilt, or evicted; yields False instead of waiting when not ``blocking`` and busy."""
    folder = versions_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def disk_usage(path: Path) -> int:
    """Bytes that the files under ``path`` occupy on disk (links not followed)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def _delete_tree(path: Path) -> None:
    """Remove a folder that may hold read-only parts (published files, subfolders written by others)."""

    def writable_then_retry(func, name, _exc) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), 0o755)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, 0o755)
                shutil.rmtree(name, ignore_errors=True)
            else:
                func(name)

    shutil.rmtree(path, onerror=writable_then_retry)


def evict(out_dir: Path) -> tuple[int, list[str]]:
    """Delete the partition's cache: every version that no reader or decode holds, the current one
    included (then the link to it goes too); return the bytes freed and the names of the versions
    kept because they are in use. Call it under :func:`partition_lock`."""
    freed, kept = 0, []
    folder = versions_dir(out_dir)
    if out_dir.is_symlink():
        current = out_dir.resolve()
        fd = _try_lock(current / LOCK_NAME, fcntl.LOCK_EX)
        if fd is None and (current / LOCK_NAME).exists():
            kept.append(current.name)  # pinned by a reader: it stays current, nothing is lost
        else:
            try:
                out_dir.unlink()  # from here on, readers find no cache and a rebuild starts
                if current.is_dir() and current.parent == folder.resolve():
                    size = disk_usage(current)
                    trash = current.with_name(f".trash-{secrets.token_hex(4)}")
                    os.rename(current, trash)
                    _delete_tree(trash)
                    freed += size
            finally:
                if fd is not None:
                    os.close(fd)
    if folder.is_dir():
        current = _current(out_dir)
        for path in folder.iterdir():
            if current is not None and path.resolve() == current:
                continue
            size = disk_usage(path)
            if path.name.startswith(".trash-"):
                _delete_tree(path)
            else:
                _remove(path)
            if path.exists():
                if not path.name.startswith(".tmp-"):
                    kept.append(path.name)
            else:
                freed += size
    return freed, kept
