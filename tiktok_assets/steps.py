"""The pipeline's steps as plain functions over settings and a video ID.

Dagster assets (and nothing else) call these; each reads its inputs from disk (source registry,
media cache, warehouse) and writes its outputs atomically, so a failing step leaves earlier results
intact and a re-run replaces its rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from . import catalog, media_store
from .analyzers import AnalyzerContext, AnalyzerSpec, all_specs, run_analyzer
from .analyzers.base import AnalyzerRun, to_table
from .atomic_files import write_text_atomic
from .config import Settings
from .ingest import ingest, video_file
from .media import MediaCache, MediaMeta, build_media_cache
from .model_registry import ModelUnavailable
from .reconstruction import COVERAGE_SCHEMA, SCORES_SCHEMA, coverage_markdown, score_video, timeline_markdown
from .retention import ensure_media_cache, evict_if_done
from .versions import analyzer_code_version, code_versions
from .warehouse import ANALYZER_RUNS_SCHEMA, MODEL_UNAVAILABLE, VIDEOS_SCHEMA

log = logging.getLogger("tiktok_assets")


def ingest_video(settings: Settings, video_id: str, log_fn=None, refresh: bool = True) -> dict[str, Any]:
    """Fetch the source and write the ``videos`` row (``refresh=False``: the caller refreshes the
    DuckDB catalog once for many videos)."""
    row = ingest(settings, video_id, log=log_fn)
    catalog.warehouse(settings).write("videos", video_id, pa.Table.from_pylist([row], schema=VIDEOS_SCHEMA))
    if refresh:
        catalog.refresh_catalog(settings)
    return row


def decode_media(settings: Settings, video_id: str, log_fn=None) -> MediaMeta:
    """Decode the ingested video once into the media cache, under the partition's lock: a decode
    of the same video in progress elsewhere (the CLI's head start, :mod:`.early_decode`, or another
    run) is waited for and its version used when it is of the same bytes and settings."""
    out_dir = settings.media_dir / video_id

    def build() -> MediaMeta:
        return build_media_cache(
            video_file(settings, video_id), out_dir, video_id, settings.sample_fps, settings.frame_long_side,
            settings.lowres_short_side, log=log_fn, max_duration_s=settings.max_duration_s,
        )

    with media_store.partition_lock(out_dir, blocking=False) as free:
        if free:
            return build()
    if log_fn:
        log_fn(f"video {video_id}: another process is decoding it (the CLI's head start or another run); waiting")
    began = time.perf_counter()
    with media_store.partition_lock(out_dir):
        if log_fn:
            log_fn(f"video {video_id}: waited {time.perf_counter() - began:.1f}s for another decode of it to finish")
        return build()


@dataclass
class AnalyzerStepResult:
    run: AnalyzerRun
    duration_s: float
    has_audio: bool
    model_unavailable: str | None = None  # the sentence saying which model is missing and the setting

    @property
    def examined_share(self) -> float:
        """Share of the video the analyzer examined (1.0 for audio analyzers on a silent video)."""
        return min(1.0, sum(b - a for a, b in self.run.examined) / self.duration_s) if self.duration_s else 0.0


def _record_run(settings: Settings, spec: AnalyzerSpec, video_id: str, **fields: Any) -> None:
    row = {
        "video_id": video_id,
        "analyzer": spec.name,
        "modality": spec.modality,
        "code_version": analyzer_code_version(spec, settings),
        "finished_at": datetime.now(UTC).replace(microsecond=0),
        **fields,
    }
    table = pa.Table.from_pylist([row], schema=ANALYZER_RUNS_SCHEMA)
    catalog.warehouse(settings).write("analyzer_runs", video_id, table, part=spec.name)


def upstream_inputs(
    settings: Settings, spec: AnalyzerSpec, video_id: str, logger=None
) -> tuple[dict[str, pa.Table], dict[str, dict[str, Any]]]:
    """The tables of the analyzers ``spec`` reads, and per upstream its last run: ``status``
    (success / failed / missing; unknown: a table without a run record), ``code_version``
    (recorded), ``current_version`` and ``stale``.
    Only an upstream whose last run succeeded hands over its table; a failed or stale one is logged."""
    store = catalog.warehouse(settings)
    latest = {}  # each analyzer's run record is its own part file: only the upstreams' are read
    for dep in spec.depends_on:
        record = store.read_part("analyzer_runs", video_id, dep)
        latest.update({r["analyzer"]: r for r in (record.to_pylist() if record is not None else [])})
    specs = all_specs()
    versions = code_versions(settings, specs)
    inputs: dict[str, pa.Table] = {}
    input_runs: dict[str, dict[str, Any]] = {}
    for dep in spec.depends_on:
        run = latest.get(dep)
        current = versions[dep]
        table = store.read(dep, video_id)
        status = run["status"] if run else ("missing" if table is None else "unknown")
        recorded = run["code_version"] if run else None
        input_runs[dep] = {
            "status": status, "code_version": recorded, "current_version": current,
            "stale": status == "success" and recorded != current,
            "finished_at": run["finished_at"] if run else None,
            "examined": [(e["start_s"], e["end_s"]) for e in (run["examined"] or [])] if run else [],
        }
        if table is not None and status == "success":
            inputs[dep] = table
        info = input_runs[dep]
        if logger is not None and (status != "success" or info["stale"]):
            logger.warning(f"{spec.name}: upstream {dep} is {status}{' and stale' if info['stale'] else ''} "
                           f"(written by version {recorded}, current {current})")
    return inputs, input_runs


def prepare_passes(
    settings: Settings, specs: list[AnalyzerSpec], video_id: str, device: str, logger=None, models: Any = None,
) -> dict[str, str]:
    """Compute the shared passes that ``specs`` read and that gain from running side by side
    (:mod:`.passes.prepare`) before the analyzers run; per pass "ok" or its error. Only saves time:
    an analyzer computes a pass that is not there itself."""
    from .model_registry import process_loader
    from .passes import prepare

    names = {name for spec in specs for name in spec.passes}
    if not prepare.worth_preparing(names):
        return {}
    with ensure_media_cache(settings, video_id, (logger or log).info) as media:
        return prepare.prepare(media, names, models or process_loader(settings), device, settings, logger or log)


def run_analyzer_step(
    settings: Settings, spec: AnalyzerSpec, video_id: str, device: str, batch_size: int, logger=None,
    refresh: bool = True, models: Any = None,
) -> AnalyzerStepResult:
    """Run one analyzer on one video, write its table and its run record (also on failure).

    ``refresh=False`` leaves the DuckDB catalog refresh to the caller (once per step, not per
    analyzer and video); ``models`` is the model loader (the Dagster ``models`` resource's; default:
    the process-wide one for ``settings``)."""
    store = catalog.warehouse(settings)
    began = time.perf_counter()
    media = ensure_media_cache(settings, video_id, (logger or log).info)  # decoded again if evicted
    try:
        inputs, input_runs = upstream_inputs(settings, spec, video_id, logger or log)
        context = AnalyzerContext(
            video_id=video_id, settings=settings, device=device, batch_size=batch_size, inputs=inputs,
            input_runs=input_runs,
            input_examined={dep: input_runs[dep]["examined"] for dep in inputs},
            log=logger or log, models=models,
        )
        # the cache version is pinned only while the analyzer runs (a re-decode may then delete it)
        with media:
            result = run_analyzer(spec, media, context)
    except ModelUnavailable as exc:
        media.close()
        seconds = time.perf_counter() - began
        _record_run(
            settings, spec, video_id, status=MODEL_UNAVAILABLE, rows=0, seconds=seconds, examined=[],
            model=spec.model, error=str(exc),
        )
        (logger or log).warning(f"{spec.name}: model unavailable: {exc}")
        if refresh:
            catalog.refresh_catalog(settings)
        empty = AnalyzerRun(to_table(spec, video_id, []), [], {"model_status": f"unavailable: {exc}"}, seconds)
        return AnalyzerStepResult(empty, media.duration_s, media.has_audio, model_unavailable=str(exc))
    except Exception as exc:
        media.close()
        _record_run(
            settings, spec, video_id, status="failed", rows=0, seconds=time.perf_counter() - began,
            examined=[], model=spec.model, error=f"{type(exc).__name__}: {exc}",
        )
        if refresh:
            catalog.refresh_catalog(settings)
        raise
    store.write(spec.name, video_id, result.table)
    _record_run(
        settings, spec, video_id, status="success", rows=result.table.num_rows, seconds=result.seconds,
        examined=[{"start_s": a, "end_s": b} for a, b in result.examined],
        model=str(result.metadata.get("model") or spec.model or ""), error=None,
    )
    if refresh:
        catalog.refresh_catalog(settings)
    return AnalyzerStepResult(result, media.duration_s, media.has_audio)


def score_reconstruction(
    settings: Settings, video_id: str, refresh: bool = True
) -> tuple[dict[str, Any], str, str]:
    """Score the video from the warehouse; write ``reconstruction_scores``, ``coverage_seconds``,
    ``reports/<id>/timeline.md`` and ``reports/<id>/index.html`` (``report_html``; a failure there is
    logged, not raised); return the scores and the coverage and timeline markdown."""
    store = catalog.warehouse(settings)
    videos = store.read("videos", video_id)
    if videos is None or videos.num_rows == 0:
        raise RuntimeError(f"video {video_id!r} is not in the warehouse; materialize `source_video` first")
    media_dir = settings.media_dir / video_id
    video = videos.to_pylist()[0]
    if (media_dir / "meta.json").is_file():
        with MediaCache(media_dir) as media:
            meta = media.meta
        video = {**video, "duration_s": meta.duration_s, "has_audio": meta.has_audio}
    runs_table = store.read("analyzer_runs", video_id)
    runs = runs_table.to_pylist() if runs_table is not None else []
    scores, coverage = score_video(video, runs, all_specs(), person_presence(store, video_id, runs),
                                   fusion_confidence(store, video_id, runs))
    store.write("reconstruction_scores", video_id, pa.Table.from_pylist([scores], schema=SCORES_SCHEMA))
    store.write("coverage_seconds", video_id, pa.Table.from_pylist(coverage, schema=COVERAGE_SCHEMA))
    if refresh:
        catalog.refresh_catalog(settings)
    labelled = readable_timeline(settings, video_id)
    timeline = timeline_markdown(video_id, labelled)
    report = settings.home / "reports" / video_id / "timeline.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(report, timeline)
    try:  # before eviction: the keyframes come from the media cache
        from .report_html import write_report

        write_report(settings, video_id, scores, coverage, float(video["duration_s"]), labelled)
    except Exception as exc:  # noqa: BLE001 - a view of the data: the score and timeline are written
        log.warning(f"{video_id}: HTML report not written: {type(exc).__name__}: {exc}")
    evict_if_done(settings, video_id)  # retention: the media cache goes once every analyzer is up to date
    return scores, coverage_markdown(scores, coverage), timeline


def person_presence(store: Any, video_id: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """background_segmentation's per-second ``presence`` rows, when its latest run succeeded."""
    latest = [r for r in runs if r.get("analyzer") == "background_segmentation"]
    if not latest or latest[-1].get("status") != "success":
        return None
    table = store.read("background_segmentation", video_id)
    if table is None or "level" not in table.column_names:
        return None
    rows = table.select(["level", "start_s", "end_s", "person"]).to_pylist()
    return [r for r in rows if r["level"] == "presence"]


def fusion_confidence(store: Any, video_id: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """cross_analyzer_intelligence's per-second rows (``start_s``, ``confidence``), when its latest run
    succeeded (score v2 uses them)."""
    latest = [r for r in runs if r.get("analyzer") == "cross_analyzer_intelligence"]
    if not latest or latest[-1].get("status") != "success":
        return None
    table = store.read("cross_analyzer_intelligence", video_id)
    if table is None or "confidence" not in table.column_names:
        return None
    rows = table.select(["level", "start_s", "confidence"]).to_pylist()
    return [r for r in rows if r["level"] == "second"]


def readable_timeline(settings: Settings, video_id: str) -> list[dict[str, Any]]:
    """Labelled rows of every analyzer for one video, in time order (from the `timeline` view)."""
    con = catalog.connect(settings, video_id)  # views over this video's files only
    try:
        cursor = con.execute(
            "SELECT start_s, end_s, analyzer, label FROM timeline WHERE video_id = ? AND label IS NOT NULL "
            "AND trim(label) <> '' ORDER BY start_s, end_s, analyzer",
            [video_id],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()
