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


def models_text(settings: Settings) -> str:
    """The table printed by ``tiktok-assets models``."""
    rows = model_rows(settings)
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
    lines.append(f"model store: {settings.model_store} (TIKTOK_ASSETS_MODELS); checksums are verified on first load")
    return "\n".join(lines)
