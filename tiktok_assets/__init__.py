"""tiktok-assets: short vertical videos to a timestamped, SQL-queryable account of what they show.

The Dagster code location is :mod:`tiktok_assets.definitions`; analyzers are plain Python in
:mod:`tiktok_assets.analyzers`.
"""

import os as _os
from pathlib import Path as _Path

# numba compiles on first call (~40 s for librosa, which only the tests use as a reference since the
# audio features moved to tiktok_assets.dsp); keep the compiled code between processes.
_os.environ.setdefault(
    "NUMBA_CACHE_DIR", str(_Path(_os.environ.get("XDG_CACHE_HOME", _Path.home() / ".cache")) / "tiktok-assets" / "numba")
)
# Analyzer steps run side by side (threads in the CLI, processes in Dagster runs) and share the cores:
# OpenMP worker threads (CTranslate2's Whisper, torch) that spin between parallel regions take CPU
# from the other steps. Waiting passively costs Whisper ~4 % alone and saves ~10 % of the CPU when it
# runs beside OCR and NudeNet (bench notes in README, issue 10). Read by libgomp when it loads, so here.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenCV's own thread pool splits each call on the small frames the analyzers use (96-px low-res
# stream, 1080-px samples) over every core, beside the other steps' models: one thread each took the
# whole bench_pipeline run 1.7 CPU-s and 1.0 s less (4 alternating pairs), every table the same.
_os.environ.setdefault("OPENCV_FOR_THREADS_NUM", "1")
# The same for NumPy's OpenBLAS (read when NumPy loads it): its threads spin after each call (the
# mel filterbank of Whisper's features, the analyzers' small matrix products) and took CPU from the
# models. One thread: speech_transcription alone 9.1 -> 8.2 s on the bench clip, the whole
# bench_pipeline run 0.95x the wall and CPU time (5 pairs), every table the same.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Never let a library phone home or pip-install at run time.
_os.environ.setdefault("YOLO_OFFLINE", "1")
_os.environ.setdefault("YOLO_AUTOINSTALL", "False")
_os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
_os.environ.setdefault("DO_NOT_TRACK", "1")

# glibc's malloc reuses freed large blocks instead of mapping (and zero-filling) fresh memory for
# each: Whisper's encoder spent a third of its time in page faults (malloc_policy.py;
# TIKTOK_ASSETS_MALLOC=default leaves it as it is). Before the analyzers' threads start, so here.
from .malloc_policy import keep_freed_memory as _keep_freed_memory  # noqa: E402

MALLOC_POLICY = _keep_freed_memory()
