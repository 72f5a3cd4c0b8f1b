"""Hostile inputs (issue 9): one test per item, against loopback servers that stop by themselves."""

from __future__ import annotations

import contextlib
import errno
import http.server
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tiktok_assets import ingest as ingest_module
from tiktok_assets import netguard
from tiktok_assets.ingest import IngestError, ingest, register_source

PUBLIC_ADDRESS = "93.184.216.34"  # what the fake resolver answers for the check (never connected to)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes: /clip.mp4, /secret.mp4 (the sample), /redirect, /page.html, /endless, /drip, /slow."""

    routes: dict = {}

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        route = self.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_error(404)
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route(self)


def _serve(host: str, routes: dict) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"{host}:{server.server_address[1]}"


def _file_route(data: bytes):
    def route(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command == "GET":
            h.wfile.write(data)

    return route


def _stream_route(chunk: bytes, pause_s: float, max_chunks: int, content_type: str = "video/mp4"):
    """A body without Content-Length: ``chunk`` every ``pause_s``, at most ``max_chunks`` times."""

    def route(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.end_headers()
        if h.command != "GET":
            return
        h.close_connection = True
        for _ in range(max_chunks):
            h.wfile.write(chunk)
            h.wfile.flush()
            if pause_s:
                time.sleep(pause_s)

    return route


@pytest.fixture()
def secret_server(sample) -> Iterator[str]:
    """127.0.0.1: the file an attacker wants fetched (the sample video)."""
    data = Path(sample.path).read_bytes()
    server, address = _serve("127.0.0.1", {"/secret.mp4": _file_route(data), "/clip.mp4": _file_route(data)})
    yield address
    server.shutdown()


@pytest.fixture()
def entry_server(sample, secret_server) -> Iterator[str]:
    """127.0.0.2 (treated as public in these tests): a redirect and a page pointing at 127.0.0.1."""
    data = Path(sample.path).read_bytes()

    def redirect(h):
        h.send_response(302)
        h.send_header("Location", f"http://{secret_server}/secret.mp4")
        h.send_header("Content-Length", "0")
        h.end_headers()

    def page(h):
        body = (f'<html><head><title>clip</title></head><body><video src="http://{secret_server}/secret.mp4">'
                "</video></body></html>").encode()
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    routes = {"/redirect": redirect, "/page.html": page, "/clip.mp4": _file_route(data)}
    server, address = _serve("127.0.0.2", routes)
    yield address
    server.shutdown()


@pytest.fixture()
def strict(settings, monkeypatch):
    """Settings with the address policy on; 127.0.0.2 counts as public, 'entry.test' resolves to a
    public address twice (the checks at `add` and at ingest) and to 127.0.0.2 afterwards,
    'rebind.test' to 127.0.0.1 afterwards (DNS rebinding)."""
    real_public = netguard.address_is_public
    monkeypatch.setattr(netguard, "address_is_public", lambda a: a == "127.0.0.2" or real_public(a))
    monkeypatch.setattr(ingest_module, "address_is_public", netguard.address_is_public, raising=False)
    real_getaddrinfo = socket.getaddrinfo
    answers = {"entry.test": "127.0.0.2", "rebind.test": "127.0.0.1"}
    asked: dict[str, int] = {}

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            asked[host] = asked.get(host, 0) + 1
            address = PUBLIC_ADDRESS if asked[host] <= 2 else answers[host]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    return replace(settings, allow_private_urls=False)


def _fresh_key(settings, url: str) -> str:
    """Register ``url`` (the check runs here: its first resolution answers a public address)."""
    key = register_source(settings, url)
    shutil.rmtree(settings.videos_dir / key, ignore_errors=True)
    return key


# Item 1 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    ["http://entry.test:{entry_port}/redirect", "http://entry.test:{entry_port}/page.html",
     "http://rebind.test:{secret_port}/secret.mp4"],
    ids=["redirect", "video-in-page", "dns-rebinding"],
)
def test_item1_every_connection_is_checked(strict, entry_server, secret_server, url):
    url = url.format(entry_port=entry_server.split(":")[1], secret_port=secret_server.split(":")[1])
    key = _fresh_key(strict, url)
    with pytest.raises(IngestError, match="non-public address 127.0.0.1"):
        ingest(strict, key)
    assert not (strict.videos_dir / key).exists()


