"""Dagster's SQLite run and event-log storages, with one SQLAlchemy engine per database file.

Dagster's SQLite storages build a new SQLAlchemy engine for every query or event they write
(``create_engine`` with ``NullPool``, then ``dispose``), so each of the ~1,300 event-log accesses of
one video's analysis and scoring runs pays for a new engine and dialect set-up, and no compiled
statement is ever reused (SQLAlchemy caches them per engine). The subclasses below keep one engine
per database file (the index, each run's shard, the runs database) for the life of the storage.
They change nothing else: the engines keep ``NullPool``, so every access still opens its own SQLite
connection and closes it afterwards (no connection is held between accesses, other processes see
every commit as before), and the event log's lock and first-access schema set-up are Dagster's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.sql import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

MAX_ENGINES = 64  # run shards a long-lived process (UI, daemon) keeps engines for; older ones are dropped


class EngineCache:
    """One ``NullPool`` engine per connection string, the ``limit`` most recently used (thread-safe)."""

    def __init__(self, limit: int = MAX_ENGINES, **connect_args) -> None:
        self.limit = limit
        self.connect_args = connect_args
        self.created = 0  # engines built, for tests and benchmarks
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conn_string: str) -> Engine:
        with self._lock:
            engine = self._engines.get(conn_string)
            if engine is None:
                engine = create_engine(conn_string, poolclass=NullPool, connect_args=self.connect_args)
                self.created += 1
                self._engines[conn_string] = engine
                while len(self._engines) > self.limit:
                    self._engines.popitem(last=False)[1].dispose()
            else:
                self._engines.move_to_end(conn_string)
            return engine

    def clear(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


class EngineReusingEventLogStorage(SqliteEventLogStorage):
    """Dagster's sharded SQLite event log (one database per run plus the index), one engine per shard."""

    def __init__(self, base_dir: str, inst_data=None) -> None:
        self.engines = EngineCache(timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
        super().__init__(base_dir, inst_data=inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's _connect with the engine taken from the cache instead of built and disposed
        with self._db_lock:
            engine = self.engines.get(self.conn_string_for_shard(shard))
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        engine = self.engines.get(self.conn_string_for_shard(INDEX_SHARD_NAME))
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    def dispose(self) -> None:
        super().dispose()
        self.engines.clear()


class EngineReusingRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage with one engine for its database."""

    def __init__(self, conn_string: str, inst_data=None) -> None:
        self.engines = EngineCache(limit=1)
        super().__init__(conn_string, inst_data=inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        # Dagster's connect with the engine taken from the cache instead of built for each access
        engine = self.engines.get(self._conn_string)
        with engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()
        self.engines.clear()
