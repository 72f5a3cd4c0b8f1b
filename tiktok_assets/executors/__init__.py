"""Where a run's steps execute, chosen by ``TIKTOK_ASSETS_EXECUTOR`` and derived from ``gpu_groups.yaml``.

- ``multiprocess`` (default): this machine, one process per step (``multiprocess.py``).
- ``k8s``: a Kubernetes Job per step, its pod sized and placed per group (``k8s.py``, ``deploy/``).
- ``celery``: Celery workers per GPU group, one queue per group (``celery.py``; services and workers:
  ``celery_services.py``).
Each mode contributes the executor of the code location and the tags of every group's step (queue,
pod resources): the steps themselves are the same in every mode. The CLI runs the same job in its
own process with ``threads.py`` (steps side by side in threads, ``TIKTOK_ASSETS_THREADS``).
"""

from __future__ import annotations

import dagster as dg

from ..config import Settings
from ..gpu_groups import GROUP_TAG, GpuGroup, GpuGroups
from . import multiprocess

PRIORITY_TAG = "dagster/priority"  # of the steps ready to start, the executors start higher ones first


def step_tags(group: GpuGroup, groups: GpuGroups, settings: Settings) -> dict[str, str]:
    """Op tags of a step of ``group``: its group, its priority when set, plus what the deployment
    mode routes by."""
    tags = {GROUP_TAG: group.name}
    if group.priority:
        tags[PRIORITY_TAG] = str(group.priority)
    if settings.executor == "k8s":
        from . import k8s

        tags.update(k8s.step_tags(group, groups))
    if settings.executor == "celery":
        from . import celery

        tags.update(celery.step_tags(group))
    return tags


def build_executor(groups: GpuGroups, settings: Settings) -> dg.ExecutorDefinition:
    """The code location's executor for the deployment mode in ``settings.executor``."""
    if settings.executor == "k8s":
        from . import k8s

        return k8s.executor(groups, settings)
    if settings.executor == "celery":
        from . import celery

        return celery.executor(groups, settings)
    return multiprocess.executor(groups, settings.device_override)
