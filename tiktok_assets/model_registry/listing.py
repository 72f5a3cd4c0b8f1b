"""``tiktok-assets models``: every registry model, whether it is available offline here, where it
comes from, its size and the setting that points it elsewhere."""

from __future__ import annotations

from ..config import Settings
from .loading import ModelLoader
from .specs import REGISTRY, ModelSpec

COLUMNS = ("model", "here", "source", "size", "setting", "licence")


def _size(spec: ModelSpec) -> str:
    if not spec.files:
        return "?"
    mb = spec.size / 1e6
    return f"{mb:.1f} MB" if mb >= 1 else f"{spec.size / 1e3:.0f} kB"


def model_rows(settings: Settings, registry: dict[str, ModelSpec] | None = None) -> list[dict[str, str]]:
    """One row per model (cheap: no preparing, no hashing)."""
    loader = ModelLoader(settings, registry)
    rows = []
    for spec in (REGISTRY if registry is None else registry).values():
        ok, where = loader.availability(spec.id)
        value = loader.setting_value(spec)
        setting = spec.setting or "-"
        if spec.setting and value:
            setting += f"={value}"
        rows.append({"model": spec.id, "here": "yes" if ok else "no", "source": where, "size": _size(spec),
                     "setting": setting, "licence": spec.licence, "name": spec.name})
    return rows


def gpu_lines(settings: Settings) -> list[str]:
    """What the GPU paths would find here: the device, CTranslate2's cuBLAS 12, ONNX Runtime's CUDA
    provider, bitsandbytes and flash-attention (each with what to install when it is missing)."""
    import importlib.util

    from ..gpu_groups import cuda_available
    from .cuda_libs import ctranslate2_cublas_problem

    if not cuda_available(settings.device_override):
        why = ("TIKTOK_ASSETS_DEVICE=cpu" if (settings.device_override or "").lower() == "cpu"
               else "no NVIDIA driver, or CTranslate2 sees no device")
        return [f"GPU: not used ({why}): every model runs on the cpu"]
    problem = ctranslate2_cublas_problem()
    try:
        import onnxruntime as ort

        cuda_provider = "CUDAExecutionProvider" in ort.get_available_providers()
    except ImportError:
        cuda_provider = False
    found = {name: importlib.util.find_spec(name) is not None for name in ("bitsandbytes", "flash_attn")}
    return [
        "GPU: a CUDA device is in use (TIKTOK_ASSETS_DEVICE to override)",
        f"  faster-whisper: {'on the GPU' if not problem else 'on the cpu: ' + problem}",
        "  ONNX models: " + ("on the GPU (CUDA provider)" if cuda_provider else
                             "on the cpu: onnxruntime has no CUDA provider (install onnxruntime-gpu, "
                             "requirements-gpu.lock)"),
        "  VLM int8/int4: " + ("bitsandbytes installed" if found["bitsandbytes"] else "bitsandbytes missing"),
        "  VLM attention: " + ("flash_attention_2" if found["flash_attn"] else "sdpa (flash_attn not installed)"),
    ]


def models_text(settings: Settings) -> str:
    """The table printed by ``tiktok-assets models``, then the GPU paths' readiness."""
    rows = model_rows(settings)
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
    lines.append(f"model store: {settings.model_store} (TIKTOK_ASSETS_MODELS); checksums are verified on first load")
    lines += gpu_lines(settings)
    return "\n".join(lines)
