"""Friction a newcomer meets: `add` with a bad source, `--help`, the demo's explanations, timeline rows."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import analyze

from tiktok_assets import cli
from tiktok_assets.analyzers import all_specs
from tiktok_assets.catalog import table_schemas, timeline_labels, warehouse
from tiktok_assets.reconstruction import SCORES_SCHEMA, score_video
from tiktok_assets.warehouse import Warehouse


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text  # no raw reStructuredText
    assert "tiktok-assets demo" in text and "TIKTOK_ASSETS_HOME" in text


def test_add_is_all_or_nothing(settings, sample, tmp_path):
    import dagster as dg

    from tiktok_assets.assets import videos_partitions

    instance = dg.DagsterInstance.ephemeral()
    good = tmp_path / "good.mp4"
    shutil.copy(sample.path, good)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    missing = tmp_path / "missing.mp4"
    before = set(settings.sources_dir.glob("*.json")) if settings.sources_dir.is_dir() else set()
    with pytest.raises(ValueError) as error:
        cli.add_sources(settings, [str(good), str(missing), str(text)], instance, probe_files=True)
    message = str(error.value)
    assert message.startswith("nothing was added, 2 of 3 source(s) cannot be used")
    assert "missing.mp4" in message and "notes.mp4" in message and "good.mp4" not in message
    after = set(settings.sources_dir.glob("*.json")) if settings.sources_dir.is_dir() else set()
    assert after == before  # the good file was not registered either
    assert instance.get_dynamic_partitions(videos_partitions.name) == []

    (key,) = cli.add_sources(settings, [str(good)], instance)
    assert instance.get_dynamic_partitions(videos_partitions.name) == [key]
    assert (settings.sources_dir / f"{key}.json").is_file()


def test_add_command_reports_each_bad_source(settings, tmp_path, capsys):
    (tmp_path / "notes.mp4").write_text("not a video")
    assert cli.main(["add", str(tmp_path / "gone.mp4"), str(tmp_path / "notes.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing was added, 2 of 2 source(s)")
    assert "no such video file" in err and "notes.mp4 is not a readable video file" in err


@pytest.fixture(scope="module")
def sample_tables(sample_media, settings):
    """Real analyzer tables of the sample (analyzers without models) and their runs."""
    tables, runs = {}, []
    for name in ("cut_analysis", "camera_analysis", "content_quality", "color_analysis", "scene_segmentation"):
        inputs = {"cut_analysis": tables["cut_analysis"]} if name == "scene_segmentation" else {}
        _, run = analyze(name, sample_media, settings, inputs)
        tables[name] = run.table
        runs.append({"analyzer": name, "status": "success",
                     "examined": [{"start_s": a, "end_s": b} for a, b in run.examined]})
    return tables, runs


def test_no_timeline_row_has_an_empty_label(sample_media, sample_tables, tmp_path):
    tables, _ = sample_tables
    store = Warehouse(tmp_path / "warehouse", tmp_path / "catalog.duckdb")
    for name, table in tables.items():
        store.write(name, "sample", table)
    con = store.connect(table_schemas(), timeline_labels())
    try:
        rows = con.execute("SELECT analyzer, label FROM timeline ORDER BY start_s").fetchall()
        static = con.execute("SELECT count(*) FROM camera_analysis WHERE motion = 'static'").fetchone()[0]
    finally:
        con.close()
    assert static > 0  # the sample has static camera rows, which have no timeline label
    assert rows and all(label is not None and label.strip() for _, label in rows), rows
    analyzers = {a for a, _ in rows}
    assert "content_quality" not in analyzers  # no label expression: not in the timeline
    assert {"cut_analysis", "scene_segmentation"} <= analyzers
    cuts = [label for a, label in rows if a == "cut_analysis"]
    assert len(cuts) == tables["cut_analysis"].num_rows


def test_demo_says_what_it_expected_beside_what_it_found(settings, sample, sample_media, sample_tables, tmp_path):
    tables, runs = sample_tables
    local = dataclasses.replace(settings, home=tmp_path / "home")
    store = warehouse(local)
    store.write("cut_analysis", "sample", tables["cut_analysis"])
    video = {"video_id": "sample", "duration_s": sample_media.duration_s, "has_audio": sample_media.has_audio}
    scores, _ = score_video(video, runs, all_specs())
    store.write("reconstruction_scores", "sample", pa.Table.from_pylist([scores], schema=SCORES_SCHEMA))
    truth = json.loads(Path(sample.path).with_suffix(".truth.json").read_text())

    text = "\n".join(cli.demo_report(local, "sample", truth))
    expected_cuts = f"{len(sample.cuts_s)} of {len(sample.cuts_s)} expected cuts found within 0.1 s, 0 extra"
    assert expected_cuts in text, text
    for item in sample.speech:  # no transcription ran here: every sentence is reported as not heard
        assert item["text"] in text
    assert text.count("nothing transcribed here") == len(sample.speech)
    (score_text,) = [line for line in text.splitlines() if line.startswith("Score ")]
    assert f"Score {scores['score']:g}/100 = mean over modalities" in score_text
    assert f"visual {scores['visual_score']:.0f}," in score_text and "speech 0," in score_text
    assert "text 0," in score_text and f"{scores['analyzers_succeeded']} of {scores['analyzers_expected']}" in score_text


def test_speech_comparison_counts_heard_words():
    expected = [{"start_s": 1.0, "end_s": 3.0, "lang": "de", "text": "Danach kochen wir die Nudeln"}]
    heard = [{"start_s": 1.1, "end_s": 2.9, "text": " Danach kochen wir Nudeln."}]  # a comparator input
    lines = cli.speech_vs_truth(expected, heard)
    assert lines[1].endswith("(4/5 words)")
