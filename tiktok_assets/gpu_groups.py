"""Load ``gpu_groups.yaml`` and derive pools, executor limits and devices from it.

The file is the single source of truth for which analyzer runs in which group, on which device,
how many steps of a group may run at once, and with what batch size; on Kubernetes also what each
group's step pod asks for (CPU, memory, a GPU and the nodes that have one). Errors (unknown analyzer,
analyzer without a group, bad numbers) raise :class:`GpuGroupsError` when the code location loads.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

GROUP_TAG = "tiktok_assets/group"
DEVICES = ("cuda", "cpu")
GROUP_KEYS = frozenset({
    "device", "max_concurrent", "cpu_max_concurrent", "batch_size", "memory_gb", "analyzers", "description",
    "cpu", "ram_gb", "priority",
})
KUBERNETES_KEYS = frozenset({
    "gpu_resource", "gpu_node_selector", "gpu_tolerations", "cpu_node_selector", "default_cpu", "default_ram_gb",
})
TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


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
    cpu: float | None = None  # CPU cores the group's step pod requests on Kubernetes (default: kubernetes.default_cpu)
    ram_gb: float | None = None  # memory of that pod in GiB (default: see KubernetesConfig.pod_ram_gb)
    priority: int = 0  # of several ready steps, higher first (Dagster's dagster/priority op tag)

    @property
    def pool(self) -> str:
        return f"tiktok_{self.name}"

    def limit(self, cuda: bool) -> int:
        return self.max_concurrent if (cuda and self.device == "cuda") else self.cpu_max_concurrent

    def resolved_device(self, cuda: bool) -> str:
        return "cuda" if (cuda and self.device == "cuda") else "cpu"


@dataclass(frozen=True)
class KubernetesConfig:
    """The optional ``kubernetes:`` block: what a step pod of a GPU group needs to land on a GPU node."""

    gpu_resource: str = "nvidia.com/gpu"
    gpu_node_selector: dict[str, str] = field(default_factory=lambda: {"nvidia.com/gpu.present": "true"})
    gpu_tolerations: tuple[dict, ...] = (
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    )
    cpu_node_selector: dict[str, str] = field(default_factory=dict)
    default_cpu: float = 1.0
    default_ram_gb: float = 4.0

    def pod_cpu(self, group: GpuGroup) -> float:
        return group.cpu if group.cpu is not None else self.default_cpu

    def pod_ram_gb(self, group: GpuGroup) -> float:
        """``ram_gb``; else for a GPU group at least its ``memory_gb`` (the weights pass through host
        memory when they load), for a CPU group ``default_ram_gb``."""
        if group.ram_gb is not None:
            return group.ram_gb
        if group.device == "cuda" and group.memory_gb:
            return max(self.default_ram_gb, float(group.memory_gb))
        return self.default_ram_gb


@dataclass(frozen=True)
class GpuGroups:
    groups: dict[str, GpuGroup]
    pipeline_group: str
    cuda: bool
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)

    def group_of(self, analyzer: str) -> GpuGroup:
        for group in self.groups.values():
            if analyzer in group.analyzers:
                return group
        raise GpuGroupsError(f"analyzer {analyzer!r} is in no group of gpu_groups.yaml")

    def executor_tag_limits(self, cuda: bool | None = None) -> list[dict]:
        """``tag_concurrency_limits`` for the executor (limits within one run); ``cuda`` overrides this
        process's GPU detection (on Kubernetes every step of a GPU group gets a pod with a GPU)."""
        gpu = self.cuda if cuda is None else cuda
        return [{"key": GROUP_TAG, "value": g.name, "limit": g.limit(gpu)} for g in self.groups.values()]

    def pool_limits(self, cuda: bool | None = None) -> dict[str, int]:
        """Pool name -> slots, to set on the Dagster instance (limits across runs); ``cuda`` overrides
        this process's GPU detection, as for :meth:`executor_tag_limits`."""
        gpu = self.cuda if cuda is None else cuda
        return {g.pool: g.limit(gpu) for g in self.groups.values()}


