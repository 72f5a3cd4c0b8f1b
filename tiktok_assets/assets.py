"""Dagster assets: ingest + decode in one step, one step per GPU group that yields one asset per
analyzer (from one factory), reconstruction. Every step handles a range of videos (partitions),
video by video, and records each video's outcome on its own (``execution.PartitionEvents``).

Assets pass nothing through Dagster's IO managers: each step reads and writes the data root
(source registry, media cache, Parquet warehouse), so the UI, the CLI and SQL see the same files.
"""

import time
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from . import catalog, steps
from .analyzers import AnalyzerSpec, all_specs
from .config import Settings, load_settings
from .execution import PartitionEvents
from .executors import step_tags
from .gpu_groups import GpuGroup, GpuGroups
from .ids import InvalidVideoKey, validate_key
from .ingest import IngestError
from .media import MediaError
from .model_loads import model_loads
from .model_registry.resource import ModelsResource
from .terminal import user_message
from .versions import code_versions

videos_partitions = dg.DynamicPartitionsDefinition(name="videos")

COVERAGE_CHECK = "examined_whole_video"
SOURCE_KEY = dg.AssetKey("source_video")
MEDIA_KEY = dg.AssetKey("media")
SCORES_KEY = dg.AssetKey("reconstruction_scores")
SEARCH_KEY = dg.AssetKey("search_index")
SEARCH_VERSION = "search1"  # with the analyzers' versions: a changed analyzer re-indexes


