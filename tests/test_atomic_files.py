"""write_text_atomic: the target holds the old or the new text, never a part; no temporary stays."""

from __future__ import annotations

import threading

import pytest

from tiktok_assets.atomic_files import write_text_atomic


def test_a_failed_write_keeps_the_old_text_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "notes.md"
    write_text_atomic(target, "alt: Grüße\n")
    assert target.read_text(encoding="utf-8") == "alt: Grüße\n"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "neu")
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == "alt: Grüße\n"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.md"]


def test_threads_writing_one_file_do_not_share_a_temporary(tmp_path):
    target = tmp_path / "stamp"
    texts = [f"writer {i} " * 2000 for i in range(8)]
    threads = [threading.Thread(target=write_text_atomic, args=(target, t)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_text() in texts  # one writer's whole text
    assert [p.name for p in tmp_path.iterdir()] == ["stamp"]
