"""Where the warehouse lives: a local folder or an object-store URI (``file://``, ``s3://``, ``gs://``),
opened with pyarrow's filesystem layer, and what DuckDB needs to read the same place.

:func:`parse_location` checks the setting without touching the network. :func:`open_filesystem`
resolves it with ``pyarrow.fs.FileSystem.from_uri`` (for S3 the region comes from the URI or
``AWS_REGION``/``AWS_DEFAULT_REGION`` when set, so pyarrow does not ask the bucket for it).
:func:`duckdb_access` names DuckDB's path prefix for a pyarrow filesystem, the extensions to load
(``httpfs`` for remote URIs only) and a temporary secret built from the object-store variables
(never stored in ``catalog.duckdb``, which holds views only).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

SETTING = "TIKTOK_ASSETS_WAREHOUSE"
REMOTE_SCHEMES = {"s3": "s3", "gs": "gs", "gcs": "gs"}  # URI scheme -> the scheme used here and in DuckDB
# the variables of the object stores that tiktok_assets reads (config.py) for DuckDB's secret and S3's region
OBJECT_STORE_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "TIKTOK_ASSETS_GCS_HMAC_KEY_ID", "TIKTOK_ASSETS_GCS_HMAC_SECRET",
)
SECRET_NAME = "tiktok_assets_warehouse"


class StorageError(RuntimeError):
    """The warehouse's storage cannot be opened or read; the message is one sentence."""


@dataclass(frozen=True)
class Location:
    """A checked warehouse location: ``path`` is an absolute local path or ``bucket/prefix``."""

    scheme: str  # file | s3 | gs
    path: str
    query: tuple[tuple[str, str], ...] = ()

    @property
    def remote(self) -> bool:
        return self.scheme != "file"

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0] if self.remote else ""

    @property
    def display(self) -> str:
        """The location for messages and logs (no credentials)."""
        if not self.remote:
            return self.path
        options = [(k, v) for k, v in self.query if k in ("region", "endpoint_override", "scheme")]
        return f"{self.scheme}://{self.path}" + (f"?{urlencode(options, safe=':/')}" if options else "")

    def option(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)


def parse_location(value: str | Path) -> Location:
    """A local folder (made absolute) or a ``file://``, ``s3://``, ``gs://`` URI; ValueError in one
    sentence naming the setting otherwise. Nothing is opened."""
    text = str(value).strip()
    if not text:
        raise ValueError(f"{SETTING} is empty: give a local folder or a file://, s3:// or gs:// URI")
    if "://" not in text:
        return Location("file", str(Path(text).expanduser().resolve()))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"{SETTING} {text!r} names the host {parts.netloc!r}: a file:// URI must be "
                             "file:///absolute/path (mount a network share and use its local path)")
        if parts.query:
            raise ValueError(f"{SETTING} {text!r} has options after '?', which a file:// URI does not take")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"{SETTING} {text!r} must be file:///absolute/path")
        return Location("file", str(Path(path).resolve()))
    if scheme not in REMOTE_SCHEMES:
        raise ValueError(f"{SETTING} {text!r} has the unknown scheme {scheme!r}: use a local folder or a "
                         "file://, s3:// or gs:// URI")
    userinfo, _, bucket = parts.netloc.rpartition("@")
    if userinfo:
        raise ValueError(f"{SETTING} must not carry credentials (user:secret@): set AWS_ACCESS_KEY_ID and "
                         "AWS_SECRET_ACCESS_KEY (or a profile) for S3, Google credentials for GCS")
    if not bucket:
        raise ValueError(f"{SETTING} {text!r} names no bucket: use {scheme}://bucket/prefix")
    prefix = unquote(parts.path).strip("/")
    return Location(REMOTE_SCHEMES[scheme], f"{bucket}/{prefix}" if prefix else bucket,
                    tuple(parse_qsl(parts.query, keep_blank_values=True)))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def env_value(env: Mapping[str, str], *names: str) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)


