"""Dagster code versions: everything that changes an asset's output goes into its ``code_version``.

Dagster compares the code version recorded with a materialization to the current one (and the
data versions of the inputs), so a changed analyzer version, model or setting makes the asset and
everything downstream of it *stale* in the UI, and the nightly backfill re-runs exactly those.

* ``source_video``: :data:`SOURCE_VERSION` (the download/registration logic).
* ``media``: :data:`MEDIA_VERSION` plus the decoding settings (sample fps, frame sizes).
* an analyzer: its ``spec.version``, its model name, the settings it declares in ``spec.settings``
  (a value that is a local file or folder adds the size and mtime of its files: cheap, no hashing of
  weights), the installed versions of the distributions in ``spec.model_packages``, the identity of
  every registry model it uses (:func:`model_parts`: id + size and sha256 of the packaged files, or
  the local folder's file sizes and mtimes, or the hub id + revision), the versions of the shared
  passes in ``spec.passes``, and the code versions of what it reads (``media`` and ``spec.depends_on``).
* ``reconstruction_scores``: :data:`SCORES_VERSION` plus every analyzer's code version.

Upstream versions are folded in because Dagster 1.13 only marks a downstream asset stale once its
upstream has been re-materialized with a new data version; with them, bumping ``cut_analysis`` makes
its five dependents stale at once (cause: new code version), and a decoding setting every analyzer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from .analyzers.base import AnalyzerSpec
from .config import Settings
from .model_registry import ModelLoader, models_of
from .model_registry.loading import distribution_version
from .passes import VERSIONS as PASS_VERSIONS

SOURCE_VERSION = "1"
MEDIA_VERSION = "1"
MEDIA_SETTINGS = ("sample_fps", "frame_long_side", "lowres_short_side")
SCORES_VERSION = "1"


def _short_hash(parts: list[str]) -> str:
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:10]


def path_stamp(value: object) -> str | None:
    """Size and mtime of a local model file, or of the files directly inside a model folder."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        return None
    path = Path(value).expanduser()
    try:
        if path.is_file():
            st = path.stat()
            return f"{st.st_size}:{int(st.st_mtime)}"
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            return ";".join(f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in files)
    except OSError:
        return None
    return None


@cache
def _package_version(name: str) -> str:
    return distribution_version(name) or "absent"


def _setting_parts(settings: Settings, names: tuple[str, ...]) -> list[str]:
    parts = []
    for name in names:
        value = getattr(settings, name)
        parts.append(f"{name}={value!r}")
        stamp = path_stamp(value)
        if stamp:
            parts.append(f"{name}@{stamp}")
    return parts


def _own_parts(spec: AnalyzerSpec, settings: Settings) -> list[str]:
    unknown = [n for n in spec.settings if not hasattr(settings, n)]
    if unknown:
        raise ValueError(f"analyzer {spec.name} declares unknown settings {unknown}")
    parts = [f"model={spec.model}"] if spec.model else []
    parts += _setting_parts(settings, spec.settings)
    parts += [f"{p}=={_package_version(p)}" for p in spec.model_packages]
    parts += model_parts(spec.name, settings)
    unknown = [p for p in spec.passes if p not in PASS_VERSIONS]
    if unknown:
        raise ValueError(f"analyzer {spec.name} reads unknown shared passes {unknown}")
    parts += [f"pass:{p}={PASS_VERSIONS[p]}" for p in spec.passes]
    return parts


def model_parts(analyzer: str, settings: Settings) -> list[str]:
    """The identities of the registry models ``analyzer`` uses (no preparing, no hashing)."""
    loader = ModelLoader(settings)
    return [f"weights={loader.identity(spec.id)}" for spec in models_of(analyzer)]


def code_versions(settings: Settings, specs: Mapping[str, AnalyzerSpec] | None = None) -> dict[str, str]:
    """Asset name -> code version for every asset (``<own version>-<hash>``)."""
    if specs is None:
        from .analyzers import all_specs

        specs = all_specs()
    out = {"source_video": SOURCE_VERSION}
    out["media"] = f"{MEDIA_VERSION}-{_short_hash([*_setting_parts(settings, MEDIA_SETTINGS), 'source_video=' + SOURCE_VERSION])}"

    def analyzer(name: str, path: tuple[str, ...] = ()) -> str:
        if name in path:
            raise ValueError(f"analyzers depend on each other in a cycle: {' -> '.join([*path, name])}")
        if name not in out:
            spec = specs[name]
            parts = [*_own_parts(spec, settings), f"media={out['media']}"]
            parts += [f"{d}={analyzer(d, (*path, name))}" for d in spec.depends_on]
            out[name] = f"{spec.version}-{_short_hash(parts)}"
        return out[name]

    for name in specs:
        analyzer(name)
    out["reconstruction_scores"] = f"{SCORES_VERSION}-{_short_hash([f'{n}={out[n]}' for n in sorted(specs)])}"
    return out


def media_code_version(settings: Settings) -> str:
    return code_versions(settings, {})["media"]


def analyzer_code_version(spec: AnalyzerSpec, settings: Settings) -> str:
    """The code version of one analyzer among the registered ones (``spec`` replaces its namesake)."""
    from .analyzers import all_specs

    return code_versions(settings, {**all_specs(), spec.name: spec})[spec.name]
