"""Catalog benchmarks: import both real sources (target < 2 s) and engine resolution (target >= 50,000 builds/s)."""

import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import SHARED_DATA, django_setup, timed


def main() -> None:
    django_setup()
    from kb.engine.builds import Build, BuildForm, ParsedBuild
    from kb.importers.documents import read_document
    from kb.selectors import catalog_get
    from kb.services import catalog_import_document, catalog_load_snapshot

    results: dict[str, float] = {}
    if SHARED_DATA.exists():
        csv = read_document(str(SHARED_DATA / "catalog" / "ExchangeBuildNumbers.csv"))
        page = read_document(str(SHARED_DATA / "catalog" / "build-numbers-and-release-dates.md"))
        with timed("import both real sources (parse + merge + write)", results):
            catalog_import_document(document=csv)
            catalog_import_document(document=page)
    else:
        print("../shared/data is absent: skipping the import benchmark, loading the bundled snapshot instead")
    with timed("catalog_load (bundled snapshot + rules)", results):
        catalog_load_snapshot()

    catalog = catalog_get()
    rng = random.Random(7)
    known = [entry.build for entry in catalog.entries]
    builds = [
        ParsedBuild(rng.choice(known), BuildForm.SHORT)
        if rng.random() < 0.7
        else ParsedBuild(Build(15, rng.randint(0, 2), rng.randint(500, 2600), rng.randint(0, 60)), BuildForm.LONG)
        for _ in range(200_000)
    ]
    on = date(2026, 11, 25)
    start = time.perf_counter()
    for parsed in builds:
        catalog.resolve(parsed, today=on)
    elapsed = time.perf_counter() - start

    for label, seconds in results.items():
        print(f"{label}: {seconds:.3f} s  (target < 2 s)")
    print(f"engine resolution: {len(builds) / elapsed:,.0f} builds/s over {len(builds):,} builds  (target >= 50,000/s)")


if __name__ == "__main__":
    main()
