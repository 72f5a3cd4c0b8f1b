"""The `dead_run_reaper` sensor: under `dagster dev` a run whose process is gone is failed and its
pool slot freed, without waiting for the next CLI call."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import dagster as dg

from tiktok_assets.definitions import defs
from tiktok_assets.run_guard import HOST_TAG, PID_TAG


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(done.stdout)


def test_sensor_fails_a_dead_run_and_frees_its_slot(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("tiktok_vision", 1)
        dead = instance.create_run_for_job(
            defs.resolve_job_def("analyze_video"), run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED,
            tags={PID_TAG: str(_dead_pid()), HOST_TAG: socket.gethostname()},
        )
        alive = instance.create_run_for_job(
            defs.resolve_job_def("analyze_video"), run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED, tags={PID_TAG: str(os.getpid()),
                                                      HOST_TAG: socket.gethostname()},
        )
        assert storage.claim_concurrency_slot("tiktok_vision", dead.run_id, "cut_analysis").is_claimed
        assert storage.get_concurrency_info("tiktok_vision").active_slot_count == 1

        sensor = defs.get_sensor_def("dead_run_reaper")
        result = sensor(dg.build_sensor_context(instance=instance))
        assert "freed the slots of 1 run" in result.skip_message
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED  # its process lives
        assert storage.get_concurrency_info("tiktok_vision").active_slot_count == 0
        again = sensor(dg.build_sensor_context(instance=instance))
        assert "no dead runs" in again.skip_message


def test_the_run_watcher_stops_at_once_not_at_its_next_poll(tmp_path):
    """The CLI waits for the watcher when its runs are done: leaving must wake the watcher's wait
    for signals instead of sitting out the poll (30 s here)."""
    import time

    from tiktok_assets.run_guard import RunWatcher

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        watcher = RunWatcher(instance, [], log=lambda m: None, poll_s=30.0)
        with watcher:
            time.sleep(0.2)  # the watcher is inside its wait
            began = time.monotonic()
        assert not watcher._thread.is_alive()
        assert time.monotonic() - began < 5.0
        assert not watcher.interrupted  # the wake-up byte is no signal
