"""Every warehouse table and its schema, and the Warehouse bound to the current settings."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import pyarrow as pa

from .analyzers import all_specs
from .config import Settings
from .reconstruction import COVERAGE_SCHEMA, SCORES_SCHEMA
from .warehouse import FIXED_SCHEMAS, Warehouse

log = logging.getLogger("tiktok_assets")

# refresh_catalog's requests while refreshes are deferred (see refreshes_deferred): the settings of
# each catalog asked for, by catalog file; None when they are not deferred
_DEFERRED: dict | None = None
_DEFERRED_DEPTH = 0
_DEFERRED_LOCK = threading.Lock()


def table_schemas() -> dict[str, pa.Schema]:
    schemas = dict(FIXED_SCHEMAS)
    schemas.update({name: spec.schema for name, spec in all_specs().items()})
    schemas["reconstruction_scores"] = SCORES_SCHEMA
    schemas["coverage_seconds"] = COVERAGE_SCHEMA
    return schemas


def timeline_labels() -> dict[str, str | None]:
    """Analyzer table -> SQL label expression for the `timeline` view."""
    return {name: spec.timeline_label for name, spec in sorted(all_specs().items())}


def warehouse(settings: Settings) -> Warehouse:
    """The warehouse at ``TIKTOK_ASSETS_WAREHOUSE`` (or the data root's ``warehouse/``)."""
    return Warehouse(settings.warehouse_location, settings.catalog_path, env=dict(settings.object_store_env))


def refresh_catalog(settings: Settings) -> bool:
    """Recreate the DuckDB views so SQL clients see tables that just got their first rows.

    A catalog held open by another program (e.g. a ``duckdb`` shell) is not worth failing a step
    for: the Parquet files are written, the views catch up at the next refresh. Returns success.
    Inside :func:`refreshes_deferred` the request is only noted.
    """
    with _DEFERRED_LOCK:
        if _DEFERRED is not None:
            _DEFERRED[settings.catalog_path] = settings
            return True
    import duckdb

    from .storage import StorageError

    try:
        warehouse(settings).refresh_catalog(table_schemas(), timeline_labels())
    except (duckdb.Error, StorageError) as exc:
        log.warning("DuckDB catalog %s not refreshed (%s); it will be at the next write", settings.catalog_path, exc)
        return False
    return True


def connect(settings: Settings, video_id: str | None = None):
    """An in-memory DuckDB connection with every warehouse view (with ``video_id``: over that
    video's rows only)."""
    return warehouse(settings).connect(table_schemas(), timeline_labels(), video_id)


@contextlib.contextmanager
def refreshes_deferred() -> Iterator[None]:
    """Within the block, :func:`refresh_catalog` notes its requests, and each catalog asked for is
    refreshed once at the end (also when the block fails). The CLI runs whole Dagster runs in its
    process, where each step's refresh would rebuild the views again (in a new data root, where
    every step's tables get their first rows: 9 rebuilds and 0.50-0.65 CPU-s for one video); the
    pipeline reads tables from their files, never through the catalog."""
    global _DEFERRED, _DEFERRED_DEPTH
    with _DEFERRED_LOCK:
        if _DEFERRED is None:
            _DEFERRED = {}
        _DEFERRED_DEPTH += 1
    try:
        yield
    finally:
        with _DEFERRED_LOCK:
            _DEFERRED_DEPTH -= 1
            pending = list(_DEFERRED.values()) if _DEFERRED_DEPTH == 0 else []
            if _DEFERRED_DEPTH == 0:
                _DEFERRED = None
        for settings in pending:
            refresh_catalog(settings)
