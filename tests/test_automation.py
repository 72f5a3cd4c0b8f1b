"""The inbox sensor registers new videos once; the nightly schedule asks for what is missing (the\nstale/failed/parking cases are in test_dagster_path.py)."""

import os
import shutil
import time
from datetime import UTC, datetime

import dagster as dg

from tiktok_assets.analyzers import all_specs
from tiktok_assets.automation import inbox_sources
from tiktok_assets.config import load_settings


def test_inbox_lists_settled_videos_and_urls(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    old = time.time() - 60
    for name in ("a.mp4", "b.MOV", "notes.txt"):
        (inbox / name).write_bytes(b"x")
        os.utime(inbox / name, (old, old))
    (inbox / "fresh.mp4").write_bytes(b"still copying")
    (inbox / "urls.txt").write_text("# comment\nhttps://www.tiktok.com/@a/video/7301234567890123456\n\n")
    found = inbox_sources(inbox)
    assert [os.path.basename(s) for s in found[:2]] == ["a.mp4", "b.MOV"]
    assert found[2] == "https://www.tiktok.com/@a/video/7301234567890123456"
    assert len(found) == 3


def test_sensor_adds_partitions_and_requests_runs_once(module_home, sample):
    from tiktok_assets.cli import ensure_instance
    from tiktok_assets.definitions import defs

    settings = load_settings()
    instance = ensure_instance(settings)
    inbox = settings.home / "inbox"
    inbox.mkdir(exist_ok=True)
    dropped = inbox / "dropped.mp4"
    shutil.copyfile(sample.path, dropped)
    old = time.time() - 60
    os.utime(dropped, (old, old))
    (inbox / "broken.mp4").write_bytes(b"")
    os.utime(inbox / "broken.mp4", (old, old))
    sensor = defs.resolve_sensor_def("inbox_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    (add,) = result.dynamic_partitions_requests
    keys = set(add.partition_keys)
    assert len(keys) == 2  # the empty file is still registered; its run will fail with a clear message
    # both registered in this tick, so neighbours in the partition list: one run over the range
    (request,) = result.run_requests
    first, last = add.partition_keys[0], add.partition_keys[-1]
    assert request.tags["dagster/asset_partition_range_start"] == first
    assert request.tags["dagster/asset_partition_range_end"] == last and request.run_key == f"inbox-{first}..{last}"
    instance.add_dynamic_partitions("videos", list(keys))
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        again = sensor(context)
    assert isinstance(again, dg.SkipReason)


def test_schedule_asks_for_everything_of_a_video_never_analyzed(home):
    """A registered video with nothing materialized: the whole job except the score (which follows
    in its own run), with each asset's reason in the run's tags."""
    from tiktok_assets.cli import ensure_instance
    from tiktok_assets.definitions import defs

    instance = ensure_instance(load_settings())
    instance.add_dynamic_partitions("videos", ["v-night"])
    schedule = defs.resolve_schedule_def("nightly_backfill")
    when = datetime(2026, 11, 25, 3, tzinfo=UTC)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                   repository_def=defs.get_repository_def()) as context:
        result = schedule.evaluate_tick(context)
    # v-night alone, or the end of a range of neighbouring videos that need the same assets
    requests = {r.partition_key or r.tags["dagster/asset_partition_range_end"]: r for r in result.run_requests}
    request = requests["v-night"]
    assert request.run_key.startswith("nightly-20261125-") and request.run_key.endswith("v-night")
    assert {k.to_user_string() for k in request.asset_selection} == {"source_video", "media", *all_specs()}
    reason = request.tags["tiktok_assets/reason"]
    assert reason.startswith("nightly backfill") and ": source_video (missing), media (missing)" in reason
    assert request.tags["tiktok_assets/nightly"] == "20261125"
