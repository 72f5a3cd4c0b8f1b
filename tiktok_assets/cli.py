"""The ``tiktok-assets`` command: add videos, analyze one in-process, run SQL, demo, open the UI."""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .config import PROJECT_DIR, Settings, load_settings

PIPELINE_STEPS = ("source_video", "media")


def ensure_instance(settings: Settings):
    """The Dagster instance under the data root, with pool limits from gpu_groups.yaml."""
    from .definitions import apply_pool_limits, load_gpu_groups
    from .instance import data_root_instance

    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    instance = data_root_instance(settings)
    apply_pool_limits(instance, load_gpu_groups())
    return instance


def add_sources(settings: Settings, sources: list[str], instance=None) -> list[str]:
    """Register sources and add their IDs as partitions; returns the IDs."""
    from .assets import videos_partitions
    from .ingest import register_source

    keys = [register_source(settings, source) for source in sources]
    instance = instance or ensure_instance(settings)
    existing = set(instance.get_dynamic_partitions(videos_partitions.name))
    new = [k for k in dict.fromkeys(keys) if k not in existing]
    if new:
        instance.add_dynamic_partitions(videos_partitions.name, new)
    return keys


def _selection(only: list[str] | None, decoded: bool) -> list[str]:
    """Steps to run: everything, or the named analyzers and, transitively, those they read. With
    ``--only`` a video that is already decoded is not fetched and decoded again."""
    from .analyzers import all_specs

    specs = all_specs()
    if not only:
        return [*PIPELINE_STEPS, *specs]
    unknown = [name for name in only if name not in specs]
    if unknown:
        raise ValueError(f"unknown analyzer(s) {', '.join(unknown)}; known: {', '.join(sorted(specs))}")
    chosen: set[str] = set()
    todo = list(only)
    while todo:  # analyzers an analyzer reads must run too, and those they read
        name = todo.pop()
        if name not in chosen:
            chosen.add(name)
            todo.extend(specs[name].depends_on)
    pipeline = [] if decoded else list(PIPELINE_STEPS)
    return [*pipeline, *[n for n in specs if n in chosen]]


def analyze(settings: Settings, source: str, only: list[str] | None = None) -> tuple[str, bool]:
    """Run the ``analyze_video`` job for one video in this process, then its ``score_video`` run
    (what the scoring sensors do after a UI, sensor or nightly run); returns (video ID, all succeeded)."""
    import dagster as dg

    from .automation import SCORE_JOB, SCORES_AFTER_TAG, score_request
    from .definitions import ANALYZE_JOB, defs

    _selection(only, decoded=False)  # reject unknown analyzer names before any work
    instance = ensure_instance(settings)
    key = add_sources(settings, [source], instance)[0]
    print(f"video {key}: analyzing {source}", flush=True)
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    began = time.perf_counter()
    selection = [dg.AssetKey(n) for n in _selection(only, (settings.media_dir / key / "meta.json").is_file())]
    result = defs.resolve_job_def(ANALYZE_JOB).execute_in_process(
        partition_key=key, asset_selection=selection, instance=instance, raise_on_error=False,
        run_config=run_config, tags={"tiktok_assets/launched_by": "cli"},
    )
    events = list(result.all_events)
    scored_ok = True
    request = score_request(instance, settings, instance.get_run_by_id(result.run_id))
    if request is not None:  # a video that was never ingested has nothing to score
        scored = defs.resolve_job_def(SCORE_JOB).execute_in_process(
            partition_key=key, instance=instance, raise_on_error=False, run_config=run_config,
            tags={SCORES_AFTER_TAG: result.run_id},
        )
        events += scored.all_events
        scored_ok = scored.success
    elapsed = time.perf_counter() - began
    failures = []
    for event in events:
        if event.is_step_success:
            print(f"  ok     {event.step_key:<24}{event.event_specific_data.duration_ms / 1000:7.1f}s", flush=True)
        elif event.is_step_failure:
            data = event.step_failure_data
            message = data.user_failure_data.description if data.user_failure_data else None
            failures.append((event.step_key, message or (data.error.message.strip() if data.error else "")))
            print(f"  FAILED {event.step_key}: {failures[-1][1]}", flush=True)
    print(f"video {key}: done in {elapsed:.1f}s, {len(failures)} failed step(s)", flush=True)
    return key, result.success and scored_ok


def run_sql(settings: Settings, query: str, fmt: str = "table", out=None) -> int:
    """Run a read-only ``query`` against the warehouse views and print the result; returns the row
    count. Statements that write (COPY ... TO, ATTACH, DROP, ...) are refused."""
    out = out or sys.stdout
    from .sqlshell import open_readonly, run_query

    con = open_readonly(settings)
    try:
        columns, rows = run_query(con, query)
    finally:
        con.close()
    if fmt == "json":
        out.write(json.dumps([dict(zip(columns, r)) for r in rows], default=str, ensure_ascii=False, indent=1))
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        out.write(format_table(columns, rows) + "\n")
    return len(rows)


def sql_shell(settings: Settings, stdin=None, out=None) -> int:
    """The interactive SQL shell (`tiktok-assets sql` without a query); returns the exit status."""
    from .sqlshell import open_readonly, shell

    con = open_readonly(settings)
    try:
        errors = shell(con, format_table, stdin, out)
    finally:
        con.close()
    return 1 if errors else 0


def format_table(columns: list[str], rows: list[tuple[Any, ...]], max_width: int = 60) -> str:
    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(value)
        text = text.replace("\n", " ")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |", line]
    out += ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    out += [line, f"({len(rows)} row{'s' if len(rows) != 1 else ''})"]
    return "\n".join(out)


