"""Settings: the single source of runtime configuration (environment variables with defaults).

Every knob a user may turn is read here and nowhere else. Paths derive from one data root,
``TIKTOK_ASSETS_HOME``, so the CLI, the Dagster UI and the tests see the same downloads, media
cache, warehouse and Dagster instance.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
RESOURCES_DIR = PROJECT_DIR / "resources"
MEDIA_RETENTION_POLICIES = ("evict", "keep")
VLM_PRECISIONS = ("auto", "bf16", "fp16", "fp32", "int8", "int4")
VLM_ATTENTIONS = ("auto", "flash_attention_2", "sdpa", "eager")
# where the steps of a run execute: one machine (a process per step), Celery workers per GPU group, or a
# Kubernetes job per step (tiktok_assets/executors/)
EXECUTORS = ("multiprocess", "celery", "k8s")
K8S_IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


MALLOC_SETTING = "TIKTOK_ASSETS_MALLOC"


def keep_freed_memory_wanted() -> bool:
    """``TIKTOK_ASSETS_MALLOC``: ``keep`` (the default: glibc's malloc reuses freed large blocks, see
    ``malloc_policy.py``) or ``default`` (glibc as it is). Read when the package is imported, before
    any settings are loaded."""
    return _env(MALLOC_SETTING, "keep").lower() not in {"default", "off", "glibc"}


def _env_number(name: str) -> tuple[str, float] | None:
    """The raw text and its value (nan for words) of a numeric variable; None when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return raw, float(raw)
    except ValueError:
        return raw, math.nan


def _env_float(name: str, default: float, minimum: float = 0.0) -> float:
    """A finite number >= ``minimum`` (and > 0 when ``minimum`` is 0) from the environment; one
    sentence naming the variable otherwise (nan, inf, negative, words)."""
    found = _env_number(name)
    if found is None:
        return default
    raw, value = found
    if not math.isfinite(value) or value < minimum or (minimum == 0 and value <= 0):
        bound = f"at least {minimum:g}" if minimum else "greater than 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {raw!r}")
    return value


def _env_int(name: str, default: int, minimum: int) -> int:
    """A whole number >= ``minimum`` from the environment; one sentence naming the variable otherwise."""
    found = _env_number(name)
    if found is None:
        return default
    raw, value = found
    if not math.isfinite(value) or value != int(value) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {raw!r}")
    return int(value)


def _env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in {"1", "true", "yes", "on"}


def default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "tiktok-assets"


