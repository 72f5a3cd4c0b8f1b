"""The CLI's head start: its first video decodes in a helper process while Dagster starts, and the
``media`` step uses that decode (or waits for it) instead of decoding the video a second time."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import encode_frames

from tiktok_assets import early_decode, media, media_store, steps
from tiktok_assets.ingest import ingest, register_source
from tiktok_assets.media import MediaCache, build_media_cache


@pytest.fixture()
def root(settings, tmp_path):
    """Settings with a data root of the test's own."""
    return replace(settings, home=tmp_path / "home")


def _count_decodes(monkeypatch) -> list[str]:
    """Record every real decode (the thread it ran in) while still decoding."""
    calls: list[str] = []
    real = media._decode_streams

    def counted(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(media, "_decode_streams", counted)
    return calls


def test_the_media_step_uses_the_head_start_decode(root, sample, monkeypatch):
    with early_decode.head_start(root, ["https://www.tiktok.com/@a/video/1", sample.path]) as helper:
        assert helper is not None  # the URL is skipped, the file gets the head start
        assert helper.wait(timeout=120) == 0
    key = register_source(root, sample.path)
    decoded = MediaCache(root.media_dir / key)
    assert decoded.duration_s == pytest.approx(sample.duration_s, abs=0.1)
    assert decoded.frames.shape[0] >= 2 * int(sample.duration_s) - 1  # 2 fps of the ~11 s sample
    ingest(root, key)
    calls = _count_decodes(monkeypatch)
    meta = steps.decode_media(root, key)
    assert calls == []  # same bytes, same settings: the helper's version is used
    assert meta.version == decoded.meta.version and meta.frame_shape == decoded.meta.frame_shape
    versions = [p for p in media_store.versions_dir(root.media_dir / key).iterdir() if not p.name.startswith(".")]
    assert len(versions) == 1


def test_the_media_step_waits_for_a_decode_in_progress(root, sample, monkeypatch):
    key = register_source(root, sample.path)
    ingest(root, key)
    out_dir = root.media_dir / key
    calls = _count_decodes(monkeypatch)
    holding = threading.Event()

    def other_decoder() -> None:  # what the helper process does, here in a thread
        with media_store.partition_lock(out_dir):
            holding.set()
            time.sleep(0.5)
            build_media_cache(Path(sample.path), out_dir, key, root.sample_fps, root.frame_long_side,
                              root.lowres_short_side)

    other = threading.Thread(target=other_decoder, name="other-decoder")
    other.start()
    assert holding.wait(10)
    logged: list[str] = []
    meta = steps.decode_media(root, key, log_fn=logged.append)
    other.join()
    assert calls == ["other-decoder"]  # one decode in all: the step waited and used it
    assert any("waited" in line and "another decode" in line for line in logged)
    assert meta.duration_s == pytest.approx(sample.duration_s, abs=0.1)


def test_no_head_start_without_a_usable_local_file(root, tmp_path):
    assert early_decode.start(root, ["https://www.tiktok.com/@a/video/1"]) is None
    assert early_decode.start(root, [str(tmp_path / "missing.mp4")]) is None  # the command names it
    assert early_decode.start(root, []) is None


def test_no_head_start_for_a_file_over_the_size_limit(root, sample):
    assert early_decode.start(replace(root, max_file_bytes=1000), [sample.path]) is None


def test_the_helper_gives_way_and_skips_decoded_videos(root, sample, monkeypatch):
    key = register_source(root, sample.path)
    out_dir = root.media_dir / key
    args = (None, Path(sample.path), root.media_dir, root.sample_fps, root.frame_long_side, root.lowres_short_side,
            root.max_duration_s)
    calls = _count_decodes(monkeypatch)
    with media_store.partition_lock(out_dir):  # a step holds the partition: the helper leaves it alone
        done = []
        helper = threading.Thread(target=lambda: done.append(early_decode.decode(*args)))
        helper.start()
        helper.join(10)
        assert done == [False] and calls == []
    assert early_decode.decode(*args) is True and len(calls) == 1
    assert early_decode.decode(*args) is False and len(calls) == 1  # decoded already


def test_the_helper_ends_with_the_command(root, sample):
    with early_decode.head_start(root, [sample.path]) as helper:
        pass  # the command failed or finished at once
    assert helper is not None and helper.poll() is not None


def test_a_video_decoded_ahead_is_still_ingested(settings, tmp_path):
    """A new video whose cache the head start made is fetched by source_video all the same (its
    `videos` row), also with ``--only``, where an ingested video's decode would be skipped."""
    from tiktok_assets import catalog, cli
    from tiktok_assets.retention import source_ingested

    frames = [np.full((64, 36, 3), (40 * i) % 255, np.uint8) for i in range(45)]  # a cut every frame
    clip = encode_frames(tmp_path / "ahead.mp4", frames, fps=15)
    with early_decode.head_start(settings, [str(clip)]) as helper:
        assert helper.wait(timeout=120) == 0
    key = register_source(settings, str(clip))
    assert (settings.media_dir / key / "meta.json").is_file() and not source_ingested(settings, key)
    analyzed, ok = cli.analyze(settings, str(clip), only=["cut_analysis"])
    assert ok and analyzed == key and source_ingested(settings, key)
    row = catalog.warehouse(settings).read("videos", key).to_pylist()[0]
    assert row["duration_s"] == pytest.approx(3.0, abs=0.1) and row["width"] == 36


def test_a_registered_video_gets_a_head_start_from_its_file_or_its_fetched_copy(root, sample, tmp_path):
    copy = tmp_path / "clip.mp4"
    copy.write_bytes(Path(sample.path).read_bytes())
    key = register_source(root, str(copy))
    original = copy.read_bytes()
    copy.write_bytes(original[:-1000])  # changed since it was registered: no head start into its partition
    helper = early_decode.start_for_video(root, key)
    assert helper is not None and helper.wait(timeout=120) == 0
    assert not (root.media_dir / key / "meta.json").exists()
    assert list(root.media_dir.glob("[!.]*")) == []  # nor into another
    copy.write_bytes(original)
    helper = early_decode.start_for_video(root, key)  # not fetched yet: the registered file
    assert helper is not None and helper.wait(timeout=120) == 0
    assert (root.media_dir / key / "meta.json").is_file()
    assert early_decode.start_for_video(root, key) is None  # decoded: nothing to start
    ingest(root, key)
    media_store.evict(root.media_dir / key)  # the cache evicted, the registered file gone
    copy.unlink()
    helper = early_decode.start_for_video(root, key)  # the fetched copy serves
    assert helper is not None and helper.wait(timeout=120) == 0
    assert MediaCache(root.media_dir / key).duration_s == pytest.approx(sample.duration_s, abs=0.1)
    url_key = register_source(replace(root, allow_private_urls=True), "http://127.0.0.1:9/clip.mp4")
    assert early_decode.start_for_video(root, url_key) is None  # a URL not fetched: the step downloads it
    fetched = root.videos_dir / url_key / "source.mp4"  # as source_video leaves a download
    fetched.parent.mkdir(parents=True)
    fetched.write_bytes(Path(sample.path).read_bytes())
    helper = early_decode.start_for_video(root, url_key)
    assert helper is not None and helper.wait(timeout=120) == 0
    assert MediaCache(root.media_dir / url_key).video_id == url_key  # the URL's video ID, not the file's


def test_runs_of_the_multiprocess_executor_start_one_for_their_first_video(monkeypatch):
    """The UI's executor starts a head start for the run's first video when the run decodes or
    reads media (not for a score run, whose step evicts the cache), and stops it with the run."""
    from types import SimpleNamespace

    from tiktok_assets.executors.multiprocess import HeadStartExecutor

    started: list[str] = []

    class Helper:
        def poll(self):
            return None

        def terminate(self):
            started.append("terminated")

        def wait(self):
            return 0

    monkeypatch.setattr(early_decode, "start_for_video", lambda settings, key: started.append(key) or Helper())

    class Inner:
        retries = step_dependency_config = None

        def execute(self, plan_context, execution_plan):
            yield "event"

    def run(tags, steps):
        context = SimpleNamespace(dagster_run=SimpleNamespace(tags=tags))
        return list(HeadStartExecutor(Inner()).execute(context, SimpleNamespace(step_keys_to_execute=steps)))

    assert run({"dagster/partition": "f-1"}, ["ingest", "audio_analyzers"]) == ["event"]
    assert started == ["f-1", "terminated"]
    run({"dagster/asset_partition_range_start": "f-2", "dagster/asset_partition_range_end": "f-9"}, ["cpu_analyzers"])
    run({"dagster/partition": "f-3"}, ["reconstruction_scores", "search_index"])  # the score run: none
    run({}, ["ingest"])  # no partition: none
    assert started == ["f-1", "terminated", "f-2", "terminated"]
