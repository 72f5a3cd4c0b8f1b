"""One machine: a process per step, forked from a server that has imported the heavy modules once."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
from dagster._core.definitions.executor_definition import (
    MULTI_PROC_CONFIG,
    multiple_process_executor_requirements,
)
from dagster._core.events import DagsterEvent
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.base import Executor

from ..gpu_groups import GpuGroups, cuda_probe_touches_driver

# downstream steps run on the outputs a partly failed step handed on (execution.py)
STEP_DEPENDENCIES = {"require_upstream_step_success": False}
# Step processes fork from a server that has imported these once per run (instead of each step
# importing Dagster, its storage layer, the project and its libraries anew). Nothing here touches
# CUDA (a forked CUDA context breaks).
FORKSERVER_PRELOAD = ["dagster", "tiktok_assets.instance", "tiktok_assets.assets", "pyarrow.parquet", "duckdb", "av",
                      "cv2"]
# The code location itself (building the job, ~0.4 s of each step process's start on a 2-core
# machine, and as much again for the storage layer above) is preloaded too where loading it cannot
# touch CUDA: it asks the driver for GPUs only on a machine with an NVIDIA driver and no
# TIKTOK_ASSETS_DEVICE (gpu_groups.cuda_available).
CODE_LOCATION = "tiktok_assets.definitions"


# imported last: freezes what the others made (gc.freeze), for the forked step processes
FREEZE = "tiktok_assets.freeze_preloaded"


def preload_modules(groups_probe_cuda: bool) -> list[str]:
    """What the fork server imports: :data:`FORKSERVER_PRELOAD`, the code location unless loading
    it probes the CUDA driver (``groups_probe_cuda``), and last :data:`FREEZE`."""
    return [*FORKSERVER_PRELOAD, *([] if groups_probe_cuda else [CODE_LOCATION]), FREEZE]


class HeadStartExecutor(Executor):
    """Dagster's multiprocess executor, with the run's first video decoded in a helper process
    (:func:`early_decode.start_for_video`) while the fork server imports its modules (~1.8 s on a
    2-core machine before the first step): the ``media`` step, or an analyzer step that finds the
    cache evicted, then waits for the helper under the partition's lock and uses its version, as
    with the CLI's head start. Everything else is the inner executor's."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner

    @property
    def retries(self) -> RetryMode:
        return self.inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self.inner.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator[DagsterEvent]:
        from ..config import load_settings
        from ..early_decode import running, start_for_video
        from ..execution import PARTITION_TAG, RANGE_START_TAG

        tags = plan_context.dagster_run.tags
        first = tags.get(PARTITION_TAG) or tags.get(RANGE_START_TAG)
        # only runs that decode or read the media cache (not the score run: it evicts the cache)
        decodes = any(key == "ingest" or key.endswith("_analyzers") for key in execution_plan.step_keys_to_execute)
        helper = start_for_video(load_settings(), first) if first and decodes else None
        with running(helper):
            yield from self.inner.execute(plan_context, execution_plan)


def _with_head_start(init_context) -> HeadStartExecutor:
    return HeadStartExecutor(dg.multiprocess_executor.executor_creation_fn(init_context))


# Dagster's multiprocess executor (its name, config and requirements) creating a HeadStartExecutor
MULTIPROCESS_WITH_HEAD_START = dg.ExecutorDefinition(
    name="multiprocess", config_schema=MULTI_PROC_CONFIG, requirements=multiple_process_executor_requirements(),
    executor_creation_fn=_with_head_start,
    description="Execute each step in an individual process; the run's first video decodes while the steps start.",
)


def executor(groups: GpuGroups, device_override: str | None = None) -> dg.ExecutorDefinition:
    """The multiprocess executor with the groups' tag limits within a run (pools limit across runs)."""
    preload = preload_modules(cuda_probe_touches_driver(device_override))
    return MULTIPROCESS_WITH_HEAD_START.configured(
        {"tag_concurrency_limits": groups.executor_tag_limits(), "step_dependency_config": STEP_DEPENDENCIES,
         "start_method": {"forkserver": {"preload_modules": preload}}}
    )
