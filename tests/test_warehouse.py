"""Warehouse: atomic replace per partition, DuckDB views (also empty and typed), catalog file."""

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tiktok_assets.warehouse import ANALYZER_RUNS_SCHEMA, Warehouse

SCHEMA = pa.schema([("video_id", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                    ("label", pa.string())])


def rows(video_id, labels):
    return pa.Table.from_pylist(
        [{"video_id": video_id, "start_s": float(i), "end_s": i + 0.5, "label": x} for i, x in enumerate(labels)],
        schema=SCHEMA,
    )


def test_rewrite_replaces_rows_and_other_partitions_stay(tmp_path):
    wh = Warehouse(tmp_path / "wh", tmp_path / "catalog.duckdb")
    wh.write("things", "v1", rows("v1", ["a", "b", "c"]))
    wh.write("things", "v2", rows("v2", ["x"]))
    wh.write("things", "v1", rows("v1", ["d"]))
    con = wh.connect({"things": SCHEMA}, {"things": "upper(label)"})
    got = con.execute("SELECT video_id, label FROM things ORDER BY video_id, label").fetchall()
    assert got == [("v1", "d"), ("v2", "x")]
    assert con.execute("SELECT analyzer, label FROM timeline ORDER BY label").fetchall() == [
        ("things", "D"), ("things", "X")]


def test_views_of_one_video_read_only_its_files(tmp_path):
    """One video's report reads that video's files, however many videos the warehouse holds: a
    damaged file of another video is not even opened."""
    wh = Warehouse(tmp_path / "wh", tmp_path / "catalog.duckdb")
    wh.write("things", "v1", rows("v1", ["a", "b"]))
    wh.write("things", "v2", rows("v2", ["x"]))
    (tmp_path / "wh" / "things" / "video_id=v2" / "data.parquet").write_bytes(b"not parquet")
    schemas = {"things": SCHEMA, "others": SCHEMA}  # others: nothing written for v1
    con = wh.connect(schemas, {"things": "upper(label)", "others": "label"}, video_id="v1")
    assert con.execute("SELECT analyzer, label FROM timeline ORDER BY label").fetchall() == [
        ("things", "A"), ("things", "B")]
    assert con.execute("SELECT count(*) FROM others").fetchone()[0] == 0
    with pytest.raises(duckdb.Error):  # the views over every video do open it
        wh.connect(schemas, {}).execute("SELECT count(*) FROM things").fetchone()


def test_failed_write_keeps_previous_rows(tmp_path, monkeypatch):
    wh = Warehouse(tmp_path / "wh", tmp_path / "catalog.duckdb")
    wh.write("things", "v1", rows("v1", ["old"]))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError):
        wh.write("things", "v1", rows("v1", ["new"]))
    monkeypatch.undo()
    assert wh.read("things", "v1").column("label").to_pylist() == ["old"]
    assert not list((tmp_path / "wh" / "things" / "video_id=v1").glob(".*tmp*"))


def test_unwritten_tables_are_empty_typed_views(tmp_path):
    wh = Warehouse(tmp_path / "wh", tmp_path / "catalog.duckdb")
    con = wh.connect({"things": SCHEMA}, {})
    assert con.execute("SELECT count(*) FROM things").fetchone()[0] == 0
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE things)").fetchall())
    assert types["start_s"] == "DOUBLE" and types["label"] == "VARCHAR"


def test_catalog_file_is_readable_by_plain_duckdb(tmp_path):
    wh = Warehouse(tmp_path / "wh", tmp_path / "catalog.duckdb")
    wh.write("things", "v1", rows("v1", ["a", "b"]))
    wh.refresh_catalog({"things": SCHEMA}, {"things": None})
    con = duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM things").fetchone()[0] == 2
    con.close()