def default_model_store() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "tiktok-assets" / "models"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build it with :func:`load_settings`."""

    home: Path
    model_store: Path
    gpu_groups_file: Path
    sample_fps: float = 2.0
    frame_long_side: int = 640
    lowres_short_side: int = 96
    max_duration_s: float = 600.0
    max_file_bytes: int = 2 * 1024**3
    allow_private_urls: bool = False
    whisper_model: str = "base"
    languages: tuple[str, ...] = ("de", "en")
    device_override: str | None = None
    speech_emotion_model: str | None = None
    max_nightly_failures: int = 3
    media_retention: str = "evict"  # evict a video's media cache once its analyzers are up to date, or keep
    # videos per Dagster run of a backfill (BackfillPolicy.multi_run on every partitioned asset)
    partitions_per_run: int = 10
    # steps at once in the CLI's process (threads; the audio step beside the picture steps)
    threads: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    # the video-language model (qwen2_vl_temporal): hub id or local folder, revision, windows, budget
    vlm_model: str = "Qwen/Qwen2-VL-2B-Instruct"
    vlm_revision: str = "main"
    vlm_window_s: float = 2.0
    vlm_frames_per_window: int = 4
    vlm_max_pixels: int = 360 * 420
    vlm_prompt: str | None = None
    vlm_precision: str = "auto"  # auto | bf16 | fp16 | fp32 | int8 | int4
    vlm_attention: str = "auto"  # auto | flash_attention_2 | sdpa | eager
    vlm_german: bool = False
    vlm_max_new_tokens: int = 96
    vlm_allow_cpu: bool = False
    # YOLO weights of object_detection: a local .pt/.onnx (or folder) or an ultralytics release asset name
    object_model: str = "yolov8n.pt"
    object_model_gpu: str = "yolov8x.pt"
    # sampled frames per second read by the people passes (faces, pose, segmentation)
    people_fps: float = 2.0
    # ADE20K scene segmentation (SegFormer) for background_segmentation: local folder or hub id
    segformer_model: str | None = None
    # OCR engine per on-screen text language (text_overlay): ("de", "rapidocr"), ("en", "rapidocr")
    ocr_engines: tuple[tuple[str, str], ...] = (("de", "rapidocr"), ("en", "rapidocr"))
    # a CSV of extra brands (columns brand, aliases, category) added to the packaged list
    brands_file: Path | None = None
    executor: str = "multiprocess"
    # k8s executor: namespace and image pull policy of the step pods (None: what the Helm chart's code
    # location and run launcher give them)
    k8s_namespace: str | None = None
    k8s_image_pull_policy: str | None = None
    # where the Parquet warehouse lives: "" = the data root's warehouse/ folder, else a local folder or a
    # file://, s3:// or gs:// URI (storage.py); the object-store variables DuckDB's secret is built from
    warehouse_uri: str = ""
    object_store_env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # the Celery deployment: broker and result backend (redis URLs), and the Postgres database of the
    # Dagster instance (runs, event log, schedules) shared by every process; None keeps SQLite
    celery_broker: str = "redis://localhost:6379/0"
    celery_backend: str = "redis://localhost:6379/0"
    postgres_url: str | None = None

    @property
    def videos_dir(self) -> Path:
        return self.home / "videos"

    @property
    def sources_dir(self) -> Path:
        return self.home / "sources"

    @property
    def media_dir(self) -> Path:
        return self.home / "media"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def warehouse_location(self) -> str:
        """Where the warehouse is: ``TIKTOK_ASSETS_WAREHOUSE``, or the data root's ``warehouse/`` folder."""
        return self.warehouse_uri or str(self.warehouse_dir)

    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"


