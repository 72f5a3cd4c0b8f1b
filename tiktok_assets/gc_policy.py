"""The cyclic garbage collector in the CLI's analysis process: paused while it starts, then told
that what start-up made lives as long as the process.

Importing Dagster, building the instance and the definitions make about a million objects that
live until the process ends, and Python's full collections scan all of them each time: in one CLI
analysis of the 49 s bench clip the collector ran 5 full collections (0.6 s, each holding the GIL
while the step threads wait) and 800 young ones (0.2 s). :func:`paused_for_start_up` turns the
collector off for the start-up and :func:`start_up_done` freezes what it left (``gc.freeze``: those
objects are never scanned again) and turns it back on. Reference cycles made meanwhile are
collected when they are garbage after that, as before; only cycles that start-up made and dropped
again stay (a few kB).
"""

from __future__ import annotations

import gc

_paused = False


def paused_for_start_up() -> None:
    """Turn the collector off until :func:`start_up_done` (when it is on)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def start_up_done() -> None:
    """Freeze every object made so far and turn the collector back on, if
    :func:`paused_for_start_up` turned it off (a second call does nothing)."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False
