"""The video-language model behind ``qwen2_vl_temporal``: loading (registry loader) and one call.

:func:`load_model` is the registry loader of ``qwen2-vl-2b`` (``"module:function"`` in
``model_registry/specs.py``). It finds the weights (a local folder, the hub cache, a download only
where the hub answers; ``HF_HUB_OFFLINE`` or an unreachable hub fail at once, without network
time-outs), refuses a large model on the CPU unless ``TIKTOK_ASSETS_VLM_ALLOW_CPU`` is set (too slow
at that size; counted on the meta device from ``config.json``, fetched alone before any download of
weights), and loads processor + model with the configured precision and attention:

* precision ``auto``: bf16 on a CUDA device that supports it, else fp16; fp32 on the CPU.
  ``int8``/``int4``: bitsandbytes, with the vision tower and the output head unquantized
  (``llm_int8_skip_modules=["model.visual", "lm_head"]``; ``"visual"`` would not match).
* attention ``auto``: ``flash_attention_2`` when the ``flash_attn`` package is installed and the
  device is CUDA, else ``sdpa``. A load asking for flash-attention that fails (package missing,
  CPU) is repeated with ``sdpa`` and the fall-back is logged.

The loader gets the project settings from :func:`tiktok_assets.config.load_settings` (the registry
hands loaders no settings); the settings that change outputs are in the analyzer's code version.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model_registry import ModelUnavailable, ResolvedModel, inference

log = logging.getLogger("tiktok_assets")
SETTING = "TIKTOK_ASSETS_VLM_MODEL"
CPU_MAX_PARAMS = 600_000_000  # above this a model is "too slow for the CPU" unless forced
MIN_PIXELS = 56 * 56
SKIP_QUANTIZATION = ["model.visual", "lm_head"]


@dataclass
class Generated:
    """One answer: the decoded text, its token count and the seconds ``generate`` took."""

    text: str
    tokens: int
    seconds: float
    prompt_tokens: int


class VisionLanguageModel:
    """A loaded processor + model on one device, with how it was loaded."""

    def __init__(self, model: Any, processor: Any, resolved: ResolvedModel, device: str, precision: str,
                 attention: str, parameters: int):
        self.model = model
        self.processor = processor
        self.resolved = resolved
        self.placed_device = device
        self.precision = precision
        self.attention = attention
        self.parameters = parameters

    def _prompt(self, text: str, with_video: bool) -> str:
        content: list[dict[str, str]] = [{"type": "video"}] if with_video else []
        content.append({"type": "text", "text": text})
        messages = [{"role": "user", "content": content}]
        if getattr(self.processor, "chat_template", None):
            return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        video = "<|vision_start|><|video_pad|><|vision_end|>" if with_video else ""  # the Qwen-VL chat format
        return f"<|im_start|>user\n{video}{text}<|im_end|>\n<|im_start|>assistant\n"

    def generate(self, prompt: str, frames: list[np.ndarray] | None, fps: float, max_pixels: int,
                 generation: dict[str, Any]) -> Generated:
        """Answer ``prompt`` about ``frames`` (RGB uint8, in time order, sampled at ``fps``, each resized
        to at most ``max_pixels``) or, without frames, about the text alone; ``generation`` goes to
        ``model.generate`` as is."""
        return self.generate_batch([prompt], None if frames is None else [frames], [fps], max_pixels, generation)[0]

    def generate_batch(self, prompts: list[str], videos: list[list[np.ndarray]] | None, fps: list[float],
                       max_pixels: int, generation: dict[str, Any]) -> list[Generated]:
        """:meth:`generate` for several prompts (each with its frames, or all text-only when ``videos``
        is None) in one left-padded ``model.generate`` call; ``seconds`` is each answer's share."""
        import torch

        texts = [self._prompt(prompt, videos is not None) for prompt in prompts]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if videos is not None:
            clips = []
            for frames in videos:
                clip = list(frames)
                if len(clip) % 2:  # the vision tower packs frames in pairs: repeat the last one
                    clip.append(clip[-1])
                clips.append(clip)
            kwargs["videos"] = clips
            kwargs["size"] = {"shortest_edge": min(MIN_PIXELS, max_pixels), "longest_edge": max_pixels}
            kwargs["do_sample_frames"] = False
            kwargs["video_metadata"] = [{"fps": float(f), "total_num_frames": len(c)} for f, c in zip(fps, clips)]
            if hasattr(getattr(self.processor, "video_processor", None), "cap_pixels_per_frame"):
                kwargs["cap_pixels_per_frame"] = False  # the budget is per frame here (``max_pixels``)
        inputs = self.processor(**kwargs)
        inputs = inputs.to(self.model.device)
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), torch.float32)
        for key in ("pixel_values_videos", "pixel_values"):
            if key in inputs:
                inputs[key] = inputs[key].to(dtype)
        began = time.perf_counter()
        with torch.inference_mode(), inference("qwen2-vl-2b"):
            out = self.model.generate(**inputs, **generation)
        seconds = (time.perf_counter() - began) / len(prompts)
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        new = out[:, inputs["input_ids"].shape[1] :]
        pad = self.processor.tokenizer.pad_token_id
        answers = self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        counts = (new != pad).sum(dim=1).tolist() if pad is not None else [new.shape[1]] * len(prompts)
        return [Generated(answer.strip(), int(count), seconds, int(length))
                for answer, count, length in zip(answers, counts, prompt_tokens)]


