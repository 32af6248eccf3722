"""Insert and update many plain rows without model instances: COPY on PostgreSQL, executemany elsewhere.

Django's bulk_create builds a model per row and, on SQLite, splits batches by its parameter limit; bulk_update writes
every listed column of every row through CASE expressions. A scan writes 100,000 rows and a sync 10,000, so the hot
paths use the database's own bulk paths, with a query count that does not grow with the rows.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import orjson
from django.db import connection, models
from django.db.models import Field, ForeignObject, Lookup


def json_text(value: object) -> str:
    """JSON text for a COPY or executemany row (a JSON column, a feed document): orjson, a tenth of json.dumps's time
    for the 100,000 documents of an import; the database stores jsonb, so the compact spelling changes nothing."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def rows_insert(model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple]) -> None:
    if not rows:
        return
    table = model._meta.db_table
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(columns))
        # One statement executed for every row: the query count does not grow with the rows.
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", rows)


def rows_insert_new(model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple], *, key: str) -> dict:
    """Insert the rows that violate no unique constraint and skip the others (INSERT … ON CONFLICT DO NOTHING);
    returns {key value: primary key} of the rows this call inserted.

    A concurrent writer inserting the same key makes this one wait for its commit and then skip the row, so two
    writers creating the same rows never fail; the caller treats the skipped ones as stored. Rows are inserted in
    the order given: callers sort them by key so that concurrent writers take the index locks in the same order.
    """
    if not rows:
        return {}
    table = model._meta.db_table
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    pk, quoted_key = connection.ops.quote_name(model._meta.pk.column), connection.ops.quote_name(key)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            staged = _stage(cursor, table, columns, rows)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {staged} ORDER BY _order "
                f"ON CONFLICT DO NOTHING RETURNING {quoted_key}, {pk}"
            )
            return dict(cursor.fetchall())
        # SQLite runs one writer at a time (transaction_mode IMMEDIATE), so no row can be skipped for a concurrent
        # insert: the rows found by key afterwards are the ones inserted here.
        placeholders = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders}) ON CONFLICT DO NOTHING", rows)
        values = [row[list(columns).index(key)] for row in rows]
        found = {}
        for start in range(0, len(values), 10_000):
            chunk = values[start : start + 10_000]
            cursor.execute(
                f"SELECT {quoted_key}, {pk} FROM {table} WHERE {quoted_key} IN ({', '.join(['%s'] * len(chunk))})",
                chunk,
            )
            found.update(cursor.fetchall())
        return found


def rows_insert_copied(model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple], *, key: str) -> dict:
    """rows_insert_new for rows that should not exist yet: {key value: primary key} of every row. On PostgreSQL a
    row whose key exists, or is being inserted by another writer, fails the statement (IntegrityError, unique
    violation: a sync runs again) instead of being skipped.

    The primary keys are drawn from the table's sequence in one query and the rows COPYed straight into the table,
    without the temporary table and INSERT … SELECT … ON CONFLICT of rows_insert_new. Elsewhere: rows_insert_new.
    """
    if not rows or connection.vendor != "postgresql":
        return rows_insert_new(model, columns, rows, key=key)
    table = model._meta.db_table
    pk = model._meta.pk.column
    names = ", ".join(connection.ops.quote_name(column) for column in (pk, *columns))
    position = list(columns).index(key)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, pk, len(rows)]
        )
        ids = [pk_value for (pk_value,) in cursor.fetchall()]
        # Django's IntegrityError (a unique violation: the sync is run again), as execute() raises it.
        with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for pk_value, row in zip(ids, rows, strict=True):
                copy.write_row((pk_value, *row))
    return {row[position]: pk_value for pk_value, row in zip(ids, rows, strict=True)}


def rows_update(model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Set `columns` (and only those) of the rows whose primary key is each row's first value."""
    if not rows:
        return
    table = model._meta.db_table
    key = model._meta.pk.column
    quoted = [connection.ops.quote_name(column) for column in columns]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            staged = _stage(cursor, table, (key, *columns), rows)
            assignments = ", ".join(f"{name} = _new.{name}" for name in quoted)
            quoted_key = connection.ops.quote_name(key)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {staged} AS _new WHERE {table}.{quoted_key} = _new.{quoted_key}"
            )
            return
        assignments = ", ".join(f"{name} = %s" for name in quoted)
        cursor.executemany(
            f"UPDATE {table} SET {assignments} WHERE {connection.ops.quote_name(key)} = %s",
            [(*row[1:], row[0]) for row in rows],
        )


def _stage(cursor, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> str:
    """COPY the rows into a temporary table shaped like `columns` of `table` (dropped at commit), numbered in the
    order given; returns its name. COPY is the fast way in: psycopg dumps a COPY row in C, arrays in Python."""
    staged = connection.ops.quote_name(f"_staged_{table}")
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{staged}")  # an earlier call in this transaction
    cursor.execute(
        f"CREATE TEMPORARY TABLE {staged} ON COMMIT DROP AS SELECT {names}, 0 AS _order FROM {table} WITH NO DATA"
    )
    with cursor.cursor.copy(f"COPY {staged} ({names}, _order) FROM STDIN") as copy:
        for order, row in enumerate(rows):
            copy.write_row((*row, order))
    return staged


class AnyOf(Lookup):
    """`field__any=values`: the values as one array parameter (PostgreSQL `= ANY(%s)`, SQLite `json_each`).

    `field__in` binds one parameter per value: for 10,000 FQDNs Django resolves each and psycopg parses a statement
    of 10,000 placeholders, about 0.3 s per query before the database sees it; this costs a few milliseconds.
    """

    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self):
        return list(self.rhs)

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*params, self.rhs]
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*params, json.dumps(self.rhs)]


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # foreign keys look up only their own class's lookups


@contextmanager
def fewer_collections(young: int = 50_000) -> Iterator[None]:
    """Fewer cyclic garbage collections while many short-lived rows are made: the objects that exist already are
    frozen (not traversed again), and the youngest generation is collected every `young` allocations instead of 700.

    An import of 100,000 rows otherwise spends about a fifth of its time in the collector (2.7 to 3.1 s of 12 to
    14 s, measured with gc.callbacks), most of it traversing objects that were alive before it began. Everything is
    restored on the way out; the garbage made meanwhile is collected then as usual. The settings are the process's:
    for single-threaded commands (servers_import), not for a web worker serving requests in threads.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(young, threshold[0]), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
