"""The Dagster instance lives under the data root, whichever way Dagster is started.

``dagster.yaml`` (in the repo root, where plain ``dagster dev`` without ``DAGSTER_HOME`` reads it,
and copied to ``$TIKTOK_ASSETS_HOME/dagster`` by the CLI) names the classes below for storage,
artifacts and compute logs. Each resolves its folder from :func:`config.load_settings` when the
instance is built, so ``dagster dev`` from the repo root, the daemon, run workers and the CLI all
read and write ``$TIKTOK_ASSETS_HOME/dagster`` (default ``~/.local/share/tiktok-assets/dagster``).

With ``TIKTOK_ASSETS_POSTGRES_URL`` set (the Celery deployment, several machines), runs, event log
and schedules live in that Postgres database instead (``dagster-postgres``), for every process that
builds the instance from this ``dagster.yaml`` or from a reference to it (code location, daemon, run
worker, Celery workers, the CLI); artifacts and compute logs stay under the data root, which is then
shared storage.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)

from .atomic_files import write_text_atomic
from .config import PROJECT_DIR, Settings, load_settings
from .dagster_sqlite import EngineReusingEventLogStorage, EngineReusingRunStorage

INSTANCE_YAML = PROJECT_DIR / "dagster.yaml"


def _home() -> str:
    home = load_settings().dagster_home
    home.mkdir(parents=True, exist_ok=True)
    return str(home)


def sqlalchemy_url(url: str) -> str:
    """``postgresql://…`` with the installed driver named (SQLAlchemy 2.1 would pick psycopg 3 otherwise)."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg2://{rest}" if sep and scheme in ("postgresql", "postgres") else url


class DataRootStorage(DagsterSqliteStorage):
    """Runs, event log and schedules in SQLite under ``$TIKTOK_ASSETS_HOME/dagster``, or in the
    Postgres database of ``TIKTOK_ASSETS_POSTGRES_URL`` when it is set. The SQLite run and
    event-log storages keep one engine per database file (``dagster_sqlite.py``); the Postgres
    event log claims pool slots atomically (``slot_claims.py``)."""

    def __init__(self, base_dir: str, inst_data=None) -> None:
        # DagsterSqliteStorage.__init__ with the engine-reusing run and event-log storages
        self.base_dir = base_dir
        self._run_storage = EngineReusingRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = EngineReusingEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> DagsterStorage:  # noqa: ARG003
        url = load_settings().postgres_url
        if url:
            from .postgres_storage import PostgresStorage

            return PostgresStorage(sqlalchemy_url(url), inst_data=inst_data)
        return cls(_home(), inst_data=inst_data)


class DataRootArtifactStorage(LocalArtifactStorage):
    """Local artifacts under ``$TIKTOK_ASSETS_HOME/dagster``."""

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> DataRootArtifactStorage:  # noqa: ARG003
        return cls(_home(), inst_data=inst_data)


class DataRootComputeLogs(LocalComputeLogManager):
    """Step stdout/stderr under ``$TIKTOK_ASSETS_HOME/dagster/storage``."""

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> DataRootComputeLogs:  # noqa: ARG003
        return cls(os.path.join(_home(), "storage"), inst_data=inst_data)


def write_instance_yaml(settings: Settings) -> None:
    """Copy the repo's ``dagster.yaml`` to the data root's Dagster home (atomically, if changed)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = INSTANCE_YAML.read_text()
    if not config.is_file() or config.read_text() != template:
        write_text_atomic(config, template)


def data_root_instance(settings: Settings, create: bool = True) -> dg.DagsterInstance | None:
    """The instance under the data root (None when ``create`` is False and it does not exist yet;
    with Postgres it always exists)."""
    if not create and not settings.postgres_url and not (settings.dagster_home / "history").is_dir():
        return None
    write_instance_yaml(settings)
    return dg.DagsterInstance.from_config(str(settings.dagster_home))


def deployment_instance(settings: Settings) -> dg.DagsterInstance | None:
    """The instance this deployment's processes use: ``$DAGSTER_HOME``'s when it names another
    folder than the data root's (e.g. Dagster's Helm chart, created if new), else the data root's
    (None when it is SQLite and does not exist yet: nothing has run here)."""
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if home and os.path.realpath(home) != os.path.realpath(settings.dagster_home):
        return dg.DagsterInstance.get()
    return data_root_instance(settings, create=bool(home))
