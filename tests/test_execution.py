"""The execution layer: one step per GPU group, many videos per run with per-video outcomes,
models loaded once per group process, score and nightly runs over partition ranges.

The videos are generated here (3 s, 96x160, two flat colours cut at 1.5 s, espeak-ng speech), so
every value asserted is known: the words spoken and the two colours of each video.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime

import dagster as dg
import pytest

from tiktok_assets.analyzers import all_specs
from tiktok_assets.config import load_settings

SPEECH = "hello world, this is a test"
COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 128, 0), "yellow": (255, 255, 0)}


def make_video(path, first: str, second: str, speech_wav) -> None:
    """3 s at 96x160: ``first`` colour, a hard cut at 1.5 s, ``second`` colour; the speech as audio."""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"color=c={first}:s=96x160:r=25:d=1.5",
         "-f", "lavfi", "-i", f"color=c={second}:s=96x160:r=25:d=1.5", "-i", str(speech_wav),
         "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v];[2:a]apad[a]", "-map", "[v]", "-map", "[a]",
         "-t", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True,
    )


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _near(hex_colour: str, name: str, tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(_rgb(hex_colour), COLOURS[name]))


@pytest.fixture(scope="module")
def videos(module_home, tmp_path_factory):
    """Two good videos and a truncated one (no moov atom) registered as three neighbouring partitions."""
    from tiktok_assets.cli import add_sources, ensure_instance

    folder = tmp_path_factory.mktemp("exec-videos")
    speech = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(speech), SPEECH], check=True)
    make_video(folder / "red.mp4", "red", "blue", speech)
    make_video(folder / "green.mp4", "green", "yellow", speech)
    (folder / "broken.mp4").write_bytes((folder / "red.mp4").read_bytes()[:8000])
    settings = load_settings()
    instance = ensure_instance(settings)
    keys = add_sources(settings, [str(folder / n) for n in ("red.mp4", "broken.mp4", "green.mp4")], instance)
    return dict(zip(("red", "broken", "green"), keys))


@pytest.fixture(scope="module")
def range_run(videos):
    """One run of `analyze_video` over the three videos, with the executor the UI uses."""
    from tiktok_assets.cli import ensure_instance, partition_tags
    from tiktok_assets.definitions import analyze_job

    instance = ensure_instance(load_settings())
    tags = partition_tags([videos["red"], videos["broken"], videos["green"]])
    with dg.execute_job(dg.reconstructable(analyze_job), instance, tags=tags, raise_on_error=False) as result:
        run_id = result.run_id
    return instance.get_run_by_id(run_id)


def test_one_step_per_group_with_one_asset_per_analyzer():
    from tiktok_assets.definitions import defs, load_gpu_groups

    groups = load_gpu_groups()
    job = defs.resolve_job_def("analyze_video")
    with_analyzers = [g.name for g in groups.groups.values() if g.analyzers]
    assert sorted(n.name for n in job.nodes) == sorted(["ingest", *(f"{g}_analyzers" for g in with_analyzers)])
    assert "vlm_analyzers" in {n.name for n in job.nodes}  # qwen2_vl_temporal gives the vlm group its step
    graph = defs.resolve_asset_graph()
    for name, spec in all_specs().items():
        node = graph.get(dg.AssetKey(name))
        assert {dg.AssetKey(d) for d in spec.depends_on} | {dg.AssetKey("media")} == set(node.parent_keys)
        assert node.backfill_policy == dg.BackfillPolicy.multi_run(load_settings().partitions_per_run)
        assert dg.AssetCheckKey(dg.AssetKey(name), "examined_whole_video") in node.check_keys


def test_dependency_order_inside_a_group():
    from tiktok_assets.assets import in_dependency_order

    specs = all_specs()
    order = [s.name for s in in_dependency_order([specs["camera_analysis"], specs["cut_analysis"],
                                                   specs["color_analysis"]])]
    assert order.index("cut_analysis") < order.index("camera_analysis")
    assert order.index("cut_analysis") < order.index("color_analysis")


def test_a_broken_video_fails_alone_in_a_multi_video_run(videos, range_run):
    from tiktok_assets.assets import videos_partitions
    from tiktok_assets.catalog import connect
    from tiktok_assets.cli import ensure_instance

    instance = ensure_instance(load_settings())
    assert range_run.status == dg.DagsterRunStatus.FAILURE
    good, bad = [videos["red"], videos["green"]], videos["broken"]
    for name in ("source_video", "media", *all_specs()):
        status = instance.get_status_by_partition(dg.AssetKey(name), [*good, bad], videos_partitions)
        assert {v: status[v].value for v in good} == {v: "MATERIALIZED" for v in good}, name
        assert status[bad] is not None and status[bad].value == "FAILED", name
    # the failure names the broken video and says why in one sentence
    failures = [r.dagster_event for r in instance.all_logs(range_run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)]
    assert [e.step_key for e in failures] == ["ingest"]
    description = failures[0].step_failure_data.user_failure_data.description
    assert bad in description and "not a readable video" in description
    assert videos["red"] not in description
    con = connect(load_settings())
    try:
        words = dict(con.execute("SELECT video_id, lower(string_agg(text, ' ')) FROM speech_transcription "
                                 "GROUP BY video_id").fetchall())
        palettes = dict(con.execute("SELECT video_id, palette_hex FROM color_analysis WHERE level = 'video'").fetchall())
    finally:
        con.close()
    assert set(words) == set(good)
    for video in good:
        assert "hello" in words[video] and "world" in words[video], words[video]
    red, green = palettes[videos["red"]], palettes[videos["green"]]
    assert any(_near(c, "red") for c in red) and any(_near(c, "blue") for c in red), red
    assert any(_near(c, "green") for c in green) and any(_near(c, "yellow") for c in green), green


def test_coverage_checks_are_one_evaluation_per_video_and_the_steps_yield_their_outputs(videos, range_run):
    from tiktok_assets.cli import ensure_instance

    instance = ensure_instance(load_settings())
    records = instance.all_logs(range_run.run_id)
    # each good video: one evaluation of every analyzer's check, aimed at that video's materialization
    evaluations = [r.dagster_event.event_specific_data for r in records
                   if r.dagster_event and r.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    seen = sorted((e.asset_key.to_user_string(), e.metadata["video_id"].value) for e in evaluations)
    good = sorted([videos["red"], videos["green"]])
    assert seen == sorted((name, video) for name in all_specs() for video in good)
    assert all(e.target_materialization_data is not None for e in evaluations)
    # the steps yield their check outputs: Dagster has nothing to say about missing ones
    missing = [r.user_message for r in records if "did not yield or return expected outputs" in (r.user_message or "")]
    assert missing == []


def test_models_load_once_per_group_process(range_run):
    from tiktok_assets.cli import ensure_instance

    instance = ensure_instance(load_settings())
    loads = {}
    for record in instance.all_logs(range_run.run_id):
        match = re.match(r"model loads in this process: (.*)", record.user_message or "")
        if match:
            loads[record.step_key] = dict(kv.split("=") for kv in match.group(1).split(", "))
    # whisper and YAMNet served both videos from one load in the audio group's process
    assert loads["audio_analyzers"]["faster-whisper"] == "1" and loads["audio_analyzers"]["yamnet"] == "1", loads
    assert all("faster-whisper" not in counts for step, counts in loads.items() if step != "audio_analyzers")


def test_successful_videos_are_fresh_and_only_the_broken_one_is_asked_for_again(videos, range_run):
    from tiktok_assets.automation import backfill_requests
    from tiktok_assets.cli import ensure_instance
    from tiktok_assets.definitions import ANALYZE_JOB, defs

    settings = load_settings()
    instance = ensure_instance(settings)
    job = defs.resolve_job_def(ANALYZE_JOB)
    keys = sorted(job.asset_layer.selected_asset_keys)
    requests = backfill_requests(instance, settings, defs.resolve_asset_graph(), ANALYZE_JOB, keys,
                                 list(videos.values()), "20261203")
    assert [r.partition_key for r in requests] == [videos["broken"]]
    assert "source_video (failed)" in requests[0].tags["tiktok_assets/reason"]


def test_the_score_run_covers_every_video_of_the_range(videos, range_run):
    from tiktok_assets.automation import score_request
    from tiktok_assets.catalog import connect
    from tiktok_assets.cli import ensure_instance
    from tiktok_assets.definitions import defs

    settings = load_settings()
    instance = ensure_instance(settings)
    request = score_request(instance, settings, range_run)
    assert request is not None and request.partition_key is None
    assert request.tags["dagster/asset_partition_range_start"] == videos["red"]
    assert request.tags["dagster/asset_partition_range_end"] == videos["green"]
    scored = defs.resolve_job_def("score_video").execute_in_process(instance=instance, tags=request.tags)
    assert scored.success  # the broken video was never ingested: nothing to score, not a failure
    con = connect(settings)
    try:
        scores = {v: (ok, set(unavailable)) for v, ok, unavailable in con.execute(
            "SELECT video_id, analyzers_succeeded, analyzers_model_unavailable FROM reconstruction_scores").fetchall()}
    finally:
        con.close()
    assert set(scores) == {videos["red"], videos["green"]}
    for ok, unavailable in scores.values():  # every analyzer ran; those without offline weights say so
        assert unavailable <= {"qwen2_vl_temporal", "object_detection", "product_detection"}
        assert ok == len(all_specs()) - len(unavailable)


def test_an_evicted_cache_is_not_a_reason_to_fetch_and_decode_again(videos, range_run, monkeypatch):
    """After eviction the analyzer steps decode the cache from the source file on demand, so the
    nightly asks a video with a stale analyzer for that analyzer only, not for source_video/media;
    only when the source file is gone as well is its ingest requested."""
    from tiktok_assets import automation, retention
    from tiktok_assets.cli import ensure_instance
    from tiktok_assets.definitions import ANALYZE_JOB, defs
    from tiktok_assets.ingest import video_file

    settings = load_settings()
    instance = ensure_instance(settings)
    job = defs.resolve_job_def(ANALYZE_JOB)
    keys = sorted(job.asset_layer.selected_asset_keys)
    good = [videos["red"], videos["green"]]
    retention.evict_media_caches(settings, good, force=True)
    assert not any((settings.media_dir / v / "meta.json").exists() for v in good)

    def requests():
        return {r.partition_key: r for r in automation.backfill_requests(
            instance, settings, defs.resolve_asset_graph(), ANALYZE_JOB, keys, list(videos.values()), "20261204")}

    assert list(requests()) == [videos["broken"]]  # evicted but up to date: nothing to do
    real = automation.outdated_assets

    def one_stale(*args, **kwargs):  # as after a new version of color_analysis
        found = real(*args, **kwargs)
        found.setdefault(videos["red"], {})[dg.AssetKey("color_analysis")] = "stale"
        return found

    monkeypatch.setattr(automation, "outdated_assets", one_stale)
    red = requests()[videos["red"]]
    assert [k.to_user_string() for k in red.asset_selection] == ["color_analysis"]
    source = video_file(settings, videos["red"])
    aside = source.with_name("moved-away.mp4")
    source.rename(aside)
    try:
        red = requests()[videos["red"]]
        assert {k.to_user_string() for k in red.asset_selection} == {"source_video", "media", "color_analysis"}
        assert "source file and media cache missing" in red.tags["tiktok_assets/reason"]
    finally:
        aside.rename(source)


def test_nightly_requests_ranges_of_neighbouring_videos(module_home, monkeypatch):
    """Five never-analyzed videos, two per run: ranges of 2, 2 and one single video, in added order."""
    from tiktok_assets.cli import ensure_instance
    from tiktok_assets.definitions import defs

    monkeypatch.setenv("TIKTOK_ASSETS_PARTITIONS_PER_RUN", "2")
    instance = ensure_instance(load_settings())
    night = [f"n-{i}" for i in range(5)]
    instance.add_dynamic_partitions("videos", night)
    schedule = defs.resolve_schedule_def("nightly_backfill")
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 12, 3, 3, tzinfo=UTC),
                                   repository_def=defs.get_repository_def()) as context:
        result = schedule.evaluate_tick(context)
    ours = [r for r in result.run_requests if (r.partition_key or r.tags.get("dagster/asset_partition_range_start",
                                                                            "")).startswith("n-")]
    spans = [(r.tags.get("dagster/asset_partition_range_start", r.partition_key),
              r.tags.get("dagster/asset_partition_range_end", r.partition_key)) for r in ours]
    assert spans == [("n-0", "n-1"), ("n-2", "n-3"), ("n-4", "n-4")]
    assert ours[0].run_key == "nightly-20261203-n-0..n-1" and ours[2].partition_key == "n-4"


def test_cli_cuts_videos_into_contiguous_runs():
    from tiktok_assets.cli import contiguous_blocks, partition_tags

    order = ["a", "b", "c", "d", "e"]
    assert contiguous_blocks(order, ["d", "a", "b", "e"]) == [["a", "b"], ["d", "e"]]
    assert partition_tags(["c"]) == {"dagster/partition": "c"}
    assert partition_tags(["a", "b"]) == {"dagster/asset_partition_range_start": "a",
                                          "dagster/asset_partition_range_end": "b"}


def test_pool_slots_are_written_only_when_they_differ(module_home, monkeypatch):
    from tiktok_assets.cli import ensure_instance
    from tiktok_assets.definitions import apply_pool_limits, load_gpu_groups

    instance = ensure_instance(load_settings())  # sets the slots
    storage = instance.event_log_storage
    writes = []
    original = type(storage).set_concurrency_slots
    monkeypatch.setattr(type(storage), "set_concurrency_slots",
                        lambda self, pool, n: (writes.append(pool), original(self, pool, n))[1])
    limits = apply_pool_limits(instance, load_gpu_groups())
    assert writes == []
    pool = next(iter(limits))
    original(storage, pool, limits[pool] + 1)
    apply_pool_limits(instance, load_gpu_groups())
    assert writes == [pool] and storage.get_concurrency_info(pool).slot_count == limits[pool]


def test_loading_the_definitions_after_the_cli_set_the_pools_builds_no_second_instance(module_home, monkeypatch):
    """The CLI sets the pool limits on its instance before it loads the definitions; their load then
    builds no instance of its own to set the same counts (the 49 s clip's `analyze`: three instances
    built before, one now), and still does when the counts differ."""
    import dataclasses

    import tiktok_assets.instance as instance_module
    from tiktok_assets import definitions
    from tiktok_assets.cli import ensure_instance

    ensure_instance(load_settings())
    built = []
    real = instance_module.deployment_instance  # imported by _pool_limits_on_load when it runs
    monkeypatch.setattr(instance_module, "deployment_instance", lambda settings: built.append(1) or real(settings))
    groups = definitions.load_gpu_groups()
    definitions._pool_limits_on_load(groups)
    assert built == []
    first = next(iter(groups.groups.values()))
    changed = dataclasses.replace(groups, groups={**groups.groups, first.name: dataclasses.replace(
        first, max_concurrent=first.max_concurrent + 1, cpu_max_concurrent=first.max_concurrent + 1)})
    assert changed.pool_limits() != groups.pool_limits()
    definitions._pool_limits_on_load(changed)
    assert built == [1]
    with real(load_settings()) as instance:
        pool, limit = next((p, n) for p, n in changed.pool_limits().items() if n != groups.pool_limits()[p])
        assert instance.event_log_storage.get_concurrency_info(pool).slot_count == limit


def test_a_step_asks_the_event_log_once_per_upstream_and_video():
    """Analyzers of one step share upstreams: each upstream's newest record (materialized in this
    run? its data version for the provenance tags) is read once per video, not once per analyzer,
    and one batched read of the upstreams' newest materializations serves those that are of this
    video; the step's own assets are read fresh each time (their records change while it runs)."""
    from types import SimpleNamespace

    from tiktok_assets.execution import PER_VIDEO_EVENTS_TAGS, PartitionEvents

    upstream, shared, own = dg.AssetKey("media"), dg.AssetKey("speech_transcription"), dg.AssetKey("speech_rate")
    calls: list[tuple[str, object]] = []

    def record(video: str, storage_id: int):
        return SimpleNamespace(run_id="run-1", storage_id=storage_id, timestamp=1.0, partition_key=video,
                               event_log_entry=SimpleNamespace(tags={}))

    # the newest materialization of media is of another video (v0); that of the transcript is v1's
    newest = {upstream: record("v0", 5), shared: record("v1", 6)}

    class Instance:
        def get_asset_records(self, keys):
            calls.append(("batch", tuple(keys)))
            return [SimpleNamespace(asset_entry=SimpleNamespace(asset_key=k, last_materialization_record=newest[k]))
                    for k in keys]

        def fetch_materializations(self, records_filter, limit):
            calls.append(("latest", records_filter.asset_key))
            return SimpleNamespace(records=[record("v1", 7)])

    nodes = {k: SimpleNamespace(parent_keys={upstream, shared}) for k in (own, dg.AssetKey("speech_flow"))}
    context = SimpleNamespace(
        partition_keys=["v1"], run=SimpleNamespace(tags=dict(PER_VIDEO_EVENTS_TAGS)), instance=Instance(),
        run_id="run-1", job_def=SimpleNamespace(asset_layer=SimpleNamespace(get=nodes.__getitem__)),
    )
    events = PartitionEvents(context, nodes, {k: "1" for k in nodes})
    for key in nodes:  # two analyzers with the same two upstreams
        assert events.materialized_in_run(upstream, "v1") and events.materialized_in_run(shared, "v1")
        (materialization,) = events.success(key, "v1", {})
        assert materialization.tags["dagster/code_version"] == "1"
        # the event pointers: media's from its own query (7), the transcript's from the batch (6)
        assert materialization.tags[f"dagster/input_event_pointer/{upstream.to_user_string()}"] == "7"
        assert materialization.tags[f"dagster/input_event_pointer/{shared.to_user_string()}"] == "6"
        events._evaluation(key, "v1", "examined_whole_video", True, {})
    assert sorted(calls, key=str) == sorted(
        [("batch", (upstream, shared)), ("latest", upstream),
         ("latest", own), ("latest", dg.AssetKey("speech_flow"))], key=str,
    )


