"""Whole-file writes that a reader never sees half done: a temporary file beside the target, renamed
over it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a hidden temporary file in the same folder that is
    renamed over it; the temporary's name is unique to the writer (process and call), so threads
    writing the same file never share one, and it is removed when the write fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
