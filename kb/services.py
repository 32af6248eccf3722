"""Writes to the catalog: imports, snapshot load, rules load; each one transaction."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from kb.engine.builds import PRODUCT_ORDER, PRODUCTS
from kb.engine.catalog import (
    Catalog,
    CatalogEntry,
    InvalidKBError,
    disagreement_to_dict,
    entry_from_dict,
    entry_to_dict,
    normalize_kb,
)
from kb.engine.merge import BUILD_CSV, BUILD_PAGE, Conflict, MergeResult, merge_rows
from kb.engine.names import UpdateChoiceError, updates_for_document
from kb.importers.build_csv import parse_build_csv
from kb.importers.build_page import ParsedTable, parse_build_page
from kb.importers.documents import Document, detect_catalog_format
from kb.importers.fix_list import FixList, FixListError, parse_fix_list
from kb.models import CatalogConflict, CatalogSource, Fix, Level, Product, Rule, Update, UpdateFix
from kb.selectors import catalog_entries, identity_key

DATA_DIR = Path(__file__).resolve().parent / "data"
SNAPSHOT_PATH = DATA_DIR / "catalog.json"
RULES_PATH = DATA_DIR / "rules.json"

SOURCE_KIND_BY_FORMAT = {"markdown": "build_page_markdown", "html": "build_page_html", "csv": "build_csv"}
# The engine's authority per field knows two kinds of build source (kb.engine.merge.FIELD_AUTHORITY).
AUTHORITY_KIND = {"build_page_markdown": BUILD_PAGE, "build_page_html": BUILD_PAGE, "build_csv": BUILD_CSV}


def source_kinds(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Source name → the engine's kind of source, for every stored source and the ones being imported."""
    stored = dict(CatalogSource.objects.values_list("name", "kind"))
    return {name: AUTHORITY_KIND.get(kind, kind) for name, kind in (stored | (extra or {})).items()}


class CatalogImportError(ValueError):
    """An import cannot proceed; nothing was written."""


