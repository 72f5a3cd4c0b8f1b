"""An analyzer whose model is missing: recorded as `model_unavailable`, no rows, not covered, and
not a failure of the Dagster run; the `models` resource of the code location reaches the analyzers.

The analyzer here is color_analysis with its model call replaced by a load of a model the fake
resource does not provide (so the real ModelUnavailable of the model layer is raised inside the
real group step); its rows from an earlier successful run stay in the warehouse.
"""

from __future__ import annotations

import dagster as dg
import pytest

from tiktok_assets import catalog, retention, steps
from tiktok_assets.config import load_settings
from tiktok_assets.model_registry.resource import FakeModelsResource


@pytest.fixture()
def video(module_home, sample):
    from tiktok_assets.cli import add_sources, ensure_instance

    settings = load_settings()
    instance = ensure_instance(settings)
    (key,) = add_sources(settings, [sample.path], instance)
    return key, instance


def test_a_missing_model_is_recorded_not_failed_and_not_covered(video, tmp_path, monkeypatch):
    from tiktok_assets.definitions import defs

    key, instance = video
    settings = load_settings()
    fake = FakeModelsResource(workdir=str(tmp_path / "fake"), provide=[])
    first = dg.materialize(list(defs.assets), selection=["source_video", "media", "cut_analysis", "color_analysis"],
                           partition_key=key, instance=instance, resources={"models": fake})
    assert first.success
    stored = catalog.warehouse(settings).read("color_analysis", key)
    assert stored is not None and stored.num_rows > 0

    real = steps.run_analyzer
    seen = []

    def needs_a_missing_model(spec, media, context):
        if spec.name != "color_analysis":
            return real(spec, media, context)
        seen.append(context.models)
        context.models.load("yolov8n", context.device)  # not provided by the fake: ModelUnavailable
        raise AssertionError("the fake provided a model it was not asked to")

    monkeypatch.setattr(steps, "run_analyzer", needs_a_missing_model)
    result = dg.materialize(list(defs.assets), selection=["color_analysis"], partition_key=key,
                            instance=instance, resources={"models": fake}, raise_on_error=False)
    assert result.success  # nothing a retry could fix: the run does not fail
    assert seen and seen[0] is fake.loader()  # the resource's loader reached the analyzer

    (materialization,) = result.asset_materializations_for_node("frames_analyzers")
    assert materialization.metadata["model_status"].value.startswith("unavailable:")
    assert materialization.metadata["rows"].value == 0
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["examined_share"].value == 0

    runs = {r["analyzer"]: r for r in catalog.warehouse(settings).read("analyzer_runs", key).to_pylist()}
    record = runs["color_analysis"]
    assert record["status"] == "model_unavailable" and record["rows"] == 0 and not record["examined"]
    assert "yolov8n" in record["error"]
    after = catalog.warehouse(settings).read("color_analysis", key)
    assert after is not None and after.to_pylist() == stored.to_pylist()  # nothing stored was lost

    scores, _coverage, _timeline = steps.score_reconstruction(settings, key, refresh=False)
    assert scores["analyzers_model_unavailable"] == ["color_analysis"]
    assert "color_analysis" not in scores["analyzers_failed"]
    assert "color_analysis" not in retention.outdated_analyzers(settings, key)  # settled: not retried nightly
