"""The warehouse: Parquet files per table and video, and DuckDB views over them.

Layout: ``<warehouse>/<table>/video_id=<id>/<part>.parquet``, where ``<warehouse>`` is a local folder
(the data root's ``warehouse/`` unless ``TIKTOK_ASSETS_WAREHOUSE`` says otherwise) or an object-store
URI (``s3://bucket/prefix``, ``gs://bucket/prefix``). Every read, write and listing goes through
pyarrow's filesystem layer (``storage.py``). Readers see the old rows or the new rows of a partition,
never a mix, and re-running a partition replaces its rows. ``catalog.duckdb`` (always local) holds
only views over the same paths or URIs, so the ``duckdb`` CLI and any SQL client see one table per
analyzer plus ``videos``, ``analyzer_runs``, ``reconstruction_scores``, ``coverage_seconds`` and
``timeline``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from . import storage
from .atomic_files import write_text_atomic
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
    """Atomic Parquet writes per table and video, and DuckDB views over them, on a local folder or
    an object store.

    ``root`` is a local folder, a ``file://``, ``s3://`` or ``gs://`` URI, or, with ``filesystem``
    (any pyarrow filesystem), a path inside that filesystem. ``env`` holds the object-store
    variables that DuckDB's secret and S3's region are built from (``Settings.object_store_env``).

    A write first serializes the whole Parquet file in memory, so a table that cannot be written
    never reaches the storage. On a local filesystem the bytes go to a hidden temporary file in the
    partition folder, which is then renamed over the old file (``fs.move``: an atomic replace). On
    an object store a single upload of the final key is already atomic (the object appears, or
    replaces the old one, only when the upload completes), so no temporary object and no rename
    is used: object stores have no atomic rename.
    """

    def __init__(self, root: str | Path, catalog_path: Path, filesystem: pafs.FileSystem | None = None,
                 env: Mapping[str, str] | None = None):
        self.env = dict(env or {})
        if filesystem is None:
            self.location: storage.Location | None = storage.parse_location(root)
            self.filesystem, self.root = storage.open_filesystem(self.location, self.env)
        else:
            self.location, self.filesystem, self.root = None, filesystem, str(root).rstrip("/")
        self.catalog_path = Path(catalog_path)
        self.is_local = isinstance(self.filesystem, pafs.LocalFileSystem)

    @property
    def display(self) -> str:
        """Where the warehouse is, for messages (no credentials)."""
        if self.location is not None:
            return self.location.display
        return f"{self.filesystem.type_name}:{self.root}"

    @contextmanager
    def _io(self, action: str) -> Iterator[None]:
        """Errors of a remote store become one sentence (local errors stay what they are)."""
        try:
            yield
        except OSError as exc:
            if self.is_local:
                raise
            raise storage.StorageError(
                f"cannot {action} the warehouse at {self.display} ({storage.first_line(exc)}); check the "
                "URI, the network and the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile "
                "for S3, GOOGLE_APPLICATION_CREDENTIALS for GCS)"
            ) from exc

    def partition_dir(self, table: str, video_id: str) -> str:
        """The folder (or key prefix) of one table's rows for one video."""
        return f"{self.root}/{table}/video_id={validate_key(video_id)}"

    def _files(self, folder: str, recursive: bool = False) -> list[pafs.FileInfo]:
        """Parquet files under ``folder`` (hidden temporary files left out), sorted by path."""
        selector = pafs.FileSelector(folder, allow_not_found=True, recursive=recursive)
        infos = self.filesystem.get_file_info(selector)
        return sorted((i for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")
                       and not i.base_name.startswith(".")), key=lambda i: i.path)

    def _put(self, path: str, data: pa.Buffer) -> None:
        """Store ``data`` at ``path`` atomically (temporary file + rename locally, one upload elsewhere)."""
        folder = path.rsplit("/", 1)[0]
        if not self.is_local:
            with self._io("write to"), self.filesystem.open_output_stream(path) as out:
                out.write(data)
            return
        self.filesystem.create_dir(folder, recursive=True)
        # unique per writer: two steps in threads of one process may write the same file (the
        # empty file of a table nothing was written to yet, for each step's views)
        tmp = f"{folder}/.{path.rsplit('/', 1)[1]}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            with self.filesystem.open_output_stream(tmp) as out:
                out.write(data)
            self.filesystem.move(tmp, path)
        finally:
            if self.filesystem.get_file_info(tmp).type != pafs.FileType.NotFound:
                self.filesystem.delete_file(tmp)

    @staticmethod
    def _serialize(table: pa.Table) -> pa.Buffer:
        """The Parquet file in memory (``pq.write_table`` straight to an object store would publish a
        partial object on an error: its writer closes, i.e. completes the upload, on the way out)."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return sink.getvalue()

    def write(self, table_name: str, video_id: str, table: pa.Table, part: str = "data") -> str:
        """Replace the rows of ``table_name`` for ``video_id`` (one part file) atomically; returns its path."""
        target = f"{self.partition_dir(table_name, video_id)}/{part}.parquet"
        self._put(target, self._serialize(table))
        return target

    def _read_file(self, path: str) -> pa.Table:
        with self.filesystem.open_input_file(path) as handle:
            return pq.read_table(handle)

    def read(self, table_name: str, video_id: str) -> pa.Table | None:
        """All rows of one table for one video (every part file), or None when nothing was written."""
        with self._io("read"):
            files = self._files(self.partition_dir(table_name, video_id))
            if not files:
                return None
            return pa.concat_tables([self._read_file(f.path) for f in files], promote_options="default")

    def read_part(self, table_name: str, video_id: str, part: str) -> pa.Table | None:
        """The rows of one part file of one table for one video (see :meth:`write`), or None."""
        path = f"{self.partition_dir(table_name, video_id)}/{part}.parquet"
        with self._io("read"):
            if self.filesystem.get_file_info(path).type != pafs.FileType.File:
                return None
            return self._read_file(path)

    def has_rows(self, table_name: str) -> bool:
        """Whether any video has a Parquet file of ``table_name`` (the video folders are listed, then
        looked into one by one until one holds a file: not every file of every video)."""
        with self._io("list"):
            infos = self.filesystem.get_file_info(
                pafs.FileSelector(f"{self.root}/{table_name}", allow_not_found=True))
            folders = sorted(i.path for i in infos
                             if i.type == pafs.FileType.Directory and i.base_name.startswith("video_id="))
            return any(self._files(folder) for folder in folders)

    def tables(self) -> list[str]:
        """The tables that have a folder in the warehouse, sorted."""
        with self._io("list"):
            infos = self.filesystem.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        return sorted(i.base_name for i in infos
                      if i.type == pafs.FileType.Directory and not i.base_name.startswith(("_", ".")))

    def _empty_file(self, name: str, schema: pa.Schema) -> str:
        """A Parquet file with no rows and ``schema``, for the view of a table nothing was written to."""
        path = f"{self.root}/_empty/{name}.parquet"
        with self._io("write to"):
            found = self.filesystem.get_file_info(path).type == pafs.FileType.File
            if found:
                with self.filesystem.open_input_file(path) as handle:
                    found = pq.read_schema(handle) == schema
            if not found:
                self._put(path, self._serialize(schema.empty_table()))
        return path

    def duckdb_access(self) -> storage.DuckDBAccess:
        """DuckDB's path prefix for the warehouse root, and the extensions and secret it needs."""
        return storage.duckdb_access(self.filesystem, self.root, self.location, self.env)

    def view_sql(self, schemas: Mapping[str, pa.Schema], timeline: Mapping[str, str | None],
                 video_id: str | None = None) -> list[str]:
        """CREATE VIEW statements for every known table (empty, typed views for unwritten ones).

        ``timeline`` maps analyzer tables to a SQL label expression (or None) for the ``timeline``
        view, which stacks every labelled analyzer row as (video_id, start_s, end_s, analyzer,
        label): tables without an expression and rows whose label is NULL or blank are left out.
        Paths are local paths or the warehouse's URIs (``s3://``, ``gs://``). With ``video_id`` the
        views read that video's files only (what one video's report needs, whatever the number of
        videos in the warehouse).
        """
        access = self.duckdb_access()
        statements = []
        for name, schema in schemas.items():
            if video_id is not None:
                with self._io("list"):
                    found = bool(self._files(self.partition_dir(name, video_id)))
                pattern = f"{access.prefix}/{name}/video_id={validate_key(video_id)}/*.parquet"
            else:
                found = self.has_rows(name)
                pattern = f"{access.prefix}/{name}/video_id=*/*.parquet"
            if not found:
                relative = self._empty_file(name, schema)[len(self.root):]
                pattern = access.prefix + relative
            statements.append(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM "
                f"read_parquet({storage.sql_literal(pattern)}, union_by_name = true, hive_partitioning = false)"
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

    def _prepare(self, con: Any, access: storage.DuckDBAccess) -> None:
        """Make ``con`` able to read the warehouse: httpfs and a temporary secret for s3:// and gs://
        (nothing is stored in a catalog file), DuckDB's fsspec support for fsspec-backed filesystems."""
        storage.load_extensions(con, access.extensions, self.display)
        for statement in access.secrets:
            con.execute(statement)
        if access.fsspec is not None:
            con.register_filesystem(access.fsspec)

    def _create_views(self, con: Any, statements: list[str]) -> None:
        """Run ``statements`` in one transaction: a catalog file then syncs its log once, not once per
        view (a refresh of the ~40 views wrote and synced DuckDB's WAL ~40 times)."""
        import duckdb

        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            con.execute("COMMIT")
        except BaseException as exc:
            with suppress(duckdb.Error):  # none is open when COMMIT itself failed
                con.execute("ROLLBACK")
            if isinstance(exc, duckdb.IOException) and not self.is_local:
                raise storage.StorageError(
                    f"DuckDB cannot read the warehouse at {self.display} ({storage.first_line(exc)}); check the "
                    "URI, the network and DuckDB's credentials (README: Warehouse on shared storage)"
                ) from exc
            raise

    @contextmanager
    def _catalog_lock(self) -> Iterator[None]:
        self.catalog_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.catalog_path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def refresh_catalog(self, schemas: Mapping[str, pa.Schema], timeline: Mapping[str, str | None]) -> bool:
        """Recreate the views in the DuckDB catalog file (one writer at a time, with retries); returns
        whether it did. Skipped when the file holds these very views already: the statements' hash and
        the file's modification time after the last refresh are kept beside it (``catalog.views``), so
        a catalog that anything else wrote to since is refreshed. The views read their tables' files by
        pattern, so a new video needs no refresh; a table's first rows or a new version do."""
        import duckdb

        statements = self.view_sql(schemas, timeline)
        digest = hashlib.sha256("\n".join(statements).encode()).hexdigest()
        stamp = self.catalog_path.with_suffix(".views")
        access = self.duckdb_access()
        with self._catalog_lock():
            current = self._catalog_stamp(digest)
            if current and stamp.is_file() and stamp.read_text() == current:
                return False
            for attempt in range(10):
                try:
                    con = duckdb.connect(str(self.catalog_path))
                    break
                except duckdb.IOException:
                    if attempt == 9:
                        raise
                    time.sleep(0.5)  # another process (a SQL client) holds the file
            try:
                self._prepare(con, access)
                self._create_views(con, statements)
            finally:
                con.close()
            write_text_atomic(stamp, self._catalog_stamp(digest))
        return True

    def _catalog_stamp(self, digest: str) -> str:
        """``digest`` with the catalog file's modification time (empty when there is no file)."""
        try:
            return f"{digest} {self.catalog_path.stat().st_mtime_ns}"
        except FileNotFoundError:
            return ""

    def connect(self, schemas: Mapping[str, pa.Schema], timeline: Mapping[str, str | None],
                video_id: str | None = None):
        """An in-memory DuckDB connection with the same views (never blocks on the catalog); with
        ``video_id``, over that video's rows only (see :meth:`view_sql`)."""
        import duckdb

        statements = self.view_sql(schemas, timeline, video_id)
        con = duckdb.connect()
        try:
            self._prepare(con, self.duckdb_access())
            self._create_views(con, statements)
        except BaseException:
            con.close()
            raise
        return con
