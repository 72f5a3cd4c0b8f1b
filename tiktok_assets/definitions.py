"""The Dagster code location: assets, the per-video job, scoring, the executor from GPU groups.

Loading it also sets the instance's pool slot counts from ``gpu_groups.yaml`` (under ``dagster dev``,
the daemon and the CLI alike), guarded so that a problem there never fails the load.
"""

from __future__ import annotations

import logging

import dagster as dg

from .analyzers import all_specs
from .assets import SCORES_KEY, build_assets, videos_partitions
from .automation import SCORE_JOB, build_automation
from .config import load_settings
from .gpu_groups import GpuGroups, load_groups

ANALYZE_JOB = "analyze_video"
log = logging.getLogger("tiktok_assets")


def load_gpu_groups() -> GpuGroups:
    settings = load_settings()
    return load_groups(settings.gpu_groups_file, tuple(sorted(all_specs())), settings.device_override)


def apply_pool_limits(instance: dg.DagsterInstance, groups: GpuGroups) -> dict[str, int]:
    """Set each GPU group's pool slot count on ``instance``; returns what was set."""
    limits = groups.pool_limits()
    for pool, limit in limits.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return limits


def _pool_limits_on_load(groups: GpuGroups) -> None:
    """Apply the pool limits to the data root's instance if it exists; log, never raise."""
    try:
        from .instance import data_root_instance

        instance = data_root_instance(load_settings(), create=False)
        if instance is not None:
            with instance:
                apply_pool_limits(instance, groups)
    except Exception as exc:  # noqa: BLE001 - the code location must load even if this fails
        log.warning(f"could not set pool limits from gpu_groups.yaml: {exc}")


def build_definitions() -> dg.Definitions:
    groups = load_gpu_groups()
    executor = dg.multiprocess_executor.configured({"tag_concurrency_limits": groups.executor_tag_limits()})
    assets = build_assets(groups)
    analyze_job = dg.define_asset_job(
        ANALYZE_JOB,
        selection=dg.AssetSelection.all() - dg.AssetSelection.assets(SCORES_KEY),
        partitions_def=videos_partitions,
        description="Ingest, decode and analyze one video; its score follows in a `score_video` run "
                    "when this run ends, whatever its outcome.",
    )
    score_job = dg.define_asset_job(
        SCORE_JOB,
        selection=dg.AssetSelection.assets(SCORES_KEY),
        partitions_def=videos_partitions,
        description="Score one video's reconstruction from the warehouse (after each run of the video).",
    )
    sensors, nightly_backfill = build_automation(ANALYZE_JOB, videos_partitions, score_job)
    _pool_limits_on_load(groups)
    return dg.Definitions(
        assets=assets, jobs=[analyze_job, score_job], sensors=sensors, schedules=[nightly_backfill],
        executor=executor,
    )


defs = build_definitions()


def analyze_job() -> dg.JobDefinition:
    """The per-video job, resolved; ``dg.reconstructable(analyze_job)`` runs it out of process."""
    return defs.resolve_job_def(ANALYZE_JOB)
