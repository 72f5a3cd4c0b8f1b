"""Dead runs and pool slots: find runs whose process is gone, fail them and free their slots.

A run executed in a process that was killed (``kill -9``, a closed terminal) stays STARTED in the
Dagster instance and keeps its pool slots, so the next run on a limit-1 pool waits forever. Runs
record their process in engine events ("... (pid: N)") and, when started by ``tiktok-assets``, in
the tags below; a run none of whose processes is alive (a PID started after the run counts as
gone: it was reused) is marked failed and its slots are freed. Runs that already ended but still
hold slots are freed too. The instance is local (SQLite under the data root), so PIDs are local; on
a shared instance (Postgres: the Celery deployment, several machines) only runs tagged with this
machine's host are judged (Dagster's run monitoring watches the others).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

PID_TAG = "tiktok_assets/pid"
HOST_TAG = "tiktok_assets/host"
_PID_IN_MESSAGE = re.compile(r"\(pid: (\d+)\)")


def run_tags() -> dict[str, str]:
    """Tags that let a later process check whether this one is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _boot_time() -> float | None:
    try:
        text = Path("/proc/stat").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None


def process_started_at(pid: int) -> float | None:
    """Start time (epoch seconds) of process ``pid``, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        stat = ""
    boot = _boot_time()
    fields = stat.rsplit(")", 1)[-1].split()
    if boot is None or len(fields) < 20:  # no /proc details: fall back to "a process exists"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0.0
    if fields[0] == "Z":  # a zombie has finished
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, not_started_after: float | None = None) -> bool:
    """True if ``pid`` runs and (when given) started no later than ``not_started_after`` (+2 s)."""
    started = process_started_at(pid)
    if started is None:
        return False
    return not_started_after is None or started <= not_started_after + 2.0


def run_pids(instance, run) -> set[int]:
    """Process IDs a run recorded (its tag and its engine events)."""
    from dagster import DagsterEventType

    pids = set()
    if run.tags.get(PID_TAG, "").isdigit():
        pids.add(int(run.tags[PID_TAG]))
    for record in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        match = _PID_IN_MESSAGE.search(record.message or "") or _PID_IN_MESSAGE.search(
            getattr(record.dagster_event, "message", None) or ""
        )
        if match:
            pids.add(int(match.group(1)))
    return pids


def _local_instance(instance) -> bool:
    """Whether the instance's runs are stored in SQLite (one machine)."""
    from dagster._core.storage.runs.sqlite import SqliteRunStorage

    return isinstance(instance.run_storage, SqliteRunStorage)


def run_is_dead(instance, run) -> bool | None:
    """True if no process of ``run`` is alive, False if one is, None if that cannot be told."""
    host = run.tags.get(HOST_TAG)
    if host and host != socket.gethostname():
        return None
    if not host and not _local_instance(instance):  # its processes may live on another machine
        return None
    pids = run_pids(instance, run)
    if not pids:
        return None
    record = instance.get_run_record_by_id(run.run_id)
    began = None
    if record is not None:
        began = record.start_time or record.create_timestamp.timestamp()
    return not any(process_alive(pid, began) for pid in pids)


def reap_dead_runs(instance, log: Callable[[str], None] = print) -> list[str]:
    """Fail in-progress runs whose processes are gone and free every slot of ended runs.

    Returns the IDs of the runs whose slots were freed; says what it did through ``log``.
    """
    from dagster import DagsterRunStatus, RunsFilter

    in_progress = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]
    storage = instance.event_log_storage
    holders = set(storage.get_concurrency_run_ids())
    runs = {r.run_id: r for r in instance.get_runs(RunsFilter(statuses=in_progress))}
    runs.update({r.run_id: r for r in instance.get_runs(RunsFilter(run_ids=list(holders)))} if holders else {})
    freed = []
    for run_id in sorted(set(runs) | holders):
        run = runs.get(run_id)
        if run is None or run.is_finished:
            if run_id in holders:
                storage.free_concurrency_slots_for_run(run_id)
                log(f"freed the pool slots of run {run_id[:8]}, which has already ended")
                freed.append(run_id)
            continue
        if run_is_dead(instance, run) is not True:
            continue
        pids = ", ".join(str(p) for p in sorted(run_pids(instance, run)))
        instance.report_run_failed(run, f"The process of this run (pid {pids}) is gone; marked failed.")
        storage.free_concurrency_slots_for_run(run_id)
        log(f"run {run_id[:8]} ({run.job_name}, process {pids}) is no longer running: marked it failed "
            "and freed its pool slots")
        freed.append(run_id)
    return freed


