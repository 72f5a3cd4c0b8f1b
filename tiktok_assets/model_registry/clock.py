"""Seconds an analyzer spends inside its models, measured where the models are called.

``run_analyzer`` opens a :func:`measuring` scope around each analyzer; the code that calls a
network wraps the call in :func:`inference` and the loader reports its loads (:func:`add_load`).
The analyzer's run record then says how much of its time was model inference and model loading,
as opposed to reading frames, pre- and post-processing: the benchmark counts these as the
unavoidable part of the analyzers whose models the pipeline runs.

Calls outside a scope (tests, the benchmark's own parts, passes prepared in helper threads) are not
counted; a call nested in another (a library's decode that calls its encoder) counts once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class ModelTime:
    """Wall seconds inside model calls (``inference_s``, ``calls`` of them) and model loads."""

    inference_s: float = 0.0
    calls: int = 0
    load_s: float = 0.0


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
def inference() -> Iterator[None]:
    """Time the model call in the block (once, when calls nest) into the current scope, if any."""
    clock = _SCOPE.get()
    if clock is None or _INSIDE.get():
        yield
        return
    token = _INSIDE.set(True)
    began = time.perf_counter()
    try:
        yield
    finally:
        clock.inference_s += time.perf_counter() - began
        clock.calls += 1
        _INSIDE.reset(token)


def add_load(seconds: float) -> None:
    """Count a model load of ``seconds`` into the current scope, if any."""
    clock = _SCOPE.get()
    if clock is not None:
        clock.load_s += seconds
