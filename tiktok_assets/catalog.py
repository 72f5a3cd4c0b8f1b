"""Every warehouse table and its schema, and the Warehouse bound to the current settings."""

from __future__ import annotations

import logging

import pyarrow as pa

from .analyzers import all_specs
from .config import Settings
from .reconstruction import COVERAGE_SCHEMA, SCORES_SCHEMA
from .warehouse import FIXED_SCHEMAS, Warehouse

log = logging.getLogger("tiktok_assets")


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
    """
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