def test_item1_allowed_host_still_downloads_and_setting_allows_loopback(strict, entry_server, secret_server,
                                                                         sample):
    key = _fresh_key(strict, f"http://entry.test:{entry_server.split(':')[1]}/clip.mp4")
    assert ingest(strict, key)["duration_s"] == pytest.approx(sample.duration_s, abs=0.1)
    allowed = replace(strict, allow_private_urls=True)  # TIKTOK_ASSETS_ALLOW_PRIVATE_URLS=1
    key = _fresh_key(allowed, f"http://{secret_server}/secret.mp4")
    assert ingest(allowed, key)["duration_s"] == pytest.approx(sample.duration_s, abs=0.1)


# Item 2 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("route", "limit"),
    [(_stream_route(b"\0" * 65536, 0.0, 2000), "more than the limit of 1 MB"),  # 125 MB, no length
     (_stream_route(b"\0", 0.5, 40), "no data arrived for 2 s"),               # 1 byte / 0.5 s
     (_stream_route(b"\0" * 65536, 0.5, 30), "longer than 4 s"),             # steady, slow: 128 KB/s
     (_stream_route(b"<p>" * 20000, 0, 2000, "text/html"), "pages it sent before any video data exceeded 16 MB")],
    ids=["endless", "drip", "deadline", "endless-page"],
)
def test_item2_downloads_are_bounded_in_bytes_and_time(settings, monkeypatch, route, limit):
    monkeypatch.setattr(ingest_module, "DOWNLOAD_STALL_S", 2.0)
    monkeypatch.setattr(ingest_module, "DOWNLOAD_DEADLINE_S", 4.0)
    server, address = _serve("127.0.0.1", {"/video.mp4": route})
    try:
        limited = replace(settings, max_file_bytes=1024**2)
        key = _fresh_key(limited, f"http://{address}/video.mp4")
        began = time.monotonic()
        with pytest.raises(IngestError, match=limit):
            ingest(limited, key)
        assert time.monotonic() - began < 15
        assert not (limited.videos_dir / key).exists()
        assert not [p for p in limited.videos_dir.iterdir() if key in p.name]  # no partial file left
    finally:
        server.shutdown()


