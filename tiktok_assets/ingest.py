"""Register sources and ingest them: download (yt-dlp) or copy, then probe.

``register_source`` maps a URL or path to its video ID and remembers the source under
``sources/<id>.json``; ``ingest`` fetches it into ``videos/<id>/`` (built in a temporary folder and
swapped in, so a failed download keeps the previous copy) and returns the ``videos`` table row.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .atomic_files import write_text_atomic
from .config import Settings
from .ids import file_content_id, is_url, key_for_source, validate_key
from .media import MediaError, probe
from .netguard import DownloadGuard, address_is_public
from .run_guard import process_alive
from .terminal import user_message

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"}
DOWNLOAD_DEADLINE_S = 900.0
"""A download (page, redirects and media) that takes longer is stopped."""
DOWNLOAD_STALL_S = 60.0
"""A download that receives less than one block (``DOWNLOAD_BLOCK_BYTES``) in this time is stopped."""
DOWNLOAD_BLOCK_BYTES = 64 * 1024
"""Fixed read size: progress (and so the byte limit) is checked at least every 64 KiB."""
SOCKET_TIMEOUT_S = 20.0
# Only protocols that yt-dlp downloads itself (through the guarded sockets), never through
# external programs (ffmpeg would connect without the address policy).
DOWNLOAD_FORMAT = "best[ext=mp4][protocol^=http]/best[protocol^=http]"


class IngestError(RuntimeError):
    """A source that cannot be fetched; the message is one sentence meant for the user."""


def check_url_allowed(url: str, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts on loopback/private/reserved networks."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise IngestError(f"refusing URL {url!r}: only http and https are supported")
    host = parsed.hostname
    if not host:
        raise IngestError(f"refusing URL {url!r}: it has no host name")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, parsed.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise IngestError(f"cannot resolve host {host!r} of {url!r} ({exc.strerror})") from exc
    for info in infos:
        address = info[4][0].split("%")[0]
        if not address_is_public(address):
            raise IngestError(
                f"refusing URL {url!r}: {host} resolves to the non-public address {address} "
                "(set TIKTOK_ASSETS_ALLOW_PRIVATE_URLS=1 to allow it)"
            )


def source_record(settings: Settings, source: str) -> dict[str, str]:
    """``{"source": URL or resolved path, "kind": "url" | "file"}`` for a source that may be
    registered (the URL policy, the file's existence, inbox links); raises IngestError otherwise."""
    source = source.strip()
    if is_url(source):
        check_url_allowed(source, settings.allow_private_urls)
        return {"source": source, "kind": "url"}
    given = Path(source).expanduser().absolute()
    path = given.resolve()
    _refuse_links_out_of_inbox(settings, given, path)
    if not path.is_file():
        raise IngestError(f"no such video file: {path}")
    return {"source": str(path), "kind": "file"}


def register_source(settings: Settings, source: str) -> str:
    """Remember ``source`` under its video ID and return the ID."""
    record = source_record(settings, source)
    key = validate_key(key_for_source(record["source"]))
    settings.sources_dir.mkdir(parents=True, exist_ok=True)
    record["registered_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_text_atomic(settings.sources_dir / f"{key}.json", json.dumps(record, indent=2))
    return key


def _refuse_links_out_of_inbox(settings: Settings, given: Path, resolved: Path) -> None:
    """A path in the inbox must stay in the inbox once symlinks are followed."""
    inbox = settings.home / "inbox"
    if not given.is_relative_to(inbox.absolute()):
        return
    if not resolved.is_relative_to(inbox.resolve()):
        raise IngestError(f"refusing inbox entry {given.name}: it links to {resolved}, outside the inbox")


def _size(n_bytes: float) -> str:
    mb = n_bytes / 1024**2
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.2f} MB"


def clean_stale_temporaries(folder: Path, key: str) -> list[Path]:
    """Remove ``.<key>.tmp-<pid>`` / ``.<key>.old-<pid>`` left by processes that are gone."""
    removed = []
    for path in folder.glob(f".{key}.*-*") if folder.is_dir() else []:
        pid = path.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or (int(pid) != os.getpid() and process_alive(int(pid))):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def registered_source(settings: Settings, key: str) -> dict[str, str]:
    path = settings.sources_dir / f"{validate_key(key)}.json"
    if not path.is_file():
        raise IngestError(
            f"video {key!r} has no registered source; add it with `tiktok-assets add URL_OR_PATH`"
        )
    return json.loads(path.read_text())


def _download(url: str, folder: Path, settings: Settings, log) -> tuple[Path, dict[str, Any]]:
    import yt_dlp

    class _Logger:
        def debug(self, msg: str) -> None:
            if log and not msg.startswith("[debug]"):
                log(msg)

        info = debug

        def warning(self, msg: str) -> None:
            if log:
                log(f"yt-dlp warning: {msg}")

        def error(self, msg: str) -> None:
            if log:
                log(f"yt-dlp error: {msg}")

    guard = DownloadGuard(
        settings.allow_private_urls, settings.max_file_bytes, DOWNLOAD_DEADLINE_S, DOWNLOAD_STALL_S, folder
    )

    def hook(status: dict[str, Any]) -> None:
        guard.progress(status.get("downloaded_bytes"))

    options = {
        "outtmpl": str(folder / "source.%(ext)s"),
        "format": DOWNLOAD_FORMAT,
        "external_downloader": {"default": "native"},
        "noplaylist": True,
        "noprogress": True,
        "quiet": True,
        "max_filesize": settings.max_file_bytes,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "buffersize": DOWNLOAD_BLOCK_BYTES,
        "noresizebuffer": True,
        "retries": 2,
        "fragment_retries": 2,
        "concurrent_fragment_downloads": 1,  # fragments in this thread, under the guard
        "progress_hooks": [hook],
        "logger": _Logger(),
    }
    began = time.monotonic()
    failure: BaseException | None = None
    info: dict[str, Any] | None = None
    with guard:
        try:
            with yt_dlp.YoutubeDL(options) as ydl:
                info = ydl.extract_info(url, download=True)
                info = ydl.sanitize_info(info) if info else {}
        except (yt_dlp.utils.YoutubeDLError, OSError) as exc:
            failure = exc
    if guard.blocked:
        raise IngestError(
            f"refusing URL {url!r}: the download tried to connect to the non-public address "
            f"{guard.blocked[0]} (through a redirect, a link in the page or changed DNS; "
            "set TIKTOK_ASSETS_ALLOW_PRIVATE_URLS=1 to allow it)"
        ) from failure
    if guard.reason:
        raise IngestError(
            f"download of {url} stopped after {time.monotonic() - began:.0f} s and "
            f"{guard.received / 1024**2:.1f} MB: {guard.reason}"
        ) from failure
    if failure is not None:
        message = re.sub(r"^ERROR:\s*", "", str(failure)).strip()
        if "No space left on device" in message or "Disk quota exceeded" in message:
            raise IngestError(f"could not save {url}: {user_message(OSError(28, message, str(folder)))}") from failure
        raise IngestError(f"could not download {url}: {message}") from failure
    files = [p for p in folder.iterdir() if p.name.startswith("source.") and not p.name.endswith(".part")]
    if not files:
        raise IngestError(f"could not download {url}: yt-dlp wrote no file (larger than the size limit?)")
    return files[0], info or {}


def _copy(path: Path, folder: Path, settings: Settings) -> Path:
    if not path.is_file():
        raise IngestError(f"video file not found: {path}")
    size = path.stat().st_size
    if size > settings.max_file_bytes:
        limit = settings.max_file_bytes
        shown = f"{_size(size)} ({size} bytes)" if _size(size) == _size(limit) else _size(size)
        raise IngestError(
            f"{path} is {shown}, above the limit of {limit / 1024**2:g} MB (TIKTOK_ASSETS_MAX_FILE_MB)"
        )
    suffix = path.suffix.lower() if path.suffix.lower() in VIDEO_SUFFIXES else ".video"
    target = folder / f"source{suffix}"
    try:
        shutil.copyfile(path, target)
    except OSError as exc:
        raise IngestError(f"could not copy {path}: {user_message(exc)}") from exc
    return target


def metadata_from_info(info: dict[str, Any]) -> dict[str, Any]:
    """The ``videos`` columns that yt-dlp knows (creator, caption, hashtags, music, counts, date)."""
    caption = info.get("description") or info.get("title")
    tags = [t.lstrip("#") for t in (info.get("tags") or []) if t]
    if caption:
        tags += [t for t in re.findall(r"#(\w+)", caption) if t not in tags]
    track, artist = info.get("track"), info.get("artist") or (info.get("artists") or [None])[0]
    music = " - ".join(x for x in (artist, track) if x) or None
    upload = info.get("upload_date")
    if upload and re.fullmatch(r"\d{8}", upload):
        upload = f"{upload[:4]}-{upload[4:6]}-{upload[6:]}"

    def count(name: str) -> int | None:
        value = info.get(name)
        return int(value) if isinstance(value, (int, float)) else None

    return {
        "creator": info.get("uploader") or info.get("creator") or info.get("channel"),
        "caption": caption,
        "hashtags": tags or None,
        "music_title": music,
        "view_count": count("view_count"),
        "like_count": count("like_count"),
        "comment_count": count("comment_count"),
        "repost_count": count("repost_count"),
        "upload_date": upload,
    }


def video_file(settings: Settings, key: str) -> Path:
    folder = settings.videos_dir / validate_key(key)
    files = sorted(folder.glob("source.*")) if folder.is_dir() else []
    if not files:
        raise IngestError(f"video {key!r} has not been ingested; materialize `source_video` first")
    return files[0]


def ingest(settings: Settings, key: str, log=None) -> dict[str, Any]:
    """Fetch the registered source of ``key``; return its ``videos`` row."""
    record = registered_source(settings, key)
    source = record["source"]
    final = settings.videos_dir / key
    for stale in clean_stale_temporaries(settings.videos_dir, key):
        if log:
            log(f"removed {stale.name}, left by an earlier run that was stopped")
    tmp = settings.videos_dir / f".{key}.tmp-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        info: dict[str, Any] = {}
        if record["kind"] == "url":
            check_url_allowed(source, settings.allow_private_urls)
            path, info = _download(source, tmp, settings, log)
            try:
                facts = probe(path)
            except MediaError as exc:
                detail = str(exc).replace(path.name, "the downloaded file")
                raise IngestError(f"{source} did not give a readable video: {detail}") from exc
        else:
            try:
                facts = probe(Path(source))  # before copying, so errors name the user's file
            except MediaError as exc:
                raise IngestError(str(exc)) from exc
            path = _copy(Path(source), tmp, settings)
            content = file_content_id(path)  # the bytes we got, not those seen at `add`
            if content != key:
                raise IngestError(
                    f"{source} changed since it was added as video {key} (its content is now {content}); "
                    "add it again to analyze the new content"
                )
        if facts.duration_s > settings.max_duration_s:
            raise IngestError(
                f"{source} lasts {facts.duration_s:.1f}s, above the limit of "
                f"{settings.max_duration_s:g}s (TIKTOK_ASSETS_MAX_DURATION_S)"
            )
        if info:
            keep = {k: info.get(k) for k in ("id", "title", "description", "tags", "uploader", "webpage_url", "extractor")}
            (tmp / "info.json").write_text(json.dumps(keep, indent=2, default=str))
        old = settings.videos_dir / f".{key}.old-{os.getpid()}"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "video_id": key,
        "source": source,
        "source_kind": record["kind"],
        "duration_s": round(facts.duration_s, 3),
        "fps": facts.fps,
        "width": facts.width,
        "height": facts.height,
        "video_codec": facts.video_codec,
        "has_audio": facts.has_audio,
        "audio_codec": facts.audio_codec,
        "size_bytes": facts.size_bytes,
        **metadata_from_info(info),
        "ingested_at": datetime.now(UTC).replace(microsecond=0),
    }
