"""What the terminal shows: one sentence per error, full details (stack traces) in a log file."""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import traceback
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TextIO

_TRACE_MARKERS = ("\nStack Trace:", "Traceback (most recent call last)", "\nThe above exception")


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def user_message(exc: BaseException) -> str:
    """One sentence for ``exc``; the causes of wrapped errors are searched for a known OS error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            where = seen.filename
            place = f"{_mount_point(Path(where))} (writing {where})" if where else "the device being written"
            return f"no space left on {place}: free some space and run again"
        if isinstance(seen, PermissionError) and seen.filename:
            return f"cannot write to {seen.filename} (permission denied); is TIKTOK_ASSETS_HOME a folder you can write?"
        if isinstance(seen, OSError) and seen.filename and seen.strerror and seen is exc:
            return f"cannot use {seen.filename}: {seen.strerror.lower()}"
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def log_folder(home: Path | None) -> Path:
    """``<data root>/logs`` when it can be written, else a folder in the temporary directory."""
    candidates = [home / "logs"] if home else []
    candidates.append(Path(tempfile.gettempdir()) / "tiktok-assets-logs")
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    return Path(tempfile.gettempdir())


def new_log_path(home: Path | None, command: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return log_folder(home) / f"{command}-{stamp}-{os.getpid()}.log"


def write_trace(path: Path, exc: BaseException) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=handle)


class _ShortStderr:
    """Writes everything to the log file and the terminal, except stack traces (log file only)."""

    def __init__(self, terminal: TextIO, log: TextIO):
        self.terminal = terminal
        self.log = log
        self.dropped = 0

    def write(self, text: str) -> int:
        self.log.write(text)
        self.log.flush()
        if any(marker in text for marker in _TRACE_MARKERS):
            head = text.split("\n", 1)[0].rstrip()
            self.terminal.write(head + " (stack trace in the log)\n")
            self.dropped += 1
        else:
            self.terminal.write(text)
        return len(text)

    def flush(self) -> None:
        self.terminal.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self.terminal.isatty()

    def fileno(self) -> int:
        return self.terminal.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.terminal, "encoding", "utf-8")


class TerminalLog:
    """Context manager: stderr goes to ``path`` in full and to the terminal without stack traces."""

    def __init__(self, path: Path):
        self.path = path
        self._handle: TextIO | None = None
        self._saved: TextIO | None = None
        self.stream: _ShortStderr | None = None

    def __enter__(self) -> TerminalLog:
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        self._saved = sys.stderr
        self.stream = _ShortStderr(sys.stderr, self._handle)
        sys.stderr = self.stream  # type: ignore[assignment]
        return self

    @property
    def dropped(self) -> int:
        return self.stream.dropped if self.stream else 0

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        sys.stderr = self._saved  # type: ignore[assignment]
        if exc is not None and not isinstance(exc, (KeyboardInterrupt, SystemExit)) and self._handle:
            traceback.print_exception(exc_type, exc, tb, file=self._handle)
        if self._handle:
            self._handle.close()
