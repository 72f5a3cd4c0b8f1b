"""Runs, event log and schedules in Postgres (``TIKTOK_ASSETS_POSTGRES_URL``), with atomic pool-slot
claims (``slot_claims.py``)."""

from __future__ import annotations

from dagster._core.storage.base_storage import DagsterStorage
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage

from .slot_claims import AtomicSlotClaims


class AtomicClaimsPostgresEventLogStorage(AtomicSlotClaims, PostgresEventLogStorage):
    """dagster-postgres' event log; a pool slot is claimed only while it is still free."""


class PostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` with :class:`AtomicClaimsPostgresEventLogStorage` as its event log."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, inst_data=None) -> None:
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PostgresRunStorage(postgres_url, should_autocreate_tables)
        self._event_log_storage = AtomicClaimsPostgresEventLogStorage(postgres_url, should_autocreate_tables)
        self._schedule_storage = PostgresScheduleStorage(postgres_url, should_autocreate_tables)
        DagsterStorage.__init__(self)
