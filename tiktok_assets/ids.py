"""Video IDs (= Dagster partition keys) and the sources they stand for.

A TikTok URL maps to its numeric video ID, a local file to ``f-`` plus a hash of its content,
any other http(s) URL to ``u-`` plus a hash of the URL. Keys double as directory names and SQL
literals, so only a conservative alphabet is accepted.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlparse

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_TIKTOK_ID = re.compile(r"/(?:video|photo|v)/(\d{6,25})(?:[/?#.]|$)")
_TIKTOK_HOSTS = ("tiktok.com",)


class InvalidVideoKey(ValueError):
    """A partition key that is not a safe path and SQL identifier."""


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is safe, else raise :class:`InvalidVideoKey`."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise InvalidVideoKey(
            f"invalid video ID {key!r}: use 1-64 characters from A-Z, a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return key


def is_url(source: str) -> bool:
    return "://" in source


def tiktok_video_id(url: str) -> str | None:
    """The numeric video ID of a TikTok URL, or None when the URL is not of that form."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    if not any(host == h or host.endswith("." + h) for h in _TIKTOK_HOSTS):
        return None
    match = _TIKTOK_ID.search(parsed.path + "/")
    return match.group(1) if match else None


def file_content_id(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """A stable ID from the file's bytes (SHA-256, first 16 hex digits)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return "f-" + digest.hexdigest()[:16]


def key_for_source(source: str) -> str:
    """The partition key for a URL or a local path (the file must exist)."""
    if is_url(source):
        tiktok_id = tiktok_video_id(source)
        if tiktok_id:
            return tiktok_id
        return "u-" + hashlib.sha256(source.strip().encode()).hexdigest()[:16]
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no such video file: {path}")
    return file_content_id(path)
