"""The ``tiktok-assets`` command: add videos, analyze one in-process, run SQL, demo, open the UI."""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import gc_policy
from .config import PROJECT_DIR, Settings, load_settings

if TYPE_CHECKING:  # Dagster is imported when a command needs it
    import dagster as dg

PIPELINE_STEPS = ("source_video", "media")


def ensure_instance(settings: Settings):
    """The Dagster instance under the data root, with pool limits from gpu_groups.yaml (set before
    the definitions are loaded, which then need not set them on an instance of their own)."""
    from .instance import data_root_instance
    from .pool_limits import apply_pool_limits, load_gpu_groups

    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    instance = data_root_instance(settings)
    apply_pool_limits(instance, load_gpu_groups())
    return instance


def source_problem(settings: Settings, source: str, probe_files: bool = True) -> str | None:
    """Why ``source`` cannot be added (one sentence), or None when it looks usable.

    URLs are checked against the URL policy (they are fetched later); files must exist and, with
    ``probe_files``, be readable videos (probed without decoding)."""
    from .ids import is_url
    from .ingest import IngestError, check_url_allowed
    from .media import MediaError, probe

    source = source.strip()
    if not source:
        return "empty source"
    try:
        if is_url(source):
            check_url_allowed(source, settings.allow_private_urls)
        else:
            path = Path(source).expanduser().resolve()
            if not path.is_file():
                return f"no such video file: {path}"
            if probe_files:
                probe(path)
    except (IngestError, MediaError, ValueError, OSError) as exc:
        return str(exc)
    return None


def add_sources(settings: Settings, sources: list[str], instance=None, probe_files: bool = False) -> list[str]:
    """Register sources and add their IDs as partitions, all or nothing; returns the IDs.

    Every source is checked first (files also probed as videos with ``probe_files``, as the `add`
    command does; `analyze` leaves that to the `source_video` step): if any is unusable, a
    ValueError names each bad one and nothing is registered."""
    from .assets import videos_partitions
    from .ingest import register_source

    problems = [(source, problem) for source in sources
                if (problem := source_problem(settings, source, probe_files))]
    if problems:
        listed = "; ".join(f"{source}: {problem}" for source, problem in problems)
        raise ValueError(f"nothing was added, {len(problems)} of {len(sources)} source(s) cannot be used ({listed})")
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


def contiguous_blocks(order: list[str], keys: list[str]) -> list[list[str]]:
    """``keys`` cut into runs of neighbours in ``order`` (the partition list): a Dagster run covers a
    contiguous range of partitions, so videos that are not neighbours go to separate runs."""
    wanted = set(keys)
    blocks: list[list[str]] = []
    previous = None
    for i, key in enumerate(order):
        if key not in wanted:
            continue
        if blocks and previous == i - 1:
            blocks[-1].append(key)
        else:
            blocks.append([key])
        previous = i
    return blocks


def partition_tags(block: list[str]) -> dict[str, str]:
    """Run tags for one video or a contiguous range of videos."""
    from .execution import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG

    if len(block) == 1:
        return {PARTITION_TAG: block[0]}
    return {RANGE_START_TAG: block[0], RANGE_END_TAG: block[-1]}


def _report(events) -> list[tuple[str, str]]:
    failures = []
    for event in events:
        if event.is_step_success:
            print(f"  ok     {event.step_key:<24}{event.event_specific_data.duration_ms / 1000:7.1f}s", flush=True)
        elif event.is_step_failure:
            data = event.step_failure_data
            message = data.user_failure_data.description if data.user_failure_data else None
            failures.append((event.step_key, message or (data.error.message.strip() if data.error else "")))
            print(f"  FAILED {event.step_key}: {failures[-1][1]}", flush=True)
        elif event.is_run_failure and not failures:  # the run itself failed (no step did)
            data = event.job_failure_data
            error = data.error.message.strip() if data is not None and data.error else event.message or ""
            failures.append(("run", error))
            print(f"  FAILED run: {error}", flush=True)
    return failures