def pyarrow_uri(location: Location, env: Mapping[str, str]) -> str:
    """The URI handed to ``FileSystem.from_uri``. For S3 without a region or endpoint in the URI the
    region from ``AWS_REGION``/``AWS_DEFAULT_REGION`` is added (pyarrow would otherwise send a request
    to the bucket to find it), and ``allow_delayed_open`` unless the URI sets it: a file smaller than
    one part is then uploaded with a single PutObject at close instead of a multipart upload
    (create, part, complete), and errors such as a missing bucket show at that close."""
    if not location.remote:
        return location.path
    query = list(location.query)
    if location.scheme == "s3" and location.option("allow_delayed_open") is None:
        query.append(("allow_delayed_open", "true"))
    if (location.scheme == "s3" and location.option("region") is None and location.option("endpoint_override") is None
            and not env_value(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")):
        region = env_value(env, "AWS_REGION", "AWS_DEFAULT_REGION")
        if region:
            query.append(("region", region))
    return f"{location.scheme}://{location.path}" + (f"?{urlencode(query, safe=':/')}" if query else "")


def open_filesystem(location: Location, env: Mapping[str, str]) -> tuple[Any, str]:
    """(pyarrow filesystem, root path inside it); StorageError in one sentence when pyarrow refuses."""
    return _open_cached(location, tuple(sorted(env.items())))


@functools.lru_cache(maxsize=16)
def _open_cached(location: Location, env: tuple[tuple[str, str], ...]) -> tuple[Any, str]:
    import pyarrow as pa
    from pyarrow import fs as pafs

    if not location.remote:
        return pafs.LocalFileSystem(), location.path
    try:
        filesystem, path = pafs.FileSystem.from_uri(pyarrow_uri(location, dict(env)))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise StorageError(f"cannot open the warehouse at {location.display} ({first_line(exc)}); check "
                           f"{SETTING}, the network and the credentials") from exc
    return filesystem, path.rstrip("/")


@dataclass(frozen=True)
class DuckDBAccess:
    """How DuckDB reads a warehouse: path prefix, extensions to load, secret statements, fsspec filesystem."""

    prefix: str
    extensions: tuple[str, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)  # hold credentials: never logged
    fsspec: Any = None  # an fsspec filesystem to register on the connection (pyarrow PyFileSystem over fsspec)

    def setup_sql(self) -> list[str]:
        """The statements a DuckDB session runs before the views (``INSTALL``/``LOAD``, ``CREATE SECRET``)."""
        return [f"{verb} {name}" for name in self.extensions for verb in ("INSTALL", "LOAD")] + list(self.secrets)


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _endpoint(location: Location, env: Mapping[str, str]) -> tuple[str | None, bool]:
    """(host[:port] of a custom S3 endpoint such as MinIO, whether it uses TLS)."""
    override = location.option("endpoint_override")
    use_ssl = (location.option("scheme") or "https").lower() != "http"
    if override is None:
        url = env_value(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        if not url:
            return None, True
        parts = urlsplit(url if "://" in url else f"https://{url}")
        override, use_ssl = parts.netloc, parts.scheme.lower() != "http"
    elif "://" in override:
        parts = urlsplit(override)
        override, use_ssl = parts.netloc, parts.scheme.lower() != "http"
    return override, use_ssl


def s3_secret(location: Location, env: Mapping[str, str]) -> str:
    """``CREATE TEMPORARY SECRET`` for DuckDB's httpfs from the AWS variables and the URI options."""
    options: list[tuple[str, str]] = [("TYPE", "s3"), ("SCOPE", sql_literal(f"s3://{location.bucket}"))]
    key = env_value(env, "AWS_ACCESS_KEY_ID")
    secret = env_value(env, "AWS_SECRET_ACCESS_KEY")
    if key and secret:
        options += [("KEY_ID", sql_literal(key)), ("SECRET", sql_literal(secret))]
        token = env_value(env, "AWS_SESSION_TOKEN")
        if token:
            options.append(("SESSION_TOKEN", sql_literal(token)))
    else:  # profiles, SSO, instance roles: DuckDB's aws extension walks the same chain as pyarrow
        options.append(("PROVIDER", "credential_chain"))
    region = location.option("region") or env_value(env, "AWS_REGION", "AWS_DEFAULT_REGION")
    if region:
        options.append(("REGION", sql_literal(region)))
    endpoint, use_ssl = _endpoint(location, env)
    if endpoint:
        options += [("ENDPOINT", sql_literal(endpoint)), ("URL_STYLE", "'path'"),
                    ("USE_SSL", "true" if use_ssl else "false")]
    body = ", ".join(f"{k} {v}" for k, v in options)
    return f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} ({body})"


def gcs_secret(location: Location, env: Mapping[str, str]) -> str | None:
    """DuckDB reads gs:// through GCS's S3-compatible API with HMAC keys; None without them."""
    key = env_value(env, "TIKTOK_ASSETS_GCS_HMAC_KEY_ID")
    secret = env_value(env, "TIKTOK_ASSETS_GCS_HMAC_SECRET")
    if not (key and secret):
        return None
    return (f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} (TYPE gcs, SCOPE "
            f"{sql_literal(f'gs://{location.bucket}')}, KEY_ID {sql_literal(key)}, SECRET {sql_literal(secret)})")


def duckdb_access(filesystem: Any, root: str, location: Location | None, env: Mapping[str, str]) -> DuckDBAccess:
    """What DuckDB needs to read ``root`` of ``filesystem``: local paths as they are, ``s3://``/``gs://``
    through httpfs with a secret, an fsspec-backed pyarrow filesystem through DuckDB's fsspec support."""
    from pyarrow import fs as pafs

    if isinstance(filesystem, pafs.LocalFileSystem):
        return DuckDBAccess(root)
    kind = filesystem.type_name
    if kind in ("s3", "gcs"):
        scheme = "s3" if kind == "s3" else "gs"
        secret = None
        if location is not None and location.remote:
            secret = s3_secret(location, env) if scheme == "s3" else gcs_secret(location, env)
        return DuckDBAccess(f"{scheme}://{root.strip('/')}", ("httpfs",), (secret,) if secret else ())
    handler = getattr(filesystem, "handler", None)
    inner = getattr(handler, "fs", None)
    if inner is not None:
        protocol = inner.protocol if isinstance(inner.protocol, str) else inner.protocol[0]
        return DuckDBAccess(f"{protocol}://{root.strip('/')}", fsspec=inner)
    raise StorageError(f"DuckDB cannot read a pyarrow {kind!r} filesystem: use a local folder, s3:// or gs://")


def load_extensions(con: Any, names: Iterable[str], where: str) -> None:
    """``LOAD`` each extension, installing it first when it is missing; StorageError in one sentence
    when it can be neither loaded nor downloaded (an offline machine)."""
    import duckdb

    for name in names:
        try:
            con.execute(f"LOAD {name}")
            continue
        except duckdb.Error:
            pass
        try:
            con.execute(f"INSTALL {name}")
            con.execute(f"LOAD {name}")
        except duckdb.Error as exc:
            raise StorageError(
                f"DuckDB cannot read the warehouse at {where}: its {name} extension is not installed and could "
                f"not be installed here ({first_line(exc)}); run `INSTALL {name};` in DuckDB once with network "
                f"access, or copy {name}.duckdb_extension into ~/.duckdb/extensions/v{duckdb.__version__}/<platform>/"
            ) from exc
