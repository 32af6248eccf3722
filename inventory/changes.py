"""Record changes for the feed inside the writer's transaction, serialised so that seq order is commit order."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.utils import timezone

from inventory.bulk import json_text, rows_insert
from inventory.models import Change

# Any constant: the advisory lock every feed writer takes until it commits (PostgreSQL; SQLite writers are serial).
FEED_LOCK = 8_150_413


def changes_record(rows: Iterable[tuple[str, int, str, str, dict | str | None]]) -> int:
    """rows: (kind, object_id, key, action, data). Call inside the transaction that made the change. `data` is a
    dict, None, or already JSON text (a scan serialises each distinct change once, not once per server)."""
    now = timezone.now()
    items = [
        (kind, object_id, key, action, data if data is None or isinstance(data, str) else json_text(data), now)
        for kind, object_id, key, action, data in rows
    ]
    return changes_record_prepared(items)


def changes_record_prepared(items: list[tuple[str, int, str, str, str | None, datetime]]) -> int:
    """items: (kind, object_id, key, action, data as JSON text or None, created), as a writer of many rows (a scan)
    makes them, without a second pass over every row."""
    if not items:
        return 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FEED_LOCK])
    rows_insert(Change, ("kind", "object_id", "key", "action", "data", "created"), items)
    return len(items)