def _report_unavailable(settings: Settings, videos: list[str], since: datetime) -> None:
    """Print the analyzers of this run that found their model unavailable (recorded, not failed)."""
    from .catalog import warehouse
    from .warehouse import MODEL_UNAVAILABLE

    store = warehouse(settings)
    for video in videos:
        runs = store.read("analyzer_runs", video)
        for run in runs.to_pylist() if runs is not None else []:
            finished = run["finished_at"]
            if finished is not None and finished.tzinfo is None:
                finished = finished.replace(tzinfo=UTC)
            if run["status"] == MODEL_UNAVAILABLE and finished is not None and finished >= since:
                print(f"  NO MODEL {run['analyzer']}: {run['error']}", flush=True)


def analyze_many(settings: Settings, sources: list[str], only: list[str] | None = None,
                 instance: dg.DagsterInstance | None = None) -> tuple[list[str], bool]:
    """Analyze several videos in this process: one ``analyze_video`` run per contiguous block of
    them in the partition list (all steps in this process, so every model loads once for all
    videos), each followed by its ``score_video`` run (what the scoring sensors do after a UI,
    sensor or nightly run); returns (video IDs, all succeeded)."""
    import dagster as dg

    from .assets import videos_partitions
    from .automation import SCORES_AFTER_TAG, score_request
    from .catalog import refreshes_deferred
    from .definitions import analyze_job_in_process, score_job_in_process
    from .retention import source_ingested
    from .run_guard import run_tags

    _selection(only, decoded=False)  # reject unknown analyzer names before any work
    instance = instance or ensure_instance(settings)
    keys = add_sources(settings, sources, instance)
    for key, source in zip(keys, sources):
        print(f"video {key}: analyzing {source}", flush=True)
    unique = list(dict.fromkeys(keys))
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    gc_policy.start_up_done()
    ok = True
    for block in contiguous_blocks(list(instance.get_dynamic_partitions(videos_partitions.name)), unique):
        began = time.perf_counter()
        started_at = datetime.now(UTC).replace(microsecond=0)
        # fetched before (an evicted cache is decoded again); a new video is ingested even when the
        # head start has decoded it already, so that its source_video step and `videos` row exist
        decoded = all(source_ingested(settings, k) for k in block)
        selection = [dg.AssetKey(n) for n in _selection(only, decoded)]
        tags = {"tiktok_assets/launched_by": "cli", **run_tags(), **partition_tags(block)}
        with refreshes_deferred():  # the DuckDB views once for both runs, not after each step
            with dg.execute_job(
                dg.reconstructable(analyze_job_in_process), instance, run_config=run_config, tags=tags,
                asset_selection=selection, raise_on_error=False,
            ) as result:
                events = list(result.all_events)
                run_id, success = result.run_id, result.success
            request = score_request(instance, settings, instance.get_run_by_id(run_id))
            if request is not None:  # videos that were never ingested have nothing to score
                with dg.execute_job(
                    dg.reconstructable(score_job_in_process), instance, run_config=run_config,
                    raise_on_error=False,
                    tags={**request.tags, SCORES_AFTER_TAG: run_id, **run_tags(), **partition_tags(block)},
                ) as scored:
                    events += list(scored.all_events)
                    success = success and scored.success
        failures = _report(events)
        _report_unavailable(settings, block, started_at)
        names = block[0] if len(block) == 1 else f"{block[0]}..{block[-1]} ({len(block)} videos)"
        print(f"video {names}: done in {time.perf_counter() - began:.1f}s, {len(failures)} failed step(s)", flush=True)
        ok = ok and success
    return keys, ok


