"""Catalog refresh: fetch every configured source, import it with the catalog importers, record what changed.

Each source is imported in its own transaction: a source that cannot be fetched, answers an error or garbage (no
Exchange build in it) changes nothing and is reported, and does not stop the others. A source whose bytes did not
change since its last import is not parsed again. What changed is found by comparing the catalog before and after,
so the importers stay as they are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kb.importers.documents import DocumentError, read_document
from kb.models import CatalogChange, CatalogFeed, CatalogRefresh, Update
from kb.services import catalog_import_document

logger = logging.getLogger(__name__)

BASE_KINDS = {"RTM", "SP", "CU", "PREVIEW"}
ANY_LEVEL = "*"
# What a change is judged by: a row whose values here differ was updated.
WATCHED = ("build", "release_date", "kb", "is_security", "is_recalled", "name", "kind")


class GarbageError(ValueError):
    """The document parsed, but holds no Exchange build."""


@dataclass(frozen=True, slots=True)
class _Row:
    pk: int
    product: str
    level: str
    values: tuple


def catalog_refresh(*, urls: list[str] | None = None, timeout: float | None = None) -> CatalogRefresh:
    """Refresh the catalog from the sources (default: EXCHANGEPATCH_CATALOG_SOURCES); the run, with each source's
    outcome, the changes and the (product, level) pairs they touch ([product, "*"] for a new level)."""
    urls = list(settings.EXCHANGEPATCH_CATALOG_SOURCES if urls is None else urls)
    timeout = settings.EXCHANGEPATCH_FETCH_TIMEOUT if timeout is None else timeout
    refresh = CatalogRefresh.objects.create(started_at=timezone.now(), outcome="running")
    outcomes = [_source_refresh(refresh, url, timeout) for url in urls]
    changes = list(refresh.changes.all())
    affected = sorted(
        {(c.product, ANY_LEVEL if c.kind in BASE_KINDS else c.level) for c in changes},
    )
    statuses = {outcome["status"] for outcome in outcomes}
    if not outcomes:
        overall = "unchanged"
    elif statuses == {"failed"}:
        overall = "failed"
    elif "failed" in statuses:
        overall = "partial"
    else:
        overall = "changed" if changes else "unchanged"
    CatalogRefresh.objects.filter(pk=refresh.pk).update(
        finished_at=timezone.now(), outcome=overall, sources=outcomes,
        created_count=sum(c.action == "created" for c in changes), updated_count=sum(c.action == "updated" for c in changes),
        affected_levels=[list(pair) for pair in affected],
    )  # fmt: skip
    refresh.refresh_from_db()
    return refresh


def _source_refresh(refresh: CatalogRefresh, url: str, timeout: float) -> dict:
    feed, _ = CatalogFeed.objects.get_or_create(url=url)
    now = timezone.now()
    try:
        document = read_document(url, timeout=timeout)
        if document.sha256 == feed.last_sha256:
            _feed_succeeded(feed, now, feed.last_sha256)
            return {
                "url": url,
                "status": "unchanged",
                "detail": "same document as last time",
                "sha256": feed.last_sha256,
            }
        with transaction.atomic():
            before = _catalog_rows()
            report = catalog_import_document(document=document)
            if not sum(report.counts.get(key, 0) for key in ("created", "updated", "unchanged")):
                raise GarbageError(f"{url}: no Exchange build found in the document ({report.format})")
            changes = _changes_record(refresh, document, before)
    except DocumentError as error:  # not fetched: HTTP error, timeout, refused, missing file
        _feed_failed(feed, now, str(error))
        return {"url": url, "status": "failed", "detail": str(error)}
    except Exception as error:  # fetched, but not a catalog we can read: rolled back, reported, the others go on
        if not isinstance(error, ValueError):
            logger.exception("catalog source %s could not be imported", url)
        detail = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
        _feed_failed(feed, now, detail)
        return {"url": url, "status": "failed", "detail": detail}
    _feed_succeeded(feed, now, document.sha256)
    counts = {
        "created": sum(c.action == "created" for c in changes),
        "updated": sum(c.action == "updated" for c in changes),
    }
    return {"url": url, "status": "imported", "detail": f"{report.format}, {len(report.conflicts)} conflict(s)",
            "counts": counts, "sha256": document.sha256}  # fmt: skip


def _catalog_rows() -> dict[str, _Row]:
    rows = Update.objects.values_list("pk", "identity_key", "product__key", "level__name", *WATCHED)
    return {key: _Row(pk, product, level, tuple(values)) for pk, key, product, level, *values in rows}


def _changes_record(refresh: CatalogRefresh, document, before: dict[str, _Row]) -> list[CatalogChange]:
    after = _catalog_rows()
    changed = {
        key: ("created" if key not in before else "updated")
        for key, row in after.items()
        if key not in before or before[key].values != row.values
    }
    updates = (
        Update.objects.filter(identity_key__in=changed)
        .select_related("product", "level")
        .order_by("product__sort_order", "build_major", "build_minor", "build_number", "build_revision")
    )
    rows = [
        CatalogChange(
            refresh=refresh,
            update=update,
            identity_key=update.identity_key,
            action=changed[update.identity_key],
            title=str(update)[:200],
            product=update.product.key,
            level=update.level.name,
            kind=update.kind,
            kb=update.kb,
            build=update.build,
            is_security=update.is_security,
            source_name=document.name[:200],
            source_location=document.location[:1000],
            source_sha256=document.sha256,
        )
        for update in updates
    ]
    return CatalogChange.objects.bulk_create(rows)


def _feed_succeeded(feed: CatalogFeed, now, sha256: str) -> None:
    CatalogFeed.objects.filter(pk=feed.pk).update(
        last_attempt_at=now, last_success_at=now, failing_since=None, consecutive_failures=0, last_error="",
        last_sha256=sha256,
    )  # fmt: skip


def _feed_failed(feed: CatalogFeed, now, error: str) -> None:
    CatalogFeed.objects.filter(pk=feed.pk).update(
        last_attempt_at=now, failing_since=feed.failing_since or now,
        consecutive_failures=feed.consecutive_failures + 1, last_error=error[:2000],
    )  # fmt: skip
