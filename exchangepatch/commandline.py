"""Run a management command; a database that was never migrated gets "run `manage.py migrate` first", not a traceback."""

from __future__ import annotations

import sys

from django.core.management import execute_from_command_line
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections


def execute(argv: list[str]) -> None:
    """Django's command line, with one answer for every command that touches tables that do not exist yet.

    It acts on the error rather than checking first, so commands that need no database (help, check,
    catalog_snapshot, makemigrations) cost no query, and a real database error on a migrated database is raised
    as it is.
    """
    try:
        execute_from_command_line(argv)
    except DatabaseError:
        pending = unapplied_migrations()
        if not pending:
            raise
        name = argv[1] if len(argv) > 1 else "the command"
        sys.stderr.write(
            f"CommandError: {name}: the database is not migrated ({pending}): run `manage.py migrate` first\n"
        )
        sys.exit(1)


def unapplied_migrations(alias: str = DEFAULT_DB_ALIAS) -> str | None:
    """ "3 unapplied migration(s)" or "no migrations applied"; None when the database is up to date or unreachable."""
    from django.db.migrations.executor import MigrationExecutor

    connection = connections[alias]
    try:
        connection.close()  # a failed transaction (PostgreSQL) would refuse the check's own query
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        applied = executor.loader.applied_migrations
    except DatabaseError:
        return None  # the database cannot be reached at all: the original error says more
    if not plan:
        return None
    return "no migrations applied" if not applied else f"{len(plan)} unapplied migration(s)"
