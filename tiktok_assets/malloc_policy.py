"""glibc's malloc asked to reuse large blocks instead of mapping fresh memory for each.

Whisper's encoder (CTranslate2) allocates its attention scores, 72 MB per layer, six times per
30 s window. glibc serves every allocation over 32 MB (the most its dynamic threshold rises to)
with a new ``mmap`` that the kernel fills with zeros page by page when it is first written, and
unmaps it on ``free``: 155 k page faults per encoder pass, over a third of its time, 1.2 M per
analysis of the 49 s benchmark clip. Threads other than the main
one allocate from arenas whose heaps hold at most 64 MB, which map larger blocks the same way.

:func:`keep_freed_memory` (run when the package is imported, before the analyzers' threads start)
asks glibc for one arena, the main one, whose heap grows without that limit (``M_ARENA_MAX``), to
serve every allocation from it (``M_MMAP_MAX`` 0) and to keep what is freed for the next
allocation instead of giving the top of the heap back (``M_TRIM_THRESHOLD``). Measured on the
benchmark clip (whole ``tiktok-assets analyze`` runs with and without it in turn, 6 pairs): 0.953x
the wall time, 0.949x the CPU time (system time 4.7 -> 2.8 s), page faults 1.2 M -> 0.4 M, peak
memory about the same (1.3-1.4 GB); an encoder pass 0.50 -> 0.32 s. The cost: a process keeps
the memory it once used until it ends, which suits the run, step and worker processes that analyze; ``TIKTOK_ASSETS_MALLOC=default`` leaves glibc's
behaviour as it is. Other C libraries (musl) and platforms are left alone.
"""

from __future__ import annotations

import ctypes
import os

from . import config

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
KEEP = 2**31 - 1  # mallopt takes an int: never trim the heap below ~2 GB of free space at its top



def glibc() -> bool:
    """Whether this process runs on glibc (its malloc is the one the parameters are for)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # not a GNU system
        return False


def keep_freed_memory() -> bool:
    """Apply the policy of the module's docstring to this process; whether glibc took all of it."""
    if not config.keep_freed_memory_wanted() or not glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all([mallopt(M_ARENA_MAX, 1) == 1, mallopt(M_MMAP_MAX, 0) == 1, mallopt(M_TRIM_THRESHOLD, KEEP) == 1])
