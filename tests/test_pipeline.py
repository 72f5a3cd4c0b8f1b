"""The Dagster layer end to end: definitions, CLI analyze in-process, failures, GPU-group limits.

These tests run the real analyzers (whisper base from PyPI included) on the generated sample video.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import yaml

from tiktok_assets import cli
from tiktok_assets.analyzers import all_specs
from tiktok_assets.assets import COVERAGE_CHECK
from tiktok_assets.catalog import connect
from tiktok_assets.config import PROJECT_DIR, load_settings
from tiktok_assets.gpu_groups import GROUP_TAG

pytestmark = pytest.mark.slow


def sql(query):
    con = connect(load_settings())
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_definitions_load_with_groups_pools_and_partitions(home):
    import dagster as dg

    from tiktok_assets.definitions import defs, load_gpu_groups

    groups = load_gpu_groups()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"source_video", "media", "reconstruction_scores", *all_specs()} <= keys
    for name in all_specs():
        node = graph.get(dg.AssetKey(name))
        group = groups.group_of(name)
        assert node.partitions_def.name == "videos"
        assert node.group_name == f"{group.name}_analyzers"
        op = defs.resolve_assets_def(name).op
        assert op.pool == group.pool  # limits across runs
        assert op.tags[GROUP_TAG] == group.name  # what the executor's tag limits match
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "dagster"), "definitions", "validate", "-w",
         str(PROJECT_DIR / "workspace.yaml")],
        cwd=PROJECT_DIR, capture_output=True, text=True, env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def analyzed(home, sample):
    """The sample analyzed once through the CLI path (Dagster in-process)."""
    settings = load_settings()
    key, ok = cli.analyze(settings, sample.path)
    return key, ok


def test_the_cli_score_run_has_its_two_steps_side_by_side(analyzed):
    """The score run's steps (scores with the report, search index) need nothing of each other: the
    CLI's executor starts both at once."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    (run,) = [r for r in instance.get_runs() if r.job_name == "score_video"][:1]
    stats = {s.step_key: s for s in instance.get_run_step_stats(run.run_id)}
    scores, search = stats["reconstruction_scores"], stats["search_index"]
    assert scores.start_time < search.end_time and search.start_time < scores.end_time


def test_the_people_step_prepares_its_two_passes_side_by_side(analyzed):
    """In the job, the people step computes the face and person passes together before its
    analyzers run (``passes/prepare.py``), and says so in its log."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    run = next(r for r in instance.get_runs() if r.job_name == "analyze_video")
    said = [r.user_message for r in instance.all_logs(run.run_id) if r.step_key == "people_analyzers"]
    ready = [m for m in said if m.startswith("passes faces, person ready in")]
    assert ready, said[-5:]
    # with the seconds inside the MediaPipe graphs' calls, measured in the passes' own threads
    assert re.search(r"mediapipe-legacy: \d+\.\d\d s in [1-9]\d* calls", ready[0]), ready


def outputs_and_materializations(instance, run_id: str) -> dict[str, list[tuple[str, str]]]:
    """Per analyzer step of a run, its asset materializations and step outputs in event-log order,
    after asserting that each output comes right after its own asset's (last) materialization, one
    per asset in analyzer order: outputs are handed on as each analyzer finishes, not at the end."""
    import dagster as dg

    order: dict[str, list[tuple[str, str]]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not entry.step_key or not entry.step_key.endswith("_analyzers"):
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            order.setdefault(entry.step_key, []).append(("materialized", event.asset_key.to_user_string()))
        elif event.event_type == dg.DagsterEventType.STEP_OUTPUT:
            name = event.step_output_data.output_name
            check = name.removesuffix(f"_{COVERAGE_CHECK}") if name.endswith(f"_{COVERAGE_CHECK}") else None
            order.setdefault(entry.step_key, []).append(("check output", check) if check else ("output", name))
    for step, seen in order.items():
        outputs = [name for kind, name in seen if kind == "output"]
        materialized = [name for kind, name in seen if kind == "materialized"]
        assert outputs == list(dict.fromkeys(materialized)), step  # one output per asset, in analyzer order
        for name in outputs:
            at = seen.index(("output", name))
            assert seen[at - 1] == ("materialized", name), (step, seen)
        # the step's coverage-check outputs (no asset events: the per-video evaluations are the
        # results) come last, one per asset
        checks = [name for kind, name in seen if kind == "check output"]
        assert sorted(checks) == sorted(outputs), (step, seen)
        assert seen[len(seen) - len(checks):] == [("check output", n) for n in checks], (step, seen)
    return {step: [item for item in seen if item[0] != "check output"] for step, seen in order.items()}


def test_a_step_hands_each_output_on_once_its_analyzer_is_done(analyzed):
    """A group step yields an asset's output as soon as its analyzer has been through every video of
    the run, not at the step's end: in the vision step object_detection's output comes before
    content_safety's materialization (the cpu step, which needs the object tracks, may start then)."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    run = next(r for r in instance.get_runs() if r.job_name == "analyze_video")
    vision = outputs_and_materializations(instance, run.run_id)["vision_analyzers"]
    assert vision.index(("output", "object_detection")) < vision.index(("materialized", "content_safety"))