@dataclass(slots=True)
class ImportReport:
    source: str
    format: str
    counts: dict[str, int]
    conflicts: list[Conflict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False


def parse_catalog_document(document: Document, fmt: str = "auto") -> tuple[str, ParsedTable]:
    fmt = detect_catalog_format(document) if fmt == "auto" else fmt
    if fmt == "csv":
        return fmt, parse_build_csv(document.text, source=document.name)
    if fmt in {"html", "markdown"}:
        return fmt, parse_build_page(document.text, source=document.name, fmt=fmt)
    raise CatalogImportError(f"--format: unknown format {fmt!r} (auto, html, markdown or csv)")


def catalog_import_document(
    *, document: Document, fmt: str = "auto", dry_run: bool = False, document_date: date | None = None
) -> ImportReport:
    """Parse a build-number document and merge it into the catalog in one transaction."""
    fmt, table = parse_catalog_document(document, fmt)
    with transaction.atomic():
        merged = merge_rows(
            catalog_entries(), table.rows, kinds=source_kinds({document.name: SOURCE_KIND_BY_FORMAT[fmt]})
        )
        if not dry_run:
            source = _source_upsert(document, kind=SOURCE_KIND_BY_FORMAT[fmt], document_date=document_date)
            _entries_write(merged, source)
    return ImportReport(document.name, fmt, merged.counts(), merged.conflicts, table.skipped, table.warnings, dry_run)


def _source_upsert(document: Document, *, kind: str, document_date: date | None) -> CatalogSource:
    modified = document.last_modified.date() if document.last_modified and document_date is None else document_date
    source, _ = CatalogSource.objects.update_or_create(
        name=document.name,
        defaults={
            "kind": kind,
            "location": document.location,
            "sha256": document.sha256,
            "document_date": modified,
            "imported_at": timezone.now(),
        },
    )
    return source


def _entries_write(merged: MergeResult, source: CatalogSource) -> None:
    changed = set(merged.created) | set(merged.updated) | set(merged.unchanged)
    entries = [merged.entries[identity] for identity in changed]
    sources = {source.name: source} | {s.name: s for s in CatalogSource.objects.all()}
    entries_upsert(entries, sources=sources, default_source=source)
    conflicts_record(merged.conflicts)
    _conflicts_complete([merged.entries[identity] for identity in merged.created])


def _conflicts_complete(created: list[CatalogEntry]) -> None:
    """A row refused earlier (its build contradicted its name) was recorded with nothing kept; now that another
    source created the update, the conflict names the value the catalog keeps."""
    by_key = {identity_key(entry.identity): entry for entry in created}
    pending = list(CatalogConflict.objects.filter(kept_value="", identity_key__in=by_key))
    updates = {
        row.identity_key: row for row in Update.objects.filter(identity_key__in=[c.identity_key for c in pending])
    }
    for conflict in pending:
        entry = by_key[conflict.identity_key]
        value = getattr(entry, conflict.field, None)
        conflict.kept_value = "" if value is None else str(value)
        conflict.kept_source = entry.source_of(conflict.field) or ""
        conflict.update = updates.get(conflict.identity_key)
    CatalogConflict.objects.bulk_update(pending, ["kept_value", "kept_source", "update"])


def entries_upsert(
    entries: list[CatalogEntry], *, sources: dict[str, CatalogSource], default_source: CatalogSource
) -> tuple[int, int]:
    """Create or update Update rows (and their products and levels) by natural identity, in bulk."""
    products = _products_ensure()
    levels = _levels_ensure(entries, products)
    existing = {
        row.identity_key: row
        for row in Update.objects.filter(identity_key__in=[identity_key(e.identity) for e in entries])
    }
    to_create = []
    to_update: dict[tuple[str, ...], list[Update]] = defaultdict(list)  # by the fields that changed
    for entry in entries:
        key = identity_key(entry.identity)
        row = existing.get(key) or Update(identity_key=key)
        before = _update_state(row) if row.pk else None
        origin = next((sources[name] for name in entry.sources if name in sources), default_source)
        row.product = products[entry.product]
        row.level = levels[(entry.product, entry.level)]
        row.kind = entry.kind.value
        row.name = entry.name or ""
        row.number = entry.number
        row.label = entry.label or ""
        row.revision = entry.revision
        row.kb = entry.kb or ""
        row.release_date = entry.release_date
        row.is_month_only_date = entry.is_month_only_date
        row.is_security = entry.is_security
        row.is_recalled = entry.is_recalled
        row.alternate_builds = [{"build": a.build.short, "source": a.source} for a in entry.alternate_builds]
        row.source_names = list(entry.sources)
        row.field_sources = dict(entry.field_sources)
        row.disagreements = [disagreement_to_dict(item) for item in entry.disagreements]
        if row.pk is None:
            row.source = origin
        row.set_build(entry.build)
        if row.pk is None:
            to_create.append(row)
        elif (after := _update_state(row)) != before:
            changed = tuple(name for name, old, new in zip(_UPDATE_FIELDS, before, after, strict=True) if old != new)
            to_update[changed].append(row)
    Update.objects.bulk_create(to_create, batch_size=500)
    # Only the columns that changed: a source that adds itself to 200 rows writes one column, not twenty.
    for changed, rows in to_update.items():
        for row in rows:
            row.last_updated = timezone.now()
        fields = [_UPDATE_COLUMNS.get(name, (name,)) for name in changed]
        Update.objects.bulk_update(
            rows, [column for group in fields for column in group] + ["last_updated"], batch_size=500
        )
    return len(to_create), sum(len(rows) for rows in to_update.values())


def _update_state(row: Update) -> tuple:
    return tuple(getattr(row, name) for name in _UPDATE_FIELDS)


_UPDATE_FIELDS = (
    "product_id", "level_id", "kind", "name", "number", "label", "revision", "kb", "release_date", "is_month_only_date",
    "is_security", "is_recalled", "alternate_builds", "source_names", "field_sources", "disagreements", "build",
)  # fmt: skip
_UPDATE_COLUMNS = {
    "product_id": ("product",),
    "level_id": ("level",),
    "build": ("build", "build_major", "build_minor", "build_number", "build_revision"),
}


def _products_ensure() -> dict[str, Product]:
    existing = {p.key: p for p in Product.objects.all()}
    missing = [
        Product(key=key, name=PRODUCTS[key].name, is_cumulative=PRODUCTS[key].is_cumulative, sort_order=index)
        for index, key in enumerate(PRODUCT_ORDER)
        if key not in existing
    ]
    Product.objects.bulk_create(missing)
    return existing | {p.key: p for p in missing}


def _levels_ensure(entries: list[CatalogEntry], products: dict[str, Product]) -> dict[tuple[str, str], Level]:
    levels = {(lvl.product.key, lvl.name): lvl for lvl in Level.objects.select_related("product")}
    bases = {(e.product, e.level): e for e in entries if e.is_base}
    lowest: dict[tuple[str, str], CatalogEntry] = {}
    for entry in entries:
        key = (entry.product, entry.level)
        if key not in lowest or entry.build < lowest[key].build:
            lowest[key] = entry
    to_create, to_update = [], []
    for key, sample in lowest.items():
        base = bases.get(key)
        level = levels.get(key)
        if level is not None and base is None:
            continue
        origin = base or sample
        level = level or Level(product=products[key[0]], name=key[1])
        level.kind = origin.kind.value if base else _level_kind(key[0], key[1])
        level.release_date = origin.release_date if base else level.release_date
        level.kb = (origin.kb or "") if base else level.kb
        level.set_build(origin.build)
        (to_update if level.pk else to_create).append(level)
        levels[key] = level
    Level.objects.bulk_create(to_create)
    Level.objects.bulk_update(
        to_update,
        ["kind", "release_date", "kb", "build", "build_major", "build_minor", "build_number", "build_revision"],
    )
    return levels


def _level_kind(product: str, level: str) -> str:
    if level == "RTM":
        return "RTM"
    if level == "Preview":
        return "PREVIEW"
    return "CU" if PRODUCTS[product].is_cumulative else "SP"


def conflicts_record(conflicts: list[Conflict]) -> int:
    if not conflicts:
        return 0
    updates = {
        row.identity_key: row
        for row in Update.objects.filter(identity_key__in=[identity_key(c.identity) for c in conflicts])
    }
    rows = [
        CatalogConflict(
            identity_key=identity_key(c.identity),
            update=updates.get(identity_key(c.identity)),
            title=c.title[:200],
            field=c.field,
            kept_value=c.kept_value[:200],
            kept_source=c.kept_source[:400],
            other_value=c.other_value[:200],
            other_source=c.other_source[:200],
            note=c.note,
        )
        for c in conflicts
    ]
    # A value that now wins was recorded as the "other" value while the old one was kept: that record is replaced.
    superseded = Q()
    for c in conflicts:
        superseded |= Q(
            identity_key=identity_key(c.identity),
            field=c.field,
            other_value=c.kept_value[:200],
            other_source=c.kept_source[:200],
        )
    CatalogConflict.objects.filter(superseded).delete()
    before = CatalogConflict.objects.count()
    CatalogConflict.objects.bulk_create(rows, ignore_conflicts=True)
    return CatalogConflict.objects.count() - before


# -- snapshot --------------------------------------------------------------------------------------


def snapshot_build(
    tables: list[tuple[Document, str, ParsedTable, date | None]],
    fix_lists: list[tuple[Document, FixList, date | None]] = (),
) -> dict:
    """The bundled catalog: the build sources (document, source kind, rows, date) merged by authority per field,
    with every conflict, and the fix lists linked to the updates they name."""
    kinds = {document.name: AUTHORITY_KIND.get(kind, kind) for document, kind, _table, _date in tables}
    merged = MergeResult(entries={})
    conflicts: list[Conflict] = []
    for _document, _kind, table, _date in tables:
        merged = merge_rows(merged.entries.values(), table.rows, kinds=kinds)
        conflicts.extend(merged.conflicts)
    entries = sorted(merged.entries.values(), key=lambda e: (PRODUCT_ORDER.index(e.product), e.build, e.revision))
    return {
        "format": 2,
        "sources": [
            {
                "name": document.name,
                "kind": kind,
                "location": document.location,
                "sha256": document.sha256,
                "document_date": document_date.isoformat() if document_date else None,
                "rows": len(table.rows),
                "skipped": table.skipped,
            }
            for document, kind, table, document_date in tables
        ]
        + [
            {
                "name": document.name,
                "kind": "fix_list",
                "location": document.location,
                "sha256": document.sha256,
                "document_date": document_date.isoformat() if document_date else None,
                "rows": len(fix_list.fixes),
                "skipped": [item.describe() for item in fix_list.skipped],
            }
            for document, fix_list, document_date in fix_lists
        ],
        "entries": [entry_to_dict(e) for e in entries],
        "conflicts": [
            {
                "identity": list(c.identity),
                "title": c.title,
                "field": c.field,
                "kept_value": c.kept_value,
                "kept_source": c.kept_source,
                "other_value": c.other_value,
                "other_source": c.other_source,
                "note": c.note,
            }
            for c in conflicts
        ],
        "fixes": [_fix_list_json(document, fix_list, merged.entries.values()) for document, fix_list, _ in fix_lists],
    }


def _fix_list_json(document: Document, fix_list: FixList, entries) -> dict:
    try:
        updates = fix_list_updates(fix_list, Catalog(entries))
    except UpdateChoiceError as error:
        raise CatalogImportError(f"{document.name}: {error}") from None
    return {
        "source": document.name,
        "updates": [list(entry.identity) for entry in updates],
        "fixes": [{"kb": item.kb, "title": item.title} for item in fix_list.fixes],
    }


def fix_list_updates(fix_list: FixList, catalog: Catalog, update_kb: str | None = None) -> tuple[CatalogEntry, ...]:
    """The catalog rows a fix list belongs to: every row of the KB given, else what the document names
    (`kb.engine.names.updates_for_document`, which raises UpdateChoiceError with the candidates)."""
    if update_kb:
        kb = normalize_update_kb(update_kb)
        entries = tuple(catalog.by_kb(kb))
        if not entries:
            raise CatalogImportError(f"--update: {kb} is not in the catalog")
        return entries
    return updates_for_document(catalog, title=fix_list.title, intro=fix_list.intro, kbs=fix_list.stated_kbs)


@dataclass(slots=True)
class LoadReport:
    entries_created: int
    entries_updated: int
    conflicts_created: int
    fixes_created: int
    links_created: int
    rules: RulesReport


@transaction.atomic
def catalog_load_snapshot(*, path: Path = SNAPSHOT_PATH, rules_path: Path = RULES_PATH) -> LoadReport:
    """Load the bundled snapshot and rules; running it twice changes nothing the second time."""
    snapshot = _json_file(path, missing="snapshot not found (run `python manage.py catalog_snapshot`)")
    now = timezone.now()
    sources = {}
    for item in snapshot["sources"]:
        source, _ = CatalogSource.objects.get_or_create(
            name=item["name"],
            defaults={
                "kind": item["kind"],
                "location": item["location"],
                "sha256": item["sha256"],
                "document_date": item["document_date"],
                "imported_at": now,
                "note": "loaded from the bundled snapshot",
            },
        )
        sources[source.name] = source
    default = next(iter(sources.values()))
    created, updated = entries_upsert(
        [entry_from_dict(item) for item in snapshot["entries"]], sources=sources, default_source=default
    )
    conflicts = conflicts_record(
        [
            Conflict(
                tuple(c["identity"]), c["title"], c["field"], c["kept_value"], c["kept_source"],
                c["other_value"], c["other_source"], c["note"],
            )
            for c in snapshot["conflicts"]
        ]
    )  # fmt: skip
    fixes_created = links_created = 0
    for fix_list in snapshot["fixes"]:
        report = fix_links_write(
            update_identities=[identity_key(tuple(i)) for i in fix_list["updates"]],
            fixes=[(f["kb"], f["title"]) for f in fix_list["fixes"]],
            source=sources[fix_list["source"]],
        )
        fixes_created += report[0]
        links_created += report[1]
    return LoadReport(created, updated, conflicts, fixes_created, links_created, rules_load(rules_path))


def fix_links_write(
    *, update_identities: list[str], fixes: list[tuple[str, str]], source: CatalogSource
) -> tuple[int, int]:
    """Upsert fixes by KB and link them to the given updates. A title another source gave is kept (a differing one
    is a conflict); a source that restates its own fix with a new title is believed."""
    existing = {fix.kb: fix for fix in Fix.objects.filter(kb__in=[kb for kb, _ in fixes]).select_related("source")}
    new = [Fix(kb=kb, title=title, source=source) for kb, title in fixes if kb not in existing]
    Fix.objects.bulk_create(new)
    restated = []
    for kb, title in fixes:
        if kb in existing and existing[kb].source_id == source.pk and existing[kb].title != title:
            existing[kb].title, existing[kb].last_updated = title, timezone.now()
            restated.append(existing[kb])
    Fix.objects.bulk_update(restated, ["title", "last_updated"])
    conflicts_record(
        [
            Conflict(
                (kb,),
                f"Fix {kb}",
                "title",
                existing[kb].title[:200],
                existing[kb].source.name,
                title[:200],
                source.name,
            )
            for kb, title in fixes
            if kb in existing and existing[kb].title != title
        ]
    )
    by_kb = existing | {fix.kb: fix for fix in new}
    updates = list(Update.objects.filter(identity_key__in=update_identities))
    linked = set(
        UpdateFix.objects.filter(update__in=updates, fix__in=by_kb.values()).values_list("update_id", "fix_id")
    )
    links = [
        UpdateFix(update=update, fix=by_kb[kb], source=source)
        for update in updates
        for kb, _ in fixes
        if (update.pk, by_kb[kb].pk) not in linked
    ]
    UpdateFix.objects.bulk_create(links)
    return len(new), len(links)


# -- rules -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class RulesReport:
    created: int
    updated: int
    unchanged: int
    removed: int = 0


RULE_FIELDS = (
    "kind",
    "products",
    "description",
    "data",
    "source_title",
    "source_url",
    "source_document",
    "source_date",
    "is_practice",
)


def _json_file(path: Path, *, missing: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogImportError(f"{path}: {missing}") from None
    except json.JSONDecodeError as error:
        raise CatalogImportError(f"{path}: not valid JSON ({error})") from None


def rules_load(path: Path = RULES_PATH) -> RulesReport:
    """Load rules from the bundled file; rules an operator edited (or added) in the admin are left as they are, and a
    bundled rule the file no longer has is removed (a replaced rule would otherwise still apply)."""
    payload = _json_file(path, missing="rules file not found")
    existing = {rule.key: rule for rule in Rule.objects.all()}
    keys = {item["key"] for item in payload["rules"]}
    stale = [rule.pk for key, rule in existing.items() if key not in keys and not rule.is_operator_edited]
    created = updated = unchanged = 0
    for item in payload["rules"]:
        source = item.get("source", {})
        values = {
            "kind": item["kind"],
            "products": item.get("products", []),
            "description": item.get("description", ""),
            "data": item.get("data", {}),
            "source_title": source.get("title", ""),
            "source_url": source.get("url", "") or "",
            "source_document": source.get("document", "") or "",
            "source_date": date.fromisoformat(source["date"]) if source.get("date") else None,
            "is_practice": bool(source.get("is_practice", False)),
        }
        rule = existing.get(item["key"])
        if rule is None:
            Rule.objects.create(key=item["key"], **values)
            created += 1
        elif rule.is_operator_edited:
            unchanged += 1
        elif any(getattr(rule, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(rule, name, value)
            rule.save()
            updated += 1
        else:
            unchanged += 1
    Rule.objects.filter(pk__in=stale).delete()
    return RulesReport(created, updated, unchanged, len(stale))


def normalize_update_kb(value: str) -> str:
    try:
        return normalize_kb(value)
    except InvalidKBError:
        raise CatalogImportError(f"--update: {value!r} is not a KB number") from None


def document_date_parse(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise CatalogImportError(f"--document-date: {value!r} is not a date (YYYY-MM-DD)") from None


# -- fix lists -------------------------------------------------------------------------------------


@dataclass(slots=True)
class FixImportReport:
    update_kb: str | None
    updates: list[str]  # titles of the catalog rows the fixes were linked to
    fixes: list[tuple[str, str]]
    fixes_created: int = 0
    links_created: int = 0
    dry_run: bool = False
    skipped: str | None = None  # "skipped N KB-shaped items, first few: …"


def fixes_import_document(
    *, document: Document, update_kb: str | None = None, dry_run: bool = False
) -> FixImportReport:
    """Extract a fix list and link every fix to its update(s): the KB given, or what the document names."""
    try:
        fix_list = parse_fix_list(document.text, name=document.name)
        updates = fix_list_updates(fix_list, Catalog(catalog_entries()), update_kb)
    except FixListError as error:
        raise CatalogImportError(str(error)) from None
    except UpdateChoiceError as error:
        raise CatalogImportError(f"{document.name}: {error}") from None
    fixes = [(item.kb, item.title) for item in fix_list.fixes]
    kbs = sorted({entry.kb for entry in updates if entry.kb})
    report = FixImportReport(
        normalize_update_kb(update_kb) if update_kb else (kbs[0] if len(kbs) == 1 else None),
        [entry.title for entry in updates],
        fixes,
        dry_run=dry_run,
        skipped=fix_list.skipped_report(ignore=frozenset(kbs)),
    )
    if dry_run:
        return report
    with transaction.atomic():
        source = _source_upsert(document, kind="fix_list", document_date=None)
        report.fixes_created, report.links_created = fix_links_write(
            update_identities=[identity_key(entry.identity) for entry in updates], fixes=fixes, source=source
        )
    return report
