"""One process, steps side by side in threads: the CLI's executor.

Dagster's in-process executor runs one step after another. The CLI wants the models to load once
per process (as in-process execution gives) and the machine's cores used while it waits: the audio
step (Whisper, YAMNet) and the picture steps (OCR, MediaPipe, NudeNet, frame statistics) need
nothing of each other, and most of their time is spent in native code that releases the GIL
(CTranslate2, ONNX Runtime, PyAV, NumPy). This executor starts every step whose inputs are ready in
its own thread, at most ``max_concurrent`` at once (default: the CPU count) and within the groups'
``tag_concurrency_limits`` and pools, and hands their events on from the calling thread.

What the steps share is safe across threads: run records, tables and the DuckDB catalog are written
under ``flock`` (a lock per open file, so two threads exclude each other as two processes do), the
model registry loads under a lock, each model is used by one group's step.

It follows Dagster's own in-process plan iteration (``dagster._core.execution.plan.execute_plan``,
Dagster 1.13, pinned in the lock): per step the same event sequence, completeness check, skip
events and hooks; only the step bodies overlap.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.compute_logs import create_compute_log_file_key
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import _trigger_hook, dagster_event_sequence_for_step
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.base import Executor

_DONE = object()  # a step thread's last message


class _Escaped:
    """An exception that escaped a step's event sequence, for the calling thread to raise."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ThreadedInProcessExecutor(Executor):
    """Every step in this process, up to ``max_concurrent`` of them at once in threads."""

    def __init__(
        self,
        retries: RetryMode,
        max_concurrent: int,
        tag_concurrency_limits: list[dict[str, Any]] | None = None,
        step_dependency_config: StepDependencyConfig | None = None,
    ) -> None:
        self._retries = retries
        self.max_concurrent = max(1, max_concurrent)
        self.tag_concurrency_limits = tag_concurrency_limits or []
        self._step_dependency_config = step_dependency_config or StepDependencyConfig.default()

    @property
    def retries(self) -> RetryMode:
        return self._retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._step_dependency_config

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        steps = execution_plan.step_keys_to_execute
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in process (pid: {os.getpid()}), up to {self.max_concurrent} at once in threads",
            event_specific_data=EngineEventData.in_process(os.getpid(), steps),
        )

        def iterate(job_context: PlanExecutionContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
            with InstanceConcurrencyContext(job_context.instance, job_context.dagster_run) as concurrency:
                yield from threaded_plan_iterator(
                    job_context, execution_plan, self.max_concurrent, self.tag_concurrency_limits, concurrency
                )

        yield from iter(
            ExecuteRunWithPlanIterable(
                execution_plan=plan_context.execution_plan,
                iterator=iterate,
                execution_context_manager=PlanExecutionContextManager(
                    job=plan_context.job,
                    retry_mode=plan_context.retry_mode,
                    execution_plan=plan_context.execution_plan,
                    run_config=plan_context.run_config,
                    dagster_run=plan_context.dagster_run,
                    instance=plan_context.instance,
                    raise_on_error=plan_context.raise_on_error,
                    output_capture=plan_context.output_capture,
                    step_dependency_config=self.step_dependency_config,
                ),
            )
        )
        yield DagsterEvent.engine_event(
            plan_context,
            f"Finished steps in process (pid: {os.getpid()})",
            event_specific_data=EngineEventData.in_process(os.getpid(), steps),
        )


def _run_step(step_context, out: queue.Queue) -> None:
    """A step's events, one by one, into ``out``; then ``_DONE`` (or the exception that escaped)."""
    try:
        for event in dagster_event_sequence_for_step(step_context):
            out.put((step_context.step.key, event))
    except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
        out.put((step_context.step.key, _Escaped(exc)))
        return
    out.put((step_context.step.key, _DONE))


def threaded_plan_iterator(
    job_context: PlanExecutionContext,
    execution_plan: ExecutionPlan,
    max_concurrent: int,
    tag_concurrency_limits: list[dict[str, Any]],
    concurrency: InstanceConcurrencyContext,
) -> Iterator[DagsterEvent]:
    """Dagster's in-process plan iteration with the step bodies in threads (see the module)."""
    compute_log_manager = job_context.instance.compute_log_manager
    step_keys = [step.key for step in execution_plan.get_steps_to_execute_in_topo_order()]
    events: queue.Queue = queue.Queue()
    running: dict[str, tuple[Any, list[DagsterEvent]]] = {}
    with execution_plan.start(
        retry_mode=job_context.retry_mode,
        max_concurrent=max_concurrent,
        tag_concurrency_limits=tag_concurrency_limits,
        instance_concurrency_context=concurrency,
        step_dependency_config=job_context.step_dependency_config,
    ) as active:
        log_key = compute_log_manager.build_log_key_for_run(job_context.run_id, create_compute_log_file_key())
        with compute_log_manager.capture_logs(log_key) as log_context:
            yield DagsterEvent.capture_logs(job_context, step_keys, log_key, log_context)
            while not active.is_complete:
                for step in active.get_steps_to_execute():
                    step_context = job_context.for_step(step, active.get_known_state())
                    running[step.key] = (step_context, [])
                    threading.Thread(target=_run_step, args=(step_context, events), daemon=True,
                                     name=f"step-{step.key}").start()
                yield from active.concurrency_event_iterator(job_context)
                if not running:
                    active.sleep_til_ready()
                    continue
                try:  # a bounded wait: pool claims are retried and Ctrl-C is seen meanwhile
                    key, message = events.get(timeout=min(1.0, max(0.05, active.sleep_interval())))
                except queue.Empty:
                    continue
                step_context, step_events = running[key]
                if isinstance(message, _Escaped):
                    raise message.error
                if message is not _DONE:
                    step_events.append(message)
                    yield message
                    active.handle_event(message)
                    continue
                del running[key]
                active.verify_complete(job_context, key)
                for event in active.plan_events_iterator(job_context):
                    step_events.append(event)
                    yield event
                yield from _trigger_hook(step_context, step_events)


@dg.executor(
    name="in_process_threads",
    config_schema={
        "retries": get_retries_config(),
        "max_concurrent": dg.Field(int, is_required=False, description="Steps at once (default: CPU count)."),
        "tag_concurrency_limits": dg.Field(list, is_required=False),
        "step_dependency_config": dg.Field(dict, is_required=False),
    },
)
def in_process_threads_executor(init_context: dg.InitExecutorContext) -> ThreadedInProcessExecutor:
    """Dagster executor definition of :class:`ThreadedInProcessExecutor`."""
    config = init_context.executor_config
    return ThreadedInProcessExecutor(
        retries=RetryMode.from_config(config["retries"]),
        max_concurrent=config.get("max_concurrent") or os.cpu_count() or 1,
        tag_concurrency_limits=config.get("tag_concurrency_limits"),
        step_dependency_config=StepDependencyConfig(**(config.get("step_dependency_config") or {})),
    )