DEMO_QUERIES = (
    ("Transcribed words (speech_transcription)",
     "SELECT start_s, end_s, language, text, len(words) AS words FROM speech_transcription "
     "WHERE video_id = '{key}' ORDER BY start_s"),
    ("Edit points (cut_analysis)",
     "SELECT start_s, end_s, kind, strength FROM cut_analysis WHERE video_id = '{key}' ORDER BY start_s"),
    ("Reconstruction score",
     "SELECT score, speech_score, text_score, visual_score, audio_score, analyzers_succeeded, "
     "analyzers_expected FROM reconstruction_scores WHERE video_id = '{key}'"),
)


def demo(settings: Settings) -> int:
    """Generate the sample video, analyze it end to end and show results and how to open the UI."""
    from .sample_video import generate_sample_video

    sample = settings.home / "samples" / "sample.mp4"
    if not sample.is_file():
        print(f"generating the sample video at {sample}", flush=True)
        generate_sample_video(sample)
    began = time.perf_counter()
    key, ok = analyze(settings, str(sample))
    elapsed = time.perf_counter() - began
    from .media import MediaCache

    duration = MediaCache(settings.media_dir / key).duration_s
    for title, query in DEMO_QUERIES:
        print(f"\n{title}:")
        run_sql(settings, query.format(key=key))
    print(f"\nProcessed {duration:.1f}s of video in {elapsed:.1f}s: {elapsed / duration:.2f}x realtime "
          "(processing time / video duration, models loaded once)")
    # Run through resources/setup.sh, the environment is not on the user's PATH: say how to get in.
    command = (os.environ.get("TIKTOK_ASSETS_LAUNCHER", "").strip() + " tiktok-assets").strip()
    home = f"TIKTOK_ASSETS_HOME={settings.home} "
    print(f"\nResults:  {settings.warehouse_dir} (Parquet), {settings.catalog_path} (DuckDB views)")
    print(f"Timeline: {settings.home / 'reports' / key / 'timeline.md'}")
    print(f"SQL:      {home}{command} sql \"SELECT * FROM timeline WHERE video_id = '{key}' ORDER BY start_s\"")
    print(f"UI:       {home}{command} ui   ->  http://127.0.0.1:3000 (asset graph, partitions, scores)")
    return 0 if ok else 1


def open_ui(settings: Settings, port: int, host: str) -> int:
    """Run ``dagster dev`` on this data root (same instance and warehouse as the CLI)."""
    ensure_instance(settings)
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster) if dagster.exists() else "dagster", "dev", "-w", str(PROJECT_DIR / "workspace.yaml"),
               "-p", str(port), "-h", host]
    print(f"starting the Dagster UI on http://{host}:{port} (DAGSTER_HOME={settings.dagster_home})", flush=True)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.chdir(PROJECT_DIR)
    os.execvp(command[0], command)
    return 0  # not reached


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _pools() -> list[str]:
    from .definitions import load_gpu_groups

    return list(load_gpu_groups().pool_limits())


def _run_guarded(settings: Settings, command: str, work):
    """Run ``work()`` (which executes Dagster runs in this process) with dead runs reaped, what
    is waited for printed, interrupts honoured and stack traces kept out of the terminal."""
    from .run_guard import RunWatcher
    from .terminal import TerminalLog, new_log_path

    log_path = new_log_path(settings.home, command)
    with TerminalLog(log_path) as term, RunWatcher(ensure_instance(settings), _pools(),
                                                     log=lambda m: print(m, flush=True)) as watcher:
        result = work()
    if watcher.interrupted:  # Dagster turned Ctrl-C / SIGTERM into a failed run: still an interruption
        raise KeyboardInterrupt
    if term.dropped:
        print(f"full log with stack traces: {log_path}", flush=True)
    else:
        log_path.unlink(missing_ok=True)  # nothing beyond what the terminal showed
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tiktok-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_add = sub.add_parser("add", help="register videos (URLs or files) as partitions")
    p_add.add_argument("sources", nargs="+", metavar="URL_OR_PATH")
    p_an = sub.add_parser("analyze", help="analyze one video now, in this process")
    p_an.add_argument("source", metavar="URL_OR_PATH")
    p_an.add_argument("--only", help="comma-separated analyzers (default: all)")
    p_sql = sub.add_parser("sql", help="run read-only SQL against the warehouse (no query: interactive shell)")
    p_sql.add_argument("query", nargs="?")
    p_sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sub.add_parser("demo", help="analyze the generated sample video end to end")
    p_ui = sub.add_parser("ui", help="open the Dagster UI (dagster dev) on this data root")
    p_ui.add_argument("--port", type=int, default=3000)
    p_ui.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    from .terminal import new_log_path, user_message, write_trace

    if args.command != "ui":
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    settings = None
    try:
        settings = load_settings()
        if args.command == "add":
            for source, key in zip(args.sources, add_sources(settings, args.sources)):
                print(f"{key}\t{source}")
            return 0
        if args.command == "analyze":
            only = [x.strip() for x in args.only.split(",") if x.strip()] if args.only else None
            key, ok = _run_guarded(settings, "analyze", lambda: analyze(settings, args.source, only))
            print(key)
            return 0 if ok else 1
        if args.command == "sql":
            if args.query is None:
                return sql_shell(settings)
            run_sql(settings, args.query, args.format)
            return 0
        if args.command == "demo":
            return _run_guarded(settings, "demo", lambda: demo(settings))
        if args.command == "ui":
            return open_ui(settings, args.port, args.host)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as exc:
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one sentence on the terminal, the trace in a log file
        path = new_log_path(settings.home if settings else None, args.command)
        write_trace(path, exc)
        print(f"error: {user_message(exc)} ({type(exc).__name__}; stack trace in {path})", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
