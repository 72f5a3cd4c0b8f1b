"""Ingest: URL safety, a real yt-dlp download from a loopback HTTP server, local copies."""

import functools
import http.server
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from tiktok_assets.ingest import IngestError, check_url_allowed, ingest, metadata_from_info, register_source


@pytest.fixture()
def http_server(tmp_path, sample):
    """Serves a folder with the sample video on 127.0.0.1 (a random free port)."""
    root = tmp_path / "site"
    root.mkdir()
    shutil.copyfile(sample.path, root / "clip.mp4")
    (root / "broken.mp4").write_text("not a video")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/a.mp4", "javascript:alert(1)", "http://127.0.0.1/a.mp4",
     "http://localhost:8080/a.mp4", "http://10.1.2.3/a.mp4", "http://192.168.0.1/a.mp4",
     "http://169.254.169.254/latest/meta-data", "http://[::1]/a.mp4"],
)
def test_unsafe_urls_are_refused(url):
    with pytest.raises(IngestError, match="refusing URL|cannot resolve"):
        check_url_allowed(url, allow_private=False)


def test_loopback_allowed_only_by_configuration():
    check_url_allowed("http://127.0.0.1:9/a.mp4", allow_private=True)
    with pytest.raises(IngestError, match="only http and https"):
        check_url_allowed("file:///etc/passwd", allow_private=True)


def test_yt_dlp_download_from_loopback_server(settings, http_server, sample):
    key = register_source(settings, f"{http_server}/clip.mp4")
    assert key.startswith("u-")
    row = ingest(settings, key)
    assert row["source_kind"] == "url" and row["has_audio"]
    assert row["duration_s"] == pytest.approx(sample.duration_s, abs=0.1)
    assert (row["width"], row["height"]) == (360, 640)
    saved = list((settings.videos_dir / key).glob("source.*"))
    assert saved and saved[0].stat().st_size == Path(sample.path).stat().st_size


def test_unreachable_url_and_non_video_fail_clearly_and_keep_the_old_copy(settings, http_server):
    key = register_source(settings, f"{http_server}/clip.mp4")
    ingest(settings, key)
    before = sorted(p.name for p in (settings.videos_dir / key).iterdir())
    # the same ID now points at a server that is gone
    record = settings.sources_dir / f"{key}.json"
    record.write_text(record.read_text().replace(http_server, "http://127.0.0.1:9"))
    with pytest.raises(IngestError, match="could not download"):
        ingest(settings, key)
    assert sorted(p.name for p in (settings.videos_dir / key).iterdir()) == before
    broken = register_source(settings, f"{http_server}/broken.mp4")
    with pytest.raises(IngestError, match="did not give a readable video: the downloaded file is not") as caught:
        ingest(settings, broken)
    assert "source." not in str(caught.value)  # no internal file names in messages
    assert not (settings.videos_dir / broken).exists()
    assert not [p for p in settings.videos_dir.iterdir() if ".tmp-" in p.name]


def test_local_file_is_copied_and_limits_apply(settings, sample, tmp_path):
    key = register_source(settings, sample.path)
    row = ingest(settings, key)
    assert row["source_kind"] == "file" and row["video_codec"] == "h264" and row["audio_codec"] == "aac"
    with pytest.raises(IngestError, match="above the limit"):
        ingest(replace(settings, max_duration_s=5.0), key)
    with pytest.raises(IngestError, match="above the limit"):
        ingest(replace(settings, max_file_bytes=1000), key)
    with pytest.raises(IngestError, match="no such video file"):
        register_source(settings, str(tmp_path / "missing.mp4"))


def test_tiktok_metadata_is_kept():
    info = {
        "id": "7301234567890123456", "uploader": "kochkanal", "description": "Pasta in 5 min #kochen #pasta",
        "tags": ["kochen"], "track": "Original Sound", "artist": "kochkanal", "view_count": 1200,
        "like_count": 85, "comment_count": 7, "repost_count": 3, "upload_date": "20261101",
    }
    meta = metadata_from_info(info)
    assert meta["creator"] == "kochkanal" and meta["caption"].startswith("Pasta")
    assert meta["hashtags"] == ["kochen", "pasta"]
    assert meta["music_title"] == "kochkanal - Original Sound"
    assert (meta["view_count"], meta["like_count"], meta["comment_count"], meta["repost_count"]) == (1200, 85, 7, 3)
    assert meta["upload_date"] == "2026-11-01"
