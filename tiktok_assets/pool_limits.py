"""The GPU groups of ``gpu_groups.yaml`` and their pool slot counts on a Dagster instance.

Loading the code location writes the counts to the deployment's instance
(``definitions._pool_limits_on_load``); a process that has already written them to that instance
(the CLI's :func:`cli.ensure_instance` before it loads the definitions) is not made to build a second
instance only to find them equal.
"""

from __future__ import annotations

import os

import dagster as dg

from .analyzers import all_specs
from .config import load_settings
from .gpu_groups import GpuGroups, load_groups

# what this process set on the instance rooted at a folder: (root, cuda) -> limits
_SET_HERE: dict[tuple[str, bool | None], dict[str, int]] = {}


def load_gpu_groups() -> GpuGroups:
    settings = load_settings()
    return load_groups(settings.gpu_groups_file, tuple(sorted(all_specs())), settings.device_override)


def apply_pool_limits(instance: dg.DagsterInstance, groups: GpuGroups, cuda: bool | None = None) -> dict[str, int]:
    """Set each GPU group's pool slot count on ``instance``; returns what was set (``cuda``: see
    :meth:`GpuGroups.pool_limits`)."""
    limits = groups.pool_limits(cuda)
    storage = instance.event_log_storage
    for pool, limit in limits.items():
        try:
            info = storage.get_concurrency_info(pool)
            current = None if info.using_default_limit else info.slot_count
        except Exception:  # noqa: BLE001 - unreadable: set it
            current = None
        if current != limit:  # rewriting equal counts costs a write transaction per pool and call
            storage.set_concurrency_slots(pool, limit)
    _SET_HERE[(os.path.realpath(instance.root_directory), cuda)] = dict(limits)
    return limits


def set_here(root: str, groups: GpuGroups, cuda: bool | None) -> bool:
    """Whether this process has set these ``groups``' limits (for ``cuda``) on the instance rooted at
    ``root``."""
    return _SET_HERE.get((os.path.realpath(root), cuda)) == groups.pool_limits(cuda)
