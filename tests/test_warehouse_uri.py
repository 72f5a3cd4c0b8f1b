"""The warehouse on shared storage: a file:// URI outside the data root through the real pipeline, an
object store's path (no rename) on an in-memory filesystem, URI checks and DuckDB's remote setup.

The clip is generated: 2.0 s at 15 fps with a hard cut from one textured picture to another at
exactly 1.0 s and a 440 Hz tone, so its duration and its one cut are known.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import duckdb
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import encode_frames
from pyarrow import fs as pafs

from tiktok_assets import catalog, cli, storage
from tiktok_assets.config import load_settings
from tiktok_assets.warehouse import Warehouse

FPS, SECONDS, CUT_S = 15, 2.0, 1.0
SCHEMA = pa.schema([("video_id", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                    ("label", pa.string())])


def _picture(seed: int, tint: tuple[int, int, int], h: int = 240, w: int = 200) -> np.ndarray:
    """A flat ``tint`` with 60 random coloured boxes (texture for the cut detector to follow)."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = tint
    for _ in range(60):
        y, x = rng.integers(0, h - 10), rng.integers(0, w - 10)
        img[y: y + rng.integers(6, 30), x: x + rng.integers(6, 30)] = np.clip(
            np.asarray(tint) + rng.normal(0, 80, 3), 0, 255)
    return img.astype(np.uint8)


def _cut_clip(path: Path) -> Path:
    """Two slowly panning shots (96x160) with a hard cut at CUT_S, and a tone."""
    a, b = _picture(1, (200, 120, 60)), _picture(2, (40, 90, 190))
    frames = [np.ascontiguousarray((a if i < CUT_S * FPS else b)[i: i + 160, 2 * i: 2 * i + 96])
              for i in range(int(FPS * SECONDS))]
    t = np.arange(int(16000 * SECONDS)) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    return encode_frames(path, frames, fps=FPS, audio=tone)


def rows(video_id: str, labels: list[str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"video_id": video_id, "start_s": float(i), "end_s": i + 0.5, "label": x} for i, x in enumerate(labels)],
        schema=SCHEMA)


# ----------------------------------------------------------------------------- file:// through the pipeline


@pytest.fixture(scope="module")
def shared(home, tmp_path_factory):
    """A data root of its own whose warehouse is a file:// URI to a folder outside it."""
    root = tmp_path_factory.mktemp("wh-uri")
    folder = root / "shared-storage" / "warehouse"
    patch = pytest.MonkeyPatch()
    patch.setenv("TIKTOK_ASSETS_HOME", str(root / "home"))
    patch.setenv("DAGSTER_HOME", str(root / "home" / "dagster"))
    patch.setenv("TIKTOK_ASSETS_WAREHOUSE", folder.as_uri())
    (root / "home" / "dagster").mkdir(parents=True)
    yield {"root": root, "folder": folder, "clip": _cut_clip(root / "clip.mp4")}
    patch.undo()


@pytest.fixture(scope="module")
def analyzed(shared):
    settings = load_settings()
    key, ok = cli.analyze(settings, str(shared["clip"]), only=["cut_analysis", "color_analysis"])
    assert ok
    return key


def _cuts(key: str) -> list[tuple]:
    con = catalog.connect(load_settings())
    try:
        return con.execute("SELECT kind, start_s, end_s FROM cut_analysis WHERE video_id = ?", [key]).fetchall()
    finally:
        con.close()


