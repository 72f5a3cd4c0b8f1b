"""The Kubernetes deployment, rendered and checked here (no cluster, no helm binary, no Docker daemon).

Every step of the analysis job is launched by the executor's own step handler
(``K8sStepHandler.launch_step``: the step's ``dagster-k8s/config`` tag, the run launcher's and the
code location's container context, ``construct_dagster_k8s_job``) against a mocked Kubernetes API,
and each Job it sends is checked against ``gpu_groups.yaml``, read independently of the code that
made the tags. The Helm values, the
storage manifest and the Dockerfile are checked against the settings the code reads.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tiktok_assets.config import PROJECT_DIR
from tiktok_assets.gpu_groups import GROUP_TAG

DEPLOY = PROJECT_DIR / "deploy"
VALUES = DEPLOY / "helm" / "values.yaml"
RELEASE = "tiktok"  # the release name deploy/helm/values.yaml's header installs with
NAMESPACE = "tiktok"
GiB = 1024**3


def raw_groups() -> dict:
    return yaml.safe_load((PROJECT_DIR / "gpu_groups.yaml").read_text())


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def deployment() -> dict:
    (only,) = values()["dagster-user-deployments"]["deployments"]
    return only


def env_of(dep: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in dep["env"]}


def chart_container_context(dep: dict) -> dict:
    """What the chart hands the code location as container context for launched runs
    (``dagsterUserDeployments.k8sContainerContext`` in its user-deployment helpers), from our values
    (an env list goes in as it is; the deployment's env ConfigMap is referenced either way)."""
    return {
        "k8s": {
            "image_pull_policy": dep["image"]["pullPolicy"],
            "env_config_maps": [f"{RELEASE}-dagster-user-deployments-{dep['name']}-user-env"],
            "env": dep["env"],
            "volume_mounts": dep.get("volumeMounts", []),
            "volumes": dep.get("volumes", []),
            "resources": dep.get("resources") or None,
            "namespace": NAMESPACE,
            "service_account_name": f"{RELEASE}-dagster-user-deployments-user-deployments",
            "run_k8s_config": {"pod_spec_config": {"automount_service_account_token": True}},
        }
    }


@pytest.fixture(scope="module")
def k8s_defs(home):
    """The code location built as in the cluster (``TIKTOK_ASSETS_EXECUTOR=k8s``), on this GPU-less
    machine and as seen by a process that detects a GPU."""
    from tiktok_assets.definitions import build_definitions

    patch = pytest.MonkeyPatch()
    patch.setenv("TIKTOK_ASSETS_EXECUTOR", "k8s")
    patch.setenv("TIKTOK_ASSETS_DEVICE", "cpu")
    without_gpu = build_definitions()
    patch.setenv("TIKTOK_ASSETS_DEVICE", "cuda")
    with_gpu = build_definitions()
    patch.undo()
    return without_gpu, with_gpu


def plan_steps(defs) -> dict:
    from dagster._core.execution.api import create_execution_plan

    plan = create_execution_plan(defs.resolve_job_def("analyze_video"))
    return {step.key: step for step in plan.steps}


def chart_run_launcher(kubeconfig: Path) -> dict:
    """The run launcher the chart writes into the instance's dagster.yaml for our values
    (``dagsterYaml.runLauncher.k8s``), except that it loads a stand-in kubeconfig instead of the
    in-cluster one."""
    return {
        "module": "dagster_k8s", "class": "K8sRunLauncher",
        "config": {
            "load_incluster_config": False, "kubeconfig_file": str(kubeconfig), "job_namespace": NAMESPACE,
            "image_pull_policy": "Always", "service_account_name": f"{RELEASE}-dagster",
            "dagster_home": "/opt/dagster/dagster_home", "instance_config_map": f"{RELEASE}-dagster-instance",
            "postgres_password_secret": "dagster-postgresql-secret",
        },
    }


def launch_steps(defs, tmp: Path) -> dict:
    """Each step's Kubernetes Job as the executor's own step handler (``K8sStepHandler.launch_step``)
    creates it in a run pod: the K8sRunLauncher of the chart's instance, the code location's container
    context and image as the chart's code server reports them, the step's tags; the Kubernetes API is
    a mock that keeps what it was sent."""
    from unittest import mock

    import dagster as dg
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
    from dagster._core.execution.context_creation_job import create_context_free_log_manager
    from dagster._core.execution.retries import RetryMode
    from dagster._core.executor.init import InitExecutorContext
    from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext
    from dagster._core.test_utils import create_run_for_test, instance_for_test
    from dagster._grpc.types import ExecuteStepArgs
    from dagster_k8s.client import DagsterKubernetesClient

    from tiktok_assets.definitions import analyze_job

    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "test", "user": {"token": "none"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    dep = deployment()
    job = defs.resolve_job_def("analyze_video")
    recon = dg.reconstructable(analyze_job)
    origin = recon.get_python_origin()
    origin = origin._replace(repository_origin=origin.repository_origin._replace(
        container_context=chart_container_context(dep),
        container_image=f"{dep['image']['repository']}:{dep['image']['tag']}",
    ))
    sent = mock.MagicMock()
    with instance_for_test(overrides={"run_launcher": chart_run_launcher(kubeconfig)}) as instance:
        run = create_run_for_test(instance, job_name="analyze_video", job_code_origin=origin)
        executor_def = job.executor_def
        executor = executor_def.executor_creation_fn(InitExecutorContext(
            job=recon, executor_def=executor_def, instance=instance,
            executor_config=executor_def.config_schema.resolve_config({}).value["config"],
        ))
        handler = executor._step_handler
        handler._api_client = DagsterKubernetesClient.production_client(batch_api_override=sent)
        plan = create_execution_plan(job)
        plan_context = PlanOrchestrationContext(
            plan_data=PlanData(job=recon, dagster_run=run, instance=instance, execution_plan=plan,
                               raise_on_error=True, retry_mode=RetryMode.DISABLED),
            log_manager=create_context_free_log_manager(instance, run), executor=executor, output_capture=None,
        )
        for step in plan.steps:
            args = ExecuteStepArgs(origin, run.run_id, [step.key], print_serialized_events=False)
            list(handler.launch_step(StepHandlerContext(
                instance=instance, plan_context=plan_context, steps=plan.steps, execute_step_args=args,
                dagster_run=run,
            )))
    jobs = {}
    for name, _, kwargs in sent.method_calls:
        assert name == "create_namespaced_job"
        body = kwargs["body"]
        jobs[body.spec.template.metadata.labels["dagster/op"]] = (body, kwargs["namespace"])
    return jobs


@pytest.fixture(scope="module")
def launched(k8s_defs, tmp_path_factory) -> dict:
    return launch_steps(k8s_defs[0], tmp_path_factory.mktemp("k8s"))


def quantity(value) -> Decimal:
    from kubernetes.utils import parse_quantity

    return parse_quantity(value)


def expected_pod(name: str, raw: dict, kube: dict) -> dict:
    """CPU cores, memory bytes and GPU count of a group's pod, straight from the YAML."""
    group = raw["groups"][name]
    cuda = group.get("device", "cpu") == "cuda"
    ram = group.get("ram_gb")
    if ram is None:
        ram = max(kube["default_ram_gb"], group["memory_gb"]) if cuda and group.get("memory_gb") else \
            kube["default_ram_gb"]
    return {"cpu": Decimal(str(group.get("cpu", kube["default_cpu"]))), "memory": Decimal(ram) * GiB, "gpu": cuda}


def test_every_step_pod_follows_gpu_groups_yaml(k8s_defs, launched):
    defs, _ = k8s_defs
    raw = raw_groups()
    kube = raw["kubernetes"]
    gpu = kube["gpu_resource"]
    steps = plan_steps(defs)
    with_analyzers = {name for name, g in raw["groups"].items() if g.get("analyzers")}
    assert set(steps) == {"ingest"} | {f"{name}_analyzers" for name in with_analyzers}
    seen_gpu = seen_cpu = 0
    for key, step in steps.items():
        group = step.tags[GROUP_TAG]
        assert group == (raw["pipeline_group"] if key == "ingest" else key.removesuffix("_analyzers"))
        job, namespace = launched[key]
        pod = job.spec.template.spec
        (container,) = pod.containers
        want = expected_pod(group, raw, kube)
        requests, limits = container.resources.requests, container.resources.limits
        assert quantity(requests["cpu"]) == want["cpu"], key
        assert quantity(requests["memory"]) == want["memory"] == quantity(limits["memory"]), key
        assert "cpu" not in limits  # no CPU throttling
        if want["gpu"]:
            seen_gpu += 1
            assert requests[gpu] == limits[gpu] == "1", key
            assert pod.node_selector == kube["gpu_node_selector"], key
            assert [{"key": t.key, "operator": t.operator, "effect": t.effect} for t in pod.tolerations] == \
                kube["gpu_tolerations"], key
        else:
            seen_cpu += 1
            assert gpu not in requests and gpu not in limits, key
            assert pod.node_selector is None and pod.tolerations is None, key
        # what the chart gives every launched pod reaches the step pods too
        assert job.spec.template.metadata.labels["tiktok-assets/group"] == group
        assert container.image == "registry.example.com/tiktok-assets:0.1.0"
        assert container.image_pull_policy == "IfNotPresent"  # the deployment's, over the launcher's
        assert pod.service_account_name == f"{RELEASE}-dagster-user-deployments-user-deployments"
        assert container.args[:3] == ["dagster", "api", "execute_step"]
        assert {m.name: m.mount_path for m in container.volume_mounts} == {"data": "/data", "models": "/models"}
        assert {v.name: v.persistent_volume_claim.claim_name for v in pod.volumes} == {
            "data": "tiktok-assets-data", "models": "tiktok-assets-models"}
        assert [e.config_map_ref.name for e in container.env_from] == [
            f"{RELEASE}-dagster-user-deployments-tiktok-assets-user-env"]
        env = {e.name: e.value for e in container.env}
        assert {k: env.get(k) for k in env_of(deployment())} == env_of(deployment()), key
        assert namespace == NAMESPACE and pod.restart_policy == "Never"
    assert seen_gpu == sum(g.get("device") == "cuda" for g in raw["groups"].values() if g.get("analyzers"))
    assert seen_gpu >= 1 and seen_cpu >= 1


def test_pod_specs_and_limits_do_not_depend_on_the_gpu_of_the_building_process(k8s_defs):
    """The run pod (no GPU) computes the step pods; a process that sees a GPU must compute the same."""
    without_gpu, with_gpu = k8s_defs
    a, b = plan_steps(without_gpu), plan_steps(with_gpu)
    assert {k: s.tags for k, s in a.items()} == {k: s.tags for k, s in b.items()}
    config = [d.resolve_job_def("analyze_video").executor_def.config_schema.resolve_config({}).value
              for d in k8s_defs]
    assert config[0] == config[1]


def test_executor_is_k8s_with_group_limits_from_the_yaml(k8s_defs):
    defs, _ = k8s_defs
    raw = raw_groups()
    job = defs.resolve_job_def("analyze_video")
    assert job.executor_def.name == "k8s"
    result = job.executor_def.config_schema.resolve_config({})
    assert result.success, result.errors
    config = result.value["config"]
    expected = []
    for name, group in raw["groups"].items():
        # on Kubernetes every GPU group's step has a GPU: its GPU limit applies
        gpu_limit = group.get("max_concurrent", 1)
        cpu_limit = group.get("cpu_max_concurrent", gpu_limit)
        expected.append({"key": GROUP_TAG, "value": name,
                         "limit": gpu_limit if group.get("device") == "cuda" else cpu_limit})
    assert config["tag_concurrency_limits"] == expected
    assert config["step_dependency_config"] == {"require_upstream_step_success": False}
    assert "job_namespace" not in config and "image_pull_policy" not in config  # the chart decides


def test_settings_override_namespace_and_pull_policy(monkeypatch):
    from tiktok_assets.config import load_settings
    from tiktok_assets.executors.k8s import executor_config
    from tiktok_assets.gpu_groups import parse_groups

    monkeypatch.setenv("TIKTOK_ASSETS_K8S_NAMESPACE", "gpu-jobs")
    monkeypatch.setenv("TIKTOK_ASSETS_K8S_IMAGE_PULL_POLICY", "Always")
    groups = parse_groups({"groups": {"cpu": {"analyzers": ["a"]}}}, ["a"], cuda=False)
    config = executor_config(groups, load_settings())
    assert config["job_namespace"] == "gpu-jobs" and config["image_pull_policy"] == "Always"
    monkeypatch.setenv("TIKTOK_ASSETS_K8S_IMAGE_PULL_POLICY", "sometimes")
    with pytest.raises(ValueError, match="TIKTOK_ASSETS_K8S_IMAGE_PULL_POLICY must be one of"):
        load_settings()


def test_quantities_and_kubernetes_block_errors():
    from tiktok_assets.executors.k8s import cpu_quantity, memory_quantity
    from tiktok_assets.gpu_groups import GpuGroupsError, parse_groups

    assert [cpu_quantity(c) for c in (1, 2.0, 0.5, 1.25)] == ["1", "2", "500m", "1250m"]
    assert [memory_quantity(m) for m in (4, 20.0, 1.5)] == ["4Gi", "20Gi", "1536Mi"]
    base = {"groups": {"cpu": {"analyzers": ["a"]}}}
    for kube, message in [
        ({"gpu_node_selector": {"nvidia.com/gpu.present": True}}, "quoted text values"),
        ({"gpu_tolerations": [{"key": "x", "operator": "Maybe"}]}, "operator must be one of"),
        ({"gpu_tolerations": [{"key": "x", "effect": "NoRun"}]}, "effect must be one of"),
        ({"default_cpu": 0}, "default_cpu must be a number greater than 0"),
        ({"gpus": 1}, r"unknown settings \['gpus'\]"),
    ]:
        with pytest.raises(GpuGroupsError, match=message):
            parse_groups({**base, "kubernetes": kube}, ["a"], cuda=False)
    with pytest.raises(GpuGroupsError, match="group 'cpu': ram_gb must be a number greater than 0"):
        parse_groups({"groups": {"cpu": {"analyzers": ["a"], "ram_gb": -2}}}, ["a"], cuda=False)
    # without the block: NVIDIA's device plugin and node label
    defaults = parse_groups(base, ["a"], cuda=False).kubernetes
    assert defaults.gpu_resource == "nvidia.com/gpu" and defaults.gpu_node_selector == {
        "nvidia.com/gpu.present": "true"}


def config_variables() -> set[str]:
    return set(re.findall(r"\"(TIKTOK_ASSETS_[A-Z0-9_]+)\"", (PROJECT_DIR / "tiktok_assets" / "config.py").read_text()))


def test_helm_values_name_the_image_env_storage_and_services(monkeypatch):
    vals, dep = values(), deployment()
    assert vals["dagster-user-deployments"]["enabled"] is True
    assert dep["image"]["repository"] and str(dep["image"]["tag"])
    assert dep["codeServerArgs"] == ["-m", "tiktok_assets.definitions"]
    assert dep["includeConfigInLaunchedRuns"]["enabled"] is True
    assert not dep.get("resources")  # would be merged into every step pod
    env = env_of(dep)
    ours = {k for k in env if k.startswith("TIKTOK_ASSETS_")}
    assert ours and ours <= config_variables(), ours - config_variables()
    assert env["TIKTOK_ASSETS_EXECUTOR"] == "k8s"
    mounts = {m["mountPath"] for m in dep["volumeMounts"]}
    for variable in ("TIKTOK_ASSETS_HOME", "TIKTOK_ASSETS_MODELS", "HF_HOME"):
        assert any(Path(env[variable]).is_relative_to(m) for m in mounts), variable
    claims = {v["persistentVolumeClaim"]["claimName"] for v in dep["volumes"]}
    storage = [doc for doc in yaml.safe_load_all((DEPLOY / "storage.yaml").read_text())]
    assert claims == {doc["metadata"]["name"] for doc in storage}
    assert all(doc["spec"]["accessModes"] == ["ReadWriteMany"] for doc in storage)
    assert vals["runLauncher"]["type"] == "K8sRunLauncher"
    assert vals["postgresql"]["enabled"] is True and vals["dagsterDaemon"]["enabled"] is True
    assert vals["dagsterDaemon"]["runMonitoring"]["freeSlotsAfterRunEndSeconds"] > 0
    assert vals["additionalInstanceConfig"]["concurrency"]["pools"]["granularity"] == "op"
    # the pods' environment is a valid configuration of the code
    from tiktok_assets.config import load_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.executor == "k8s" and settings.home == Path("/data/tiktok-assets")
    assert settings.model_store == Path("/models")


def test_dockerfile_copies_what_exists_and_sets_real_settings():
    text = (DEPLOY / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    # every copied path exists and is in the build context (the ignore file lets only those through)
    allowed = {line[1:].rstrip("/") for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")}
    for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
        for source in line.split()[:-1]:
            assert (PROJECT_DIR / source).exists(), source
            assert source.rstrip("/") in allowed, f"{source} is not in deploy/Dockerfile.dockerignore"
    # installed as resources/setup.sh installs them
    assert "pip install -q -r /opt/tiktok-assets/requirements.lock" in text
    assert "pip install -q --no-deps -r /opt/tiktok-assets/requirements-nodeps.lock" in text
    assert "pip==26.3" in text and "pip==26.3" in (PROJECT_DIR / "resources" / "setup.sh").read_text()
    # GPU nodes: onnxruntime-gpu replaces onnxruntime, and CTranslate2 gets CUDA 12's cuBLAS
    gpu_lock = (PROJECT_DIR / "requirements-gpu.lock").read_text()
    assert "pip install -q --no-deps -r /opt/tiktok-assets/requirements-gpu.lock" in text
    assert "pip uninstall -q -y onnxruntime" in text and "onnxruntime-gpu==" in gpu_lock
    from tiktok_assets.model_registry.cuda_libs import CUBLAS_PACKAGE

    assert f"{CUBLAS_PACKAGE}==" in gpu_lock
    main_lock = (PROJECT_DIR / "requirements.lock").read_text()
    assert re.search(r"^onnxruntime==", main_lock, flags=re.M) and "onnxruntime-gpu" not in main_lock
    set_here = set(re.findall(r"(TIKTOK_ASSETS_[A-Z0-9_]+)=", text))
    assert set_here and set_here <= config_variables(), set_here - config_variables()
    assert '"-m", "tiktok_assets.definitions"' in text and "prepare_whisper_base" in text


def test_print_one_gpu_and_one_cpu_step_pod(launched, capsys):
    """Rendered pod templates of a GPU step and a CPU step (``pytest -s`` shows them)."""
    from kubernetes.client import ApiClient

    shown = {}
    for key in ("audio_analyzers", "frames_analyzers"):
        job, _ = launched[key]
        template = ApiClient().sanitize_for_serialization(job.spec.template)
        for var in template["spec"]["containers"][0]["env"]:
            if var["name"] == "DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS":
                var["value"] = f"<{len(var['value'])} characters: the step's serialized arguments>"
        shown[key] = template
        with capsys.disabled():
            print(f"\n--- step {key}: pod template of its Kubernetes Job ---")
            print(yaml.safe_dump(template, sort_keys=False, width=110))
    assert "nvidia.com/gpu" in shown["audio_analyzers"]["spec"]["containers"][0]["resources"]["limits"]
    assert "nvidia.com/gpu" not in shown["frames_analyzers"]["spec"]["containers"][0]["resources"]["limits"]


def test_pool_commands_set_the_yaml_counts_on_an_instance(tmp_path, monkeypatch):
    """The printed commands run as they are through Dagster's CLI and leave each group's count."""
    import shlex

    import dagster as dg
    from click.testing import CliRunner
    from dagster._cli import cli

    from tiktok_assets.analyzers import all_specs
    from tiktok_assets.executors.k8s import pool_commands
    from tiktok_assets.gpu_groups import parse_groups

    raw = raw_groups()
    commands = pool_commands(parse_groups(raw, all_specs(), cuda=False))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    runner = CliRunner()
    for command in commands:
        words = shlex.split(command)
        assert words[:4] == ["dagster", "instance", "concurrency", "set"]
        result = runner.invoke(cli, words[1:])
        assert result.exit_code == 0, result.output
    with dg.DagsterInstance.get() as instance:
        for name, group in raw["groups"].items():
            limit = group.get("max_concurrent", 1)
            if group.get("device") != "cuda":
                limit = group.get("cpu_max_concurrent", limit)
            assert instance.event_log_storage.get_concurrency_info(f"tiktok_{name}").slot_count == limit, name


def test_readme_pod_table_matches_gpu_groups_yaml():
    """The README's table of pod sizes is the current file's (it is written by hand)."""
    text = (PROJECT_DIR / "README.md").read_text().split("### Kubernetes", 1)[1]
    header = re.search(r"^\s*\| group \|(.+)\|$", text, flags=re.M).group(1)
    row = re.search(r"^\s*\| pod \|(.+)\|$", text, flags=re.M).group(1)
    table = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")], strict=True))
    raw = raw_groups()
    assert set(table) == {name for name, g in raw["groups"].items() if g.get("analyzers")}
    for name, cell in table.items():
        want = expected_pod(name, raw, raw["kubernetes"])
        expected = f"{want['cpu']:g} CPU, {want['memory'] / GiB:g} GiB" + (", 1 GPU" if want["gpu"] else "")
        assert cell == expected, name


def test_code_location_loads_in_run_and_step_pods_write_the_gpu_counts(tmp_path, monkeypatch):
    """A run pod (no GPU) and a step pod (a GPU) both load the code location with the chart's
    ``$DAGSTER_HOME``: both write each group's GPU count on that instance, not one count each."""
    import dagster as dg

    from tiktok_assets.definitions import _pool_limits_on_load
    from tiktok_assets.gpu_groups import load_groups

    raw = raw_groups()
    raw["groups"]["audio"].update(max_concurrent=3, cpu_max_concurrent=1)  # GPU and CPU counts differ
    yaml_file = tmp_path / "gpu_groups.yaml"
    yaml_file.write_text(yaml.safe_dump(raw))
    home = tmp_path / "chart_dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TIKTOK_ASSETS_EXECUTOR", "k8s")
    from tiktok_assets.analyzers import all_specs

    for device in ("cpu", "cuda"):  # the run pod, then a step pod
        groups = load_groups(yaml_file, tuple(sorted(all_specs())), device)
        _pool_limits_on_load(groups)
        with dg.DagsterInstance.get() as instance:
            storage = instance.event_log_storage
            assert storage.get_concurrency_info("tiktok_audio").slot_count == 3, device
            assert storage.get_concurrency_info("tiktok_frames").slot_count == raw["groups"]["frames"]["max_concurrent"]
