"""Seconds an analyzer spends inside its models, measured where the models are called.

``run_analyzer`` opens a :func:`measuring` scope around each analyzer; the code that calls a
network wraps the call in :func:`inference` with the model's registry id, and the loader reports
its loads (:func:`add_load`). The analyzer's run record then says how much of its time was model
inference and model loading, per model, as opposed to reading frames, pre- and post-processing:
the benchmark counts these as the unavoidable part of the analyzers whose models the pipeline runs.

Calls outside a scope (tests, the benchmark's own parts) are not counted: each thread has its own
(the passes a group step prepares side by side open one per thread and log their sum). A call
nested in another (a library's decode that calls its encoder) counts once, for the outer call's
model.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class ModelTime:
    """Wall seconds inside model calls and model loads, per model id."""

    inference: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter = field(default_factory=Counter)
    loads: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def inference_s(self) -> float:
        return sum(self.inference.values())

    @property
    def load_s(self) -> float:
        return sum(self.loads.values())

    def add(self, other: ModelTime) -> None:
        """Count ``other``'s calls and loads into this one (scopes of several threads)."""
        for model, seconds in other.inference.items():
            self.inference[model] += seconds
        self.calls.update(other.calls)
        for model, seconds in other.loads.items():
            self.loads[model] += seconds

    def by_model(self) -> dict[str, tuple[float, int, float]]:
        """Model id -> (inference seconds, calls, load seconds)."""
        ids = sorted({*self.inference, *self.loads})
        return {m: (round(self.inference.get(m, 0.0), 3), self.calls[m], round(self.loads.get(m, 0.0), 3)) for m in ids}

    def describe(self) -> str:
        """One line per model, for a run's metadata: ``id: 2.71 s in 90 calls, load 0.56 s``."""
        return "; ".join(f"{m}: {s:.2f} s in {n} calls, load {load:.2f} s" for m, (s, n, load) in self.by_model().items())


_SCOPE: ContextVar[ModelTime | None] = ContextVar("model_time", default=None)
_INSIDE: ContextVar[bool] = ContextVar("inside_model_call", default=False)


@contextmanager
def measuring() -> Iterator[ModelTime]:
    """A scope whose model calls and loads (in this thread) add up in the yielded ``ModelTime``."""
    clock = ModelTime()
    token = _SCOPE.set(clock)
    try:
        yield clock
    finally:
        _SCOPE.reset(token)


@contextmanager
def inference(model_id: str) -> Iterator[None]:
    """Time the call of model ``model_id`` in the block (once, when calls nest) into the current
    scope, if any."""
    clock = _SCOPE.get()
    if clock is None or _INSIDE.get():
        yield
        return
    token = _INSIDE.set(True)
    began = time.perf_counter()
    try:
        yield
    finally:
        clock.inference[model_id] += time.perf_counter() - began
        clock.calls[model_id] += 1
        _INSIDE.reset(token)


def add_load(model_id: str, seconds: float) -> None:
    """Count a load of model ``model_id`` that took ``seconds`` into the current scope, if any."""
    clock = _SCOPE.get()
    if clock is not None:
        clock.loads[model_id] += seconds
