"""Copy a SQLite installation into an empty PostgreSQL database (``widget-server migrate``).

Both schemas are brought to the newest migration first (the SQLite file by its own runner,
the PostgreSQL database by ``pg_schema``). The copy then runs in ONE transaction: every table
of the PostgreSQL schema, parents before children (from the foreign keys), rows in primary
key order through ``COPY``; identity sequences set past the highest id; the row count of
every table compared with the source. Any difference, or a target that holds data already,
rolls everything back. SQLite's own search tables (FTS5) are not copied: PostgreSQL searches
with expression indexes built as the rows arrive.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import asyncpg

from widget_server.store import pg_schema, sqlite_schema

BATCH = 5000
# rows the migrations themselves insert (a singleton state row): replaced by the source's
SEEDED = {"message_index_state"}


class ImportRefused(Exception):
    """The copy cannot start or does not verify; the target keeps what it held."""


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int


async def copy_sqlite_to_postgresql(source: str, target: str,
                                    progress: Callable[[Copied], None] = lambda _c: None
                                    ) -> list[Copied]:
    """Copy the SQLite file ``source`` into the PostgreSQL database ``target``; return the
    row count of every table copied (verified equal on both sides)."""
    with contextlib.closing(sqlite_schema.connect(source)) as lite:
        lite_version = sqlite_schema.migrate(lite)
        conn = await asyncpg.connect(target)
        try:
            await _refuse_data(conn)
            pg_version = await pg_schema.migrate(conn)
            if pg_version != lite_version:
                raise ImportRefused(
                    f"the schemas differ: SQLite is at migration {lite_version}, PostgreSQL at "
                    f"{pg_version}; use the same widget-server release for both")
            async with conn.transaction():
                await conn.execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                await _refuse_data(conn)  # again, now that nobody can start meanwhile
                copied = []
                for table in await _tables_in_order(conn):
                    copied.append(await _copy_table(lite, conn, table))
                    progress(copied[-1])
                await _reset_identities(conn)
                await _verify(lite, conn, copied)
            return copied
        finally:
            await conn.close()


async def _refuse_data(conn: asyncpg.Connection) -> None:
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
    for row in tables:
        name = row["table_name"]
        if name in SEEDED or name == "schema_migrations":
            continue
        if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{name}")'):
            raise ImportRefused(f"the target database is not empty (table {name} has rows); "
                                "migrate into a new, empty database")


async def _tables_in_order(conn: asyncpg.Connection) -> list[str]:
    """The schema's tables, each after every table it references."""
    names = [row["table_name"] for row in await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'"
        " ORDER BY table_name")]
    edges = await conn.fetch(
        "SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'f' AND n.nspname = current_schema()")
    parents: dict[str, set[str]] = {name: set() for name in names}
    for edge in edges:
        child, parent = edge["child"].strip('"'), edge["parent"].strip('"')
        if child in parents and parent != child:
            parents[child].add(parent)
    ordered: list[str] = []
    placed: set[str] = set()

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in placed or name in path:  # a cycle: its order is left to the row order
            return
        for parent in sorted(parents.get(name, ())):
            place(parent, (*path, name))
        placed.add(name)
        ordered.append(name)

    for name in names:
        place(name, ())
    return ordered


async def _columns(conn: asyncpg.Connection, table: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1"
        " AND is_generated = 'NEVER' ORDER BY ordinal_position", table)
    return [(row["column_name"], row["data_type"]) for row in rows]


def _converter(data_type: str) -> Callable[[object], object]:
    if data_type in {"bigint", "integer", "smallint"}:
        return lambda value: None if value is None else int(value)  # type: ignore[call-overload]
    if data_type in {"double precision", "real", "numeric"}:
        return lambda value: None if value is None else float(value)  # type: ignore[arg-type]
    if data_type == "bytea":
        return lambda value: None if value is None else bytes(value)  # type: ignore[call-overload]
    return lambda value: value if value is None or isinstance(value, str) else str(value)


def _sqlite_columns(lite: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in lite.execute(f'PRAGMA table_info("{table}")')]


Rows = list[tuple[object, ...]]


def _source_rows(lite: sqlite3.Connection, table: str, columns: list[str],
                 converters: list[Callable[[object], object]]) -> Iterator[Rows]:
    key = [row[1] for row in sorted(lite.execute(f'PRAGMA table_info("{table}")'),
                                    key=lambda row: row[5]) if row[5]]
    order = ", ".join(f'"{name}"' for name in key) if key else "rowid"
    listed = ", ".join(f'"{name}"' for name in columns)
    cursor = lite.execute(f'SELECT {listed} FROM "{table}" ORDER BY {order}')
    while rows := cursor.fetchmany(BATCH):
        yield [tuple(convert(value) for convert, value in zip(converters, row, strict=True))
               for row in rows]


async def _copy_table(lite: sqlite3.Connection, conn: asyncpg.Connection,
                      table: str) -> Copied:
    source_columns = set(_sqlite_columns(lite, table))
    if not source_columns:
        raise ImportRefused(f"the SQLite file has no table {table}")
    target = await _columns(conn, table)
    missing = [name for name, _ in target if name not in source_columns]
    if missing:
        raise ImportRefused(f"the SQLite table {table} lacks the columns {missing}")
    if table in SEEDED:
        await conn.execute(f'DELETE FROM "{table}"')
    names = [name for name, _ in target]
    converters = [_converter(data_type) for _, data_type in target]
    # COPY is binary, and types of extensions (citext) have no binary codec in asyncpg: the
    # tables with such a column are inserted with those values cast from text
    plain = all(data_type != "USER-DEFINED" for _, data_type in target)
    insert = 'INSERT INTO "{}" ({}) VALUES ({})'.format(
        table, ", ".join(f'"{name}"' for name in names),
        ", ".join(f"${n}::text" if data_type == "USER-DEFINED" else f"${n}"
                  for n, (_, data_type) in enumerate(target, start=1)))
    count = 0
    for batch in _source_rows(lite, table, names, converters):
        if plain:
            await conn.copy_records_to_table(table, records=batch, columns=names)
        else:
            await conn.executemany(insert, batch)
        count += len(batch)
    return Copied(table, count)


async def _reset_identities(conn: asyncpg.Connection) -> None:
    """Every identity column's sequence continues after the highest id copied."""
    columns = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'")
    for row in columns:
        table, column = row["table_name"], row["column_name"]
        highest = await conn.fetchval(f'SELECT MAX("{column}") FROM "{table}"')
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence($1, $2), $3, $4)",
            f'"{table}"', column, highest or 1, highest is not None)


async def _verify(lite: sqlite3.Connection, conn: asyncpg.Connection,
                  copied: list[Copied]) -> None:
    for entry in copied:
        source = lite.execute(f'SELECT COUNT(*) FROM "{entry.table}"').fetchone()[0]
        target = await conn.fetchval(f'SELECT COUNT(*) FROM "{entry.table}"')
        if not source == target == entry.rows:
            raise ImportRefused(f"table {entry.table}: {source} rows in SQLite, {target} in "
                                "PostgreSQL; nothing was kept")