def analyze(settings: Settings, source: str, only: list[str] | None = None,
            instance: dg.DagsterInstance | None = None) -> tuple[str, bool]:
    """Analyze one video in this process (see :func:`analyze_many`); returns (video ID, all succeeded)."""
    keys, ok = analyze_many(settings, [source], only, instance)
    return keys[0], ok


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
     "SELECT score, speech_score, text_score, visual_score, audio_score, people_score, analyzers_succeeded, "
     "analyzers_expected FROM reconstruction_scores WHERE video_id = '{key}'"),
    ("Reconstruction score v2 (dimensions per second, weighted; with the cross-analyzer confidence)",
     "SELECT score_v2, speech_content_v2 AS speech, music_sound_v2 AS music, on_screen_text_v2 AS text, "
     "people_v2 AS people, objects_v2 AS objects, setting_v2 AS setting, camera_v2 AS camera, edit_v2 AS edit "
     "FROM reconstruction_scores WHERE video_id = '{key}'"),
)


CUT_TOLERANCE_S = 0.1


def _words(text: str) -> list[str]:
    return ["".join(ch for ch in w if ch.isalnum()) for w in text.lower().split() if any(ch.isalnum() for ch in w)]


def speech_vs_truth(expected: list[dict], transcript: list[dict]) -> list[str]:
    """Expected sentences beside the transcript heard over the same time, with the word recall."""
    lines = []
    for item in expected:
        a, b = float(item["start_s"]), float(item["end_s"])
        heard = [r for r in transcript if r["end_s"] > a - 0.5 and r["start_s"] < b + 0.5]
        heard_text = " ".join(str(r["text"]).strip() for r in heard)
        want, got = _words(item["text"]), set(_words(heard_text))
        found = sum(1 for w in want if w in got)
        lines.append(f"  expected {a:5.1f}-{b:5.1f}s [{item.get('lang', '?')}] {item['text']}")
        if heard:
            lines.append(f"  found    {heard[0]['start_s']:5.1f}-{heard[-1]['end_s']:5.1f}s      {heard_text}"
                         f"  ({found}/{len(want)} words)")
        else:
            lines.append(f"  found    nothing transcribed here  (0/{len(want)} words)")
    return lines


def cuts_vs_truth(expected: list[float], found: list[float], tolerance_s: float = CUT_TOLERANCE_S) -> list[str]:
    """Expected cut times beside the detected ones: how many match within ``tolerance_s``."""
    matched = sum(1 for t in expected if any(abs(t - f) <= tolerance_s for f in found))
    extra = sum(1 for f in found if all(abs(t - f) > tolerance_s for t in expected))
    return [
        f"  expected at {', '.join(f'{t:.2f}' for t in expected) or '-'} s",
        f"  found    at {', '.join(f'{t:.2f}' for t in found) or '-'} s",
        f"  {matched} of {len(expected)} expected cuts found within {tolerance_s:.1f} s, {extra} extra",
    ]


def score_line(scores: dict) -> str:
    """The reconstruction score and what it means, in one line."""
    parts = []
    from .analyzers.base import MODALITIES

    for m in MODALITIES:
        value = scores.get(f"{m}_score")
        parts.append(f"{m} {'n/a' if value is None else f'{value:.0f}'}")
    unavailable = scores.get("analyzers_model_unavailable") or []
    missing = f"; no model here for {', '.join(unavailable)} (counted 0)" if unavailable else ""
    return (f"Score {scores['score']:g}/100 = mean over modalities of the share of the video their analyzers "
            f"really examined ({', '.join(parts)}; {scores['analyzers_succeeded']} of "
            f"{scores['analyzers_expected']} analyzers succeeded{missing})")


