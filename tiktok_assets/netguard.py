"""Network policy and limits for downloads, enforced where sockets connect and while bytes arrive.

Checking a URL's host once is not enough: the downloader resolves it again, follows redirects and
reads media URLs out of pages. :class:`DownloadGuard` therefore checks the address of every
connection made by the guarded thread (``socket.socket.connect`` is wrapped once, and passes
through unchanged for threads without a guard), and a watchdog enforces a byte limit, an overall
deadline and a stall timeout by shutting down the guard's sockets.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
import weakref
from pathlib import Path
from typing import Any

_ORIGINAL_CONNECT = socket.socket.connect
_ORIGINAL_CONNECT_EX = socket.socket.connect_ex
_ORIGINAL_RECV = {cls: (cls.recv, cls.recv_into) for cls in (socket.socket, ssl.SSLSocket)}
PAGE_SLACK_BYTES = 16 * 1024**2
"""Bytes a download may receive beyond the file limit: web pages, headers, manifests."""
_ACTIVE: dict[int, DownloadGuard] = {}
_INSTALL_LOCK = threading.Lock()
_INSTALLED = False


class NetworkPolicyError(ConnectionRefusedError):
    """A connection refused by the policy (an OSError, so downloaders treat it as a network error)."""


def address_is_public(address: str) -> bool:
    """True for globally routable unicast addresses (not loopback, private, link-local, reserved)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _numeric_host(address: Any) -> str | None:
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        try:
            ipaddress.ip_address(address[0].split("%")[0])
        except ValueError:
            return None
        return address[0]
    return None


def _guarded_connect(sock: socket.socket, address: Any) -> None:
    guard = _ACTIVE.get(threading.get_ident())
    if guard is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return _ORIGINAL_CONNECT(sock, address)
    guard.before_connect(sock, address)
    _ORIGINAL_CONNECT(sock, address)
    guard.after_connect(sock)
    return None


def _guarded_connect_ex(sock: socket.socket, address: Any) -> int:
    guard = _ACTIVE.get(threading.get_ident())
    if guard is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return _ORIGINAL_CONNECT_EX(sock, address)
    guard.before_connect(sock, address)
    code = _ORIGINAL_CONNECT_EX(sock, address)
    if code == 0:
        guard.after_connect(sock)
    return code


def _counting(cls: type, name: str):
    original = dict(zip(("recv", "recv_into"), _ORIGINAL_RECV[cls]))[name]

    def wrapper(sock, *args, **kwargs):
        result = original(sock, *args, **kwargs)
        guard = _ACTIVE.get(threading.get_ident())
        if guard is not None:
            guard.count(result if isinstance(result, int) else len(result))
        return result

    return wrapper


def _install() -> None:
    global _INSTALLED
    with _INSTALL_LOCK:
        if not _INSTALLED:
            socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
            socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
            for cls in _ORIGINAL_RECV:  # bytes received through sockets (TLS: decrypted bytes)
                cls.recv = _counting(cls, "recv")  # type: ignore[method-assign]
                cls.recv_into = _counting(cls, "recv_into")  # type: ignore[method-assign]
            _INSTALLED = True


class DownloadGuard:
    """Context manager for one download in the current thread.

    ``allow_private`` lifts the address policy (loopback/private allowed), never the limits.
    ``folder`` (optional) is watched so bytes written to disk count even without progress reports.
    After :meth:`abort` (or a tripped limit) every further connection is refused and ``reason``
    holds the sentence to show.
    """

    def __init__(
        self,
        allow_private: bool,
        max_bytes: int,
        deadline_s: float,
        stall_s: float,
        folder: Path | None = None,
        poll_s: float = 0.25,
    ):
        self.allow_private = allow_private
        self.max_bytes = max_bytes
        self.deadline_s = deadline_s
        self.stall_s = stall_s
        self.folder = folder
        self.poll_s = poll_s
        self.reason: str | None = None
        self.blocked: list[str] = []
        self.received = 0
        self.on_wire = 0
        self._downloading = False  # set by the first progress report of the media download
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._began = self._activity = time.monotonic()
        self._thread_id: int | None = None
        self._watchdog: threading.Thread | None = None

    # connection policy -------------------------------------------------------------------------
    def _refuse(self, address: str) -> None:
        self.blocked.append(address)
        raise NetworkPolicyError(f"connection to the non-public address {address} refused")

    def before_connect(self, sock: socket.socket, address: Any) -> None:
        if self.reason:
            raise NetworkPolicyError(f"download stopped: {self.reason}")
        host = _numeric_host(address)
        if host is not None and not self.allow_private and not address_is_public(host):
            self._refuse(host)

    def after_connect(self, sock: socket.socket) -> None:
        """Check the peer actually connected to (covers hosts resolved inside ``connect``)."""
        peer = sock.getpeername()[0]
        if not self.allow_private and not address_is_public(peer):
            sock.close()
            self._refuse(peer)
        with self._lock:
            self._sockets.add(sock)
        self._activity = time.monotonic()

    # limits ------------------------------------------------------------------------------------
    def count(self, n_bytes: int) -> None:
        """Bytes read from a socket of this download (pages included); raises past the limit."""
        self.on_wire += n_bytes
        if not self._downloading and self.on_wire > PAGE_SLACK_BYTES:
            self.abort(f"the pages it sent before any video data exceeded {PAGE_SLACK_BYTES / 1024**2:g} MB")
        elif self.on_wire > self.max_bytes + PAGE_SLACK_BYTES:
            self.received = max(self.received, self.on_wire)
            self.abort(self._size_reason())
        if self.reason:
            raise NetworkPolicyError(f"download stopped: {self.reason}")

    def progress(self, downloaded_bytes: int | None) -> None:
        """Report bytes received so far (a yt-dlp progress hook calls this); raises past the limit."""
        self._activity = time.monotonic()
        self._downloading = True
        if downloaded_bytes is not None:
            self.received = max(self.received, int(downloaded_bytes))
        if self.received > self.max_bytes:
            self.abort(self._size_reason())
        if self.reason:
            raise NetworkPolicyError(f"download stopped: {self.reason}")

    def _size_reason(self) -> str:
        return f"it sent more than the limit of {self.max_bytes / 1024**2:g} MB (TIKTOK_ASSETS_MAX_FILE_MB)"

    def _folder_bytes(self) -> int:
        if self.folder is None or not self.folder.is_dir():
            return 0
        total = 0
        for path in self.folder.iterdir():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def abort(self, reason: str) -> None:
        """Stop the download: remember why and shut down every socket it opened."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            now = time.monotonic()
            if now - self._began > self.deadline_s:
                self.abort(f"it took longer than {self.deadline_s:g} s")
            elif now - self._activity > self.stall_s:
                self.abort(f"no data arrived for {self.stall_s:g} s")
            elif self._folder_bytes() > self.max_bytes:
                self.abort(self._size_reason())
            if self.reason:
                return

    def __enter__(self) -> DownloadGuard:
        _install()
        self._thread_id = threading.get_ident()
        if self._thread_id in _ACTIVE:
            raise RuntimeError("a download guard is already active in this thread")
        _ACTIVE[self._thread_id] = self
        self._began = self._activity = time.monotonic()
        self._watchdog = threading.Thread(target=self._watch, name="download-guard", daemon=True)
        self._watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        _ACTIVE.pop(self._thread_id or 0, None)
        if self._watchdog is not None:
            self._watchdog.join(timeout=5)
