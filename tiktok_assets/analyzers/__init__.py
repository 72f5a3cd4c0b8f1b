"""The analyzer registry: every module in this package that defines ``SPEC`` is an analyzer."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from functools import cache

from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec, run_analyzer

__all__ = ["AnalyzerContext", "AnalyzerOutput", "AnalyzerSpec", "all_specs", "get_spec", "run_analyzer"]

_NOT_ANALYZERS = {"base"}


@cache
def all_specs() -> dict[str, AnalyzerSpec]:
    """Name -> spec for every analyzer module, in dependency-respecting order.

    A spec's ``optional_inputs`` that are registered analyzers are appended to its ``depends_on``."""
    specs: dict[str, AnalyzerSpec] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _NOT_ANALYZERS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, AnalyzerSpec):
            if spec.name in specs:
                raise ValueError(f"two analyzers are named {spec.name!r}")
            specs[spec.name] = spec
    for name, spec in list(specs.items()):
        present = tuple(o for o in spec.optional_inputs if o in specs and o not in spec.depends_on)
        if present:
            specs[name] = dataclasses.replace(spec, depends_on=(*spec.depends_on, *present))
    for spec in specs.values():
        missing = [d for d in spec.depends_on if d not in specs]
        if missing:
            raise ValueError(f"analyzer {spec.name} depends on unknown analyzers {missing}")
    return specs


def get_spec(name: str) -> AnalyzerSpec:
    specs = all_specs()
    if name not in specs:
        raise KeyError(f"unknown analyzer {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]
