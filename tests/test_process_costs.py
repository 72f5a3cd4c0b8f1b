"""What a process pays besides the analysis: imports, the garbage collector, Dagster's schema
checks, the DuckDB catalog. Each test checks the mechanism that cuts a cost, on the real code path."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tiktok_assets import catalog


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (clean ``sys.modules`` and collector); its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_deferred_import_loads_the_module_only_when_it_is_used():
    out = _python("""
        import sys
        from tiktok_assets.deferred_import import deferred
        with deferred("matplotlib.pyplot"):
            import matplotlib.pyplot as plt
        print("after block", "matplotlib" in sys.modules, "matplotlib.pyplot" in sys.modules)
        figure = plt.figure  # first use: the real module is imported now
        print("after use", type(sys.modules["matplotlib.pyplot"]).__name__, callable(figure))
        import matplotlib.pyplot as again
        print("same", again is sys.modules["matplotlib.pyplot"], again.figure is figure)
    """).split("\n")
    assert out[0] == "after block False False"
    assert out[1] == "after use module True"
    assert out[2] == "same True True"


def test_mediapipe_loads_without_matplotlib():
    """The people passes' models load without importing Matplotlib (MediaPipe's drawing helpers)."""
    out = _python("""
        import sys
        from tiktok_assets.analyzers._people import MediaPipeModels
        models = MediaPipeModels()
        print(models.face_detection is not None, "matplotlib" in sys.modules)
    """)
    assert out.split()[-2:] == ["True", "False"]


def test_the_collector_is_paused_during_start_up_then_frozen_and_on():
    out = _python("""
        import gc
        from tiktok_assets import gc_policy
        gc_policy.paused_for_start_up()
        print(gc.isenabled(), gc.get_freeze_count())
        import dagster  # what start-up makes
        gc_policy.start_up_done()
        gc_policy.start_up_done()  # a second call changes nothing
        print(gc.isenabled(), gc.get_freeze_count() > 100_000)
    """).split("\n")
    assert out[0] == "False 0"
    assert out[1] == "True True"


def _freeze_count() -> int:
    import gc

    return gc.get_freeze_count()


def test_step_processes_fork_from_a_server_that_froze_its_preloaded_objects():
    from tiktok_assets.executors import multiprocess

    preload = multiprocess.preload_modules(True)
    assert preload[-1] == multiprocess.FREEZE
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["dagster", multiprocess.FREEZE])
    with context.Pool(1) as pool:
        assert pool.apply(_freeze_count) > 100_000


def test_dagster_migration_scripts_are_read_once_per_process(tmp_path):
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from dagster._core.storage.event_log.sqlite import sqlite_event_log
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.sql import get_alembic_config

    import tiktok_assets.dagster_sqlite as dagster_sqlite

    first = ScriptDirectory.from_config(get_alembic_config(sqlite_event_log.__file__))
    second = ScriptDirectory.from_config(get_alembic_config(sqlite_run_storage.__file__))
    assert first is second
    assert first.as_revision_number("head")  # the shared directory still answers
    (tmp_path / "versions").mkdir()
    other = Config()
    other.set_main_option("script_location", str(tmp_path))
    assert ScriptDirectory.from_config(other) is not ScriptDirectory.from_config(other)
    dagster_sqlite.share_dagster_alembic_scripts()  # idempotent: still one level of sharing
    assert ScriptDirectory.from_config.shares_dagster_scripts


def test_catalog_refreshes_in_a_block_become_one_at_its_end(settings, monkeypatch):
    calls = []
    real = catalog.Warehouse.refresh_catalog
    monkeypatch.setattr(catalog.Warehouse, "refresh_catalog",
                        lambda self, *a, **k: calls.append(self.catalog_path) or real(self, *a, **k))
    with catalog.refreshes_deferred():
        for _ in range(3):
            assert catalog.refresh_catalog(settings)
        with catalog.refreshes_deferred():  # nested: still one refresh, at the outer end
            catalog.refresh_catalog(settings)
        assert calls == []
    assert calls == [settings.catalog_path]
    assert settings.catalog_path.exists()
    catalog.refresh_catalog(settings)  # outside a block: at once
    assert len(calls) == 2


def test_catalog_refresh_happens_even_when_the_block_fails(settings, monkeypatch):
    calls = []
    monkeypatch.setattr(catalog.Warehouse, "refresh_catalog", lambda self, *a, **k: calls.append(1) or True)
    with pytest.raises(RuntimeError), catalog.refreshes_deferred():
        catalog.refresh_catalog(settings)
        raise RuntimeError("a run failed")
    assert calls == [1]


def test_threads_writing_the_same_warehouse_file_at_once_both_succeed(settings):
    """Two steps in threads of one process may create the same empty table file for their views."""
    from concurrent.futures import ThreadPoolExecutor

    store = catalog.warehouse(settings)
    schema = catalog.table_schemas()["face_emotion"]
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: store._put(f"{store.root}/_race/x.parquet",
                                                   store._serialize(schema.empty_table())), range(64)))
    assert len(paths) == 64
    assert [p.name for p in (Path(store.root) / "_race").iterdir()] == ["x.parquet"]  # no temporaries left


def test_vlm_weights_are_looked_up_in_a_hub_cache_only_where_it_holds_the_model(tmp_path, monkeypatch):
    from tiktok_assets.analyzers import _vlm
    from tiktok_assets.model_registry import ModelUnavailable, ResolvedModel

    assert not _vlm.maybe_cached("Qwen/Qwen2-VL-2B-Instruct", tmp_path)
    snapshots = tmp_path / "models--Qwen--Qwen2-VL-2B-Instruct" / "snapshots"
    snapshots.mkdir(parents=True)
    assert _vlm.maybe_cached("Qwen/Qwen2-VL-2B-Instruct", tmp_path)
    # an empty store and no hub: the error names the setting, whichever caches were looked at
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="TIKTOK_ASSETS_VLM_MODEL"):
        _vlm.weights_folder(ResolvedModel("qwen2-vl-2b", "Org/Absent-Model", "hub"), "main", tmp_path / "store")
