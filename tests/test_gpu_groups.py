"""gpu_groups.yaml: validation against the analyzer registry and what is derived from it."""

import pytest
import yaml

from tiktok_assets.analyzers import all_specs
from tiktok_assets.config import PROJECT_DIR, load_settings
from tiktok_assets.gpu_groups import GROUP_TAG, GpuGroupsError, parse_groups

KNOWN = ("a1", "a2", "a3")


def config(**groups):
    return {"pipeline_group": "cpu", "groups": groups}


def test_project_file_covers_every_analyzer_once():
    data = yaml.safe_load((PROJECT_DIR / "gpu_groups.yaml").read_text())
    groups = parse_groups(data, all_specs(), cuda=False)
    listed = [a for g in groups.groups.values() for a in g.analyzers]
    assert sorted(listed) == sorted(all_specs())
    assert {"vlm", "frames", "audio", "cpu"} <= set(groups.groups)
    # signal processing on frames (numpy/OpenCV, no model) never waits for a GPU slot
    assert groups.groups["frames"].device == "cpu" and "cut_analysis" in groups.groups["frames"].analyzers
    assert groups.groups["audio"].device == "cuda" and "speech_transcription" in groups.groups["audio"].analyzers


def test_pools_tags_and_devices_follow_the_file():
    data = config(
        gpu={"device": "cuda", "max_concurrent": 3, "cpu_max_concurrent": 1, "batch_size": 8, "analyzers": ["a1"]},
        cpu={"device": "cpu", "max_concurrent": 2, "analyzers": ["a2", "a3"]},
    )
    on_cpu = parse_groups(data, KNOWN, cuda=False)
    on_gpu = parse_groups(data, KNOWN, cuda=True)
    assert on_cpu.group_of("a1").resolved_device(on_cpu.cuda) == "cpu"
    assert on_gpu.group_of("a1").resolved_device(on_gpu.cuda) == "cuda"
    assert on_gpu.group_of("a3").resolved_device(on_gpu.cuda) == "cpu"
    assert on_cpu.pool_limits() == {"tiktok_gpu": 1, "tiktok_cpu": 2}
    assert on_gpu.pool_limits() == {"tiktok_gpu": 3, "tiktok_cpu": 2}
    assert {"key": GROUP_TAG, "value": "gpu", "limit": 3} in on_gpu.executor_tag_limits()
    assert on_gpu.group_of("a1").batch_size == 8


def test_priorities_start_the_long_and_single_threaded_steps_first():
    """Of the steps that are ready, Dagster starts those with a higher ``dagster/priority`` first:
    the audio step, then the frames and people steps (one thread each) beside it; the steps whose
    models use every core come last, when they would otherwise leave a core idle."""
    from tiktok_assets.definitions import defs
    from tiktok_assets.executors import PRIORITY_TAG, step_tags

    job = defs.resolve_job_def("analyze_video")
    priority = {node.name: int(node.definition.tags.get(PRIORITY_TAG, 0)) for node in job.graph.nodes}
    last = max(priority[f"{g}_analyzers"] for g in ("text", "vision", "vlm"))
    assert priority["audio_analyzers"] > priority["frames_analyzers"] > priority["people_analyzers"] > last
    groups = parse_groups(config(cpu={"analyzers": list(KNOWN)}), KNOWN, cuda=False)
    assert PRIORITY_TAG not in step_tags(groups.groups["cpu"], groups, load_settings())  # 0: no tag


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (config(cpu={"analyzers": ["a1", "a2", "a3", "nope"]}), "unknown analyzer 'nope'"),
        (config(cpu={"analyzers": ["a1", "a2"]}), r"\['a3'\] are in no group"),
        (config(cpu={"analyzers": ["a1", "a2", "a3"]}, gpu={"analyzers": ["a1"]}), "in two groups"),
        (config(cpu={"max_concurrent": 0, "analyzers": list(KNOWN)}), "max_concurrent must be"),
        (config(cpu={"device": "tpu", "analyzers": list(KNOWN)}), "device must be one of"),
        (config(cpu={"analyzer": list(KNOWN)}), "unknown settings"),
        (config(cpu={"priority": 1.5, "analyzers": list(KNOWN)}), "priority must be a whole number"),
        ({"pipeline_group": "main", "groups": {"cpu": {"analyzers": list(KNOWN)}}}, "pipeline_group 'main'"),
        ({"groups": {}}, "non-empty mapping"),
    ],
)
def test_config_errors_are_clear(data, message):
    with pytest.raises(GpuGroupsError, match=message):
        parse_groups(data, KNOWN, cuda=False)


def test_bad_file_fails_when_definitions_load(tmp_path, monkeypatch):
    """A broken gpu_groups.yaml stops the code location from loading, with the reason."""
    import subprocess
    import sys

    bad = tmp_path / "gpu_groups.yaml"
    bad.write_text("pipeline_group: cpu\ngroups:\n  cpu:\n    analyzers: [cut_analysis, not_an_analyzer]\n")
    env = {**__import__("os").environ, "TIKTOK_ASSETS_GPU_GROUPS": str(bad)}
    proc = subprocess.run([sys.executable, "-c", "import tiktok_assets.definitions"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "unknown analyzer 'not_an_analyzer'" in proc.stderr


def test_step_processes_fork_from_a_server_with_the_code_location_loaded_unless_that_probes_cuda(monkeypatch):
    """The fork server imports the storage layer always, the code location (the job built once per
    run, not once per step) only where loading it cannot touch a CUDA driver before the forks."""
    from tiktok_assets.definitions import load_gpu_groups
    from tiktok_assets.executors import multiprocess
    from tiktok_assets.gpu_groups import cuda_probe_touches_driver

    assert "tiktok_assets.instance" in multiprocess.preload_modules(True)
    assert multiprocess.CODE_LOCATION not in multiprocess.preload_modules(True)
    assert multiprocess.CODE_LOCATION in multiprocess.preload_modules(False)
    assert not cuda_probe_touches_driver("cpu") and not cuda_probe_touches_driver("cuda")
    asked = []
    real = multiprocess.preload_modules
    monkeypatch.setattr(multiprocess, "preload_modules", lambda probe: asked.append(probe) or real(probe))
    multiprocess.executor(load_gpu_groups(), "cpu")
    monkeypatch.setattr("os.path.exists", lambda path: path == "/proc/driver/nvidia/version")
    assert cuda_probe_touches_driver(None)
    multiprocess.executor(load_gpu_groups(), None)
    assert asked == [False, True]
