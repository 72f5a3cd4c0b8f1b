"""A step's single-threaded passes computed side by side before its analyzers read them.

A group step runs its analyzers one after another, and the first analyzer that reads a pass
computes it. The face pass and the person pass run MediaPipe graphs, one thread each: computed in
turn they leave a core idle (on the 2-core reference machine, the people step's ~4.5 s of passes
ran at one core once the audio step had finished). :func:`prepare` computes the passes of
:data:`SIDE_BY_SIDE` that the step's analyzers declare, each in its own thread, before they run.

It only saves time: the analyzers still read every pass through its own function (which then finds
it stored), and a pass that fails here is left to the analyzer that reads it, which computes it
again and records the failure as its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..model_registry.clock import ModelTime, measuring
from ..model_registry.errors import ModelUnavailable

log = logging.getLogger("tiktok_assets.passes")


def _faces(media: Any, models: Any, device: str, settings: Any) -> None:
    from .faces import faces

    faces(media, models, device, settings.people_fps)


def _person(media: Any, models: Any, device: str, settings: Any) -> None:
    from .person import person

    person(media, models, device, settings.people_fps)


# passes that run single-threaded, on separate models or graphs (so two can run at once), each
# computed the way its analyzers ask for it
SIDE_BY_SIDE: dict[str, Callable[[Any, Any, str, Any], None]] = {"faces": _faces, "person": _person}


def worth_preparing(names: Iterable[str]) -> list[str]:
    """The passes of ``names`` that :func:`prepare` would compute: those of :data:`SIDE_BY_SIDE`,
    when at least two of them are asked for (one alone gains nothing from a thread)."""
    asked = set(names)
    wanted = [name for name in SIDE_BY_SIDE if name in asked]
    return wanted if len(wanted) >= 2 else []


def prepare(media: Any, names: Iterable[str], models: Any, device: str, settings: Any,
            logger: Any = None) -> dict[str, str]:
    """Compute the passes of ``names`` worth preparing, side by side; per pass ``"ok"`` or the
    error it met (logged as a warning and left to the analyzers that read it)."""
    wanted = worth_preparing(names)
    if not wanted:
        return {}
    out: dict[str, str] = {}
    model_time, lock = ModelTime(), threading.Lock()

    def compute(name: str) -> None:
        with measuring() as clock:  # this thread's model calls (the analyzers later find the pass stored)
            try:
                SIDE_BY_SIDE[name](media, models, device, settings)
            finally:
                with lock:
                    model_time.add(clock)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="pass") as pool:
        futures = {name: pool.submit(compute, name) for name in wanted}
        for name, future in futures.items():
            try:
                future.result()
                out[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - the analyzer that reads the pass meets it again
                out[name] = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, ModelUnavailable):  # each analyzer records and logs it
                    continue
                (logger or log).warning(f"the {name} pass could not be prepared ({out[name]}); "
                                        "its analyzers compute it themselves")
    ready = [name for name, status in out.items() if status == "ok"]
    if ready:
        inside = f"; {model_time.describe()}" if model_time.calls else ""
        (logger or log).info(f"passes {', '.join(ready)} ready in {time.perf_counter() - began:.1f}s "
                             f"(side by side{inside})")
    return out
