"""Every command run against a database that was never migrated says so, and how to fix it, instead of a traceback."""

import os
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Invented server list for servers_import.
SERVERS_CSV = "fqdn,build\nmbx01.contoso.example,15.2.1544.4\n"


def manage(tmp_path, *args, database):
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["EXCHANGEPATCH_SQLITE_PATH"] = str(database)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("build_info", "8.3.245.2"),
        ("catalog_load",),
        ("fixes_import", "fixes.txt", "--update", "KB2608656"),
        ("servers_import", "servers.csv"),
        ("scan",),
        ("compliance_report",),
        ("missing_fix", "KB960775"),
        ("rollout", "--all"),
    ],
    ids=lambda args: args[0],
)
def test_a_command_on_an_unmigrated_database_says_run_migrate_first(tmp_path, args):
    database = tmp_path / "never-migrated.sqlite3"
    (tmp_path / "servers.csv").write_text(SERVERS_CSV)
    (tmp_path / "fixes.txt").write_text("· KB9100001 Invented fix\n")  # invented

    result = manage(tmp_path, *args, database=database)

    assert result.returncode == 1
    assert result.stderr == (
        f"CommandError: {args[0]}: the database is not migrated (no migrations applied): run `manage.py migrate` first\n"
    )
    assert "Traceback" not in result.stdout + result.stderr
    tables = sqlite3.connect(database).execute("select name from sqlite_master where type = 'table'").fetchall()
    assert tables == []  # nothing was created on the way


def test_a_partly_migrated_database_counts_what_is_missing(tmp_path):
    database = tmp_path / "old.sqlite3"
    assert manage(tmp_path, "migrate", "kb", "0001", database=database).returncode == 0

    result = manage(tmp_path, "build_info", "8.3.245.2", database=database)

    assert result.returncode == 1
    assert result.stderr.startswith("CommandError: build_info: the database is not migrated (")
    assert "unapplied migration(s)): run `manage.py migrate` first" in result.stderr


def test_commands_that_need_no_database_still_run(tmp_path):
    result = manage(tmp_path, "check", database=tmp_path / "none.sqlite3")

    assert result.returncode == 0, result.stderr
