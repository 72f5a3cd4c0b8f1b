"""Pool slots that two runs cannot claim at once.

Dagster's SQL event log claims a pool slot in two statements: a ``SELECT … FOR UPDATE SKIP LOCKED``
picks a free slot, an ``UPDATE`` by its id writes the step into it. dagster-postgres runs them in
autocommit, so the row lock ends with the SELECT: two orchestrators that claim a pool's last free
slot at the same moment both read it free and both write their step into it, and a limit-1 GPU
group runs two steps at once. Seen with the Celery deployment: two runs sent their ``vision_analyzers`` step 17-23 ms apart, in 2 of 8 test runs.

:class:`AtomicSlotClaims` makes the ``UPDATE`` take the slot only while it is still free (the
condition is re-checked on the locked row), so the loser updates nothing and stays blocked; the
executor claims again at its next check, as it does for any busy pool.
"""

from __future__ import annotations

import sqlalchemy as db
from dagster._core.storage.event_log.schema import ConcurrencySlotsTable
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._utils.concurrency import ConcurrencySlotStatus


class AtomicSlotClaims:
    """Mixin for a ``SqlEventLogStorage``: a slot claim writes only into a slot that is still free."""

    def _claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str) -> ConcurrencySlotStatus:
        free = db.and_(
            ConcurrencySlotsTable.c.concurrency_key == concurrency_key,
            ConcurrencySlotsTable.c.step_key == None,  # noqa: E711 - SQL IS NULL
            ConcurrencySlotsTable.c.deleted == False,  # noqa: E712 - SQL comparison
        )
        with self.index_connection() as conn:  # type: ignore[attr-defined]
            row = conn.execute(
                db_select([ConcurrencySlotsTable.c.id]).select_from(ConcurrencySlotsTable).where(free)
                .with_for_update(skip_locked=True).limit(1)
            ).fetchone()
            if not row or not row[0]:
                return ConcurrencySlotStatus.BLOCKED
            taken = conn.execute(
                ConcurrencySlotsTable.update().values(run_id=run_id, step_key=step_key)
                .where(db.and_(ConcurrencySlotsTable.c.id == row[0], free))
            ).rowcount
        return ConcurrencySlotStatus.CLAIMED if taken else ConcurrencySlotStatus.BLOCKED

