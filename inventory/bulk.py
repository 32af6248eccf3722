"""Insert many plain rows without model instances: COPY on PostgreSQL, executemany elsewhere.

Django's bulk_create builds a model per row and, on SQLite, splits batches by its parameter limit; a scan writes
100,000 rows, so the hot path uses the database's own bulk path and a query count that does not grow with rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


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
