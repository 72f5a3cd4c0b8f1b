"""The warehouse: Parquet files per table and video, and DuckDB views over them.

Layout: ``warehouse/<table>/video_id=<id>/<part>.parquet``. A write goes to a temporary file in
the same folder and is renamed over the old one, so readers see the old rows or the new rows,
never a mix, and re-running a partition replaces its rows. ``catalog.duckdb`` holds only views
(absolute paths), so the ``duckdb`` CLI and any SQL client see one table per analyzer plus
``videos``, ``analyzer_runs``, ``reconstruction_scores``, ``coverage_seconds`` and ``timeline``.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .ids import validate_key

SPAN = pa.struct([("start_s", pa.float64()), ("end_s", pa.float64())])

VIDEOS_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("source", pa.string()),
        ("source_kind", pa.string()),
        ("duration_s", pa.float64()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("video_codec", pa.string()),
        ("has_audio", pa.bool_()),
        ("audio_codec", pa.string()),
        ("size_bytes", pa.int64()),
        ("creator", pa.string()),
        ("caption", pa.string()),
        ("hashtags", pa.list_(pa.string())),
        ("music_title", pa.string()),
        ("view_count", pa.int64()),
        ("like_count", pa.int64()),
        ("comment_count", pa.int64()),
        ("repost_count", pa.int64()),
        ("upload_date", pa.string()),
        ("ingested_at", pa.timestamp("s", tz="UTC")),
    ]
)

# analyzer_runs.status: success, failed, or model_unavailable (the analyzer's model is not installed
# or configured here: no rows, not covered, not a failure a retry could fix; the sentence is in `error`)
MODEL_UNAVAILABLE = "model_unavailable"
ANALYZER_RUNS_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("analyzer", pa.string()),
        ("modality", pa.string()),
        ("status", pa.string()),
        ("rows", pa.int64()),
        ("seconds", pa.float64()),
        ("examined", pa.list_(SPAN)),
        ("model", pa.string()),
        ("code_version", pa.string()),
        ("error", pa.string()),
        ("finished_at", pa.timestamp("s", tz="UTC")),
    ]
)

FIXED_SCHEMAS: dict[str, pa.Schema] = {
    "videos": VIDEOS_SCHEMA,
    "analyzer_runs": ANALYZER_RUNS_SCHEMA,
}


class Warehouse:
    """Atomic Parquet writes and DuckDB views under one folder."""

    def __init__(self, root: Path, catalog_path: Path):
        self.root = Path(root)
        self.catalog_path = Path(catalog_path)

    def partition_dir(self, table: str, video_id: str) -> Path:
        return self.root / table / f"video_id={validate_key(video_id)}"

    def write(self, table_name: str, video_id: str, table: pa.Table, part: str = "data") -> Path:
        """Replace the rows of ``table_name`` for ``video_id`` (one part file) atomically."""
        folder = self.partition_dir(table_name, video_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{part}.parquet"
        tmp = folder / f".{part}.parquet.tmp-{os.getpid()}"
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def read(self, table_name: str, video_id: str) -> pa.Table | None:
        """All rows of one table for one video, or None when nothing was written."""
        folder = self.partition_dir(table_name, video_id)
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not files:
            return None
        return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")

    def has_rows(self, table_name: str) -> bool:
        return any((self.root / table_name).glob("video_id=*/*.parquet"))

    def _empty_file(self, name: str, schema: pa.Schema) -> Path:
        path = self.root / "_empty" / f"{name}.parquet"
        if not path.exists() or pq.read_schema(path) != schema:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp-{os.getpid()}")
            pq.write_table(schema.empty_table(), tmp)
            os.replace(tmp, path)
        return path

    def view_sql(self, schemas: Mapping[str, pa.Schema], timeline: Mapping[str, str | None]) -> list[str]:
        """CREATE VIEW statements for every known table (empty, typed views for unwritten ones).

        ``timeline`` maps analyzer tables to a SQL label expression (or None) for the ``timeline``
        view, which stacks every labelled analyzer row as (video_id, start_s, end_s, analyzer,
        label): tables without an expression and rows whose label is NULL or blank are left out.
        """
        statements = []
        for name, schema in schemas.items():
            if self.has_rows(name):
                pattern = (self.root / name).resolve() / "video_id=*" / "*.parquet"
            else:
                pattern = self._empty_file(name, schema).resolve()
            statements.append(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM "
                f"read_parquet('{pattern}', union_by_name = true, hive_partitioning = false)"
            )
        if timeline:
            parts = [
                f"SELECT video_id, start_s, end_s, '{t}' AS analyzer, CAST({label} AS VARCHAR) AS label FROM {t}"
                for t, label in timeline.items() if label
            ] or ["SELECT NULL::VARCHAR AS video_id, NULL::DOUBLE AS start_s, NULL::DOUBLE AS end_s, "
                  "NULL::VARCHAR AS analyzer, NULL::VARCHAR AS label WHERE false"]
            union = " UNION ALL ".join(parts)
            statements.append(
                f"CREATE OR REPLACE VIEW timeline AS SELECT * FROM ({union}) WHERE label IS NOT NULL "
                "AND trim(label) <> ''"
            )
        return statements

    @contextmanager
    def _catalog_lock(self) -> Iterator[None]:
        self.catalog_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.catalog_path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def refresh_catalog(self, schemas: Mapping[str, pa.Schema], timeline: Mapping[str, str | None]) -> None:
        """Recreate the views in the DuckDB catalog file (one writer at a time, with retries)."""
        import duckdb

        statements = self.view_sql(schemas, timeline)
        with self._catalog_lock():
            for attempt in range(10):
                try:
                    con = duckdb.connect(str(self.catalog_path))
                    break
                except duckdb.IOException:
                    if attempt == 9:
                        raise
                    time.sleep(0.5)  # another process (a SQL client) holds the file
            try:
                for statement in statements:
                    con.execute(statement)
            finally:
                con.close()

    def connect(self, schemas: Mapping[str, pa.Schema], timeline: Mapping[str, str | None]):
        """An in-memory DuckDB connection with the same views (never blocks on the catalog)."""
        import duckdb

        con = duckdb.connect()
        for statement in self.view_sql(schemas, timeline):
            con.execute(statement)
        return con