def test_pipeline_rows_land_under_the_uri_and_sql_reads_them(shared, analyzed):
    key, folder = analyzed, shared["folder"]
    settings = load_settings()
    assert settings.warehouse_location == str(folder)  # a file:// URI is a local folder
    for table, part in (("videos", "data"), ("cut_analysis", "data"), ("analyzer_runs", "cut_analysis"),
                        ("analyzer_runs", "color_analysis"), ("reconstruction_scores", "data")):
        assert (folder / table / f"video_id={key}" / f"{part}.parquet").is_file(), table
    assert not (settings.home / "warehouse").exists()  # nothing went to the data root's default folder

    con = duckdb.connect(str(settings.catalog_path), read_only=True)  # the catalog file, as any SQL client
    try:
        duration, has_audio = con.execute("SELECT duration_s, has_audio FROM videos WHERE video_id = ?",
                                          [key]).fetchone()
        cuts = con.execute("SELECT kind, start_s, end_s FROM cut_analysis WHERE video_id = ?", [key]).fetchall()
        runs = con.execute("SELECT analyzer, status, rows FROM analyzer_runs WHERE video_id = ? ORDER BY analyzer",
                           [key]).fetchall()  # one part file per analyzer, read together
        colors = con.execute("SELECT start_s, end_s FROM color_analysis WHERE video_id = ?", [key]).fetchall()
        view = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'cut_analysis'").fetchone()[0]
    finally:
        con.close()
    assert duration == pytest.approx(SECONDS, abs=0.07) and has_audio
    assert [(kind, round(start, 2)) for kind, start, _ in cuts] == [("hard_cut", pytest.approx(CUT_S, abs=0.07))]
    assert all(0.0 <= start <= end <= duration for _, start, end in cuts)
    assert [(a, s) for a, s, _ in runs] == [("color_analysis", "success"), ("cut_analysis", "success")]
    assert dict((a, n) for a, _, n in runs) == {"cut_analysis": 1, "color_analysis": len(colors)} and colors
    assert all(0.0 <= start <= end <= duration + 1e-6 for start, end in colors)
    assert str(folder / "cut_analysis") in view  # the view reads the shared folder (a local path for DuckDB)
    assert _cuts(key) == cuts  # the CLI's in-memory connection sees the same rows


def test_rerun_replaces_rows_under_the_uri(shared, analyzed):
    key = analyzed
    before = _cuts(key)
    partition = shared["folder"] / "cut_analysis" / f"video_id={key}"
    written = (partition / "data.parquet").stat().st_mtime_ns
    key2, ok = cli.analyze(load_settings(), str(shared["clip"]), only=["cut_analysis"])
    assert ok and key2 == key
    assert (partition / "data.parquet").stat().st_mtime_ns != written  # the analyzer wrote its rows again
    assert _cuts(key) == before and len(before) == 1  # replaced, not appended
    assert sorted(p.name for p in partition.iterdir()) == ["data.parquet"]  # no temporary file left
    con = catalog.connect(load_settings())
    try:
        runs = con.execute("SELECT analyzer, count(*) FROM analyzer_runs WHERE video_id = ? GROUP BY analyzer "
                           "ORDER BY analyzer", [key]).fetchall()
        videos = con.execute("SELECT count(*) FROM videos WHERE video_id = ?", [key]).fetchone()[0]
    finally:
        con.close()
    assert runs == [("color_analysis", 1), ("cut_analysis", 1)] and videos == 1  # the other part file stays