OFFLINE_GAPS = {"qwen2_vl_temporal", "object_detection", "product_detection"}  # product_detection reads object tracks


def test_analyze_fills_the_warehouse(analyzed, sample, capsys):
    key, ok = analyzed
    assert ok
    videos = sql(f"SELECT duration_s, width, height, has_audio, source_kind FROM videos WHERE video_id = '{key}'")
    assert len(videos) == 1
    duration, width, height, has_audio, kind = videos[0]
    assert abs(duration - sample.duration_s) < 0.1 and (width, height) == (360, 640) and has_audio and kind == "file"
    words = sql(f"SELECT lower(trim(w.word, '.,')) FROM (SELECT unnest(words) AS w FROM speech_transcription "
                f"WHERE video_id = '{key}')")
    assert {"welcome", "kitchen", "pasta"} <= {w for (w,) in words}
    cuts = [t for (t,) in sql(f"SELECT start_s FROM cut_analysis WHERE video_id = '{key}' AND kind = 'hard_cut' "
                              "ORDER BY start_s")]
    assert len(cuts) == len(sample.cuts_s) and all(abs(a - b) <= 0.1 for a, b in zip(cuts, sample.cuts_s))
    statuses = dict(sql(f"SELECT analyzer, status FROM analyzer_runs WHERE video_id = '{key}'"))
    # every analyzer ran; only those whose model has no offline weights (MODELS.md: the VLM, COCO
    # object detection) say so instead of producing rows
    unavailable = {name for name, status in statuses.items() if status == "model_unavailable"}
    assert unavailable <= OFFLINE_GAPS
    assert statuses == {name: "model_unavailable" if name in unavailable else "success" for name in all_specs()}
    (score, text_score, visual_score, expected, listed), = sql(
        "SELECT score, text_score, visual_score, analyzers_expected, analyzers_model_unavailable "
        f"FROM reconstruction_scores WHERE video_id = '{key}'")
    assert expected == len(all_specs()) and set(listed) == unavailable
    visual = [name for name, spec in all_specs().items() if spec.modality == "visual"]
    ok_visual = [name for name in visual if name not in unavailable]
    assert visual_score == pytest.approx(100.0 * len(ok_visual) / len(visual), abs=0.5)  # each ok one saw it all
    # the sample's "LINK IN BIO" overlay: a text track and a call to action; the text modality is covered
    assert sql(f"SELECT text FROM text_overlay WHERE video_id = '{key}'") == [("LINK IN BIO",)]
    assert sql(f"SELECT source, cta_class FROM comment_cta_detection WHERE video_id = '{key}'") == [
        ("text", "link_in_bio")]
    assert text_score == 100.0
    # score v2: the objects dimension is described by content_safety only (no YOLO weights offline)
    (v2, objects_v2, edit_v2, per_second), = sql(
        "SELECT score_v2, objects_v2, edit_v2, (SELECT count(*) FROM coverage_seconds c WHERE c.video_id = r.video_id "
        f"AND c.score_v2 BETWEEN 0 AND 1) FROM reconstruction_scores r WHERE video_id = '{key}'")
    assert 0 < v2 < 100 and objects_v2 == pytest.approx(100 / 3, abs=1) and edit_v2 == pytest.approx(100, abs=1)
    assert per_second == int(-(-sample.duration_s // 1))
    assert 0 < score <= 100
    seconds = sql(f"SELECT count(*), bool_and(speech), bool_and(visual) FROM coverage_seconds WHERE video_id = '{key}'")
    assert seconds[0][0] == int(-(-sample.duration_s // 1)) and seconds[0][1] and seconds[0][2]
    timeline = sql(f"SELECT count(DISTINCT analyzer) FROM timeline WHERE video_id = '{key}'")
    assert timeline[0][0] >= 3
    labels = sql(f"SELECT label FROM timeline WHERE video_id = '{key}' AND analyzer = 'speech_transcription' "
                 "ORDER BY start_s")
    assert labels[0][0].startswith("Hello everyone")
    report = (load_settings().home / "reports" / key / "timeline.md").read_text()
    assert "**speech_transcription** Hello everyone" in report
    assert report.count("**cut_analysis** hard_cut") == len(sample.cuts_s)
    # the CLI's SQL command prints the same
    assert cli.main(["sql", f"SELECT count(*) AS n FROM cut_analysis WHERE video_id = '{key}'",
                     "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": len(sample.cuts_s)}]


def test_rerun_replaces_rows(analyzed):
    key, _ = analyzed
    before = sql(f"SELECT count(*) FROM speech_transcription WHERE video_id = '{key}'")[0][0]
    source = load_settings().home.joinpath("videos", key, "source.mp4").as_posix()
    assert cli.main(["analyze", source, "--only", "speech_transcription,cut_analysis"]) == 0
    assert cli.main(["analyze", source, "--only", "no_such_analyzer"]) == 2
    assert sql(f"SELECT count(*) FROM speech_transcription WHERE video_id = '{key}'")[0][0] == before
    assert sql(f"SELECT count(*) FROM videos WHERE video_id = '{key}'")[0][0] == 1


def test_bad_video_fails_clearly_and_leaves_other_videos_alone(analyzed, tmp_path, capsys):
    key, _ = analyzed
    before = sql("SELECT video_id, count(*) FROM cut_analysis GROUP BY ALL ORDER BY 1")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    assert cli.main(["analyze", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "FAILED ingest: source_video: broken.mp4 is not a readable video file" in out
    assert "1 failed step(s)" in out
    assert sql("SELECT video_id, count(*) FROM cut_analysis GROUP BY ALL ORDER BY 1") == before
    assert cli.main(["sql", "SELEC nonsense"]) == 2


def test_missing_model_lowers_the_score_but_does_not_block_it(analyzed, monkeypatch, capsys):
    key, _ = analyzed
    (full,), = sql(f"SELECT score FROM reconstruction_scores WHERE video_id = '{key}'")
    monkeypatch.setenv("TIKTOK_ASSETS_WHISPER_MODEL", "/nonexistent/whisper-model")
    source = load_settings().home.joinpath("videos", key, "source.mp4").as_posix()
    assert cli.main(["analyze", source, "--only", "speech_transcription"]) == 0  # recorded, not a failure
    out = capsys.readouterr().out
    assert "NO MODEL speech_transcription: " in out and "TIKTOK_ASSETS_WHISPER_MODEL" in out
    (score, unavailable, speech), = sql(
        f"SELECT score, analyzers_model_unavailable, speech_score FROM reconstruction_scores WHERE video_id = '{key}'")
    assert "speech_transcription" in unavailable and score < full
    # the earlier transcription rows are still there
    assert sql(f"SELECT count(*) FROM speech_transcription WHERE video_id = '{key}'")[0][0] > 0
    monkeypatch.delenv("TIKTOK_ASSETS_WHISPER_MODEL")
    assert cli.main(["analyze", source, "--only", "speech_transcription"]) == 0


RUN_JOB = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from tiktok_assets.cli import add_sources, ensure_instance
    from tiktok_assets.config import load_settings
    from tiktok_assets.definitions import analyze_job
    if __name__ == "__main__":
        settings = load_settings()
        instance = ensure_instance(settings)
        key = add_sources(settings, [sys.argv[1]], instance)[0]
        keys = [dg.AssetKey(k) for k in ("source_video", "media", "cut_analysis", "audio_analysis")]
        with dg.execute_job(dg.reconstructable(analyze_job), instance, tags={"dagster/partition": key},
                            asset_selection=keys) as result:
            print("RUN", result.run_id, result.success)
    """
)


def test_a_group_runs_as_one_step_in_its_pool_in_a_multiprocess_run(home, sample, tmp_path):
    """The analyzers of a group run back to back in one step (one process) of the group's pool, so
    a limit-1 group never runs two of its analyzers at once, within a run (one step) or across runs
    (the pool)."""
    import dagster as dg

    solo = ["cut_analysis", "audio_analysis"]
    config = {"pipeline_group": "cpu", "groups": {
        "solo": {"device": "cuda", "max_concurrent": 1, "cpu_max_concurrent": 1, "analyzers": solo},
        "cpu": {"device": "cpu", "max_concurrent": 4, "analyzers": [n for n in all_specs() if n not in solo]},
    }}
    groups_file = tmp_path / "gpu_groups.yaml"
    groups_file.write_text(yaml.safe_dump(config))
    env = {**os.environ, "TIKTOK_ASSETS_GPU_GROUPS": str(groups_file)}
    proc = subprocess.run([sys.executable, "-c", RUN_JOB, sample.path], env=env, capture_output=True, text=True,
                          cwd=PROJECT_DIR)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id, success = proc.stdout.split("RUN ")[1].split()
    assert success == "True"
    instance = dg.DagsterInstance.get()
    run = instance.get_run_by_id(run_id)
    assert run.tags["dagster/partition"]
    materialized_by = {}
    starts = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialized_by[event.asset_key.to_user_string()] = event.step_key
        elif event.event_type == dg.DagsterEventType.STEP_START:
            starts.append(event.step_key)
    assert {materialized_by[n] for n in solo} == {"solo_analyzers"} and starts.count("solo_analyzers") == 1
    # the step processes hand each output on when its analyzer is done, as in the CLI
    solo_events = outputs_and_materializations(instance, run_id)["solo_analyzers"]
    first, second = [name for kind, name in solo_events if kind == "output"]
    assert solo_events.index(("output", first)) < solo_events.index(("materialized", second))
    snapshot = instance.get_job_snapshot(run.job_snapshot_id)
    node = next(n for n in snapshot.node_defs_snapshot.op_def_snaps if n.name == "solo_analyzers")
    assert node.pool == "tiktok_solo"


def test_coverage_check_reports_the_examined_share(analyzed):
    import dagster as dg

    from tiktok_assets.definitions import defs

    key, _ = analyzed
    instance = cli.ensure_instance(load_settings())
    result = dg.materialize(list(defs.assets), selection=["cut_analysis"], partition_key=key, instance=instance,
                            resources=defs.resources)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "examined_whole_video" and evaluation.passed
    assert evaluation.metadata["examined_share"].value == pytest.approx(1.0, abs=0.01)
