"""Reconstruction score v2 over the real analyzer registry: it falls when an analyzer is removed or
its model is missing, rises as analyzers are added, follows the examined spans and the fusion
confidence, and leaves the audio dimensions out for a silent video. The runs are written here, so
every expected value is computed from the definition."""

from __future__ import annotations

import pytest

from tiktok_assets.analyzers import all_specs
from tiktok_assets.reconstruction import score_video
from tiktok_assets.reconstruction_v2 import DIMENSIONS, expected_dimensions, score_v2

DURATION = 10.0


def runs_for(names, examined=((0.0, DURATION),), status="success") -> dict[str, dict]:
    return {n: {"analyzer": n, "status": status, "examined": [{"start_s": a, "end_s": b} for a, b in examined]}
            for n in names}


def test_weights_cover_every_registered_analyzer_once():
    assert sum(w for w, _m, _a in DIMENSIONS.values()) == pytest.approx(1.0)
    members = [a for _w, names, _a in DIMENSIONS.values() for a in names]
    assert len(members) == len(set(members))
    # every registered analyzer describes a dimension, except the one that gives the confidence
    assert set(all_specs()) - set(members) == {"cross_analyzer_intelligence"}


def test_full_description_scores_100_and_each_missing_analyzer_costs_its_share():
    specs = all_specs()
    full, seconds = score_v2(DURATION, True, runs_for(specs), specs)
    assert full["score_v2"] == 100.0 and seconds == [1.0] * 10
    assert all(full[f"{d}_v2"] == 100.0 for d in DIMENSIONS)
    for dimension, (weight, members, _audio) in DIMENSIONS.items():
        name = members[0]
        without = runs_for(n for n in specs if n != name)
        missing, _ = score_v2(DURATION, True, without, specs)
        unavailable, _ = score_v2(DURATION, True, {**without, **runs_for([name], (), "model_unavailable")}, specs)
        failed, _ = score_v2(DURATION, True, {**without, **runs_for([name], (), "failed")}, specs)
        expected = 100.0 - 100.0 * weight / len(members)
        assert missing["score_v2"] == pytest.approx(expected, abs=0.01), name
        assert unavailable["score_v2"] == missing["score_v2"] == failed["score_v2"], name
        assert missing[f"{dimension}_v2"] == pytest.approx(100.0 * (len(members) - 1) / len(members), abs=0.01)


def test_the_score_rises_as_analyzers_are_added():
    specs = all_specs()
    added, previous = [], -1.0
    for name in specs:
        added.append(name)
        score = score_v2(DURATION, True, runs_for(added), specs)[0]["score_v2"]
        if name == "cross_analyzer_intelligence":
            assert score == previous  # it weighs the others' agreement, it describes nothing itself
        else:
            assert score > previous, name
        previous = score
    assert previous == 100.0


def test_examined_spans_and_confidence_shape_the_seconds():
    specs = all_specs()
    half = {**runs_for(specs), **runs_for(["cut_analysis"], ((0.0, 5.0),))}
    row, seconds = score_v2(DURATION, True, half, specs)
    edit_weight, edit_members, _ = DIMENSIONS["edit"]
    assert seconds[:5] == [1.0] * 5
    assert seconds[5:] == [pytest.approx(1.0 - edit_weight / len(edit_members), abs=1e-4)] * 5
    assert row["edit_v2"] == pytest.approx(100.0 * (1 - 0.5 / len(edit_members)), abs=0.01)
    # analyzers disagree completely in seconds 2 and 3 (confidence 0), agree elsewhere or could not check
    confidence = [{"start_s": float(s), "confidence": c} for s, c in ((0, 1.0), (2, 0.0), (3, 0.0), (4, None))]
    row, seconds = score_v2(DURATION, True, runs_for(specs), specs, confidence)
    assert seconds == [1.0, 1.0, 0.75, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert row["score_v2"] == pytest.approx(95.0)


def test_a_silent_video_is_not_expected_to_have_speech_or_music():
    specs = all_specs()
    dims = expected_dimensions(specs, has_audio=False)
    assert "speech_content" not in dims and "music_sound" not in dims
    assert sum(w for w, _m in dims.values()) == pytest.approx(1.0)
    visual = [n for _w, members in dims.values() for n in members]
    row, _ = score_v2(DURATION, False, runs_for(visual), specs)
    assert row["score_v2"] == 100.0 and row["speech_content_v2"] is None and row["music_sound_v2"] is None


def test_score_video_stores_v2_beside_v1():
    specs = all_specs()
    runs = list(runs_for(n for n in specs if n != "object_detection").values())
    video = {"video_id": "v", "duration_s": DURATION, "has_audio": True}
    scores, coverage = score_video(video, runs, specs)
    weight, members, _ = DIMENSIONS["objects"]
    assert scores["score_v2"] == pytest.approx(100.0 - 100.0 * weight / len(members), abs=0.01)
    assert scores["objects_v2"] == pytest.approx(100.0 * 2 / 3, abs=0.01)
    assert [r["score_v2"] for r in coverage] == [pytest.approx(1 - weight / len(members), abs=1e-4)] * 10
    assert "object_detection" in scores["analyzers_missing"]