class _HalfWritten:
    """An output stream that writes half of what it gets, then fails like a full disk."""

    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stream.close()

    def write(self, data) -> None:
        self.stream.write(memoryview(data)[: len(data) // 2])
        raise OSError("No space left on device")


class _BrokenLocal(pafs.LocalFileSystem):
    """The local filesystem, failing either while the temporary file is written or at the rename."""

    def __init__(self, fail: str):
        super().__init__()
        self.fail = fail

    def open_output_stream(self, path, *args, **kwargs):
        stream = super().open_output_stream(path, *args, **kwargs)
        return _HalfWritten(stream) if self.fail == "write" else stream

    def move(self, src, dest):
        if self.fail == "move":
            raise OSError("Input/output error")
        return super().move(src, dest)


@pytest.mark.parametrize("fail", ["write", "move"])
def test_failing_write_leaves_the_old_file_intact(shared, analyzed, fail):
    key = analyzed
    store = catalog.warehouse(load_settings())
    target = shared["folder"] / "cut_analysis" / f"video_id={key}" / "data.parquet"
    old_bytes, old_rows = target.read_bytes(), store.read("cut_analysis", key).to_pylist()
    store.filesystem = _BrokenLocal(fail)
    replacement = pa.Table.from_pylist([{**old_rows[0], "start_s": 0.5, "end_s": 0.5}],
                                       schema=store.read("cut_analysis", key).schema)
    with pytest.raises(OSError):
        store.write("cut_analysis", key, replacement)
    assert target.read_bytes() == old_bytes
    assert catalog.warehouse(load_settings()).read("cut_analysis", key).to_pylist() == old_rows
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.parquet"]  # the temporary file is gone


def test_cli_sql_reads_the_uri_warehouse(shared, analyzed):
    import io

    out = io.StringIO()
    count = cli.run_sql(load_settings(), f"SELECT kind FROM cut_analysis WHERE video_id = '{analyzed}'", "csv", out)
    assert count == 1 and out.getvalue().split() == ["kind", "hard_cut"]


# ----------------------------------------------------------------------------- object store: no rename


class _ObjectStoreHandler(pafs.FSSpecHandler):
    """fsspec's in-memory store behind pyarrow, with an object store's rules: no rename; uploads logged."""

    def __init__(self, fs):
        super().__init__(fs)
        self.uploads: list[str] = []

    def move(self, src, dest):
        raise AssertionError(f"an object store has no atomic rename ({src} -> {dest})")

    def open_output_stream(self, path, metadata):
        self.uploads.append(path)
        return super().open_output_stream(path, metadata)


@pytest.fixture()
def memory_store(tmp_path):
    memory = fsspec.filesystem("memory")
    bucket = f"bucket-{uuid.uuid4().hex[:12]}"
    handler = _ObjectStoreHandler(memory)
    store = Warehouse(f"{bucket}/warehouse", tmp_path / "catalog.duckdb", filesystem=pafs.PyFileSystem(handler))
    yield store, handler, bucket
    memory.rm(f"/{bucket}", recursive=True)


def test_object_store_path_writes_reads_and_replaces_without_renames(memory_store):
    store, handler, bucket = memory_store
    assert not store.is_local
    store.write("things", "v1", rows("v1", ["a", "b", "c"]))
    store.write("things", "v2", rows("v2", ["x"]))
    store.write("runs", "v1", rows("v1", ["first"]), part="analyzer_one")
    store.write("runs", "v1", rows("v1", ["second"]), part="analyzer_two")
    store.write("things", "v1", rows("v1", ["d"]))  # re-run: replaces v1's rows
    assert handler.uploads == [f"{bucket}/warehouse/things/video_id=v1/data.parquet",
                               f"{bucket}/warehouse/things/video_id=v2/data.parquet",
                               f"{bucket}/warehouse/runs/video_id=v1/analyzer_one.parquet",
                               f"{bucket}/warehouse/runs/video_id=v1/analyzer_two.parquet",
                               f"{bucket}/warehouse/things/video_id=v1/data.parquet"]  # final keys, no temp objects
    assert store.read("things", "v1").column("label").to_pylist() == ["d"]
    assert sorted(store.read("runs", "v1").column("label").to_pylist()) == ["first", "second"]
    assert store.read("things", "v3") is None and store.tables() == ["runs", "things"]

    con = store.connect({"things": SCHEMA, "runs": SCHEMA, "unwritten": SCHEMA}, {"things": "upper(label)"})
    try:
        got = con.execute("SELECT video_id, label FROM things ORDER BY video_id, label").fetchall()
        parts = con.execute("SELECT label FROM runs ORDER BY label").fetchall()
        empty = con.execute("SELECT count(*) FROM unwritten").fetchone()[0]
        timeline = con.execute("SELECT label FROM timeline ORDER BY label").fetchall()
    finally:
        con.close()
    assert got == [("v1", "d"), ("v2", "x")] and parts == [("first",), ("second",)]
    assert empty == 0 and timeline == [("D",), ("X",)]


def test_object_store_failed_write_uploads_nothing(memory_store, monkeypatch):
    store, handler, _ = memory_store
    store.write("things", "v1", rows("v1", ["old"]))
    uploads = list(handler.uploads)

    def broken(*args, **kwargs):
        raise pa.ArrowInvalid("cannot encode this table")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(pa.ArrowInvalid):
        store.write("things", "v1", rows("v1", ["new"]))
    monkeypatch.undo()
    assert handler.uploads == uploads  # serialized first: the failure never reached the store
    assert store.read("things", "v1").column("label").to_pylist() == ["old"]


# ----------------------------------------------------------------------------- a local S3 (moto), when installed


@pytest.fixture(scope="module")
def s3_endpoint():
    """host:port of a moto S3 server started for this module; skipped where moto_server is not installed."""
    exe = shutil.which("moto_server")
    if exe is None:
        pytest.skip("moto_server (a local S3 emulator) is not installed here")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.skip("moto_server did not start")
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def s3_store(s3_endpoint, tmp_path, monkeypatch):
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the AWS SDK inside pyarrow reads them
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    admin = pafs.S3FileSystem(endpoint_override=s3_endpoint, scheme="http", region="us-east-1",
                              allow_bucket_creation=True)
    admin.create_dir(bucket)
    uri = f"s3://{bucket}/tiktok?endpoint_override={s3_endpoint}&scheme=http"
    return Warehouse(uri, tmp_path / "catalog.duckdb", env=env), admin, bucket, env


def test_s3_warehouse_writes_final_keys_replaces_and_reads(s3_store, monkeypatch):
    store, admin, bucket, _ = s3_store
    assert store.filesystem.type_name == "s3" and not store.is_local
    store.write("things", "v1", rows("v1", ["a", "b", "c"]))
    store.write("things", "v1", rows("v1", ["d"]))  # re-run
    store.write("runs", "v1", rows("v1", ["first"]), part="analyzer_one")
    store.write("runs", "v1", rows("v1", ["second"]), part="analyzer_two")
    keys = sorted(i.path for i in admin.get_file_info(pafs.FileSelector(bucket, recursive=True))
                  if i.type == pafs.FileType.File)
    assert keys == [f"{bucket}/tiktok/runs/video_id=v1/analyzer_one.parquet",
                    f"{bucket}/tiktok/runs/video_id=v1/analyzer_two.parquet",
                    f"{bucket}/tiktok/things/video_id=v1/data.parquet"]  # no temporary objects
    assert store.read("things", "v1").column("label").to_pylist() == ["d"]
    assert sorted(store.read("runs", "v1").column("label").to_pylist()) == ["first", "second"]
    assert store.tables() == ["runs", "things"] and store.read("things", "v2") is None

    with monkeypatch.context() as patch, pytest.raises(OSError, match="disk full"):
        patch.setattr(pq, "write_table", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
        store.write("things", "v1", rows("v1", ["new"]))
    assert store.read("things", "v1").column("label").to_pylist() == ["d"]  # the old object stays

    views = store.view_sql({"things": SCHEMA, "unwritten": SCHEMA}, {})
    assert f"read_parquet('s3://{bucket}/tiktok/things/video_id=*/*.parquet'" in views[0]
    assert f"read_parquet('s3://{bucket}/tiktok/_empty/unwritten.parquet'" in views[1]
    assert admin.get_file_info(f"{bucket}/tiktok/_empty/unwritten.parquet").type == pafs.FileType.File


def test_s3_without_credentials_is_one_clear_sentence(s3_store, tmp_path, monkeypatch):
    store, _, bucket, _ = s3_store
    store.write("things", "v1", rows("v1", ["a"]))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    endpoint = store.location.option("endpoint_override")
    anonymous = Warehouse(f"s3://{bucket}/tiktok?endpoint_override={endpoint}&scheme=http", tmp_path / "c.duckdb",
                          env={"AWS_REGION": "us-east-1"})
    with pytest.raises(storage.StorageError, match=f"cannot read the warehouse at s3://{bucket}/tiktok") as raised:
        anonymous.read("things", "v1")
    assert "ACCESS_DENIED" in str(raised.value) and "AWS_ACCESS_KEY_ID" in str(raised.value)


def test_s3_missing_bucket_is_one_clear_sentence(s3_store, tmp_path):
    _, _, _, env = s3_store
    endpoint = s3_store[0].location.option("endpoint_override")
    store = Warehouse(f"s3://no-such-bucket/x?endpoint_override={endpoint}&scheme=http", tmp_path / "c.duckdb",
                      env=env)
    with pytest.raises(storage.StorageError, match="cannot write to the warehouse at s3://no-such-bucket/x") as raised:
        store.write("things", "v1", rows("v1", ["a"]))
    assert "\n" not in str(raised.value)


# ----------------------------------------------------------------------------- URIs and DuckDB's remote setup


@pytest.mark.parametrize(("value", "words"), [
    ("hdfs://namenode/warehouse", "unknown scheme 'hdfs'"),
    ("s3:///prefix", "names no bucket"),
    ("gs://", "names no bucket"),
    ("file://server/share/warehouse", "names the host 'server'"),
    ("s3://AKIA:secret@bucket/prefix", "must not carry credentials"),
])
def test_bad_uris_are_one_clear_sentence(value, words, monkeypatch):
    with pytest.raises(ValueError, match=words) as raised:
        storage.parse_location(value)
    assert "TIKTOK_ASSETS_WAREHOUSE" in str(raised.value) and "\n" not in str(raised.value)
    assert "AKIA" not in str(raised.value)  # a key given in the URI is not repeated
    monkeypatch.setenv("TIKTOK_ASSETS_WAREHOUSE", value)
    with pytest.raises(ValueError, match=words):
        load_settings()


def test_locations_parse_to_what_pyarrow_and_duckdb_use(tmp_path):
    assert storage.parse_location(tmp_path.as_uri()).path == str(tmp_path)
    assert storage.parse_location(str(tmp_path / "a" / ".." / "b")).path == str(tmp_path / "b")
    s3 = storage.parse_location("s3://my-bucket/tiktok/wh/?region=eu-central-1")
    assert (s3.scheme, s3.bucket, s3.path, s3.option("region")) == ("s3", "my-bucket", "my-bucket/tiktok/wh",
                                                                   "eu-central-1")
    gs = storage.parse_location("gcs://b/p")
    assert (gs.scheme, gs.path) == ("gs", "b/p")
    # without a region in the URI, AWS_REGION is added so pyarrow does not ask the bucket (a request)
    plain = storage.parse_location("s3://my-bucket/wh")
    assert storage.pyarrow_uri(plain, {"AWS_REGION": "eu-west-1"}) == (
        "s3://my-bucket/wh?allow_delayed_open=true&region=eu-west-1")  # small files: one PutObject
    filesystem, root = storage.open_filesystem(plain, {"AWS_REGION": "eu-west-1"})
    assert (filesystem.type_name, filesystem.region, root) == ("s3", "eu-west-1", "my-bucket/wh")


def test_duckdb_setup_for_minio_and_gcs():
    env = {"AWS_ACCESS_KEY_ID": "minio", "AWS_SECRET_ACCESS_KEY": "it's-secret", "AWS_REGION": "us-east-1"}
    store = Warehouse("s3://lake/tiktok?endpoint_override=127.0.0.1:9000&scheme=http", Path("/nonexistent/c.duckdb"),
                      env=env)
    access = store.duckdb_access()
    assert access.prefix == "s3://lake/tiktok" and access.extensions == ("httpfs",)
    sql = access.setup_sql()
    assert sql[:2] == ["INSTALL httpfs", "LOAD httpfs"] and len(sql) == 3
    assert sql[2] == ("CREATE OR REPLACE TEMPORARY SECRET tiktok_assets_warehouse (TYPE s3, SCOPE 's3://lake', "
                      "KEY_ID 'minio', SECRET 'it''s-secret', REGION 'us-east-1', ENDPOINT '127.0.0.1:9000', "
                      "URL_STYLE 'path', USE_SSL false)")
    assert "it's-secret" not in repr(access)
    assert [s.type.name for s in duckdb.connect().extract_statements(";".join(sql))] == [
        "LOAD", "LOAD", "CREATE"]  # DuckDB parses it
    # no keys: DuckDB walks the AWS credential chain like pyarrow; AWS_ENDPOINT_URL gives the endpoint
    chain = storage.s3_secret(storage.parse_location("s3://lake/x"), {"AWS_ENDPOINT_URL": "https://s3.example:443"})
    assert "PROVIDER credential_chain" in chain and "ENDPOINT 's3.example:443'" in chain and "USE_SSL true" in chain
    gcs = storage.duckdb_access(pafs.FileSystem.from_uri("gs://media-lake/wh")[0], "media-lake/wh",
                                storage.parse_location("gs://media-lake/wh"),
                                {"TIKTOK_ASSETS_GCS_HMAC_KEY_ID": "GOOG1", "TIKTOK_ASSETS_GCS_HMAC_SECRET": "hmac"})
    assert gcs.prefix == "gs://media-lake/wh" and gcs.setup_sql() == [
        "INSTALL httpfs", "LOAD httpfs",
        "CREATE OR REPLACE TEMPORARY SECRET tiktok_assets_warehouse (TYPE gcs, SCOPE 'gs://media-lake', "
        "KEY_ID 'GOOG1', SECRET 'hmac')"]


def test_missing_httpfs_is_one_clear_sentence(tmp_path):
    empty = tmp_path / "extensions"
    con = duckdb.connect(config={"extension_directory": str(empty),
                                 "custom_extension_repository": str(tmp_path / "no-repository")})
    with pytest.raises(storage.StorageError, match="its httpfs extension is not installed") as raised:
        storage.load_extensions(con, ["httpfs"], "s3://lake/tiktok")
    assert "s3://lake/tiktok" in str(raised.value) and "INSTALL httpfs;" in str(raised.value)


def test_unreachable_object_store_is_one_clear_sentence(tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    store = Warehouse("s3://lake/tiktok?endpoint_override=127.0.0.1:9&scheme=http",
                      tmp_path / "catalog.duckdb")
    with pytest.raises(storage.StorageError, match=r"cannot read the warehouse at s3://lake/tiktok") as raised:
        store.read("videos", "v1")
    assert "credentials" in str(raised.value) and "\n" not in str(raised.value)
