"""Imported last by the multiprocess executor's fork server (``executors/multiprocess.py``): every
object its preloaded modules made is frozen (``gc.freeze``), so the step processes forked from it
never scan them in their full garbage collections (see ``gc_policy``), and the pages holding them
stay shared with the server instead of being copied when a collection touches them."""

import gc

gc.freeze()
