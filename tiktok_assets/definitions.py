"""The Dagster code location: assets, the per-video job and the executor derived from GPU groups."""

from __future__ import annotations

import dagster as dg

from .analyzers import all_specs
from .assets import build_assets, videos_partitions
from .automation import build_automation
from .config import load_settings
from .gpu_groups import GpuGroups, load_groups

ANALYZE_JOB = "analyze_video"


def load_gpu_groups() -> GpuGroups:
    settings = load_settings()
    return load_groups(settings.gpu_groups_file, tuple(sorted(all_specs())), settings.device_override)


def build_definitions() -> dg.Definitions:
    groups = load_gpu_groups()
    executor = dg.multiprocess_executor.configured({"tag_concurrency_limits": groups.executor_tag_limits()})
    assets = build_assets(groups)
    analyze_job = dg.define_asset_job(
        ANALYZE_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=videos_partitions,
        description="Ingest, decode and analyze one video, then score its reconstruction.",
    )
    inbox_sensor, nightly_backfill = build_automation(ANALYZE_JOB, videos_partitions)
    return dg.Definitions(
        assets=assets, jobs=[analyze_job], sensors=[inbox_sensor], schedules=[nightly_backfill], executor=executor
    )


defs = build_definitions()


def analyze_job() -> dg.JobDefinition:
    """The per-video job, resolved; ``dg.reconstructable(analyze_job)`` runs it out of process."""
    return defs.resolve_job_def(ANALYZE_JOB)
