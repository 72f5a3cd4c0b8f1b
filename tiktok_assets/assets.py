"""Dagster assets: ingest, decode, one asset per analyzer (from one factory), reconstruction.

Assets pass nothing through Dagster's IO managers: each step reads and writes the data root
(source registry, media cache, Parquet warehouse), so the UI, the CLI and SQL see the same files.
"""

from collections.abc import Sequence

import dagster as dg

from . import steps
from .analyzers import AnalyzerSpec, all_specs
from .config import Settings, load_settings
from .gpu_groups import GROUP_TAG, GpuGroups
from .ids import InvalidVideoKey, validate_key
from .ingest import IngestError
from .media import MediaError
from .terminal import user_message
from .versions import code_versions

videos_partitions = dg.DynamicPartitionsDefinition(name="videos")

COVERAGE_CHECK = "examined_whole_video"
SOURCE_KEY = dg.AssetKey("source_video")
MEDIA_KEY = dg.AssetKey("media")
SCORES_KEY = dg.AssetKey("reconstruction_scores")


def _fail(exc: Exception) -> dg.Failure:
    """A step failure that shows one sentence (a full disk names the place) and is not retried."""
    return dg.Failure(description=user_message(exc), allow_retries=False)


def pipeline_assets(groups: GpuGroups, versions: dict[str, str]) -> list[dg.AssetsDefinition]:
    group = groups.groups[groups.pipeline_group]
    common = dict(
        partitions_def=videos_partitions,
        pool=group.pool,
        op_tags={GROUP_TAG: group.name},
        group_name="ingest",
    )

    @dg.asset(
        key=SOURCE_KEY,
        description="The video file (downloaded with yt-dlp or copied) and its `videos` row.",
        code_version=versions["source_video"],
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
        kinds={"python", "parquet"},
        **common,
    )
    def source_video(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        settings = load_settings()
        try:
            validate_key(context.partition_key)  # keys added to Dagster directly: refused, not retried
            row = steps.ingest_video(settings, context.partition_key, log_fn=context.log.info)
        except InvalidVideoKey as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        except IngestError as exc:
            local = not str(exc).startswith("could not download")
            raise dg.Failure(description=str(exc), allow_retries=not local) from exc
        except OSError as exc:  # e.g. a full disk: one sentence naming the place
            raise dg.Failure(description=user_message(exc), allow_retries=False) from exc
        return dg.MaterializeResult(
            metadata={
                "source": row["source"],
                "duration_s": row["duration_s"],
                "size": f"{row['width']}x{row['height']} @ {row['fps']} fps",
                "has_audio": row["has_audio"],
                "creator": row["creator"] or "",
            }
        )

    @dg.asset(
        key=MEDIA_KEY,
        deps=[SOURCE_KEY],
        description="One decoding pass: sampled frames, a low-res full-rate stream, 16 kHz mono audio.",
        code_version=versions["media"],
        kinds={"python", "numpy"},
        **common,
    )
    def media(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        settings = load_settings()
        try:
            meta = steps.decode_media(settings, context.partition_key, log_fn=context.log.info)
        except (MediaError, IngestError, OSError) as exc:
            raise _fail(exc) from exc
        return dg.MaterializeResult(
            metadata={
                "duration_s": meta.duration_s,
                "sampled_frames": meta.frame_shape[0],
                "sample_fps": meta.sample_fps,
                "frame_size": f"{meta.frame_shape[2]}x{meta.frame_shape[1]}",
                "lowres_frames": meta.lowres_shape[0],
                "has_audio": meta.has_audio,
            }
        )

    return [source_video, media]


def _preview(rows: list[dict], limit: int = 8) -> str:
    if not rows:
        return "(no rows)"
    columns = [c for c in rows[0] if c != "video_id"][:7]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:limit]:
        cells = [str(row[c])[:60].replace("|", "/").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def analyzer_asset(spec: AnalyzerSpec, groups: GpuGroups, code_version: str) -> dg.AssetsDefinition:
    """The factory: one partitioned asset per analyzer spec, placed in its GPU group."""
    group = groups.group_of(spec.name)
    device = group.resolved_device(groups.cuda)

    @dg.asset(
        name=spec.name,
        deps=[MEDIA_KEY, *[dg.AssetKey(d) for d in spec.depends_on]],
        description=spec.description,
        partitions_def=videos_partitions,
        pool=group.pool,
        op_tags={GROUP_TAG: group.name},
        tags={"modality": spec.modality},
        group_name=f"{group.name}_analyzers",
        code_version=code_version,
        kinds={"python", "parquet"},
        metadata={"gpu_group": group.name, "device": device, "model": spec.model or "none"},
        check_specs=[
            dg.AssetCheckSpec(
                COVERAGE_CHECK, asset=spec.name,
                description="The analyzer examined at least 95% of the video (no silent caps).",
            )
        ],
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        settings = load_settings()
        try:
            result = steps.run_analyzer_step(
                settings, spec, context.partition_key, device, group.batch_size, logger=context.log
            )
        except Exception as exc:  # noqa: BLE001 - recorded in analyzer_runs, shown as one sentence
            raise _fail(exc) from exc
        run = result.run
        context.log.info(f"{spec.name}: {run.table.num_rows} rows in {run.seconds:.1f}s on {device}")
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
        no_input = spec.needs_audio and not result.has_audio
        share = result.examined_share
        check = dg.AssetCheckResult(
            check_name=COVERAGE_CHECK,
            passed=no_input or share >= 0.95,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"examined_share": round(share, 3), "no_audio_track": no_input},
        )
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return _asset


def reconstruction_asset(
    groups: GpuGroups, analyzer_keys: Sequence[dg.AssetKey], code_version: str
) -> dg.AssetsDefinition:
    """The score. Its deps on the analyzers are lineage (staleness propagates to it); it reads the
    warehouse, is not part of ``analyze_video`` and runs in its own ``score_video`` run after every
    run of a video ends, whatever its outcome (``score_after_success`` / ``score_after_failure`` in
    automation.py), so a failed analyzer lowers the score instead of blocking it."""
    group = groups.groups[groups.pipeline_group]

    @dg.asset(
        key=SCORES_KEY,
        deps=list(analyzer_keys),
        description="Per-second coverage by modality and an overall score, computed from the warehouse "
                    "after each analysis run (also after failed ones).",
        partitions_def=videos_partitions,
        pool=group.pool,
        op_tags={GROUP_TAG: group.name},
        group_name="reconstruction",
        code_version=code_version,
        kinds={"python", "parquet"},
    )
    def reconstruction_scores(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        settings = load_settings()
        scores, markdown, timeline = steps.score_reconstruction(settings, context.partition_key)
        return dg.MaterializeResult(
            metadata={
                "score": dg.MetadataValue.float(scores["score"]),
                "analyzers_succeeded": scores["analyzers_succeeded"],
                "analyzers_expected": scores["analyzers_expected"],
                "coverage": dg.MetadataValue.md(markdown),
                "timeline": dg.MetadataValue.md(timeline),
                "timeline_file": dg.MetadataValue.path(
                    str(settings.home / "reports" / context.partition_key / "timeline.md")
                ),
            }
        )

    return reconstruction_scores


def build_assets(groups: GpuGroups, settings: Settings | None = None) -> list[dg.AssetsDefinition]:
    specs = all_specs()
    versions = code_versions(settings or load_settings(), specs)
    analyzers = [analyzer_asset(spec, groups, versions[spec.name]) for spec in specs.values()]
    keys = [a.key for a in analyzers]
    return [
        *pipeline_assets(groups, versions), *analyzers,
        reconstruction_asset(groups, keys, versions["reconstruction_scores"]),
    ]
