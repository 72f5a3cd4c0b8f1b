"""The inbox sensor: a cursor so unchanged files are hashed once, processed files moved, URL lines
resolved once, and a distinct reason for every tick that starts nothing."""

from __future__ import annotations

import json
import os
import shutil
import time

import dagster as dg
import pytest

from tiktok_assets import automation, ids

URL = "https://www.tiktok.com/@cook/video/7301234567890123456"


@pytest.fixture()
def inbox_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOK_ASSETS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TIKTOK_ASSETS_ALLOW_PRIVATE_URLS", "1")  # no DNS on the test machine
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture()
def hashed(monkeypatch):
    """Paths whose content was hashed (every call of ids.file_content_id)."""
    calls: list[str] = []
    real = ids.file_content_id

    def counting(path, *args, **kwargs):
        calls.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ids, "file_content_id", counting)
    return calls


@pytest.fixture()
def resolved(monkeypatch):
    """Sources handed to register_source by the sensor."""
    calls: list[str] = []
    real = automation.register_source

    def counting(settings, source):
        calls.append(source)
        return real(settings, source)

    monkeypatch.setattr(automation, "register_source", counting)
    return calls


def tick(instance, cursor=None):
    from tiktok_assets.definitions import defs

    sensor = defs.resolve_sensor_def("inbox_sensor")
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
        result = sensor(context)
        return result, (result.cursor if isinstance(result, dg.SensorResult) else context.cursor)


def drop(path, source, age_s: float = 60.0):
    shutil.copyfile(source, path)
    old = time.time() - age_s
    os.utime(path, (old, old))
    return path


def test_skip_reasons_are_distinct(inbox_home):
    instance = dg.DagsterInstance.ephemeral()
    result, cursor = tick(instance)
    assert isinstance(result, dg.SkipReason) and result.skip_message.startswith("inbox missing")
    inbox = inbox_home / "inbox"
    inbox.mkdir()
    result, cursor = tick(instance, cursor)
    assert result.skip_message == "nothing new in the inbox"
    (inbox / "copying.mp4").write_bytes(b"\x00" * 1000)  # modified just now
    result, cursor = tick(instance, cursor)
    assert result.skip_message.startswith("file still being written: copying.mp4")


def test_a_file_is_hashed_once_and_moved_to_processed(inbox_home, sample, hashed, resolved):
    instance = dg.DagsterInstance.ephemeral()
    inbox = inbox_home / "inbox"
    inbox.mkdir()
    drop(inbox / "clip.mp4", sample.path)
    (inbox / "urls.txt").write_text(f"# my list\n{URL}\n")
    result, cursor = tick(instance)
    assert isinstance(result, dg.SensorResult)
    # videos registered in one tick share a run: one request over the range of both partitions
    (request,) = result.run_requests
    keys = sorted([request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]])
    assert request.partition_key is None
    file_key = ids.file_content_id(inbox / "processed" / "clip.mp4")
    assert keys == sorted([file_key, "7301234567890123456"])
    hashed.clear()
    assert not (inbox / "clip.mp4").exists() and (inbox / "processed" / "clip.mp4").is_file()
    record = json.loads((inbox_home / "sources" / f"{file_key}.json").read_text())
    assert record["source"] == str((inbox / "processed" / "clip.mp4").resolve())
    assert json.loads(cursor)["urls"] == {URL: "7301234567890123456"}
    instance.add_dynamic_partitions("videos", keys)
    for _ in range(3):  # later ticks: nothing hashed, the URL not resolved again
        result, cursor = tick(instance, cursor)
        assert result.skip_message == "nothing new in the inbox"
    assert hashed == [] and resolved.count(URL) == 1


def test_a_file_that_cannot_be_moved_is_marked_in_the_cursor(inbox_home, sample, hashed, monkeypatch):
    def refuse(path):
        raise PermissionError("read-only inbox")

    monkeypatch.setattr(automation, "_move_to_processed", refuse, raising=False)
    instance = dg.DagsterInstance.ephemeral()
    inbox = inbox_home / "inbox"
    inbox.mkdir()
    clip = drop(inbox / "clip.mp4", sample.path)
    result, cursor = tick(instance)
    (request,) = result.run_requests
    size, mtime_ns, key = json.loads(cursor)["files"][str(clip)]
    assert (size, key) == (clip.stat().st_size, request.partition_key) and mtime_ns == clip.stat().st_mtime_ns
    assert hashed == ["clip.mp4"]
    instance.add_dynamic_partitions("videos", [key])
    for _ in range(3):  # 50 unchanged 1 GB files would be 50 GB hashed per tick without this
        result, cursor = tick(instance, cursor)
        assert result.skip_message == "nothing new in the inbox"
    assert hashed == ["clip.mp4"]
    with open(clip, "ab") as handle:  # changed content: hashed again, a new video
        handle.write(b"\x00" * 16)
    old = time.time() - 60
    os.utime(clip, (old, old))
    result, cursor = tick(instance, cursor)
    assert hashed == ["clip.mp4", "clip.mp4"] and result.run_requests[0].partition_key != key


def test_symlinks_out_of_the_inbox_are_not_followed(tmp_path, sample):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = drop(tmp_path / "private.mp4", sample.path)
    (inbox / "link.mp4").symlink_to(outside)
    (inbox / "urls.txt").symlink_to(tmp_path / "elsewhere.txt")
    (tmp_path / "elsewhere.txt").write_text(URL + "\n")
    assert automation.inbox_sources(inbox) == []
    scan = automation.scan_inbox(inbox)
    assert sorted(p.name for p, _ in scan.refused) == ["link.mp4", "urls.txt"]
