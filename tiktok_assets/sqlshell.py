"""Read-only SQL over the warehouse: one query, or an interactive shell reading standard input.

The connection is an in-memory DuckDB database holding the warehouse views; the catalog file is
not opened, and only reading statements (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) run.
COPY ... TO, ATTACH, CREATE/DROP, INSTALL/LOAD, SET and PRAGMA are refused, so SQL cannot
overwrite warehouse files or change the catalog. Queries can still *read* any local file the user
can read (``read_csv('/path')``), like any SQL client.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from .config import Settings

READ_STATEMENTS = ("SELECT", "EXPLAIN")


class SqlError(ValueError):
    """A refused or failed statement; the message is one sentence."""


def open_readonly(settings: Settings):
    """An in-memory DuckDB connection with every warehouse view, configuration locked."""
    from .catalog import connect

    con = connect(settings)
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET lock_configuration = true")
    return con


def check_read_only(con, query: str) -> None:
    """Raise :class:`SqlError` unless every statement in ``query`` only reads."""
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise SqlError(f"SQL failed: {str(exc).splitlines()[0]}") from exc
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_STATEMENTS:
            raise SqlError(
                f"refusing a {kind} statement: `tiktok-assets sql` only reads (SELECT, WITH, DESCRIBE, "
                "SHOW, SUMMARIZE, EXPLAIN); the warehouse is written only by the pipeline"
            )


def run_query(con, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Check and run ``query``; returns (column names, rows) of its last statement."""
    import duckdb

    check_read_only(con, query)
    try:
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        rows = cursor.fetchall() if columns else []
    except duckdb.Error as exc:
        raise SqlError(f"SQL failed: {exc}") from exc
    return columns, rows


def shell(con, render: Callable[[list[str], list[tuple[Any, ...]]], str],
          stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Read statements ending in ``;`` from ``stdin`` and print each result; returns the error count.

    ``.tables`` lists the views, ``.quit`` (or end of input) leaves. A prompt is shown only when
    standard input is a terminal.
    """
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    interactive = stdin.isatty()
    if interactive:
        out.write("tiktok-assets SQL (read-only). End statements with ';', `.tables` lists tables, "
                  "`.quit` leaves.\n")
    errors = 0
    buffer: list[str] = []
    while True:
        if interactive:
            out.write("sql> " if not buffer else "...> ")
            out.flush()
        line = stdin.readline()
        if not line:
            break
        stripped = line.strip()
        if not buffer and stripped in (".quit", ".exit", "\\q"):
            break
        if not buffer and stripped == ".tables":
            line, stripped = "SHOW TABLES;", "SHOW TABLES;"
        if not buffer and not stripped:
            continue
        buffer.append(line)
        if not stripped.endswith(";"):
            continue
        query, buffer = "".join(buffer), []
        try:
            columns, rows = run_query(con, query)
        except SqlError as exc:
            errors += 1
            out.write(f"error: {exc}\n")
            continue
        if columns:
            out.write(render(columns, rows) + "\n")
        out.flush()
    if buffer and "".join(buffer).strip():
        try:
            columns, rows = run_query(con, "".join(buffer))
            if columns:
                out.write(render(columns, rows) + "\n")
        except SqlError as exc:
            errors += 1
            out.write(f"error: {exc}\n")
    return errors