def demo_report(settings: Settings, key: str, truth: dict | None) -> list[str]:
    """What the demo expected (the sample's recipe) beside what the pipeline found."""
    from .catalog import connect

    con = connect(settings)
    try:
        def rows(query: str) -> list[dict]:
            cursor = con.execute(query, [key])
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, r)) for r in cursor.fetchall()]

        transcript = rows("SELECT start_s, end_s, text FROM speech_transcription WHERE video_id = ? ORDER BY start_s")
        cuts = rows("SELECT start_s FROM cut_analysis WHERE video_id = ? AND kind = 'hard_cut' ORDER BY start_s")
        scores = rows("SELECT * FROM reconstruction_scores WHERE video_id = ?")
    finally:
        con.close()
    lines = []
    if truth is not None:
        lines += ["", "Speech: expected (spoken by espeak-ng) vs transcribed:"]
        lines += speech_vs_truth(truth.get("speech", []), transcript)
        lines += ["", "Cuts: expected vs detected:"]
        lines += cuts_vs_truth(list(truth.get("cuts_s", [])), [r["start_s"] for r in cuts])
    if scores:
        lines += ["", score_line(scores[0])]
    return lines


def demo(settings: Settings, instance: dg.DagsterInstance | None = None) -> int:
    """Generate the sample video, analyze it end to end and show results and how to open the UI."""
    from .sample_video import generate_sample_video

    sample = settings.home / "samples" / "sample.mp4"
    if not sample.is_file():
        print(f"generating the sample video at {sample}", flush=True)
        generate_sample_video(sample)
    began = time.perf_counter()
    key, ok = analyze(settings, str(sample), instance=instance)
    elapsed = time.perf_counter() - began
    from .retention import analyzed_duration_s

    duration = analyzed_duration_s(settings, key)  # the media cache is evicted after scoring
    for title, query in DEMO_QUERIES:
        print(f"\n{title}:")
        run_sql(settings, query.format(key=key))
    truth_file = sample.with_suffix(".truth.json")
    truth = json.loads(truth_file.read_text()) if truth_file.is_file() else None
    print("\n".join(demo_report(settings, key, truth)))
    print(f"\nProcessed {duration:.1f}s of video in {elapsed:.1f}s: {elapsed / duration:.2f}x realtime "
          "(processing time / video duration, models loaded once)")
    # Run through resources/setup.sh, the environment is not on the user's PATH: say how to get in.
    command = (os.environ.get("TIKTOK_ASSETS_LAUNCHER", "").strip() + " tiktok-assets").strip()
    home = f"TIKTOK_ASSETS_HOME={settings.home} "
    print(f"\nResults:  {settings.warehouse_location} (Parquet), {settings.catalog_path} (DuckDB views)")
    print(f"Timeline: {settings.home / 'reports' / key / 'timeline.md'}")
    print(f"Report:   {settings.home / 'reports' / key / 'index.html'} (open in a browser)")
    print(f"SQL:      {home}{command} sql \"SELECT * FROM timeline WHERE video_id = '{key}' ORDER BY start_s\"")
    print(f"Search:   {home}{command} search \"Tomaten\" --lang de")
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
    from .pool_limits import load_gpu_groups

    return list(load_gpu_groups().pool_limits())


def _run_guarded(settings: Settings, command: str, work):
    """Run ``work(instance)`` (which executes Dagster runs in this process on the data root's
    ``instance``) with dead runs reaped, what is waited for printed, interrupts honoured and stack
    traces kept out of the terminal."""
    from .run_guard import RunWatcher
    from .terminal import TerminalLog, new_log_path

    log_path = new_log_path(settings.home, command)
    with TerminalLog(log_path) as term:
        instance = ensure_instance(settings)
        with RunWatcher(instance, _pools(), log=lambda m: print(m, flush=True)) as watcher:
            result = work(instance)
    if watcher.interrupted:  # Dagster turned Ctrl-C / SIGTERM into a failed run: still an interruption
        raise KeyboardInterrupt
    if term.dropped:
        print(f"full log with stack traces: {log_path}", flush=True)
    else:
        log_path.unlink(missing_ok=True)  # nothing beyond what the terminal showed
    return result


