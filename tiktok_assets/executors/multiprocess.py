"""One machine: a process per step, forked from a server that has imported the heavy modules once."""

from __future__ import annotations

import dagster as dg

from ..gpu_groups import GpuGroups

# downstream steps run on the outputs a partly failed step handed on (execution.py)
STEP_DEPENDENCIES = {"require_upstream_step_success": False}
# Step processes fork from a server that has imported these once per run (instead of each step
# importing Dagster, the project and its libraries anew). Nothing here touches CUDA (a forked CUDA
# context breaks): the code location itself, whose load may ask the driver for GPUs, is not listed.
FORKSERVER_PRELOAD = ["dagster", "tiktok_assets.assets", "pyarrow.parquet", "duckdb", "av", "cv2"]


def executor(groups: GpuGroups) -> dg.ExecutorDefinition:
    """The multiprocess executor with the groups' tag limits within a run (pools limit across runs)."""
    return dg.multiprocess_executor.configured(
        {"tag_concurrency_limits": groups.executor_tag_limits(), "step_dependency_config": STEP_DEPENDENCIES,
         "start_method": {"forkserver": {"preload_modules": FORKSERVER_PRELOAD}}}
    )
