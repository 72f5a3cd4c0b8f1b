"""Celery workers per GPU group: the executor, the step tags that route each step to its group's queue,
and the workers' Celery app.

Each group of ``gpu_groups.yaml`` is a Celery queue named after the group (op tag
``dagster-celery/queue``). The run's orchestrator (the run worker, or ``execute_job``) sends every step
as a task to its queue and waits for it; a worker listening on that queue runs the step in a pool child
process (``dagster_celery.tasks``: ``execute_plan_iterator``), where models stay loaded from one task to
the next, so from one run to the next (``model_registry``: cached per process; a worker started without
``--max-tasks-per-child`` keeps its children). The pools ``tiktok_<group>`` bound a group's steps across
runs (claimed by the orchestrator before it sends a step); a worker's ``--concurrency`` is the group's
limit (``celery_services.py`` starts them).

Unlike ``dagster_celery``'s own executor, this one starts the run's steps with
``require_upstream_step_success: false``, as the multiprocess executor does: a step that failed for
some videos of a multi-video run still hands its outputs on, and the next steps analyze the videos that
succeeded (``execution.py``) instead of being skipped for all of them.
"""

from __future__ import annotations

import warnings
from typing import Any

import dagster as dg
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG

from ..config import Settings
from ..gpu_groups import GpuGroup, GpuGroups
from .multiprocess import STEP_DEPENDENCIES

QUEUE_TAG = DAGSTER_CELERY_QUEUE_TAG
# dagster_celery's worker CLI refuses more queues per worker (a Celery 4 limitation it keeps)
MAX_QUEUES_PER_WORKER = 4
# A message a worker has reserved but not started is handed to another worker after this long (redis
# broker); steps wait for their pool before they are sent, so this only matters for a worker that
# serves several groups with less concurrency than their limits.
VISIBILITY_TIMEOUT_S = 12 * 3600
ON_UPSTREAM_OUTPUTS = StepDependencyConfig(**STEP_DEPENDENCIES)
# dagster_celery registers its task again for every step it sends (same name, same code): Celery 5.7
# warns each time, to no purpose here
warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")


def queue_name(group: GpuGroup) -> str:
    """The Celery queue of a group's steps: the group's name."""
    return group.name


def step_tags(group: GpuGroup) -> dict[str, str]:
    """The op tags that send a step of ``group`` to its queue."""
    return {QUEUE_TAG: queue_name(group)}


def app_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings shared by the executor and the workers (they must agree)."""
    return {
        "broker": settings.celery_broker,
        "backend": settings.celery_backend,
        "config_source": {
            "broker_transport_options": {"max_retries": 3, "interval_start": 0, "interval_step": 0.2,
                                         "interval_max": 0.5, "visibility_timeout": VISIBILITY_TIMEOUT_S},
            "worker_prefetch_multiplier": 1,
            "broker_connection_retry_on_startup": True,
        },
    }


class _PlanOnUpstreamOutputs(ExecutionPlan):
    """An execution plan whose active execution starts steps once their upstream outputs exist."""

    def start(self, *args: Any, **kwargs: Any):
        kwargs["step_dependency_config"] = ON_UPSTREAM_OUTPUTS
        return super().start(*args, **kwargs)


class GroupQueuesExecutor(CeleryExecutor):
    """``dagster_celery``'s executor with ``require_upstream_step_success: false``."""

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return ON_UPSTREAM_OUTPUTS

    def execute(self, plan_context, execution_plan: ExecutionPlan):
        return super().execute(plan_context, _PlanOnUpstreamOutputs(*execution_plan))


@dg.executor(name="celery", config_schema=CELERY_CONFIG, requirements=dg.multiple_process_executor_requirements())
def group_queues_executor(init_context: dg.InitExecutorContext) -> GroupQueuesExecutor:
    """Steps as Celery tasks on their GPU group's queue (config as ``dagster_celery.celery_executor``)."""
    config = init_context.executor_config
    return GroupQueuesExecutor(
        broker=config.get("broker"), backend=config.get("backend"), config_source=config.get("config_source"),
        include=config.get("include"), retries=RetryMode.from_config(config["retries"]),
    )


def executor(groups: GpuGroups, settings: Settings) -> dg.ExecutorDefinition:  # noqa: ARG001
    """The Celery executor on the broker and backend of ``settings``."""
    return group_queues_executor.configured(app_config(settings))


def worker_app(settings: Settings):
    """The Celery app of the workers, with dagster_celery's ``execute_plan`` task registered."""
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    config = app_config(settings)
    app = make_app(CeleryExecutor.for_cli(**config).app_args())
    create_task(app)
    return app