def test_the_catalog_is_rewritten_only_when_its_views_change(tmp_path):
    """A refresh with the views the catalog already holds does not open it; a table's first rows, a
    new table, a deleted catalog or anything else writing to the file since do; new videos need none
    (the views read every file of a table by pattern)."""
    wh = Warehouse(tmp_path / "wh", tmp_path / "catalog.duckdb")
    schemas, timeline = {"things": SCHEMA}, {"things": None}
    assert wh.refresh_catalog(schemas, timeline)  # no catalog yet
    assert not wh.refresh_catalog(schemas, timeline)
    wh.write("things", "v1", rows("v1", ["a", "b"]))
    assert wh.refresh_catalog(schemas, timeline)  # the table got its first rows: another pattern
    wh.write("things", "v2", rows("v2", ["c"]))
    assert not wh.refresh_catalog(schemas, timeline)  # a new video: the same views read it
    con = duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM things").fetchone()[0] == 3
    con.close()
    assert wh.refresh_catalog({**schemas, "others": SCHEMA}, timeline)  # a new table
    con = duckdb.connect(str(tmp_path / "catalog.duckdb"))
    con.execute("DROP VIEW things")  # someone else wrote to the catalog
    con.close()
    assert wh.refresh_catalog({**schemas, "others": SCHEMA}, timeline)
    (tmp_path / "catalog.duckdb").unlink()
    assert wh.refresh_catalog({**schemas, "others": SCHEMA}, timeline)
    con = duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM things").fetchone()[0] == 3
    con.close()


def test_a_failed_catalog_refresh_leaves_the_previous_views(tmp_path, monkeypatch):
    """The views are replaced in one transaction: a statement that fails midway changes none of them."""
    wh = Warehouse(tmp_path / "wh", tmp_path / "catalog.duckdb")
    wh.write("things", "v1", rows("v1", ["a", "b"]))
    assert wh.refresh_catalog({"things": SCHEMA}, {"things": None})
    good = Warehouse.view_sql
    monkeypatch.setattr(Warehouse, "view_sql", lambda self, schemas, timeline: [
        "CREATE OR REPLACE VIEW things AS SELECT 1 AS only_column", *good(self, schemas, timeline)[1:],
        "CREATE OR REPLACE VIEW broken AS SELECT * FROM no_such_table"])
    with pytest.raises(duckdb.CatalogException):
        wh.refresh_catalog({"things": SCHEMA, "others": SCHEMA}, {"things": None})
    con = duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*), min(label) FROM things").fetchone() == (2, "a")  # the old view
    assert not con.execute("SELECT * FROM duckdb_views() WHERE view_name IN ('others', 'broken')").fetchall()
    con.close()


def test_bad_partition_key_never_reaches_the_filesystem(tmp_path):
    wh = Warehouse(tmp_path / "wh", tmp_path / "catalog.duckdb")
    with pytest.raises(ValueError, match="invalid video ID"):
        wh.write("things", "../../escape", rows("x", ["a"]))


def test_upstream_inputs_read_each_upstreams_own_run_record(settings):
    """An analyzer's inputs come with their upstreams' run records (one part file each): a current
    success hands over its table, a failed run does not, a success by an older code version is
    stale, a run of an analyzer it does not read is not looked at, and no record is "missing"."""
    import dataclasses

    from tiktok_assets import catalog, steps
    from tiktok_assets.analyzers import all_specs

    video = "upstream-records"
    specs = all_specs()
    spec = dataclasses.replace(specs["speech_rate"],
                               depends_on=("speech_transcription", "cut_analysis", "text_overlay", "keywords"))
    store = catalog.warehouse(settings)
    for name, status, version in (("speech_transcription", "success", None), ("cut_analysis", "failed", None),
                                  ("text_overlay", "success", "0-old"), ("color_analysis", "failed", None)):
        store.write(name, video, pa.table({"video_id": [video], "start_s": [0.0], "end_s": [1.0]}))
        steps._record_run(settings, specs[name], video, status=status, rows=1, seconds=0.1, examined=[],
                          model=None, error=None)
        if version is not None:  # as if written by an earlier version of the analyzer
            record = store.read_part("analyzer_runs", video, name).to_pylist()
            record[0]["code_version"] = version
            store.write("analyzer_runs", video, pa.Table.from_pylist(record, schema=ANALYZER_RUNS_SCHEMA), part=name)
    inputs, runs = steps.upstream_inputs(settings, spec, video)
    assert set(inputs) == {"speech_transcription", "text_overlay"} and inputs["speech_transcription"].num_rows == 1
    assert {name: (r["status"], r["stale"]) for name, r in runs.items()} == {
        "speech_transcription": ("success", False), "cut_analysis": ("failed", False),
        "text_overlay": ("success", True), "keywords": ("missing", False),
    }
    assert store.read_part("analyzer_runs", video, "keywords") is None