# Item 3 ------------------------------------------------------------------------------------------
def _cli_env(home: Path, groups: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(TIKTOK_ASSETS_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), TIKTOK_ASSETS_GPU_GROUPS=str(groups),
               TIKTOK_ASSETS_ALLOW_PRIVATE_URLS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return env


def _limit_one_groups(tmp_path: Path) -> Path:
    """gpu_groups.yaml with the pipeline's pool limited to one slot (as the GPU pools are)."""
    text = (Path(__file__).resolve().parents[1] / "gpu_groups.yaml").read_text()
    head, _, tail = text.partition("\n  cpu:\n")
    tail = re.sub(r"max_concurrent: \d+", "max_concurrent: 1", tail, count=1)
    path = tmp_path / "gpu_groups.yaml"
    path.write_text(f"{head}\n  cpu:\n{tail}")
    return path


def test_item3_killed_analyze_releases_its_pool_slot(tmp_path, sample):
    home = tmp_path / "home"
    env = _cli_env(home, _limit_one_groups(tmp_path))
    requested = threading.Event()
    release = threading.Event()

    def hanging(h):  # the download never finishes: the first run sits in source_video, holding the slot
        requested.set()
        release.wait(60)
        h.send_error(503)

    server, address = _serve("127.0.0.1", {"/hang.mp4": hanging})
    command = [sys.executable, "-m", "tiktok_assets.cli", "analyze"]
    first = subprocess.Popen([*command, f"http://{address}/hang.mp4", "--only", "cut_analysis"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert requested.wait(120), "the first run never started its download"
        # While the first run lives, a second one says what it waits for and stops on SIGTERM.
        waiter = subprocess.Popen([*command, sample.path, "--only", "cut_analysis"], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines: list[str] = []
        waiting = threading.Event()

        def read() -> None:
            for line in waiter.stdout:
                lines.append(line)
                if line.startswith("waiting"):
                    waiting.set()

        threading.Thread(target=read, daemon=True).start()
        assert waiting.wait(120), "".join(lines)
        waiter.send_signal(signal.SIGTERM)
        assert waiter.wait(30) == 130, "".join(lines)
        text = "".join(lines)
        assert re.search(rf"ingest wait\(s\) for pool 'tiktok_cpu' \(limit 1\), held by run \w+ step "
                         rf"ingest \(STARTED, pid [\d, ]*{first.pid}", text), text
        assert "interrupted" in text
        first.kill()  # kill -9 while its run holds the pipeline pool's only slot
        first.wait(30)
        second = subprocess.run([*command, sample.path, "--only", "cut_analysis"], env=env, capture_output=True,
                                text=True, timeout=240)
    finally:
        first.kill()
        release.set()
        server.shutdown()
    output = second.stdout + second.stderr
    assert second.returncode == 0, output
    assert re.search(rf"process [\d, ]*{first.pid}[\d, ]*\) is no longer running: marked it failed and freed its "
                     "pool slots", output), output
    assert re.search(r"ok +frames_analyzers", output), output


# Item 7 ------------------------------------------------------------------------------------------
def test_item7_stale_temporaries_of_a_killed_run_are_removed(settings, sample):
    key = register_source(settings, sample.path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale_tmp = settings.videos_dir / f".{key}.tmp-{gone.pid}"
    stale_old = settings.videos_dir / f".{key}.old-{gone.pid}"
    live = settings.videos_dir / f".{key}.tmp-{os.getppid()}"  # a process that still runs: kept
    for folder in (stale_tmp, stale_old, live):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "source.mp4.part").write_bytes(b"\0" * 4096)
    messages: list[str] = []
    try:
        ingest(settings, key, log=messages.append)
        assert not stale_tmp.exists() and not stale_old.exists()
        assert live.exists()
        assert sorted(messages) == sorted(f"removed {p.name}, left by an earlier run that was stopped"
                                          for p in (stale_tmp, stale_old))
    finally:
        shutil.rmtree(live, ignore_errors=True)


# Item 8 ------------------------------------------------------------------------------------------
def _materialize_source(partition_key: str):
    import dagster as dg

    from tiktok_assets.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("videos", [partition_key])
    result = dg.materialize(list(defs.assets), selection=["source_video"], partition_key=partition_key,
                            instance=instance, raise_on_error=False, resources=defs.resources)
    starts = [e for e in result.all_events if e.is_step_start]
    failures = [e.step_failure_data.user_failure_data.description for e in result.all_events if e.is_step_failure
                and e.step_failure_data.user_failure_data]
    return result, starts, failures


def test_item8_full_disk_names_the_place(settings, sample, monkeypatch):
    def full(src, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(shutil, "copyfile", full)
    key = register_source(settings, sample.path)
    with pytest.raises(IngestError, match=r"could not copy .*sample\.mp4: no space left on / \(writing .*source"):
        ingest(settings, key)
    result, starts, failures = _materialize_source(key)
    assert not result.success and len(starts) == 1
    assert len(failures) == 1 and "no space left on /" in failures[0]


def test_item8_full_disk_in_media_and_analyzer_steps_names_the_place(settings, sample, monkeypatch):
    """Decoding and analyzer writes on a full disk fail with the sentence too, not a Dagster class name."""
    import dagster as dg

    from tiktok_assets import steps
    from tiktok_assets.definitions import defs

    key = register_source(settings, sample.path)
    ingest(settings, key)
    where = str(settings.media_dir / key)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", where)

    monkeypatch.setattr(steps, "decode_media", full)
    monkeypatch.setattr(steps, "run_analyzer_step", full)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("videos", [key])
    for selection in (["media"], ["cut_analysis"]):
        result = dg.materialize(list(defs.assets), selection=selection, partition_key=key,
                                instance=instance, raise_on_error=False, resources=defs.resources)
        failures = [e.step_failure_data.user_failure_data.description for e in result.all_events
                    if e.is_step_failure and e.step_failure_data.user_failure_data]
        assert not result.success and len(failures) == 1, selection
        # the sentence, after the asset it failed in (a group step names which of its assets failed)
        assert re.match(r"(media|cut_analysis): no space left on /", failures[0]) and where in failures[0], failures


# Item 9 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad_key", ["../../escape", "a/b"])
def test_item9_bad_partition_keys_fail_once_with_the_rule(home, bad_key):
    result, starts, failures = _materialize_source(bad_key)
    assert not result.success
    assert len(starts) == 1  # no retries
    assert failures and failures[0].startswith(f"source_video: invalid video ID {bad_key!r}: use 1-64 characters")
    assert not (home / "videos" / bad_key).exists()


# Item 10 -----------------------------------------------------------------------------------------
def test_item10_setup_script_resolves_paths_in_the_callers_folder(tmp_path, sample):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    shutil.copyfile(sample.path, folder / "clip.mp4")
    env = _cli_env(tmp_path / "home", Path(__file__).resolve().parents[1] / "gpu_groups.yaml")
    script = Path(__file__).resolve().parents[1] / "resources" / "setup.sh"
    done = subprocess.run(["bash", str(script), "tiktok-assets", "add", "clip.mp4"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    key, source = done.stdout.strip().splitlines()[-1].split("\t")
    assert source == "clip.mp4" and key.startswith("f-")
    record = (tmp_path / "home" / "sources" / f"{key}.json").read_text()
    assert str(folder / "clip.mp4") in record


# Item 11 and the SQL shell (issue 8) -------------------------------------------------------------
@pytest.fixture()
def small_warehouse(settings, tmp_path):
    import pyarrow as pa

    from tiktok_assets.catalog import refresh_catalog, warehouse
    from tiktok_assets.warehouse import VIDEOS_SCHEMA

    own = replace(settings, home=tmp_path / "wh")
    row = {name: None for name in VIDEOS_SCHEMA.names} | {"video_id": "v1", "duration_s": 12.5}
    path = Path(warehouse(own).write("videos", "v1", pa.Table.from_pylist([row], schema=VIDEOS_SCHEMA)))
    refresh_catalog(own)
    return own, path


def test_item11_sql_cannot_write_the_warehouse_or_the_catalog(small_warehouse, tmp_path):
    from tiktok_assets.cli import run_sql

    own, parquet = small_warehouse
    before = parquet.read_bytes(), own.catalog_path.read_bytes()
    out = io.StringIO()
    assert run_sql(own, "SELECT video_id, duration_s FROM videos", "csv", out) == 1
    assert out.getvalue().splitlines() == ["video_id,duration_s", "v1,12.5"]
    for statement in (f"COPY (SELECT 'x' AS video_id) TO '{parquet}' (FORMAT parquet)",
                      f"ATTACH '{own.catalog_path}' AS cat", "DROP VIEW videos", "SET lock_configuration = false",
                      "CREATE TABLE t AS SELECT 1", "INSTALL httpfs"):
        with pytest.raises(ValueError, match=r"refusing a \w+ statement: `tiktok-assets sql` only reads"):
            run_sql(own, statement, out=io.StringIO())
    assert (parquet.read_bytes(), own.catalog_path.read_bytes()) == before
    local = tmp_path / "notes.csv"  # documented: reading local files is allowed
    local.write_text("word,n\nhallo,3\n")
    out = io.StringIO()
    assert run_sql(own, f"SELECT n FROM read_csv('{local}')", "csv", out) == 1 and "3" in out.getvalue()


def test_item11_sql_without_query_opens_a_shell_on_stdin(small_warehouse, monkeypatch, capsys):
    from tiktok_assets import cli

    own, _ = small_warehouse
    monkeypatch.setenv("TIKTOK_ASSETS_HOME", str(own.home))
    monkeypatch.setattr(sys, "stdin", io.StringIO(
        "SELECT 40 + 2\n  AS answer;\n.tables\nSELECT video_id FROM videos;\nDROP VIEW videos;\n.quit\nSELECT 1;\n"))
    assert cli.main(["sql"]) == 1  # one refused statement
    out = capsys.readouterr().out
    assert re.search(r"\| answer \|\n\+-+\+\n\| 42 +\|", out), out
    assert "| videos " in out and "| v1 " in out
    assert "error: refusing a DROP statement" in out
    assert out.count("row") == 3  # nothing after .quit


# Item 12 -----------------------------------------------------------------------------------------
def test_item12_settings_and_data_root_errors_are_sentences(tmp_path, sample, monkeypatch, capsys):
    from tiktok_assets import cli

    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [({"TIKTOK_ASSETS_HOME": str(blocker / "home")}, rf"error: cannot use {blocker}/home\S*: not a directory"),
             ({"TIKTOK_ASSETS_MAX_FILE_MB": "inf"}, r"error: \S.*")]
    for env, expected in cases:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert cli.main(["add", sample.path]) == 2
        err = capsys.readouterr().err
        assert re.fullmatch(expected, err.strip()), err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        for name in env:
            monkeypatch.delenv(name)


def test_item12_limit_messages_name_the_users_file(settings, sample):
    key = register_source(settings, sample.path)
    size = Path(sample.path).stat().st_size
    with pytest.raises(IngestError) as caught:
        ingest(replace(settings, max_file_bytes=size - 1), key)
    message = str(caught.value)
    assert message.startswith(f"{sample.path} is ") and f"({size} bytes)" in message and "source." not in message
    with pytest.raises(IngestError, match=rf"^{re.escape(sample.path)} lasts \d+\.\ds, above the limit of 5s"):
        ingest(replace(settings, max_duration_s=5.0), key)


def test_item12_file_replaced_after_add_is_refused(settings, sample, tmp_path):
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(sample.path, clip)
    key = register_source(settings, str(clip))
    with open(clip, "ab") as handle:  # same name, new content (still a playable MP4)
        handle.write(b"\0" * 1000)
    with pytest.raises(IngestError, match=rf"{re.escape(str(clip))} changed since it was added as video {key} "
                                           r"\(its content is now f-[0-9a-f]{16}\); add it again"):
        ingest(settings, key)
    assert not list(settings.videos_dir.glob(f".{key}.*"))  # nothing of the refused copy is left


def test_item12_inbox_follows_no_symlink_out_of_the_inbox(settings, sample, tmp_path):
    from tiktok_assets.automation import register_inbox

    own = replace(settings, home=tmp_path / "inbox-home")
    inbox = own.home / "inbox"
    inbox.mkdir(parents=True)
    shutil.copyfile(sample.path, inbox / "clip.mp4")
    (inbox / "passwd.mp4").symlink_to("/etc/passwd")
    (inbox / "alias.mp4").symlink_to(inbox / "clip.mp4")  # a link inside the inbox is fine
    skipped: list[str] = []
    tick = register_inbox(own, log=skipped.append, min_age_s=0)
    assert tick.keys == [register_source(own, sample.path)]
    # the sensor follows no symlink at all (the one inside the inbox is skipped too: it is a duplicate)
    assert sorted(skipped) == sorted(
        f"skipping inbox entry {name!r}: symlinks are not followed; move or copy the video into the inbox"
        for name in ("alias.mp4", "passwd.mp4")
    )
    assert len(list((own.home / "sources").glob("*.json"))) == 1
    # and registering an inbox path by hand cannot escape the inbox either
    with pytest.raises(IngestError, match="refusing inbox entry passwd.mp4: it links to /etc/passwd, outside the inbox"):
        register_source(own, str(inbox / "passwd.mp4"))


# Item 13 -----------------------------------------------------------------------------------------
def test_item13_failed_step_shows_one_sentence_and_the_log_path(home, tmp_path, capsys):
    from tiktok_assets import cli

    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video at all")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main(["analyze", str(bad), "--only", "cut_analysis"]) == 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    captured = capsys.readouterr()
    terminal = captured.out + captured.err
    assert re.search(r"FAILED ingest: source_video: .*bad\.mp4", terminal), terminal
    assert "Stack Trace" not in terminal and 'File "' not in terminal and "Traceback" not in terminal
    log = re.search(r"full log with stack traces: (\S+)", captured.out)
    assert log, terminal
    assert "Stack Trace:" in Path(log.group(1)).read_text()
