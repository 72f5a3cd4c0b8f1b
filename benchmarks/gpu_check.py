"""GPU check (issue 10, item 6): whisper base in float16, YAMNet (ONNX) on the CUDA provider, and a
bitsandbytes 8-bit load of a small transformers model, each through the model registry where it
has the model, with timings. Without CUDA it prints one line saying it skipped and exits 0.

    bash resources/setup.sh python benchmarks/gpu_check.py [--device cuda:0] [--seconds 30]
        [--audio speech.wav] [--checks whisper,yamnet,bnb,vlm]

Whisper transcribes ``--audio`` (16 kHz mono WAV) or espeak-ng speech, greedy and with beam 5;
YAMNet is timed per batch size after a first pass at that size. Figures from an H200 are in the
README ("On a GPU"); there CTranslate2 needs CUDA 12's cuBLAS (``requirements-gpu.lock``) and the
ONNX models ``onnxruntime-gpu``.

The 8-bit model is a tiny *randomly initialised* Qwen2 causal LM built from a config (no such
weights can be had offline here): the check shows that quantised loading and generation run on
the GPU, not what the model says.

The video-language analyzer ``qwen2_vl_temporal`` runs on a clip (``--vlm-video``, default the
sample recipe stretched to ``--vlm-seconds`` = 49 s) with the model of ``TIKTOK_ASSETS_VLM_MODEL``
(default Qwen2-VL-2B-Instruct; precision ``TIKTOK_ASSETS_VLM_PRECISION``) when its weights are
reachable (local folder, hub cache, or the hub; ``--vlm-batch`` windows per generate call): load
time, seconds per window, realtime factor, peak GPU memory, the repetition figures and 5 sample
descriptions (``--only-vlm`` skips the other checks). Without weights it says so; ``--vlm-tiny``
runs the same path with a tiny randomly initialised Qwen2-VL (on an H200: bf16 + sdpa, the
flash-attention fallback, fp16, fp32/eager, int8 and int4 all ran; its timings and texts mean nothing).
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

RATE = 16_000
TEXT = ("Good morning. Today we test the graphics card with a short spoken clip. "
        "Guten Morgen, heute testen wir die Grafikkarte mit einem kurzen Satz.")


def cuda_devices() -> int:
    """CUDA devices visible to CTranslate2, else to PyTorch (0 without a GPU, a driver or either)."""
    for count in (lambda: __import__("ctranslate2").get_cuda_device_count(),
                  lambda: __import__("torch").cuda.device_count()):
        try:
            found = int(count())
        except Exception:  # noqa: BLE001 - a missing package or driver raises in several ways
            continue
        if found:
            return found
    return 0


def speech(seconds: float) -> np.ndarray:
    """``seconds`` of 16 kHz audio: espeak-ng speech repeated (a tone where espeak-ng is missing)."""
    if shutil.which("espeak-ng"):
        raw = subprocess.run(["espeak-ng", "--stdout", "-s", "150", TEXT], capture_output=True, check=True).stdout
        pcm = np.frombuffer(raw[44:], np.int16).astype(np.float32) / 32768.0
        rate = int.from_bytes(raw[24:28], "little")
        one = np.interp(np.arange(0, len(pcm) / rate, 1 / RATE), np.arange(len(pcm)) / rate, pcm).astype(np.float32)
    else:
        t = np.arange(int(3 * RATE)) / RATE
        one = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    reps = int(np.ceil(seconds * RATE / len(one)))
    return np.tile(one, reps)[: int(seconds * RATE)]


def read_wav(path: str, seconds: float) -> np.ndarray:
    """The first ``seconds`` of a 16 kHz mono 16-bit WAV file (made elsewhere, e.g. where espeak-ng is)."""
    import wave

    with wave.open(path, "rb") as wav:
        if wav.getframerate() != RATE or wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise SystemExit(f"gpu_check: {path} must be 16 kHz mono 16-bit PCM")
        pcm = np.frombuffer(wav.readframes(int(seconds * RATE)), np.int16)
    return pcm.astype(np.float32) / 32768.0


def timed(label: str, results: list[tuple[str, str]], work) -> object:
    began = time.perf_counter()
    try:
        value = work()
    except Exception as exc:  # noqa: BLE001 - report and go on with the other checks
        results.append((label, f"FAILED: {type(exc).__name__}: {exc}"))
        return None
    results.append((label, f"{time.perf_counter() - began:.3f} s"))
    return value


def check_whisper(loader, device: str, audio: np.ndarray, results: list) -> None:
    model = timed("whisper base float16: load", results, lambda: loader.load("faster-whisper", device))
    if model is None:
        return

    def transcribe(beam: int = 1):
        segments, info = model.transcribe(audio, language="en", beam_size=beam, vad_filter=False)
        return [s.text for s in segments], info

    timed("whisper base float16: transcribe (warm-up)", results, transcribe)
    out = timed(f"whisper base float16: transcribe {len(audio) / RATE:.0f} s, greedy", results, transcribe)
    timed(f"whisper base float16: transcribe {len(audio) / RATE:.0f} s, beam 5 (the pipeline's final decode)",
          results, lambda: transcribe(5))
    if out:
        results.append(("whisper compute type", str(getattr(model.model, "compute_type", "float16"))))
        results.append(("whisper first words", " ".join(out[0])[:60]))


def check_yamnet(loader, device: str, audio: np.ndarray, results: list) -> None:
    from tiktok_assets.analyzers import _yamnet

    model = timed("YAMNet ONNX: load", results, lambda: loader.load("yamnet", device))
    if model is None:
        return
    results.append(("YAMNet placed on", model.placed_device))
    _, batch = _yamnet.patches(_yamnet.log_mel(audio), 12)
    for size in (1, 16, 64, 256):
        model.logits(batch, size)  # the first pass at a batch size plans the provider's kernels
        timed(f"YAMNet: {len(batch)} patches, batch {size}", results, lambda s=size: model.logits(batch, s))


def check_bitsandbytes(device: str, results: list) -> None:
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Qwen2Config

    folder = Path(tempfile.mkdtemp(prefix="gpu-check-qwen2-"))
    try:
        torch.manual_seed(0)
        config = Qwen2Config(vocab_size=1024, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
        AutoModelForCausalLM.from_config(config).save_pretrained(folder)
        quant = BitsAndBytesConfig(load_in_8bit=True)
        model = timed("bitsandbytes 8-bit: load tiny random Qwen2", results,
                      lambda: AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant, dtype=torch.float16,
                                                                   device_map={"": device}))
        if model is None:
            return
        results.append(("8-bit linear layers", str(sum("Linear8bitLt" in type(m).__name__ for m in model.modules()))))
        ids = torch.randint(0, 1024, (1, 32), device=device)
        timed("bitsandbytes 8-bit: generate 32 tokens", results,
              lambda: model.generate(ids, max_new_tokens=32, do_sample=False))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_vlm(loader, device: str, video: str | None, seconds: float, batch: int, results: list) -> None:
    """qwen2_vl_temporal on a clip through the registry's loader (the real weights, if reachable)."""
    import torch

    from tiktok_assets.analyzers import AnalyzerContext, get_spec, run_analyzer
    from tiktok_assets.config import load_settings
    from tiktok_assets.media import MediaCache, build_media_cache
    from tiktok_assets.model_registry import ModelUnavailable

    settings = load_settings()
    on_gpu = device.startswith("cuda") and torch.cuda.is_available()
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    try:
        model = loader.load("qwen2-vl-2b", device)
    except ModelUnavailable as exc:
        results.append(("VLM", f"not run: {exc}"))
        return
    except Exception as exc:  # noqa: BLE001 - report and go on
        results.append(("VLM: load", f"FAILED: {type(exc).__name__}: {exc}"))
        return
    results.append(("VLM: load", f"{time.perf_counter() - began:.3f} s ({model.resolved.name}, {model.precision}, "
                                 f"{model.attention}, {model.parameters / 1e9:.2f} B parameters)"))
    workdir = Path(tempfile.mkdtemp(prefix="gpu-check-vlm-"))
    try:
        if video is None:
            from tiktok_assets.sample_video import generate_sample_video

            video = str(workdir / "clip.mp4")
            generate_sample_video(Path(video), width=1080, height=1920, min_duration_s=seconds)
        build_media_cache(Path(video), workdir / "media", "vlm", settings.sample_fps, settings.frame_long_side,
                          settings.lowres_short_side)
        media = MediaCache(workdir / "media")
        context = AnalyzerContext(video_id="vlm", settings=settings, device=device, models=loader, batch_size=batch)
        began = time.perf_counter()
        try:
            run = run_analyzer(get_spec("qwen2_vl_temporal"), media, context)
        except Exception as exc:  # noqa: BLE001 - report and go on
            results.append(("VLM: run", f"FAILED: {type(exc).__name__}: {exc}"))
            return
        wall = time.perf_counter() - began
        meta = run.metadata
        results += [
            ("VLM: clip", f"{media.duration_s:.1f} s, {meta.get('windows')} windows of {settings.vlm_window_s:g} s, "
                          f"{batch} per generate call"),
            ("VLM: analyzer", f"{wall:.2f} s, {wall / media.duration_s:.3f}x realtime "
                              f"(target <= 0.3x), {meta.get('s_per_window')} s per window in generate"),
            ("VLM: peak GPU memory", f"{torch.cuda.max_memory_allocated() / 1024**3:.2f} GiB" if on_gpu else "-"),
            ("VLM: distinct 3-gram ratio", str(meta.get("distinct_3gram_ratio"))),
            ("VLM: verbatim repeat share", f"{meta.get('verbatim_repeat_share')} ({meta.get('repeated_windows')} windows)"),
            ("VLM: parsed answers", str(meta.get("parsed_share"))),
            ("VLM: examined", f"{meta.get('examined_s')} s of {media.duration_s:.1f} s"),
        ]
        rows = run.table.to_pylist()
        for i in np.unique(np.linspace(0, len(rows) - 1, min(5, len(rows))).round().astype(int)) if rows else []:
            row = rows[i]
            results.append((f"VLM: {row['start_s']:.0f}-{row['end_s']:.0f} s",
                            f"{row['description']} | people={row['people_count']} setting={row['setting']} "
                            f"objects={row['objects']} text={row['text_visible']}"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--audio", default=None, help="16 kHz mono WAV to transcribe (default: espeak-ng speech)")
    parser.add_argument("--vlm-video", default=None, help="clip for qwen2_vl_temporal (default: generated)")
    parser.add_argument("--vlm-seconds", type=float, default=49.0)
    parser.add_argument("--vlm-batch", type=int, default=1, help="windows per generate call")
    parser.add_argument("--checks", default="whisper,yamnet,bnb,vlm",
                        help="comma-separated subset of whisper, yamnet, bnb, vlm")
    parser.add_argument("--only-vlm", action="store_true", help="run only the video-language check")
    parser.add_argument("--vlm-tiny", action="store_true",
                        help="the VLM check with a tiny randomly initialised Qwen2-VL (the GPU code path: "
                             "precision, attention fallback, batching; its descriptions are noise)")
    args = parser.parse_args(argv)
    unknown = {c.strip() for c in args.checks.split(",") if c.strip()} - {"whisper", "yamnet", "bnb", "vlm"}
    if unknown:
        parser.error(f"--checks: unknown {', '.join(sorted(unknown))} (choose from whisper, yamnet, bnb, vlm)")
    count = cuda_devices()
    if count == 0:
        print("gpu_check: skipped: no CUDA device is visible here")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.simplefilter("ignore")  # bitsandbytes warns on every 8-bit matmul
    from tiktok_assets.config import load_settings
    from tiktok_assets.model_registry import load_counts, process_loader

    if args.vlm_tiny:
        from tiktok_assets.model_registry.tiny_vlm import tiny_qwen2_vl

        folder = Path(tempfile.mkdtemp(prefix="gpu-check-tiny-vlm-"))
        atexit.register(shutil.rmtree, folder, True)
        tiny = tiny_qwen2_vl(folder / "model")
        os.environ["TIKTOK_ASSETS_VLM_MODEL"] = str(tiny)  # read by load_settings below and by the loader
    loader = process_loader(load_settings())
    audio = read_wav(args.audio, args.seconds) if args.audio else speech(args.seconds)
    results: list[tuple[str, str]] = [("CUDA devices", str(count)), ("device", args.device)]
    checks = {"vlm"} if args.only_vlm else {c.strip() for c in args.checks.split(",") if c.strip()}
    if "whisper" in checks:
        check_whisper(loader, args.device, audio, results)
    if "yamnet" in checks:
        check_yamnet(loader, args.device, audio, results)
    if "bnb" in checks:
        check_bitsandbytes(args.device, results)
    if "vlm" in checks:
        if args.vlm_tiny:
            results.append(("VLM: weights", "tiny random Qwen2-VL (--vlm-tiny): its texts and speed mean nothing"))
        check_vlm(loader, args.device, args.vlm_video, args.vlm_seconds, args.vlm_batch, results)
    results.append(("loads per model", str(load_counts())))
    width = max(len(k) for k, _ in results)
    for key, value in results:
        print(f"{key.ljust(width)}  {value}")
    return 1 if any(v.startswith("FAILED") for _, v in results) else 0


if __name__ == "__main__":
    sys.exit(main())
