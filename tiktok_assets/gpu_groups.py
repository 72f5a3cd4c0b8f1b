"""Load ``gpu_groups.yaml`` and derive pools, executor limits and devices from it.

The file is the single source of truth for which analyzer runs in which group, on which device,
how many steps of a group may run at once, and with what batch size. Errors (unknown analyzer,
analyzer without a group, bad numbers) raise :class:`GpuGroupsError` when the code location loads.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

GROUP_TAG = "tiktok_assets/group"
DEVICES = ("cuda", "cpu")


class GpuGroupsError(ValueError):
    """gpu_groups.yaml is malformed or disagrees with the analyzer registry."""


@dataclass(frozen=True)
class GpuGroup:
    name: str
    device: str
    max_concurrent: int
    cpu_max_concurrent: int
    batch_size: int
    memory_gb: float | None
    analyzers: tuple[str, ...]

    @property
    def pool(self) -> str:
        return f"tiktok_{self.name}"

    def limit(self, cuda: bool) -> int:
        return self.max_concurrent if (cuda and self.device == "cuda") else self.cpu_max_concurrent

    def resolved_device(self, cuda: bool) -> str:
        return "cuda" if (cuda and self.device == "cuda") else "cpu"


@dataclass(frozen=True)
class GpuGroups:
    groups: dict[str, GpuGroup]
    pipeline_group: str
    cuda: bool

    def group_of(self, analyzer: str) -> GpuGroup:
        for group in self.groups.values():
            if analyzer in group.analyzers:
                return group
        raise GpuGroupsError(f"analyzer {analyzer!r} is in no group of gpu_groups.yaml")

    def executor_tag_limits(self) -> list[dict]:
        """``tag_concurrency_limits`` for the multiprocess executor (limits within one run)."""
        return [
            {"key": GROUP_TAG, "value": g.name, "limit": g.limit(self.cuda)} for g in self.groups.values()
        ]

    def pool_limits(self) -> dict[str, int]:
        """Pool name -> slots, to set on the Dagster instance (limits across runs)."""
        return {g.pool: g.limit(self.cuda) for g in self.groups.values()}


def _positive_int(group: str, key: str, value, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GpuGroupsError(f"group {group!r}: {key} must be a whole number >= 1, got {value!r}")
    return value


def parse_groups(data: dict, known_analyzers: Iterable[str], cuda: bool) -> GpuGroups:
    """Validate the YAML structure against the analyzer registry."""
    if not isinstance(data, dict) or not isinstance(data.get("groups"), dict) or not data["groups"]:
        raise GpuGroupsError("gpu_groups.yaml needs a non-empty mapping `groups:`")
    known = set(known_analyzers)
    groups: dict[str, GpuGroup] = {}
    owner: dict[str, str] = {}
    for name, raw in data["groups"].items():
        if not isinstance(raw, dict):
            raise GpuGroupsError(f"group {name!r} must be a mapping")
        unknown_keys = set(raw) - {
            "device", "max_concurrent", "cpu_max_concurrent", "batch_size", "memory_gb", "analyzers",
            "description",
        }
        if unknown_keys:
            raise GpuGroupsError(f"group {name!r}: unknown settings {sorted(unknown_keys)}")
        device = raw.get("device", "cpu")
        if device not in DEVICES:
            raise GpuGroupsError(f"group {name!r}: device must be one of {DEVICES}, got {device!r}")
        analyzers = tuple(raw.get("analyzers") or ())
        for analyzer in analyzers:
            if analyzer not in known:
                raise GpuGroupsError(
                    f"group {name!r} lists unknown analyzer {analyzer!r}; known: {', '.join(sorted(known))}"
                )
            if analyzer in owner:
                raise GpuGroupsError(f"analyzer {analyzer!r} is in two groups: {owner[analyzer]!r} and {name!r}")
            owner[analyzer] = name
        max_concurrent = _positive_int(name, "max_concurrent", raw.get("max_concurrent"), 1)
        groups[name] = GpuGroup(
            name=name,
            device=device,
            max_concurrent=max_concurrent,
            cpu_max_concurrent=_positive_int(
                name, "cpu_max_concurrent", raw.get("cpu_max_concurrent"), max_concurrent
            ),
            batch_size=_positive_int(name, "batch_size", raw.get("batch_size"), 1),
            memory_gb=raw.get("memory_gb"),
            analyzers=analyzers,
        )
    missing = sorted(known - set(owner))
    if missing:
        raise GpuGroupsError(f"analyzers {missing} are in no group of gpu_groups.yaml; add each to one group")
    pipeline_group = data.get("pipeline_group", "cpu")
    if pipeline_group not in groups:
        raise GpuGroupsError(f"pipeline_group {pipeline_group!r} is not a group in gpu_groups.yaml")
    return GpuGroups(groups=groups, pipeline_group=pipeline_group, cuda=cuda)


def cuda_available(override: str | None = None) -> bool:
    """True when a CUDA device is usable (``TIKTOK_ASSETS_DEVICE=cpu|cuda`` forces the answer)."""
    if override:
        return override.lower() == "cuda"
    if not os.path.exists("/proc/driver/nvidia/version"):
        return False
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:  # noqa: BLE001 - a broken driver means no GPU, not a crash
        return False


@functools.cache
def load_groups(path: Path, known_analyzers: tuple[str, ...], device_override: str | None) -> GpuGroups:
    path = Path(path)
    if not path.is_file():
        raise GpuGroupsError(f"gpu_groups.yaml not found at {path} (set TIKTOK_ASSETS_GPU_GROUPS)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise GpuGroupsError(f"{path} is not valid YAML: {exc}") from exc
    return parse_groups(data, known_analyzers, cuda_available(device_override))