def pool_holders(instance, pools: Iterable[str]) -> dict[str, list[str]]:
    """For each full pool among ``pools``: who holds its slots (one readable line per holder)."""
    storage = instance.event_log_storage
    full: dict[str, list[str]] = {}
    for pool in pools:
        info = storage.get_concurrency_info(pool)
        if info.slot_count <= 0 or len(info.claimed_slots) < info.slot_count:
            continue
        lines = []
        for slot in info.claimed_slots:
            run = instance.get_run_by_id(slot.run_id)
            pids = ", ".join(str(p) for p in sorted(run_pids(instance, run))) if run else "?"
            status = run.status.value if run else "unknown"
            lines.append(f"run {slot.run_id[:8]} step {slot.step_key} ({status}, pid {pids})")
        full[pool] = lines
    return full


class RunWatcher:
    """While this process executes Dagster runs: say what they wait for, reap dead slot holders,
    and honour Ctrl-C / SIGTERM even while Dagster waits for a slot.

    Dagster defers these signals to checkpoints that its wait for a pool slot never reaches. The
    watcher learns of every signal through ``signal.set_wakeup_fd`` (whatever Python handler is
    installed); if the runs have not ended ``grace_s`` after one, it cancels this process's runs,
    frees their slots and exits with status 130. ``interrupted`` tells the caller afterwards.
    """

    def __init__(self, instance, pools: Iterable[str], log: Callable[[str], None] = print,
                 poll_s: float = 1.0, grace_s: float = 3.0, pools_every_s: float = 5.0):
        self.instance = instance
        self.pools = list(dict.fromkeys(pools))
        self.log = log
        self.poll_s = poll_s
        self.grace_s = grace_s
        # the pools are read at most this often (7 pools cost ~30 ms of queries per look; signals are
        # still seen every poll_s)
        self.pools_every_s = pools_every_s
        self._looked_at = -float("inf")
        self.interrupted = False
        self._interrupted_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="run-watcher", daemon=True)
        self._said: str | None = None
        self._pipe: tuple[int, int] | None = None
        self._old_wakeup_fd = -1

    def own_runs(self) -> list:
        from dagster import DagsterRunStatus, RunsFilter

        statuses = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]
        return [r for r in self.instance.get_runs(RunsFilter(statuses=statuses))
                if os.getpid() in run_pids(self.instance, r)]

    def _waiting_text(self, own: set[str]) -> str | None:
        storage = self.instance.event_log_storage
        waiting = []
        for pool in self.pools:
            info = storage.get_concurrency_info(pool)
            steps = [p.step_key for p in info.pending_steps if p.run_id in own and p.assigned_timestamp is None]
            if not steps:
                continue
            holders = pool_holders(self.instance, [pool]).get(pool) or ["(no holder recorded)"]
            waiting.append(f"{', '.join(steps)} wait(s) for pool {pool!r} "
                           f"(limit {info.slot_count}), held by {'; '.join(holders)}")
        return "; ".join(waiting) or None

    def _interrupted(self) -> None:
        for run in self.own_runs():
            self.instance.report_run_canceled(run, "Interrupted (Ctrl-C / SIGTERM) while waiting for a pool slot.")
            self.instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            self.log(f"interrupted: run {run.run_id[:8]} canceled and its pool slots freed")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)

    def _signals(self) -> None:
        """Wait up to ``poll_s`` for a signal; note SIGINT/SIGTERM."""
        if self._pipe is None:
            self._stop.wait(self.poll_s)
            return
        ready, _, _ = select.select([self._pipe[0]], [], [], self.poll_s)
        if ready:
            try:
                received = os.read(self._pipe[0], 512)
            except BlockingIOError:
                received = b""
            if any(n in (signal.SIGINT, signal.SIGTERM) for n in received):
                self.interrupted = True
                self._interrupted_at = self._interrupted_at or time.monotonic()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._signals()
            if self._stop.is_set():
                return
            try:
                if self._interrupted_at and time.monotonic() - self._interrupted_at >= self.grace_s:
                    self._interrupted()
                if time.monotonic() - self._looked_at < self.pools_every_s:
                    continue
                self._looked_at = time.monotonic()
                own = {r.run_id for r in self.own_runs()}
                text = self._waiting_text(own) if own else None
                if text:
                    reap_dead_runs(self.instance, self.log)
                    if text != self._said:
                        self.log(f"waiting ({datetime.now().strftime('%H:%M:%S')}): {text}")
                elif self._said:
                    self.log("got the pool slot, continuing")
                self._said = text
            except Exception as exc:  # noqa: BLE001 - a watcher problem must not break the run
                self.log(f"(run watcher: {exc})")

    def __enter__(self) -> RunWatcher:
        reap_dead_runs(self.instance, self.log)
        if threading.current_thread() is threading.main_thread():
            read_fd, write_fd = os.pipe()
            os.set_blocking(read_fd, False)
            os.set_blocking(write_fd, False)
            self._pipe = (read_fd, write_fd)
            self._old_wakeup_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._pipe is not None:  # wake the select at once (0 is no signal number)
            with contextlib.suppress(BlockingIOError):  # full of unread signals: it returns anyway
                os.write(self._pipe[1], b"\0")
        self._thread.join(timeout=5)
        if self._pipe is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None