def load_settings() -> Settings:
    """Read the environment once; raise ValueError with the variable name on bad values."""
    home = Path(_env("TIKTOK_ASSETS_HOME", str(default_home()))).expanduser().resolve()
    settings = Settings(
        home=home,
        model_store=Path(_env("TIKTOK_ASSETS_MODELS", str(default_model_store()))).expanduser(),
        gpu_groups_file=Path(
            _env("TIKTOK_ASSETS_GPU_GROUPS", str(PROJECT_DIR / "gpu_groups.yaml"))
        ).expanduser(),
        sample_fps=_env_float("TIKTOK_ASSETS_SAMPLE_FPS", 2.0),
        frame_long_side=_env_int("TIKTOK_ASSETS_FRAME_LONG_SIDE", 640, minimum=64),
        lowres_short_side=_env_int("TIKTOK_ASSETS_LOWRES_SHORT_SIDE", 96, minimum=16),
        max_duration_s=_env_float("TIKTOK_ASSETS_MAX_DURATION_S", 600.0),
        max_file_bytes=int(_env_float("TIKTOK_ASSETS_MAX_FILE_MB", 2048) * 1024**2),
        allow_private_urls=_env_bool("TIKTOK_ASSETS_ALLOW_PRIVATE_URLS"),
        whisper_model=_env("TIKTOK_ASSETS_WHISPER_MODEL", "base"),
        languages=tuple(
            code.strip().lower()
            for code in _env("TIKTOK_ASSETS_LANGUAGES", "de,en").split(",")
            if code.strip() and code.strip().lower() != "any"
        ),
        device_override=os.environ.get("TIKTOK_ASSETS_DEVICE", "").strip() or None,
        speech_emotion_model=os.environ.get("TIKTOK_ASSETS_SPEECH_EMOTION_MODEL", "").strip() or None,
        max_nightly_failures=int(_env_float("TIKTOK_ASSETS_MAX_NIGHTLY_FAILURES", 3)),
        media_retention=_env("TIKTOK_ASSETS_MEDIA_RETENTION", "evict").lower(),
        partitions_per_run=_env_int("TIKTOK_ASSETS_PARTITIONS_PER_RUN", 10, minimum=1),
        threads=_env_int("TIKTOK_ASSETS_THREADS", max(1, os.cpu_count() or 1), minimum=1),
        vlm_model=_env("TIKTOK_ASSETS_VLM_MODEL", "Qwen/Qwen2-VL-2B-Instruct"),
        vlm_revision=_env("TIKTOK_ASSETS_VLM_REVISION", "main"),
        vlm_window_s=_env_float("TIKTOK_ASSETS_VLM_WINDOW_S", 2.0),
        vlm_frames_per_window=_env_int("TIKTOK_ASSETS_VLM_FRAMES", 4, minimum=1),
        vlm_max_pixels=_env_int("TIKTOK_ASSETS_VLM_MAX_PIXELS", 360 * 420, minimum=56 * 56),
        vlm_prompt=os.environ.get("TIKTOK_ASSETS_VLM_PROMPT", "").strip() or None,
        vlm_precision=_env("TIKTOK_ASSETS_VLM_PRECISION", "auto").lower(),
        vlm_attention=_env("TIKTOK_ASSETS_VLM_ATTENTION", "auto").lower(),
        vlm_german=_env_bool("TIKTOK_ASSETS_VLM_GERMAN"),
        vlm_max_new_tokens=_env_int("TIKTOK_ASSETS_VLM_MAX_NEW_TOKENS", 96, minimum=8),
        vlm_allow_cpu=_env_bool("TIKTOK_ASSETS_VLM_ALLOW_CPU"),
        object_model=_env("TIKTOK_ASSETS_OBJECT_MODEL", "yolov8n.pt"),
        object_model_gpu=_env("TIKTOK_ASSETS_OBJECT_MODEL_GPU", "yolov8x.pt"),
        people_fps=_env_float("TIKTOK_ASSETS_PEOPLE_FPS", 2.0),
        segformer_model=os.environ.get("TIKTOK_ASSETS_SEGFORMER_MODEL", "").strip() or None,
        ocr_engines=_ocr_engines(_env("TIKTOK_ASSETS_OCR_ENGINES", "de=rapidocr,en=rapidocr")),
        brands_file=Path(os.environ["TIKTOK_ASSETS_BRANDS_FILE"]).expanduser()
        if os.environ.get("TIKTOK_ASSETS_BRANDS_FILE", "").strip() else None,
        executor=_env("TIKTOK_ASSETS_EXECUTOR", "multiprocess").lower(),
        k8s_namespace=os.environ.get("TIKTOK_ASSETS_K8S_NAMESPACE", "").strip() or None,
        k8s_image_pull_policy=os.environ.get("TIKTOK_ASSETS_K8S_IMAGE_PULL_POLICY", "").strip() or None,
        warehouse_uri=_warehouse_uri(os.environ.get("TIKTOK_ASSETS_WAREHOUSE", "").strip()),
        object_store_env=_object_store_env(),
        celery_broker=_env("TIKTOK_ASSETS_CELERY_BROKER", "redis://localhost:6379/0"),
        celery_backend=_env("TIKTOK_ASSETS_CELERY_BACKEND", _env("TIKTOK_ASSETS_CELERY_BROKER", "redis://localhost:6379/0")),
        postgres_url=os.environ.get("TIKTOK_ASSETS_POSTGRES_URL", "").strip() or None,
    )
    if settings.executor not in EXECUTORS:
        raise ValueError(f"TIKTOK_ASSETS_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {settings.executor!r}")
    if not settings.celery_broker.startswith(("redis://", "rediss://", "amqp://", "pyamqp://")):
        raise ValueError(f"TIKTOK_ASSETS_CELERY_BROKER must be a redis:// or amqp:// URL, got {settings.celery_broker!r}")
    if "://" not in settings.celery_backend:
        raise ValueError(f"TIKTOK_ASSETS_CELERY_BACKEND must be a URL such as redis://host:port/1, "
                         f"got {settings.celery_backend!r}")
    if settings.postgres_url and not settings.postgres_url.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"TIKTOK_ASSETS_POSTGRES_URL must be a postgresql:// URL, got {settings.postgres_url!r}")
    if settings.media_retention not in MEDIA_RETENTION_POLICIES:
        raise ValueError(f"TIKTOK_ASSETS_MEDIA_RETENTION must be one of {', '.join(MEDIA_RETENTION_POLICIES)}, "
                         f"got {os.environ.get('TIKTOK_ASSETS_MEDIA_RETENTION')!r}")
    if not 0.1 <= settings.sample_fps <= 30:
        raise ValueError("TIKTOK_ASSETS_SAMPLE_FPS must be between 0.1 and 30")
    if not 0.1 <= settings.people_fps <= 30:
        raise ValueError("TIKTOK_ASSETS_PEOPLE_FPS must be between 0.1 and 30")
    if settings.max_nightly_failures < 1:
        raise ValueError("TIKTOK_ASSETS_MAX_NIGHTLY_FAILURES must be at least 1")
    if settings.vlm_precision not in VLM_PRECISIONS:
        raise ValueError(f"TIKTOK_ASSETS_VLM_PRECISION must be one of {', '.join(VLM_PRECISIONS)}, "
                         f"got {settings.vlm_precision!r}")
    if settings.vlm_attention not in VLM_ATTENTIONS:
        raise ValueError(f"TIKTOK_ASSETS_VLM_ATTENTION must be one of {', '.join(VLM_ATTENTIONS)}, "
                         f"got {settings.vlm_attention!r}")
    if not 0.5 <= settings.vlm_window_s <= 30:
        raise ValueError("TIKTOK_ASSETS_VLM_WINDOW_S must be between 0.5 and 30 seconds")
    if settings.frame_long_side < 64 or settings.lowres_short_side < 16:
        raise ValueError("frame sizes are too small (long side >= 64, low-res short side >= 16)")
    if settings.k8s_image_pull_policy and settings.k8s_image_pull_policy not in K8S_IMAGE_PULL_POLICIES:
        raise ValueError(f"TIKTOK_ASSETS_K8S_IMAGE_PULL_POLICY must be one of {', '.join(K8S_IMAGE_PULL_POLICIES)}, "
                         f"got {settings.k8s_image_pull_policy!r}")
    return settings