def _positive_int(group: str, key: str, value, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GpuGroupsError(f"group {group!r}: {key} must be a whole number >= 1, got {value!r}")
    return value


def _whole_number(group: str, key: str, value) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise GpuGroupsError(f"group {group!r}: {key} must be a whole number, got {value!r}")
    return value


def _positive_number(where: str, key: str, value) -> float | None:
    """None when unset; a finite number > 0 otherwise (one sentence naming ``where`` and ``key``)."""
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
        raise GpuGroupsError(f"{where}: {key} must be a number greater than 0, got {value!r}")
    return float(value)


def _labels(key: str, value) -> dict[str, str]:
    """A node selector: label names to label values, both text (YAML ``true`` must be quoted)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise GpuGroupsError(f"kubernetes: {key} must map label names to quoted text values, got {value!r}")
    return dict(value)


def _tolerations(value) -> tuple[dict, ...]:
    if not isinstance(value, list):
        raise GpuGroupsError(f"kubernetes: gpu_tolerations must be a list of tolerations, got {value!r}")
    for item in value:
        if not isinstance(item, dict) or set(item) - TOLERATION_KEYS:
            raise GpuGroupsError(
                f"kubernetes: each of gpu_tolerations is a mapping of {sorted(TOLERATION_KEYS)}, got {item!r}"
            )
        if item.get("operator", "Equal") not in TOLERATION_OPERATORS:
            raise GpuGroupsError(f"kubernetes: toleration operator must be one of {TOLERATION_OPERATORS}, got "
                                 f"{item.get('operator')!r}")
        if "effect" in item and item["effect"] not in TOLERATION_EFFECTS:
            raise GpuGroupsError(f"kubernetes: toleration effect must be one of {TOLERATION_EFFECTS}, got "
                                 f"{item['effect']!r}")
    return tuple(dict(item) for item in value)


def parse_kubernetes(raw) -> KubernetesConfig:
    """The optional top-level ``kubernetes:`` block (defaults: NVIDIA's device plugin and node labels)."""
    if raw is None:
        return KubernetesConfig()
    if not isinstance(raw, dict):
        raise GpuGroupsError("kubernetes: must be a mapping")
    unknown = set(raw) - KUBERNETES_KEYS
    if unknown:
        raise GpuGroupsError(f"kubernetes: unknown settings {sorted(unknown)}; known: {sorted(KUBERNETES_KEYS)}")
    defaults = KubernetesConfig()
    resource = raw.get("gpu_resource", defaults.gpu_resource)
    if not isinstance(resource, str) or not resource.strip():
        raise GpuGroupsError(f"kubernetes: gpu_resource must be a resource name such as nvidia.com/gpu, got {resource!r}")
    return KubernetesConfig(
        gpu_resource=resource.strip(),
        gpu_node_selector=_labels("gpu_node_selector", raw["gpu_node_selector"])
        if "gpu_node_selector" in raw else defaults.gpu_node_selector,
        gpu_tolerations=_tolerations(raw["gpu_tolerations"] or [])
        if "gpu_tolerations" in raw else defaults.gpu_tolerations,
        cpu_node_selector=_labels("cpu_node_selector", raw.get("cpu_node_selector")),
        default_cpu=_positive_number("kubernetes", "default_cpu", raw.get("default_cpu")) or defaults.default_cpu,
        default_ram_gb=_positive_number("kubernetes", "default_ram_gb", raw.get("default_ram_gb"))
        or defaults.default_ram_gb,
    )


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
        unknown_keys = set(raw) - GROUP_KEYS
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
            memory_gb=_positive_number(f"group {name!r}", "memory_gb", raw.get("memory_gb")),
            analyzers=analyzers,
            cpu=_positive_number(f"group {name!r}", "cpu", raw.get("cpu")),
            ram_gb=_positive_number(f"group {name!r}", "ram_gb", raw.get("ram_gb")),
            priority=_whole_number(name, "priority", raw.get("priority")),
        )
    missing = sorted(known - set(owner))
    if missing:
        raise GpuGroupsError(f"analyzers {missing} are in no group of gpu_groups.yaml; add each to one group")
    pipeline_group = data.get("pipeline_group", "cpu")
    if pipeline_group not in groups:
        raise GpuGroupsError(f"pipeline_group {pipeline_group!r} is not a group in gpu_groups.yaml")
    return GpuGroups(groups=groups, pipeline_group=pipeline_group, cuda=cuda,
                     kubernetes=parse_kubernetes(data.get("kubernetes")))


def cuda_probe_touches_driver(override: str | None = None) -> bool:
    """Whether :func:`cuda_available` asks the CUDA driver (which a process must not do before it
    forks): only on a machine with an NVIDIA driver and without ``TIKTOK_ASSETS_DEVICE``."""
    return not override and os.path.exists("/proc/driver/nvidia/version")


def cuda_available(override: str | None = None) -> bool:
    """True when a CUDA device is usable (``TIKTOK_ASSETS_DEVICE=cpu|cuda`` forces the answer)."""
    if override:
        return override.lower() == "cuda"
    if not cuda_probe_touches_driver(override):
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
