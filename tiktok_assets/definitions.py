"""The Dagster code location: assets, the analysis job, scoring, the executor from GPU groups.

A run of ``analyze_video`` covers one video or a contiguous range of videos (backfills: up to
``TIKTOK_ASSETS_PARTITIONS_PER_RUN`` per run) and has a handful of steps: ingest, one per GPU group
with analyzers. Steps run under the multiprocess executor (one process per step, GPU-group tag
limits within the run, pools across runs) with ``require_upstream_step_success: false``: a step
that failed for some videos still hands its outputs on, and the steps after it analyze the
videos that succeeded (``execution.py``). The CLI runs the same job in its own process
(``analyze_job_in_process``): every model loaded once for all its videos, steps whose inputs are
ready side by side in threads (``executors/threads.py``).

Loading it also sets the pool slot counts from ``gpu_groups.yaml`` on the instance the deployment uses
(under ``dagster dev``, the daemon, run workers, Celery workers and the CLI alike; a fresh instance too)
when they differ, guarded so that a problem there never fails the load; not when this process has
just set the same counts there (the CLI, ``pool_limits.py``), which saves building a second instance.
It also leaves out Dagster's step-start read of input data versions in the project's runs, where
nothing uses it (``input_versions.py``).
"""

from __future__ import annotations

import logging
import os

import dagster as dg

from .assets import SCORES_KEY, SEARCH_KEY, build_assets, videos_partitions
from .automation import SCORE_JOB, build_automation
from .config import load_settings
from .execution import PER_VIDEO_EVENTS_TAGS
from .executors import build_executor
from .executors.multiprocess import STEP_DEPENDENCIES
from .executors.threads import in_process_threads_executor
from .gpu_groups import GpuGroups
from .input_versions import install as skip_unused_input_version_reads
from .model_registry.resource import ModelsResource
from .pool_limits import apply_pool_limits, load_gpu_groups, set_here

ANALYZE_JOB = "analyze_video"
log = logging.getLogger("tiktok_assets")


def _pool_limits_on_load(groups: GpuGroups) -> None:
    """Apply the pool limits to the instance the deployment uses (``instance.deployment_instance``:
    ``$DAGSTER_HOME``'s, the Postgres one, or the data root's if it exists); log, never raise."""
    try:
        from .instance import deployment_instance

        settings = load_settings()
        cuda = True if settings.executor == "k8s" else None
        home = os.environ.get("DAGSTER_HOME", "").strip() or str(settings.dagster_home)
        if set_here(home, groups, cuda):  # this process (the CLI) has just set them there
            return
        instance = deployment_instance(settings)
        if instance is not None:
            with instance:
                # on Kubernetes every GPU group's step pod has a GPU, whether or not this pod (code
                # server, run pod: none; step pod: one) sees one, so all of them write the same counts
                apply_pool_limits(instance, groups, cuda=cuda)
    except Exception as exc:  # noqa: BLE001 - the code location must load even if this fails
        log.warning(f"could not set pool limits from gpu_groups.yaml: {exc}")


def build_definitions() -> dg.Definitions:
    skip_unused_input_version_reads()  # in every process that runs this location's steps
    groups = load_gpu_groups()
    executor = build_executor(groups, load_settings())
    assets = build_assets(groups)
    analyze_job = dg.define_asset_job(
        ANALYZE_JOB,
        selection=dg.AssetSelection.all() - dg.AssetSelection.assets(SCORES_KEY, SEARCH_KEY),
        partitions_def=videos_partitions,
        run_tags=PER_VIDEO_EVENTS_TAGS,
        description="Ingest, decode and analyze one video or a range of videos (one step per GPU group, "
                    "each video on its own); their scores follow in a `score_video` run when this run "
                    "ends, whatever its outcome.",
    )
    score_job = dg.define_asset_job(
        SCORE_JOB,
        selection=dg.AssetSelection.assets(SCORES_KEY, SEARCH_KEY),
        partitions_def=videos_partitions,
        run_tags=PER_VIDEO_EVENTS_TAGS,
        description="Score the reconstruction of the videos of a run from the warehouse and index them for "
                    "search (after each run).",
    )
    sensors, nightly_backfill = build_automation(ANALYZE_JOB, videos_partitions, score_job)
    _pool_limits_on_load(groups)
    return dg.Definitions(
        assets=assets, jobs=[analyze_job, score_job], sensors=sensors, schedules=[nightly_backfill],
        executor=executor, resources={"models": ModelsResource()},
    )


defs = build_definitions()


def analyze_job() -> dg.JobDefinition:
    """The analysis job, resolved; ``dg.reconstructable(analyze_job)`` runs it out of process."""
    return defs.resolve_job_def(ANALYZE_JOB)


def analyze_job_in_process() -> dg.JobDefinition:
    """The same job with every step in the calling process (the CLI: models load once for all
    videos of the call), steps whose inputs are ready side by side in threads (``TIKTOK_ASSETS_THREADS``
    at once); run it with ``dg.execute_job(dg.reconstructable(analyze_job_in_process))``."""
    return analyze_job().with_executor_def(_threads_executor())


def score_job_in_process() -> dg.JobDefinition:
    """The score job in the calling process (the CLI); its two steps (scores and report, search
    index) need nothing of each other and run side by side in threads."""
    return defs.resolve_job_def(SCORE_JOB).with_executor_def(_threads_executor())


def _threads_executor() -> dg.ExecutorDefinition:
    """The CLI's executor: every step in this process, ready ones side by side in threads."""
    return in_process_threads_executor.configured({
        "step_dependency_config": STEP_DEPENDENCIES, "max_concurrent": load_settings().threads,
        "tag_concurrency_limits": load_gpu_groups().executor_tag_limits(),
    })