def _warehouse_uri(value: str) -> str:
    """A URI as given, a local folder made absolute, "" when unset; ValueError when it cannot be a location."""
    if not value:
        return ""
    from .storage import parse_location

    location = parse_location(value)
    return value if location.remote else location.path


def _object_store_env() -> tuple[tuple[str, str], ...]:
    """The S3/GCS variables that are set (AWS_*, the GCS HMAC keys), for DuckDB's secret and S3's region."""
    from .storage import OBJECT_STORE_VARIABLES

    return tuple((name, os.environ[name].strip()) for name in OBJECT_STORE_VARIABLES
                 if os.environ.get(name, "").strip())


OCR_ENGINE_NAMES = ("rapidocr", "easyocr")


def _ocr_engines(value: str) -> tuple[tuple[str, str], ...]:
    """``de=rapidocr,en=easyocr`` (or one engine name for every language) -> (language, engine) pairs."""
    text = value.strip().lower()
    if text in OCR_ENGINE_NAMES:
        return (("de", text), ("en", text))
    pairs = {"de": "rapidocr", "en": "rapidocr"}
    for item in filter(None, (part.strip() for part in text.split(","))):
        lang, _, engine = item.partition("=")
        if lang.strip() not in ("de", "en") or engine.strip() not in OCR_ENGINE_NAMES:
            raise ValueError(f"TIKTOK_ASSETS_OCR_ENGINES must look like 'de=rapidocr,en=easyocr' "
                             f"(engines: {', '.join(OCR_ENGINE_NAMES)}), got {value!r}")
        pairs[lang.strip()] = engine.strip()
    return tuple(sorted(pairs.items()))
