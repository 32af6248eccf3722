"""Regenerate the bundled catalog snapshot (kb/data/catalog.json) from the real source documents."""

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kb.importers.build_page import BuildTableError
from kb.importers.documents import DocumentError, read_document
from kb.importers.fix_list import FixListError, parse_fix_list
from kb.services import (
    SNAPSHOT_PATH,
    SOURCE_KIND_BY_FORMAT,
    CatalogImportError,
    parse_catalog_document,
    snapshot_build,
)

# Where each shared/data file comes from (shared/data/SOURCES.md); kept as provenance in the snapshot.
CATALOG_SOURCES = (
    (
        "catalog/ExchangeBuildNumbers.csv",
        "github.com/microsoft/Get-ExchangeBuildNumber@a2c819b81a8f/ExchangeBuildNumbers.csv",
        date(2026, 8, 19),
    ),
    (
        "catalog/build-numbers-and-release-dates.md",
        "github.com/MicrosoftDocs/OfficeDocs-Exchange@316f63a69349/Exchange/ExchangeServer/new-features/"
        "build-numbers-and-release-dates.md (learn.microsoft.com: Exchange Server build numbers and release dates)",
        date(2022, 4, 27),
    ),
)
# Bundled with the project (kb/data/sources/README.md): notes of other Microsoft sources, which never override.
BUNDLED_SOURCES = (
    (
        Path(__file__).resolve().parents[2] / "data" / "sources" / "known-discrepancies.csv",
        "Builds one Microsoft source gives differently from the build-number page (2016 CU8 Mar21SU as 15.1.1415.8)",
        date(2026, 11, 25),
    ),
)
# Bundled fix lists (kb/data/sources/README.md), read after those of shared/data.
BUNDLED_FIX_LISTS = (
    (
        Path(__file__).resolve().parents[2] / "data" / "sources" / "kb960775-exchange-2007-sp1-rollup-8.txt",
        "Exchange 2007 SP1 Update Rollup 8 (KB968012) carries KB960775, a fix not to be missed where Outlook 2003 "
        "clients before SP3 send large messages; a description of the fix from the Exchange patching guidance this "
        "product was specified from, not the KB article's title",
        date(2026, 11, 25),
    ),
)
FIX_LIST_SOURCES = (
    (
        "announcements/2011-06-22-exchange-2010-sp1-rollup-4-released.md",
        "github.com/JohanVeldhuis/johanveldhuis.github.io@c19216eaf9e6/_posts/2011-06-22-exchange-2010-sp1-rollup-4-released.md",
        date(2021, 3, 30),
    ),
    (
        "announcements/2012-05-30-exchange-2010-sp2-rollup-3-released.md",
        "github.com/JohanVeldhuis/johanveldhuis.github.io@c19216eaf9e6/_posts/2012-05-30-exchange-2010-sp2-rollup-3-released.md",
        date(2021, 3, 30),
    ),
    (
        "announcements/2012-01-exchange-2007-sp3-rollup-6-released.txt",
        "Announcement of Exchange 2007 SP3 Update Rollup 6 (KB2608656), January 2012, as quoted in the design document "
        "ExchangePatch was first specified from: its 21 fixes, the Forefront note and the statement that rollups are "
        "cumulative",
        None,
    ),
)


class Command(BaseCommand):
    help = (
        "Rebuild kb/data/catalog.json from ../shared/data: the Get-ExchangeBuildNumber CSV and Microsoft's build-number "
        "page merged by authority per field (the page's KB links, the CSV's builds and dates); every disagreement is "
        "kept as a conflict."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--data",
            type=Path,
            default=Path(settings.BASE_DIR).parent / "shared" / "data",
            help="the shared/data folder",
        )
        parser.add_argument("--output", type=Path, default=SNAPSHOT_PATH)

    def handle(self, *args, data: Path, output: Path, **options):
        try:
            tables = []
            for relative, location, document_date in CATALOG_SOURCES:
                document = replace(read_document(str(data / relative)), location=location)
                fmt, table = parse_catalog_document(document)
                tables.append((document, SOURCE_KIND_BY_FORMAT[fmt], table, document_date))
            for path, location, document_date in BUNDLED_SOURCES:
                document = replace(read_document(str(path)), location=location)
                _fmt, table = parse_catalog_document(document)
                tables.append((document, "build_notes", table, document_date))
            fix_lists = []
            fix_sources = [(data / relative, location, when) for relative, location, when in FIX_LIST_SOURCES]
            for path, location, document_date in [*fix_sources, *BUNDLED_FIX_LISTS]:
                document = replace(read_document(str(path)), location=location)
                fix_lists.append((document, parse_fix_list(document.text, name=document.name), document_date))
            snapshot = snapshot_build(tables, fix_lists)
        except (DocumentError, BuildTableError, CatalogImportError, FixListError) as error:
            raise CommandError(str(error)) from None
        output.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        self.stdout.write(
            f"{output}: {len(snapshot['entries'])} entries, {len(snapshot['conflicts'])} conflicts, "
            f"{sum(len(f['fixes']) for f in snapshot['fixes'])} fixes from {len(snapshot['sources'])} sources"
        )
