"""One machine: a process per step, forked from a server that has imported the heavy modules once."""

from __future__ import annotations

import dagster as dg

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


def preload_modules(groups_probe_cuda: bool) -> list[str]:
    """What the fork server imports: :data:`FORKSERVER_PRELOAD`, and the code location unless
    loading it probes the CUDA driver (``groups_probe_cuda``)."""
    return FORKSERVER_PRELOAD if groups_probe_cuda else [*FORKSERVER_PRELOAD, CODE_LOCATION]


def executor(groups: GpuGroups, device_override: str | None = None) -> dg.ExecutorDefinition:
    """The multiprocess executor with the groups' tag limits within a run (pools limit across runs)."""
    preload = preload_modules(cuda_probe_touches_driver(device_override))
    return dg.multiprocess_executor.configured(
        {"tag_concurrency_limits": groups.executor_tag_limits(), "step_dependency_config": STEP_DEPENDENCIES,
         "start_method": {"forkserver": {"preload_modules": preload}}}
    )
