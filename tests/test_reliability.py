"""Hostile inputs (issue 9): one test per item, against loopback servers that stop by themselves."""

from __future__ import annotations

import contextlib
import http.server
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


def _stream_route(chunk: bytes, pause_s: float, max_chunks: int):
    """A body without Content-Length: ``chunk`` every ``pause_s``, at most ``max_chunks`` times."""

    def route(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
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
     (_stream_route(b"\0" * 2048, 0.2, 200), "longer than 4 s")],             # steady but slow
    ids=["endless", "drip", "deadline"],
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
        assert re.search(rf"source_video wait\(s\) for pool 'tiktok_cpu' \(limit 1\), held by run \w+ step "
                         rf"source_video \(STARTED, pid [\d, ]*{first.pid}", text), text
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
    assert re.search(r"ok +cut_analysis", output), output
