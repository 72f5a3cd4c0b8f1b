"""Per-video asset events for steps that handle many videos (partitions) at once.

A Dagster step that materializes a partition range turns each yielded output into one
materialization per partition of the range; it cannot say "these videos succeeded, that one
failed". The project's jobs therefore run with the run tag ``dagster/defer_asset_events`` (the
assets are managed by the step): Dagster then records neither planned events nor output
materializations, and :class:`PartitionEvents` records them per video instead:

* at step start, a planned event per selected asset and video (so a video that does not get its
  materialization shows as failed once the run has failed, as Dagster does for a failed step),
* per video that succeeded, an ``AssetMaterialization`` with the provenance tags Dagster writes
  itself (code version, the input data versions and event pointers of that video's upstream
  partitions, the logical data version), so staleness keeps working per video,
* per video, the coverage check's evaluation, pointing at that video's materialization,
* at the end, one (event-less) output per selected asset, so that the downstream steps run for
  the videos that succeeded, and per selected check (its results are the per-video evaluations),
  then a failure naming the failed videos.

Runs without the tag (e.g. the UI's ad-hoc "Materialize" of a few assets) fall back to Dagster's
own per-step semantics: an asset whose videos all succeeded is materialized for all of them with
per-video metadata; one with a failed video is not materialized in that run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_TAG,
    DEFAULT_DATA_VERSION,
    NULL_EVENT_POINTER,
    DataVersion,
    compute_logical_data_version,
    extract_data_version_from_entry,
    get_input_data_version_tag,
    get_input_event_pointer_tag,
)
from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent
from dagster._core.storage.dagster_run import assets_are_externally_managed
from dagster._core.storage.tags import BACKFILL_ID_TAG, EXTERNALLY_MANAGED_ASSETS_TAG

# Every job of the project carries this run tag (see module docstring).
PER_VIDEO_EVENTS_TAGS = {EXTERNALLY_MANAGED_ASSETS_TAG: "true"}
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"


def run_partition_keys(
    instance: dg.DagsterInstance, run: dg.DagsterRun, partitions_name: str, order: list[str] | None = None,
) -> list[str]:
    """The videos a run covers: its partition, or every partition of its range (in added order;
    ``order``: the partition list, when the caller has it already)."""
    if run.tags.get(PARTITION_TAG):
        return [run.tags[PARTITION_TAG]]
    start, end = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if not (start and end):
        return []
    keys = order if order is not None else list(instance.get_dynamic_partitions(partitions_name))
    if start not in keys or end not in keys:
        return []
    a, b = keys.index(start), keys.index(end)
    return keys[a:b + 1]


class PartitionEvents:
    """Asset events of one multi-video step (see the module docstring)."""

    def __init__(
        self, context: dg.AssetExecutionContext, keys: Iterable[dg.AssetKey], code_versions: Mapping[dg.AssetKey, str]
    ):
        self.context = context
        self.keys = list(keys)
        self.code_versions = dict(code_versions)
        self.videos = list(context.partition_keys)
        self.deferred = assets_are_externally_managed(context.run)
        self.instance = context.instance
        self.run_id = context.run_id
        self._materialized: set[tuple[dg.AssetKey, str]] = set()
        self._metadata: dict[tuple[dg.AssetKey, str], dict[str, Any]] = {}
        self._checks: list[tuple[dg.AssetKey, str, str, bool, dict[str, Any]]] = []
        # newest materialization records of other steps' assets: they do not change while this step
        # runs, and several analyzers of a step share an upstream (read once, not once per analyzer)
        self._latest: dict[tuple[dg.AssetKey, str], Any] = {}
        self._prefetched: set[str] = set()
        self._output: set[dg.AssetKey] = set()  # outputs yielded before the step's end (:meth:`done`)

    def plan(self) -> None:
        """Record that this step intends to materialize each selected asset for each video."""
        if not self.deferred:
            return  # Dagster planned the run's assets itself
        step_key = self.context.get_step_execution_context().step.key
        for key in self.keys:
            for video in self.videos:
                event = DagsterEvent.build_asset_materialization_planned_event(
                    self.context.job_def.name, step_key, AssetMaterializationPlannedData(key, partition=video)
                )
                self.instance.report_dagster_event(event, run_id=self.run_id)

    def materialized_in_run(self, key: dg.AssetKey, video: str) -> bool:
        """Whether ``key`` got its materialization of ``video`` in this run (any step)."""
        if (key, video) in self._materialized:
            return True
        record = self._latest_materialization(key, video)
        return record is not None and record.run_id == self.run_id

    def _latest_materialization(self, key: dg.AssetKey, video: str) -> Any:
        """The newest materialization record of ``key`` for ``video`` (None without one); kept for
        other steps' assets. It is also the record of the input data version that Dagster's own
        provenance reads (``get_latest_data_version_record`` of a materialized asset)."""
        if key not in self.keys:
            self._prefetch_upstreams(video)
        if (key, video) in self._latest:
            return self._latest[(key, video)]
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[video]), limit=1
        ).records
        record = records[0] if records else None
        if key not in self.keys:
            self._latest[(key, video)] = record
        return record

    def _prefetch_upstreams(self, video: str) -> None:
        """Read the newest materialization of every upstream of this step's assets (of any video)
        at once, the first time ``video`` needs one: those that are of ``video`` go to the cache.
        In a run of one video that is all of them (one query instead of one per upstream); in a
        range, the others are read one by one as before."""
        if video in self._prefetched:
            return
        self._prefetched.add(video)
        layer = self.context.job_def.asset_layer
        upstream = {parent for key in self.keys for parent in layer.get(key).parent_keys} - set(self.keys)
        if not upstream:
            return
        for record in self.instance.get_asset_records(sorted(upstream)):
            key, newest = record.asset_entry.asset_key, record.asset_entry.last_materialization_record
            if key in upstream and newest is not None and newest.partition_key == video:
                self._latest.setdefault((key, video), newest)

    def _provenance_tags(self, key: dg.AssetKey, video: str) -> dict[str, str]:
        """The tags Dagster writes on a materialization of one partition: code version, per input
        its data version and event pointer (that video's partition), and the logical data version."""
        code_version = self.code_versions[key]
        node = self.context.job_def.asset_layer.get(key)
        tags: dict[str, str] = {CODE_VERSION_TAG: code_version}
        versions: dict[dg.AssetKey, DataVersion] = {}
        for dep in sorted(node.parent_keys):
            record = self._latest_materialization(dep, video)
            version = extract_data_version_from_entry(record.event_log_entry) if record else None
            versions[dep] = version or DEFAULT_DATA_VERSION
            tags[get_input_data_version_tag(dep)] = versions[dep].value
            tags[get_input_event_pointer_tag(dep)] = str(record.storage_id) if record else NULL_EVENT_POINTER
        tags[DATA_VERSION_TAG] = compute_logical_data_version(code_version, versions).value
        backfill = self.context.run.tags.get(BACKFILL_ID_TAG)
        if backfill:
            tags[BACKFILL_ID_TAG] = backfill
        return tags

    def success(self, key: dg.AssetKey, video: str, metadata: dict[str, Any]) -> Iterator[Any]:
        """Events for one video of one asset that succeeded."""
        self._metadata[(key, video)] = metadata
        if self.deferred:
            self._materialized.add((key, video))
            yield dg.AssetMaterialization(
                asset_key=key, partition=video, metadata=metadata, tags=self._provenance_tags(key, video)
            )
        else:
            self.context.add_asset_metadata(metadata, asset_key=key, partition_key=video)

    def check(self, key: dg.AssetKey, video: str, name: str, passed: bool, metadata: dict[str, Any]) -> Iterator[Any]:
        """The check's evaluation for one video (WARN severity), aimed at that video's materialization."""
        metadata = {"video_id": video, **metadata}
        if self.deferred:
            yield self._evaluation(key, video, name, passed, metadata)
        else:
            self._checks.append((key, video, name, passed, metadata))

    def _check_outputs(self) -> Iterator[dg.Output]:
        """The step's outputs of its selected checks (no value and no asset event: the per-video
        evaluations are the checks' results), so that Dagster does not log at the step's end that
        the step "did not yield or return expected outputs"."""
        assets_def = self.context.assets_def
        for check_key in sorted(self.context.selected_asset_check_keys, key=str):
            yield dg.Output(None, output_name=assets_def.get_output_name_for_asset_check_key(check_key))

    def _evaluation(self, key: dg.AssetKey, video: str, name: str, passed: bool, metadata: dict) -> Any:
        record = self._latest_materialization(key, video)
        target = (
            AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            )
            if record else None
        )
        return dg.AssetCheckEvaluation(
            asset_key=key, check_name=name, passed=passed, metadata=metadata,
            target_materialization_data=target, severity=dg.AssetCheckSeverity.WARN,
        )

    def done(self, key: dg.AssetKey) -> Iterator[Any]:
        """Call once ``key`` has been through every video of the step (whatever the outcome): in the
        project's runs its step output now, not at the step's end, so that steps that need only this
        output start while this step runs on (the cpu step needs the vision step's object tracks,
        not its content-safety pass that follows). Per-video events tell which videos succeeded."""
        if self.deferred and key not in self._output:
            self._output.add(key)
            yield dg.MaterializeResult(asset_key=key)

    def finish(self, failed: Mapping[str, list[str]], skipped: Mapping[str, list[str]] | None = None) -> Iterator[Any]:
        """Outputs for the selected assets (those not yielded by :meth:`done`), then a failure naming
        the failed videos (if any).

        ``failed``: video -> what failed there; ``skipped``: video -> why it was not analyzed (an
        upstream failed in this run; not this step's failure)."""
        for key in self.keys:
            if key in self._output:
                continue
            complete = all((key, v) in self._metadata for v in self.videos)
            if self.deferred or complete:
                yield dg.MaterializeResult(asset_key=key)
            else:
                self.context.log.warning(
                    f"{key.to_user_string()}: not materialized in this run because some videos failed; runs "
                    "of the project's jobs record each video separately"
                )
        for key, video, name, passed, metadata in self._checks:
            if all((key, v) in self._metadata for v in self.videos):
                yield self._evaluation(key, video, name, passed, metadata)
        yield from self._check_outputs()
        for video, why in (skipped or {}).items():
            self.context.log.warning(f"video {video}: skipped ({'; '.join(why)})")
        if failed:
            if len(self.videos) == 1:
                description = "; ".join(next(iter(failed.values())))
            else:
                listed = "; ".join(f"{video}: {', '.join(what)}" for video, what in failed.items())
                description = f"{len(failed)} of {len(self.videos)} videos failed ({listed})"
            raise dg.Failure(
                description=description,
                metadata={"failed_videos": ", ".join(failed)},
                allow_retries=False,
            )
