"""Run every benchmark and print its figures (make bench). Sizes are smaller on SQLite; PostgreSQL via DATABASE_URL."""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    on_postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    runs = [
        ["catalog.py"],
        ["rollout.py"],
        ["scan.py"]
        + (["--curve"] if on_postgres else ["--servers", "20000", "--naive-sample", "500", "--waivers", "1000"]),
        ["sync.py"] + (["--estate", "10000"] if on_postgres else ["--items", "2000"]),
        ["sync.py"] + (["--estate", "300000"] if on_postgres else ["--items", "2000", "--estate", "20000"]),
        ["import.py"] + ([] if on_postgres else ["--rows", "20000"]),
        ["portal.py"] + ([] if on_postgres else ["--servers", "20000"]),
        ["reads.py", "--load"] + ([] if on_postgres else ["--servers", "20000"]),
        ["jobs.py"] + ([] if on_postgres else ["--servers", "20000", "--notify", "2000"]),
    ]
    failed = 0
    for script, *args in runs:
        if not (HERE / script).exists():
            continue
        print(f"== bench/{script} {' '.join(args)}".rstrip(), flush=True)
        failed |= subprocess.call([sys.executable, str(HERE / script), *args])
    if not on_postgres:
        print("(SQLite sizes; the targets are stated for PostgreSQL: DATABASE_URL=postgres://… make bench)")
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
