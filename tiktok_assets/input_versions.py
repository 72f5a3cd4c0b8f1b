"""Dagster's read of the input data versions at a step's start, skipped where nothing uses it.

At the start of every asset step Dagster reads, for each upstream asset of the step's assets, its
newest materialization and, per partition of the run, its data version
(``StepExecutionContext.fetch_external_input_asset_version_info``, Dagster 1.13). It needs them for
one thing: the provenance tags of the materializations it records for the step's outputs. In the
project's runs (run tag ``dagster/defer_asset_events``, see ``execution.py``) it records none: the
steps record each video's materialization themselves, with provenance tags from their own reads
(:class:`execution.PartitionEvents`). There the read is unused work, and not small: the score
step's 29 upstream assets cost 62 partition-existence and 29 data-version queries, about 0.3 s of a
0.75 s score run (the run that ends every analysis).

:func:`install` leaves the read out in those runs only. Anything that still asks for an input's
version gets it, read on demand (Dagster's per-key ``maybe_fetch_and_get_input_asset_version_info``);
runs without the tag (a UI "Materialize" of a few assets) read as before. Installed when the code
location loads (``definitions.py``), so in every process that runs steps: the CLI, the multiprocess
executor's step processes, Celery workers and Kubernetes step pods.
"""

from __future__ import annotations

import functools
import logging

log = logging.getLogger("tiktok_assets")


@functools.cache
def install() -> bool:
    """Skip the step-start read in runs whose asset events the steps record; once per process.
    Returns whether it is installed (False when this Dagster has no such read to skip)."""
    from dagster._core.execution.context.system import StepExecutionContext
    from dagster._core.storage.dagster_run import assets_are_externally_managed

    read = getattr(StepExecutionContext, "fetch_external_input_asset_version_info", None)
    if read is None:  # another Dagster: nothing to skip, nothing changed
        log.debug("input_versions: Dagster has no fetch_external_input_asset_version_info; left as is")
        return False

    @functools.wraps(read)
    def read_unless_unused(self: StepExecutionContext) -> None:
        if assets_are_externally_managed(self.dagster_run):
            return None  # no output materializations to tag: see the module docstring
        return read(self)

    read_unless_unused.skips_unused_reads = True  # type: ignore[attr-defined]
    StepExecutionContext.fetch_external_input_asset_version_info = read_unless_unused
    return True