def _truthy_offline() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def maybe_cached(repo_id: str, cache_dir: Path | None) -> bool:
    """Whether the hub cache ``cache_dir`` (None: the default one) has snapshots of ``repo_id`` at
    all; without any, asking ``huggingface_hub`` (whose import costs ~0.2 CPU-s) is left out."""
    from huggingface_hub.constants import HF_HUB_CACHE  # a small module, not the client

    folder = Path(cache_dir if cache_dir is not None else HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    return (folder / "snapshots").is_dir()


def weights_folder(resolved: ResolvedModel, revision: str, store: Path,
                   check: Callable[[Path], None] | None = None) -> Path:
    """The local folder of the model's files: the resolved folder, the hub cache (the model store's,
    then the default one), or a download where the hub answers; ModelUnavailable otherwise.
    Before a download, ``check`` gets a folder holding only the model's ``config.json`` (it may
    refuse the model without gigabytes being fetched)."""
    if resolved.origin != "hub":
        folder = Path(resolved.path)
        if not (folder / "config.json").is_file():
            raise ModelUnavailable(f"video-language model folder {folder} has no config.json; set {SETTING} "
                                   "to a folder saved with save_pretrained or to a hub id")
        return folder
    cache = Path(store) / "huggingface"
    for cache_dir in (cache, None):
        if not maybe_cached(resolved.path, cache_dir):
            continue
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(resolved.path, revision=revision, cache_dir=cache_dir,
                                          local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached (several error types)
            continue
    from .speech_emotion import hub_reachable

    if _truthy_offline() or not hub_reachable():
        raise ModelUnavailable(
            f"video-language model {resolved.path!r} is not in the local hub cache and the model hub is not "
            f"reachable; set {SETTING} to a local model folder (or run where the hub answers)"
        )
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        if check is not None:
            check(Path(hf_hub_download(resolved.path, "config.json", revision=revision, cache_dir=cache)).parent)
        return Path(snapshot_download(resolved.path, revision=revision, cache_dir=cache))
    except ModelUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - hub and network errors come in many types
        raise ModelUnavailable(f"video-language model {resolved.path!r} could not be downloaded "
                               f"({type(exc).__name__}); set {SETTING} to a local model folder") from exc


def count_parameters(folder: Path) -> int:
    """Parameters of the model in ``folder`` (built on the meta device: no memory, no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    return sum(p.numel() for p in model.parameters())


def choose_precision(setting: str, kind: str, index: int) -> str:
    """``auto`` -> bf16 (fp16 on GPUs without bf16) on CUDA, fp32 on the CPU; others as set."""
    if setting != "auto":
        return setting
    if kind != "cuda":
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def choose_attention(setting: str, kind: str) -> str:
    """``auto`` -> flash_attention_2 with the flash_attn package on CUDA, else sdpa."""
    if setting != "auto":
        return setting
    if kind == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def _load_kwargs(precision: str, kind: str, index: int) -> dict[str, Any]:
    import torch

    device = f"cuda:{index}" if kind == "cuda" else "cpu"
    compute = torch.bfloat16 if kind == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    kwargs: dict[str, Any] = {"device_map": {"": device}, "local_files_only": True}
    if precision in dtypes:
        kwargs["dtype"] = dtypes[precision]
        return kwargs
    from transformers import BitsAndBytesConfig

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelUnavailable(f"precision {precision} needs the bitsandbytes package; install it or set "
                               "TIKTOK_ASSETS_VLM_PRECISION=auto")
    if precision == "int8":
        quant = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=SKIP_QUANTIZATION)
    else:
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
                                   llm_int8_skip_modules=SKIP_QUANTIZATION)
    kwargs["quantization_config"] = quant
    kwargs["dtype"] = compute if kind == "cuda" else torch.float32
    return kwargs


def load_weights(folder: Path, precision: str, attention: str, kind: str, index: int) -> tuple[Any, str]:
    """The model from ``folder``; a flash-attention load that fails is repeated with sdpa (logged).
    Returns (model, attention really used)."""
    from transformers import AutoModelForImageTextToText

    kwargs = _load_kwargs(precision, kind, index)
    try:
        model = AutoModelForImageTextToText.from_pretrained(folder, attn_implementation=attention, **kwargs)
    except (ImportError, ValueError, RuntimeError) as exc:
        if attention != "flash_attention_2":
            raise
        log.warning("video-language model: flash_attention_2 could not be used (%s); falling back to sdpa",
                    str(exc).splitlines()[0][:160])
        attention = "sdpa"
        model = AutoModelForImageTextToText.from_pretrained(folder, attn_implementation=attention, **kwargs)
    return model.eval(), attention


def load_model(resolved: ResolvedModel, kind: str, index: int, store: Path) -> VisionLanguageModel:
    """Registry loader of ``qwen2-vl-2b`` (and whatever Qwen-VL model ``TIKTOK_ASSETS_VLM_MODEL`` names);
    raises ModelUnavailable with the reason (weights missing, too slow for the CPU at this size)."""
    from ..config import load_settings

    settings = load_settings()

    def check_size(folder: Path) -> int:
        try:
            parameters = count_parameters(folder)
        except Exception as exc:  # noqa: BLE001 - unknown architectures and broken configs
            raise ModelUnavailable(f"video-language model {resolved.name!r} is not a vision-language model "
                                   f"transformers can build ({type(exc).__name__}); set {SETTING}") from exc
        if kind != "cuda" and parameters > CPU_MAX_PARAMS and not settings.vlm_allow_cpu:
            raise ModelUnavailable(
                f"video-language model {resolved.name!r} ({parameters / 1e9:.1f} B parameters) is too slow for "
                f"the CPU at this size and no GPU is in use; run it on a GPU, set {SETTING} to a smaller model, "
                "or set TIKTOK_ASSETS_VLM_ALLOW_CPU=1 to force it"
            )
        return parameters

    folder = weights_folder(resolved, settings.vlm_revision, store, check_size)
    parameters = check_size(folder)
    from transformers import AutoProcessor

    precision = choose_precision(settings.vlm_precision, kind, index)
    attention = choose_attention(settings.vlm_attention, kind)
    try:
        processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        model, attention = load_weights(folder, precision, attention, kind, index)
    except ModelUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - file, config and CUDA errors come in many types
        raise ModelUnavailable(f"video-language model {resolved.name!r} could not be loaded "
                               f"({type(exc).__name__}: {str(exc)[:120]}); set {SETTING}") from exc
    processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
    device = f"cuda:{index}" if kind == "cuda" else "cpu"
    log.info("video-language model %s: %s, %s attention, %.2f B parameters", resolved.name, precision, attention,
             parameters / 1e9)
    return VisionLanguageModel(model, processor, resolved, device, precision, attention, parameters)
