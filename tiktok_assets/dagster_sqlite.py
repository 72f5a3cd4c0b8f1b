"""Dagster's SQLite run and event-log storages, with one SQLAlchemy engine per database file.

Dagster's SQLite storages build a new SQLAlchemy engine for every query or event they write
(``create_engine`` with ``NullPool``, then ``dispose``), so each of the ~1,300 event-log accesses of
one video's analysis and scoring runs pays for a new engine and dialect set-up, and no compiled
statement is ever reused (SQLAlchemy caches them per engine). The subclasses below keep one engine
per database file (the index, each run's shard, the runs database) for the life of the storage.
Each engine's pool keeps one connection between accesses (more are opened while several threads
access the same file at once, and closed afterwards): opening a connection and setting it up took
~0.16 ms of the ~0.2 ms of a small access, and a video's runs make ~1,460 accesses (storage calls
0.48-0.57 -> 0.31-0.32 CPU-s per video). The event log's lock and first-access schema set-up are
Dagster's.

Each database file that was accessed also keeps one idle connection open (:meth:`EngineCache.hold`):
in WAL mode SQLite checkpoints the log into the database file, syncs it and deletes the log whenever
its *last* connection closes, which with a connection per access was after every access (a read
or an event written). With one connection idle the closes are plain closes and SQLite checkpoints when the log
reaches its usual 1,000 pages (and when the process ends). The idle connection holds no transaction
and no lock between statements, so other processes read and write as before and see every commit
(WAL's readers never wait). Measured on the 49 s clip's CLI run (4 alternating pairs): 0.96x the
wall time, 0.97x the CPU. A process forked from one that holds them (or pooled ones) leaves them
alone in the child, neither used nor closed (``os.register_at_fork``): SQLite connections must not
be used across a fork, and a child's close could checkpoint its parent's log.

Every connection runs with ``synchronous=NORMAL``, WAL mode's usual setting: a commit appends to the
log without syncing it, the log is synced when it is checkpointed into the database. The database
stays consistent whatever happens; a power cut or an OS crash (not a crashed process) may lose the
last commits. A video's CLI run made 1,606 fdatasync calls before (every event written), 746 after
(strace; with DuckDB's catalog refreshed in one transaction, ``warehouse.py``, 496).

Dagster checks each SQLite database's schema revision when a process first opens it (the runs and
schedules databases, the index, each run's shard) and stamps each new shard, and every check or
stamp built a new alembic ``ScriptDirectory`` that read Dagster's ~90 migration scripts again: seven
times in a CLI analysis of one video. :func:`share_dagster_alembic_scripts` makes the process read
them once (the scripts are part of the installed Dagster and do not change while it runs).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.script import ScriptDirectory
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.sql import ALEMBIC_SCRIPTS_LOCATION, create_engine
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

MAX_ENGINES = 64  # run shards a long-lived process (UI, daemon) keeps engines for; older ones are dropped


_CACHES: weakref.WeakSet[EngineCache] = weakref.WeakSet()
_INHERITED: list = []  # a forked child's copies of its parent's connections and engines, never used


def _sync_at_checkpoints(dbapi_connection, _record) -> None:
    """A new connection syncs the WAL at checkpoints, not at every commit (see the module's doc)."""
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class EngineCache:
    """One engine per connection string (a pool keeping one connection), the ``limit`` most recently
    used, each with the idle connection of :meth:`hold` once asked for (thread-safe)."""

    def __init__(self, limit: int = MAX_ENGINES, **connect_args) -> None:
        self.limit = limit
        self.connect_args = connect_args
        self.created = 0  # engines built, for tests and benchmarks
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._holders: dict[str, sqlite3.Connection] = {}
        self._lock = threading.Lock()
        _CACHES.add(self)

    def get(self, conn_string: str) -> Engine:
        with self._lock:
            engine = self._engines.get(conn_string)
            if engine is None:
                engine = create_engine(conn_string, poolclass=QueuePool, pool_size=1, max_overflow=-1,
                                       connect_args={**self.connect_args, "check_same_thread": False})
                event.listen(engine, "connect", _sync_at_checkpoints)
                self.created += 1
                self._engines[conn_string] = engine
                while len(self._engines) > self.limit:
                    old, dropped = self._engines.popitem(last=False)
                    self._release(old)
                    dropped.dispose()
            else:
                self._engines.move_to_end(conn_string)
            return engine

    def hold(self, conn_string: str) -> None:
        """Keep one idle connection to the database of ``conn_string`` (after an access to it made
        sure it exists), so that the accesses' closes are not its last (see the module's doc)."""
        with self._lock:
            engine = self._engines.get(conn_string)
            if engine is None or conn_string in self._holders or not engine.url.database:
                return
            try:
                # no waiting: a database that is busy right now (a migration) is held at a later access
                holder = sqlite3.connect(engine.url.database, timeout=0, check_same_thread=False)
                try:
                    holder.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opens the WAL index
                except sqlite3.Error:
                    holder.close()
                    raise
            except sqlite3.Error:
                return  # only saves time
            self._holders[conn_string] = holder

    @property
    def held(self) -> int:
        """Idle connections kept open, for tests."""
        return len(self._holders)

    def _release(self, conn_string: str) -> None:
        holder = self._holders.pop(conn_string, None)
        if holder is not None:
            holder.close()

    def clear(self) -> None:
        with self._lock:
            for conn_string in list(self._holders):
                self._release(conn_string)
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def _forget_after_fork(self) -> None:
        # in a forked child: the parent's connections are not this process's to use, nor to close
        # (SQLite's close could checkpoint the parent's log): kept unused until the child ends
        _INHERITED.extend(self._holders.values())
        _INHERITED.extend(self._engines.values())  # their pooled connections too
        self._lock = threading.Lock()
        self._holders = {}
        self._engines = OrderedDict()


def _after_fork_in_child() -> None:
    for cache in list(_CACHES):
        cache._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


_SCRIPTS: dict[tuple[str, ...], ScriptDirectory] = {}
_SCRIPTS_LOCK = threading.Lock()


def share_dagster_alembic_scripts() -> None:
    """Make ``ScriptDirectory.from_config`` return one directory per process for Dagster's own
    migration scripts (any other alembic configuration gets a new one, as before)."""
    if getattr(ScriptDirectory.from_config, "shares_dagster_scripts", False):
        return
    build = ScriptDirectory.from_config.__func__

    def from_config(cls, config):
        location = config.get_alembic_option("script_location")
        if cls is not ScriptDirectory or location != ALEMBIC_SCRIPTS_LOCATION:
            return build(cls, config)
        key = (location, *(config.get_version_locations_list() or ()))
        with _SCRIPTS_LOCK:
            if key not in _SCRIPTS:
                _SCRIPTS[key] = build(cls, config)
            return _SCRIPTS[key]

    from_config.shares_dagster_scripts = True
    ScriptDirectory.from_config = classmethod(from_config)


share_dagster_alembic_scripts()


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
        self.engines.hold(self.conn_string_for_shard(shard))

    def wipe(self) -> None:
        # Dagster deletes the run shards' files: no pooled or idle connection of this process may
        # go on writing to a deleted file
        self.engines.clear()
        super().wipe()

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
        self.engines.hold(self._conn_string)

    def dispose(self) -> None:
        super().dispose()
        self.engines.clear()