def backfill_policy(settings: Settings | None = None) -> dg.BackfillPolicy:
    """The same policy on every partitioned asset (a run uses the smallest among its assets):
    ``TIKTOK_ASSETS_PARTITIONS_PER_RUN`` videos per run."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=(settings or load_settings()).partitions_per_run)


def _ingest_one(settings: Settings, video_id: str, log_fn, attempts: int = 3, delay_s: float = 5.0) -> dict:
    """Ingest one video; a download that failed is tried again (``attempts`` in all)."""
    validate_key(video_id)  # keys added to Dagster directly: refused
    for attempt in range(1, attempts + 1):
        try:
            return steps.ingest_video(settings, video_id, log_fn=log_fn, refresh=False)
        except IngestError as exc:
            if not str(exc).startswith("could not download") or attempt == attempts:
                raise
            log_fn(f"video {video_id}: {exc}; trying again in {delay_s:.0f}s ({attempt}/{attempts - 1})")
            time.sleep(delay_s)
    raise AssertionError("unreachable")


def pipeline_assets(groups: GpuGroups, versions: dict[str, str], policy: dg.BackfillPolicy) -> dg.AssetsDefinition:
    """One step for ingest and decoding: ``source_video`` then ``media``, video by video."""
    group = groups.groups[groups.pipeline_group]
    specs = [
        dg.AssetSpec(
            SOURCE_KEY, description="The video file (downloaded with yt-dlp or copied) and its `videos` row.",
            code_version=versions["source_video"], kinds={"python", "parquet"}, group_name="ingest",
            skippable=True,
        ),
        dg.AssetSpec(
            MEDIA_KEY, deps=[SOURCE_KEY],
            description="One decoding pass: sampled frames, a low-res full-rate stream, 16 kHz mono audio.",
            code_version=versions["media"], kinds={"python", "numpy"}, group_name="ingest", skippable=True,
        ),
    ]

    @dg.multi_asset(
        name="ingest", specs=specs, partitions_def=videos_partitions, can_subset=True, pool=group.pool,
        op_tags=step_tags(group, groups, load_settings()), backfill_policy=policy,
    )
    def ingest(context: dg.AssetExecutionContext):
        settings = load_settings()
        keys = [k for k in (SOURCE_KEY, MEDIA_KEY) if k in context.selected_asset_keys]
        events = PartitionEvents(context, keys, {SOURCE_KEY: versions["source_video"], MEDIA_KEY: versions["media"]})
        events.plan()
        failed: dict[str, list[str]] = {}
        skipped: dict[str, list[str]] = {}
        for video in events.videos:
            if SOURCE_KEY in keys:
                try:
                    row = _ingest_one(settings, video, context.log.info)
                except (InvalidVideoKey, IngestError, OSError) as exc:
                    failed[video] = [f"source_video: {user_message(exc)}"]
                    context.log.error(f"video {video}: source_video failed: {user_message(exc)}")
                    continue
                yield from events.success(SOURCE_KEY, video, {
                    "source": row["source"], "duration_s": row["duration_s"],
                    "size": f"{row['width']}x{row['height']} @ {row['fps']} fps",
                    "has_audio": row["has_audio"], "creator": row["creator"] or "",
                })
            if MEDIA_KEY not in keys:
                continue
            try:
                meta = steps.decode_media(settings, video, log_fn=context.log.info)
            except (MediaError, IngestError, OSError) as exc:
                failed[video] = [f"media: {user_message(exc)}"]
                context.log.error(f"video {video}: media failed: {user_message(exc)}")
                continue
            yield from events.success(MEDIA_KEY, video, {
                "duration_s": meta.duration_s, "sampled_frames": meta.frame_shape[0],
                "sample_fps": meta.sample_fps, "frame_size": f"{meta.frame_shape[2]}x{meta.frame_shape[1]}",
                "lowres_frames": meta.lowres_shape[0], "has_audio": meta.has_audio,
            })
        if SOURCE_KEY in keys:
            catalog.refresh_catalog(settings)  # once per step: the new `videos` rows
        yield from events.finish(failed, skipped)

    return ingest


def _preview(rows: list[dict], limit: int = 8) -> str:
    if not rows:
        return "(no rows)"
    columns = [c for c in rows[0] if c != "video_id"][:7]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:limit]:
        cells = [str(row[c])[:60].replace("|", "/").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _metadata(run, device: str) -> dict:
    metadata: dict = {
        "rows": run.table.num_rows,
        "seconds": round(run.seconds, 2),
        "device": device,
        "examined_s": round(sum(b - a for a, b in run.examined), 2),
        "preview": dg.MetadataValue.md(_preview(run.table.slice(0, 8).to_pylist())),
    }
    for key, value in run.metadata.items():
        if isinstance(value, (str, int, float, bool)) and key not in metadata:
            metadata[key] = value
    return metadata


def in_dependency_order(specs: list[AnalyzerSpec]) -> list[AnalyzerSpec]:
    """``specs`` with every analyzer after those of ``specs`` it reads (stable otherwise)."""
    names = {s.name for s in specs}
    done: list[AnalyzerSpec] = []
    todo = list(specs)
    while todo:
        ready = [s for s in todo if all(d not in names or d in {x.name for x in done} for d in s.depends_on)]
        if not ready:
            raise ValueError(f"analyzers {[s.name for s in todo]} depend on each other in a cycle")
        done.append(ready[0])
        todo.remove(ready[0])
    return done


def group_asset(
    group: GpuGroup, specs: list[AnalyzerSpec], groups: GpuGroups, versions: dict[str, str],
    policy: dg.BackfillPolicy,
) -> dg.AssetsDefinition | None:
    """The factory: one step per GPU group, yielding one asset per analyzer of the group (with its
    code version, deps and coverage check). The step runs the selected analyzers back to back in
    dependency order, video by video, in one process, so each model loads once per step. None for
    a group without analyzers."""
    if not specs:
        return None
    ordered = in_dependency_order(specs)
    device = group.resolved_device(groups.cuda)
    asset_specs = [
        dg.AssetSpec(
            spec.name,
            deps=[MEDIA_KEY, *[dg.AssetKey(d) for d in spec.depends_on]],
            description=spec.description,
            tags={"modality": spec.modality},
            group_name=f"{group.name}_analyzers",
            code_version=versions[spec.name],
            kinds={"python", "parquet"},
            metadata={"gpu_group": group.name, "device": device, "model": spec.model or "none"},
            skippable=True,
        )
        for spec in ordered
    ]
    check_specs = [
        dg.AssetCheckSpec(
            COVERAGE_CHECK, asset=spec.name,
            description="The analyzer examined at least 95% of the video (no silent caps).",
        )
        for spec in ordered
    ]
    own = {spec.name for spec in ordered}

    @dg.multi_asset(
        name=f"{group.name}_analyzers", specs=asset_specs, check_specs=check_specs, partitions_def=videos_partitions,
        can_subset=True, pool=group.pool, op_tags=step_tags(group, groups, load_settings()), backfill_policy=policy,
        description=f"GPU group `{group.name}` ({device}): {', '.join(own)}",
    )
    def _group(context: dg.AssetExecutionContext, models: ModelsResource):
        settings = load_settings()
        loader = models.loader()
        selected = [s for s in ordered if dg.AssetKey(s.name) in context.selected_asset_keys]
        keys = [dg.AssetKey(s.name) for s in selected]
        events = PartitionEvents(context, keys, {dg.AssetKey(s.name): versions[s.name] for s in selected})
        events.plan()
        in_run = set(context.run.asset_selection or context.job_def.asset_layer.executable_asset_keys)
        failed: dict[str, list[str]] = {}
        skipped: dict[str, list[str]] = {}

        def failed_upstream(spec: AnalyzerSpec, video: str, bad: set[str]) -> list[str]:
            """The inputs of ``spec`` that failed on ``video`` in this run (``bad``: in this step)."""
            upstream = [MEDIA_KEY, *[dg.AssetKey(d) for d in spec.depends_on]]
            return [
                k.to_user_string() for k in upstream
                if (k.to_user_string() in bad)
                or (k in in_run and k.to_user_string() not in own and not events.materialized_in_run(k, video))
            ]

        def analyze(spec: AnalyzerSpec, video: str, bad: set[str]) -> Iterator[Any]:
            """Run ``spec`` on ``video`` (not when an upstream failed); its events."""
            missing = failed_upstream(spec, video, bad)
            if missing:  # an upstream failed in this run: this analyzer is not run on the video
                bad.add(spec.name)
                skipped.setdefault(video, []).append(f"{spec.name}: upstream {', '.join(missing)} failed")
                return
            try:
                result = steps.run_analyzer_step(
                    settings, spec, video, device, group.batch_size, logger=context.log, refresh=False,
                    models=loader,
                )
            except Exception as exc:  # noqa: BLE001 - recorded in analyzer_runs, one sentence here
                bad.add(spec.name)
                failed.setdefault(video, []).append(f"{spec.name}: {user_message(exc)}")
                context.log.error(f"video {video}: {spec.name} failed: {user_message(exc)}")
                return
            run = result.run
            if result.model_unavailable:  # recorded, no rows, not covered; not a failure of the run
                context.log.warning(f"video {video}: {spec.name}: model unavailable: {result.model_unavailable}")
            else:
                context.log.info(
                    f"video {video}: {spec.name}: {run.table.num_rows} rows in {run.seconds:.1f}s on {device}"
                )
            key = dg.AssetKey(spec.name)
            yield from events.success(key, video, _metadata(run, device))
            no_input = spec.needs_audio and not result.has_audio
            share = result.examined_share
            yield from events.check(
                key, video, COVERAGE_CHECK, no_input or share >= 0.95,
                {"examined_share": round(share, 3), "no_audio_track": no_input},
            )

        last = events.videos[-1] if events.videos else None
        for video in events.videos:
            bad: set[str] = set()  # analyzers of this step that failed or were skipped on this video
            try:  # only saves time: an analyzer computes a pass that is not there itself
                steps.prepare_passes(settings, [s for s in selected if not failed_upstream(s, video, bad)], video,
                                     device, context.log, loader)
            except Exception as exc:  # noqa: BLE001 - each analyzer meets the error again and records it
                context.log.warning(f"video {video}: shared passes not prepared: {user_message(exc)}")
            for spec in selected:
                yield from analyze(spec, video, bad)
                if video == last:  # every video has been through it: the steps that need it may start
                    yield from events.done(dg.AssetKey(spec.name))
        loads = model_loads()
        if loads:
            context.log.info("model loads in this process: " + ", ".join(f"{k}={v}" for k, v in sorted(loads.items())))
        catalog.refresh_catalog(settings)  # once per step, for every video and analyzer it wrote
        yield from events.finish(failed, skipped)

    return _group


def _report_links(settings: Settings, video: str) -> dict[str, dg.MetadataValue]:
    """The HTML report as a file URL (opens in a browser from the UI) and a path, when written."""
    from .report_html import report_path

    path = report_path(settings, video)
    if not path.is_file():
        return {}
    return {"report": dg.MetadataValue.url(path.resolve().as_uri()), "report_file": dg.MetadataValue.path(str(path))}


def reconstruction_asset(
    groups: GpuGroups, analyzer_keys: Sequence[dg.AssetKey], code_version: str, policy: dg.BackfillPolicy
) -> dg.AssetsDefinition:
    """The score. Its deps on the analyzers are lineage (staleness propagates to it); it reads the
    warehouse, is not part of ``analyze_video`` and runs in its own ``score_video`` run after every
    run of videos ends, whatever its outcome (``score_after_success`` / ``score_after_failure`` in
    automation.py), so a failed analyzer lowers the score instead of blocking it."""
    group = groups.groups[groups.pipeline_group]
    spec = dg.AssetSpec(
        SCORES_KEY, deps=list(analyzer_keys),
        description="Per-second coverage by modality and an overall score, computed from the warehouse "
                    "after each analysis run (also after failed ones).",
        group_name="reconstruction", code_version=code_version, kinds={"python", "parquet"}, skippable=True,
    )

    @dg.multi_asset(
        name="reconstruction_scores", specs=[spec], partitions_def=videos_partitions, pool=group.pool,
        op_tags=step_tags(group, groups, load_settings()), backfill_policy=policy,
    )
    def reconstruction_scores(context: dg.AssetExecutionContext):
        settings = load_settings()
        events = PartitionEvents(context, [SCORES_KEY], {SCORES_KEY: code_version})
        events.plan()
        failed: dict[str, list[str]] = {}
        skipped: dict[str, list[str]] = {}
        store = catalog.warehouse(settings)
        for video in events.videos:
            if store.read("videos", video) is None:  # never ingested (e.g. its source failed): no score
                skipped[video] = ["not ingested"]
                continue
            try:
                scores, markdown, timeline = steps.score_reconstruction(settings, video, refresh=False)
            except Exception as exc:  # noqa: BLE001 - one sentence per video
                failed[video] = [f"reconstruction_scores: {user_message(exc)}"]
                continue
            yield from events.success(SCORES_KEY, video, {
                "score": dg.MetadataValue.float(scores["score"]),
                "analyzers_succeeded": scores["analyzers_succeeded"],
                "analyzers_expected": scores["analyzers_expected"],
                "coverage": dg.MetadataValue.md(markdown),
                "timeline": dg.MetadataValue.md(timeline),
                "timeline_file": dg.MetadataValue.path(str(settings.home / "reports" / video / "timeline.md")),
                **_report_links(settings, video),
            })
        catalog.refresh_catalog(settings)
        yield from events.finish(failed, skipped)

    return reconstruction_scores


def search_index_asset(
    groups: GpuGroups, analyzer_keys: Sequence[dg.AssetKey], code_version: str, policy: dg.BackfillPolicy
) -> dg.AssetsDefinition:
    """The full-text search index (``search.py``): re-indexes the videos of the run from the
    warehouse, in the ``score_video`` run beside the score (each video's documents replaced in one
    commit)."""
    from . import search

    group = groups.groups[groups.pipeline_group]
    spec = dg.AssetSpec(
        SEARCH_KEY, deps=list(analyzer_keys),
        description="Transcripts, on-screen text, descriptions and labels of each video in the tantivy index "
                    "that `tiktok-assets search` reads (German and English stemming).",
        group_name="reconstruction", code_version=code_version, kinds={"python"}, skippable=True,
    )

    @dg.multi_asset(
        name="search_index", specs=[spec], partitions_def=videos_partitions, pool=group.pool,
        op_tags=step_tags(group, groups, load_settings()), backfill_policy=policy,
    )
    def search_index(context: dg.AssetExecutionContext):
        settings = load_settings()
        events = PartitionEvents(context, [SEARCH_KEY], {SEARCH_KEY: code_version})
        events.plan()
        failed: dict[str, list[str]] = {}
        skipped: dict[str, list[str]] = {}
        store = catalog.warehouse(settings)
        for video in events.videos:
            if store.read("videos", video) is None:
                skipped[video] = ["not ingested"]
                continue
            try:
                counts = search.index_video(settings, video)
            except Exception as exc:  # noqa: BLE001 - one sentence per video
                failed[video] = [f"search_index: {user_message(exc)}"]
                continue
            yield from events.success(SEARCH_KEY, video, {
                "documents": counts["documents"],
                **{f"{source}_documents": counts[source] for source in search.SOURCES},
                "tables": ", ".join(counts["tables"]) or "none",
                "index": dg.MetadataValue.path(str(search.index_dir(settings))),
            })
        yield from events.finish(failed, skipped)

    return search_index


def build_assets(groups: GpuGroups, settings: Settings | None = None) -> list[dg.AssetsDefinition]:
    """Every asset: the ingest step, one step per GPU group with analyzers, the score, the search index."""
    settings = settings or load_settings()
    specs = all_specs()
    versions = code_versions(settings, specs)
    policy = backfill_policy(settings)
    steps_ = []
    for group in groups.groups.values():
        made = group_asset(group, [specs[n] for n in group.analyzers], groups, versions, policy)
        if made is not None:
            steps_.append(made)
    keys = [dg.AssetKey(name) for name in specs]
    return [
        pipeline_assets(groups, versions, policy), *steps_,
        reconstruction_asset(groups, keys, versions["reconstruction_scores"], policy),
        search_index_asset(groups, keys, f"{SEARCH_VERSION}-{versions['reconstruction_scores']}", policy),
    ]