def test_the_step_start_read_of_input_versions_is_left_out_only_where_nothing_uses_it(tmp_path):
    """Dagster reads every upstream's newest materialization and data version when an asset step
    starts, for the provenance tags of the output materializations it records. Runs that record
    their own (``dagster/defer_asset_events``, all of the project's) leave the read out; other runs
    read, and their materializations carry Dagster's provenance as before."""
    from dagster._core.execution.context.data_version_cache import DataVersionCache
    from dagster._core.execution.context.system import StepExecutionContext
    from dagster._core.storage.tags import EXTERNALLY_MANAGED_ASSETS_TAG

    import tiktok_assets.definitions  # noqa: F401 - loading the code location installs it
    from tiktok_assets.input_versions import install

    assert install() and StepExecutionContext.fetch_external_input_asset_version_info.skips_unused_reads

    @dg.asset
    def upstream() -> int:
        return 1

    @dg.asset(deps=[upstream], code_version="1")
    def downstream() -> None:
        return None

    reads: list[str] = []
    real = DataVersionCache.fetch_external_input_asset_version_info

    def counted(self):
        reads.append("read")
        return real(self)

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        assert dg.materialize([upstream], instance=instance).success
        DataVersionCache.fetch_external_input_asset_version_info = counted
        try:
            assert dg.materialize([downstream], instance=instance,
                                  tags={EXTERNALLY_MANAGED_ASSETS_TAG: "true"}).success
            assert reads == []  # and no materialization recorded by Dagster to need it
            assert instance.get_latest_materialization_event(downstream.key) is None
            assert dg.materialize([downstream], instance=instance).success
            assert reads == ["read"]
        finally:
            DataVersionCache.fetch_external_input_asset_version_info = real
        tags = instance.get_latest_materialization_event(downstream.key).asset_materialization.tags
        assert tags["dagster/code_version"] == "1" and "dagster/input_data_version/upstream" in tags


