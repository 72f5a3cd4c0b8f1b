"""Imports that a library makes at its top but only uses in functions we never call, deferred.

MediaPipe's legacy solutions import ``drawing_utils``, which imports ``matplotlib.pyplot`` at its top
for one plotting helper; Matplotlib's import took 0.44 of the 0.50 CPU-s that importing the
solutions costs (2 cores, warm page cache). :func:`deferred` hands such an import a stand-in module
for the length of a block: the stand-in imports the real module the first time anything is read
from it, so code that does use it still works, only later. After the block the stand-ins leave
``sys.modules``, so any other import of the module gets the real one.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
import types
from collections.abc import Iterator

_LOCK = threading.Lock()


class StandIn(types.ModuleType):
    """A module that imports ``real_name`` when an attribute it lacks is first read."""

    def __init__(self, real_name: str) -> None:
        super().__init__(real_name)
        self.__dict__["_stand_in_for"] = real_name

    def __getattr__(self, attribute: str):
        real_name = self.__dict__["_stand_in_for"]
        with _LOCK:
            if sys.modules.get(real_name) is self:  # read inside the block: leave it to the real import
                del sys.modules[real_name]
        return getattr(importlib.import_module(real_name), attribute)


@contextlib.contextmanager
def deferred(*names: str) -> Iterator[None]:
    """Within the block, ``import`` of each dotted module name in ``names`` (and of its parent
    packages) gets a :class:`StandIn` unless the module is imported already."""
    placed: dict[str, StandIn] = {}
    with _LOCK:
        for name in names:
            parts = name.split(".")
            if name in sys.modules:
                continue
            parent: StandIn | None = None
            for depth in range(1, len(parts) + 1):
                dotted = ".".join(parts[:depth])
                module = sys.modules.get(dotted)
                if module is None:
                    module = placed[dotted] = StandIn(dotted)
                    sys.modules[dotted] = module
                if parent is not None:  # `import a.b as c` reads b from a
                    parent.__dict__[parts[depth - 1]] = module
                parent = module if isinstance(module, StandIn) else None
    try:
        yield
    finally:
        with _LOCK:
            for dotted, module in placed.items():
                if sys.modules.get(dotted) is module:
                    del sys.modules[dotted]
