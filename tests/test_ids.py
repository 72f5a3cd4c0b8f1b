"""Video IDs: TikTok URLs, content hashes for files, and rejection of unsafe keys."""

import pytest

from tiktok_assets.ids import InvalidVideoKey, file_content_id, key_for_source, tiktok_video_id, validate_key


def test_tiktok_url_maps_to_numeric_id():
    url = "https://www.tiktok.com/@some.creator/video/7301234567890123456?is_from_webapp=1"
    assert tiktok_video_id(url) == "7301234567890123456"
    assert key_for_source(url) == "7301234567890123456"
    assert tiktok_video_id("https://m.tiktok.com/v/7301234567890123456.html") == "7301234567890123456"


def test_other_urls_get_a_stable_hash_id():
    assert tiktok_video_id("https://example.com/video/7301234567890123456") is None
    key = key_for_source("https://example.com/clip.mp4")
    assert key.startswith("u-") and key == key_for_source("https://example.com/clip.mp4")
    assert key != key_for_source("https://example.com/other.mp4")


def test_file_id_depends_on_content_not_name(tmp_path):
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    c.write_bytes(b"other bytes")
    assert file_content_id(a) == file_content_id(b) != file_content_id(c)
    assert validate_key(file_content_id(a)) == file_content_id(a)


@pytest.mark.parametrize(
    "key", ["", "../etc", "a/b", "x'; DROP TABLE videos; --", "-starts-with-dash", "a" * 65, "vidéo", "a b"]
)
def test_unsafe_keys_are_rejected(key):
    with pytest.raises(InvalidVideoKey, match="invalid video ID"):
        validate_key(key)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such video file"):
        key_for_source(str(tmp_path / "nope.mp4"))