DESCRIPTION = """Turn short vertical videos into timestamped, SQL-queryable analyzer tables
(Parquet + DuckDB views) with a Dagster asset graph."""
EPILOG = """examples:
  tiktok-assets demo                          analyze the generated sample video end to end
  tiktok-assets add clip.mp4 https://...      register videos as partitions (all or nothing)
  tiktok-assets analyze a.mp4 b.mp4           analyze videos now, in this process
  tiktok-assets sql "SELECT * FROM timeline"  query the warehouse
  tiktok-assets search "Tomaten" --lang de    find words said, shown or described in any video
  tiktok-assets ui                            open the Dagster UI on http://127.0.0.1:3000

Data lives under $TIKTOK_ASSETS_HOME (see the README for every setting)."""


def main(argv: list[str] | None = None) -> int:
    """The command line; ``argv`` defaults to the process's arguments."""
    try:
        return _main(argv)
    finally:
        if argv is None:
            # the program's own call, and the process ends next: frozen objects are left out of the
            # interpreter's final garbage collection, over a second of CPU with Dagster, ONNX Runtime
            # and MediaPipe imported (atexit handlers and stream flushes still run)
            gc.freeze()


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="tiktok-assets", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_add = sub.add_parser(
        "add", help="register videos (URLs or files) as partitions",
        description="Register videos as partitions. Every source is checked first; if one cannot be "
        "used, nothing is added and each bad source is named.",
    )
    p_add.add_argument("sources", nargs="+", metavar="URL_OR_PATH")
    p_an = sub.add_parser(
        "analyze", help="analyze videos now, in this process (models load once for all of them)"
    )
    p_an.add_argument("sources", nargs="+", metavar="URL_OR_PATH")
    p_an.add_argument("--only", help="comma-separated analyzers (default: all)")
    p_sql = sub.add_parser("sql", help="run read-only SQL against the warehouse (no query: interactive shell)")
    p_sql.add_argument("query", nargs="?")
    p_sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p_search = sub.add_parser(
        "search", help="full-text search over transcripts, on-screen text, descriptions and labels of all videos",
        description="Ranked hits with video, time span, source and the matching text. Umlauts match their "
        "ae/oe/ue/ss spellings; --lang picks the stemmer of the query (default: German and English).",
    )
    p_search.add_argument("query")
    p_search.add_argument("--lang", choices=("de", "en"))
    p_search.add_argument("--limit", type=int, default=10)
    p_search.add_argument("--format", choices=("table", "json"), default="table")
    sub.add_parser("demo", help="analyze the generated sample video end to end")
    sub.add_parser("models", help="list the models: available offline here or not, source, size, setting")
    p_ui = sub.add_parser("ui", help="open the Dagster UI (dagster dev) on this data root")
    p_ui.add_argument("--port", type=int, default=3000)
    p_ui.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    from .terminal import new_log_path, user_message, write_trace

    if args.command != "ui":
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    settings = None
    if args.command in ("analyze", "demo"):
        gc_policy.paused_for_start_up()  # until the first run starts (see gc_policy)
    try:
        settings = load_settings()
        if args.command == "add":
            for source, key in zip(args.sources, add_sources(settings, args.sources, probe_files=True)):
                print(f"{key}\t{source}")
            return 0
        if args.command == "analyze":
            only = [x.strip() for x in args.only.split(",") if x.strip()] if args.only else None
            from .early_decode import head_start

            with head_start(settings, args.sources):  # the first video decodes while Dagster starts
                keys, ok = _run_guarded(settings, "analyze",
                                        lambda instance: analyze_many(settings, args.sources, only, instance))
            print("\n".join(keys))
            return 0 if ok else 1
        if args.command == "sql":
            if args.query is None:
                return sql_shell(settings)
            run_sql(settings, args.query, args.format)
            return 0
        if args.command == "search":
            from .search import hits_text, search

            hits = search(settings, args.query, args.lang, max(1, args.limit))
            print(hits_text(hits, args.format))
            return 0 if hits else 1
        if args.command == "demo":
            return _run_guarded(settings, "demo", lambda instance: demo(settings, instance))
        if args.command == "models":
            from .model_registry.listing import models_text

            print(models_text(settings))
            return 0
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
