"""Kubernetes: a Job per step (``dagster_k8s.k8s_job_executor``), its pod sized from ``gpu_groups.yaml``.

Every group's step carries a ``dagster-k8s/config`` tag: a GPU group's pod requests and limits one
GPU (``kubernetes.gpu_resource``), lands on GPU nodes (``gpu_node_selector``) and tolerates their
taint (``gpu_tolerations``); a CPU group's pod asks for CPU and memory only. The tags follow from the
YAML alone, not from whether the process building the definitions sees a GPU: the run pod, which
turns them into step pods, has none. Which device an analyzer then uses is decided in its step pod
(the definitions load again there and see the GPU). Image, namespace, volumes and environment come
from the Helm chart's code location (``includeConfigInLaunchedRuns``) and run launcher
(``deploy/helm/values.yaml``); settings may override the namespace and the image pull policy.
"""

from __future__ import annotations

import json

import dagster as dg

from ..config import Settings
from ..gpu_groups import GpuGroup, GpuGroups
from .multiprocess import STEP_DEPENDENCIES

# the op tag dagster-k8s reads per step (dagster_k8s.job.USER_DEFINED_K8S_CONFIG_KEY; not imported so
# that loading the definitions in the other modes does not import the Kubernetes client)
K8S_CONFIG_TAG = "dagster-k8s/config"
# pod label naming the group (a label prefix allows no underscore, hence not the op tag's name)
GROUP_LABEL = "tiktok-assets/group"


def cpu_quantity(cores: float) -> str:
    """Kubernetes CPU quantity: whole cores as ``"2"``, fractions in millicores (``"500m"``)."""
    millicores = round(cores * 1000)
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def memory_quantity(gib: float) -> str:
    """Kubernetes memory quantity: whole GiB as ``"8Gi"``, otherwise in MiB (``"1536Mi"``)."""
    mib = round(gib * 1024)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def step_k8s_config(group: GpuGroup, groups: GpuGroups) -> dict:
    """The ``dagster-k8s/config`` of ``group``'s step (snake_case keys, as dagster-k8s accepts)."""
    kube = groups.kubernetes
    memory = memory_quantity(kube.pod_ram_gb(group))
    requests = {"cpu": cpu_quantity(kube.pod_cpu(group)), "memory": memory}
    limits = {"memory": memory}  # no CPU limit: a step may use idle cores without being throttled
    pod_spec: dict = {}
    if group.device == "cuda":
        requests[kube.gpu_resource] = limits[kube.gpu_resource] = "1"
        if kube.gpu_node_selector:
            pod_spec["node_selector"] = dict(kube.gpu_node_selector)
        if kube.gpu_tolerations:
            pod_spec["tolerations"] = [dict(t) for t in kube.gpu_tolerations]
    elif kube.cpu_node_selector:
        pod_spec["node_selector"] = dict(kube.cpu_node_selector)
    config: dict = {
        "container_config": {"resources": {"requests": requests, "limits": limits}},
        "pod_template_spec_metadata": {"labels": {GROUP_LABEL: group.name}},
    }
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    return config


def step_tags(group: GpuGroup, groups: GpuGroups) -> dict[str, str]:
    """The op tag that sizes and places ``group``'s step pod."""
    return {K8S_CONFIG_TAG: json.dumps(step_k8s_config(group, groups), sort_keys=True)}


def executor_config(groups: GpuGroups, settings: Settings) -> dict:
    """Configuration of ``k8s_job_executor``: group limits within a run (every GPU group's pod has a
    GPU, whatever this process sees), downstream steps run after partly failed ones, optional overrides."""
    config: dict = {
        "tag_concurrency_limits": groups.executor_tag_limits(cuda=True),
        "step_dependency_config": STEP_DEPENDENCIES,
    }
    if settings.k8s_namespace:
        config["job_namespace"] = settings.k8s_namespace
    if settings.k8s_image_pull_policy:
        config["image_pull_policy"] = settings.k8s_image_pull_policy
    return config


def executor(groups: GpuGroups, settings: Settings) -> dg.ExecutorDefinition:
    """``k8s_job_executor`` configured from ``gpu_groups.yaml`` and the settings."""
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor.configured(executor_config(groups, settings))


def pool_commands(groups: GpuGroups) -> list[str]:
    """The commands that give the cluster's instance each group's pool slot count (limits across runs;
    the code location cannot set them there: its pod does not hold the instance)."""
    return [f"dagster instance concurrency set {g.pool} {g.limit(True)}" for g in groups.groups.values()]


if __name__ == "__main__":  # python -m tiktok_assets.executors.k8s: print them for kubectl exec
    from ..analyzers import all_specs
    from ..config import load_settings
    from ..gpu_groups import load_groups

    _settings = load_settings()
    print("\n".join(pool_commands(load_groups(_settings.gpu_groups_file, tuple(sorted(all_specs())), "cpu"))))