def test_the_score_run_records_provenance_without_dagsters_step_start_read(videos, range_run, monkeypatch):
    """The score run (29 upstream analyzers) no longer pays Dagster's step-start read of their data
    versions; each video's score materialization still carries its provenance tags, written by the
    step (``execution.PartitionEvents``), so staleness keeps working."""
    from dagster._core.execution.context.data_version_cache import DataVersionCache

    from tiktok_assets.assets import SCORES_KEY
    from tiktok_assets.cli import ensure_instance, partition_tags
    from tiktok_assets.definitions import score_job_in_process

    reads: list[str] = []
    real = DataVersionCache._fetch_input_asset_version_info
    monkeypatch.setattr(DataVersionCache, "_fetch_input_asset_version_info",
                        lambda self, keys: reads.extend(k.to_user_string() for k in keys) or real(self, keys))
    instance = ensure_instance(load_settings())
    with dg.execute_job(dg.reconstructable(score_job_in_process), instance,
                        tags=partition_tags([videos["red"]])) as result:
        assert result.success
    assert reads == []
    event = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SCORES_KEY, asset_partitions=[videos["red"]]), limit=1).records[0]
    tags = event.event_log_entry.asset_materialization.tags
    assert event.run_id == result.run_id
    assert tags["dagster/input_data_version/speech_transcription"]
    assert int(tags["dagster/input_event_pointer/speech_transcription"]) > 0
