"""The data root's Dagster storage keeps one SQLAlchemy engine per SQLite file (``dagster_sqlite.py``)
and still behaves like Dagster's: every write is visible to another instance on the same files."""

from __future__ import annotations

import os

import dagster as dg
import sqlalchemy
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from sqlalchemy.pool import QueuePool

from tiktok_assets.config import load_settings
from tiktok_assets.dagster_sqlite import EngineCache, EngineReusingEventLogStorage, EngineReusingRunStorage
from tiktok_assets.instance import data_root_instance

partitions = dg.StaticPartitionsDefinition(["a", "b", "c"])


@dg.asset(partitions_def=partitions)
def upstream() -> None:
    return None


@dg.asset(partitions_def=partitions, deps=[upstream])
def downstream(context) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"partition": context.partition_key})


def test_runs_reuse_one_engine_per_database_and_other_instances_see_every_write(module_home):
    instance = data_root_instance(load_settings())
    events, runs = instance.event_log_storage, instance.run_storage
    assert isinstance(events, EngineReusingEventLogStorage) and isinstance(runs, EngineReusingRunStorage)
    accesses = 0
    original = events._connect

    def counted(shard):
        nonlocal accesses
        accesses += 1
        return original(shard)

    events._connect = counted
    for key in partitions.get_partition_keys():
        result = dg.materialize([upstream, downstream], instance=instance, partition_key=key)
        assert result.success

    # three runs: their shards and the index, one engine each, however many accesses they made
    assert accesses > 50
    assert events.engines.created <= 4
    assert runs.engines.created == 1
    for engine in events.engines._engines.values():  # each keeps one connection, idle between accesses
        assert isinstance(engine.pool, QueuePool) and engine.pool.size() == 1
        assert engine.pool.checkedout() == 0
    index = events.engines.get(events.conn_string_for_shard(INDEX_SHARD_NAME))
    opened = []
    sqlalchemy.event.listen(index, "connect", lambda *_: opened.append(1))
    for _ in range(20):  # one access after another reuses the pooled connection
        with events.index_connection() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    assert len(opened) <= 1

    other = data_root_instance(load_settings())  # a second process would build its own like this
    records = other.fetch_materializations(dg.AssetKey("downstream"), limit=10).records
    assert sorted(r.partition_key for r in records) == ["a", "b", "c"]
    assert len(other.get_runs()) == 3
    instance.dispose()
    assert not events.engines._engines  # dispose drops the engines
    other.dispose()


def test_the_engine_cache_keeps_the_most_recently_used_up_to_its_limit(tmp_path):
    cache = EngineCache(limit=2)
    urls = [f"sqlite:///{tmp_path / name}.db" for name in "xyz"]
    first = cache.get(urls[0])
    cache.get(urls[1])
    assert cache.get(urls[0]) is first  # used again: kept, now the most recent
    cache.get(urls[2])  # over the limit: the least recently used (y) goes
    assert list(cache._engines) == [urls[0], urls[2]]
    assert cache.created == 3


def test_every_connection_syncs_the_wal_at_checkpoints_not_at_each_commit(module_home):
    """``synchronous=NORMAL`` in WAL mode: a commit writes the log without an fsync (a video's CLI run:
    1,606 fdatasync calls before, 746 after); the database stays consistent, a power cut may lose the
    last commits."""
    instance = data_root_instance(load_settings())
    result = dg.materialize([upstream], instance=instance, partition_key="c")
    assert result.success
    storages = [(instance.event_log_storage, result.run_id), (instance.event_log_storage, "index"),
                (instance.run_storage, None)]
    for storage, shard in storages:
        if shard is None:
            engine = storage.engines.get(storage._conn_string)
        else:
            engine = storage.engines.get(storage.conn_string_for_shard(shard))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL (FULL is 2)
    instance.dispose()


def test_each_database_keeps_one_idle_connection_that_blocks_nobody(module_home, tmp_path):
    """After an access each database has one idle connection open (so the accesses' closes do not
    checkpoint the WAL each time); it holds no lock: another process writes and reads meanwhile."""
    import subprocess
    import sys

    instance = data_root_instance(load_settings())
    events, runs = instance.event_log_storage, instance.run_storage
    result = dg.materialize([upstream], instance=instance, partition_key="a")
    assert result.success
    assert runs.engines.held == 1 and events.engines.held >= 2  # runs.db; the run's shard and the index
    shard = events.path_for_shard(result.run_id)
    assert os.path.exists(shard + "-wal")  # the log stays between accesses instead of being checkpointed away
    writer = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=1); "
        "c.execute('CREATE TABLE probe (x)'); c.execute('INSERT INTO probe VALUES (1)'); c.commit(); "
        "print(c.execute('SELECT count(*) FROM event_logs').fetchone()[0])"
    )
    done = subprocess.run([sys.executable, "-c", writer, shard], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and int(done.stdout) > 5, done.stderr  # no lock held against the writer
    again = dg.materialize([upstream], instance=instance, partition_key="b")  # and we go on writing
    assert again.success
    instance.dispose()
    assert events.engines.held == 0 and runs.engines.held == 0


def test_a_forked_child_does_not_use_its_parents_idle_connections(tmp_path):
    cache = EngineCache()
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with cache.get(url).connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
        conn.commit()
    cache.hold(url)
    assert cache.held == 1
    pid = os.fork()
    if pid == 0:  # the child: nothing inherited is in use; it builds its own when it needs one
        os._exit(0 if cache.held == 0 and not cache._engines else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.held == 1
    cache.clear()
    assert cache.held == 0


def test_after_a_wipe_new_runs_write_to_new_files(tmp_path, monkeypatch):
    """Wiping the event log deletes the run shards; the pooled connections go with them, so this
    process reads no deleted events and the next run's land in files another instance reads."""
    monkeypatch.setenv("TIKTOK_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    instance = data_root_instance(load_settings())
    first = dg.materialize([upstream], instance=instance, partition_key="a")
    assert first.success and instance.all_logs(first.run_id)
    instance.event_log_storage.wipe()
    assert instance.all_logs(first.run_id) == []
    result = dg.materialize([upstream], instance=instance, partition_key="b")
    assert result.success
    other = data_root_instance(load_settings())
    assert len(other.all_logs(result.run_id)) > 5
    records = other.fetch_materializations(dg.AssetKey("upstream"), limit=10).records
    assert [r.partition_key for r in records] == ["b"]
    instance.dispose()
    other.dispose()
