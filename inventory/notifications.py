"""Notifications: build one message per subscription for what changed (deltas only) and deliver it.

Messages are rows (`Notification`, unique per subscription and key), so a job that runs twice sends once; delivery
is a separate task that tries once per call and is retried with exponential backoff, every attempt logged with its
status code. Webhooks are signed per Standard Webhooks (HMAC-SHA256 over id, timestamp and body).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from inventory.choices import ChannelKind, DeliveryStatus, Delta, NotificationKind, ScanStatus
from inventory.models import (
    DeliveryAttempt,
    Notification,
    ScanRun,
    ServerResult,
    Subscription,
    VerdictGap,
    Waiver,
)
from kb.models import CatalogChange

EMAIL_LIST_LIMIT = 200  # servers listed in an e-mail; the webhook carries them all


def webhook_secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def subscription_save(subscription: Subscription) -> None:
    """Save, giving a webhook a signing secret when it has none."""
    if subscription.channel == ChannelKind.WEBHOOK and not subscription.secret:
        subscription.secret = webhook_secret_new()
    subscription.save()


# -- building messages -----------------------------------------------------------------------------


def _in_scope(subscription: Subscription, organisation_id: int | None, site_id: int | None) -> bool:
    if subscription.site_id is not None:
        return site_id == subscription.site_id
    if subscription.organisation_id is not None:
        return organisation_id == subscription.organisation_id
    return True


def _scope_label(subscription: Subscription) -> str:
    if subscription.site_id:
        return f"site {subscription.site.name}"
    if subscription.organisation_id:
        return f"organisation {subscription.organisation.name}"
    return "every server"


def _subscriptions(**flags) -> list[Subscription]:
    return list(Subscription.objects.filter(is_enabled=True, **flags).select_related("organisation", "site"))


def _create(rows: list[Notification]) -> list[int]:
    """Insert the messages that do not exist yet; the ids of those created now (to dispatch)."""
    if not rows:
        return []
    before = set(
        Notification.objects.filter(
            subscription_id__in={r.subscription_id for r in rows}, key__in={r.key for r in rows}
        ).values_list("subscription_id", "key")
    )
    Notification.objects.bulk_create([r for r in rows if (r.subscription_id, r.key) not in before],
                                     ignore_conflicts=True)  # fmt: skip
    created = Notification.objects.filter(
        subscription_id__in={r.subscription_id for r in rows}, key__in={r.key for r in rows}
    ).values_list("pk", "subscription_id", "key")
    return sorted(pk for pk, sub, key in created if (sub, key) not in before)


def notifications_for_scan(*, scan_id: int) -> list[int]:
    """One message per subscription whose servers changed state in this scan (and, after a catalog refresh, the new
    updates with how many of its servers need them). Nothing when nothing changed."""
    scan = ScanRun.objects.filter(pk=scan_id, status=ScanStatus.SUCCEEDED).first()
    subscriptions = _subscriptions(wants_deltas=True)
    if scan is None or not subscriptions:
        return []
    rows = list(
        ServerResult.objects.filter(scan=scan)
        .exclude(delta=Delta.NONE)
        .order_by("server__fqdn")
        .values_list(
            "server_id", "server__fqdn", "server__organisation_id", "server__organisation__name", "server__site_id",
            "server__site__name", "state", "delta", "verdict__install",
        )
    )  # fmt: skip
    new_updates = _new_updates(scan)
    messages = []
    for subscription in subscriptions:
        deltas: dict[str, list] = {delta: [] for delta in Delta.values if delta}
        for _id, fqdn, org_id, org, site_id, site, state, delta, install in rows:
            if _in_scope(subscription, org_id, site_id):
                deltas[delta].append(
                    {"fqdn": fqdn, "organisation": org, "site": site, "state": state,
                     "install": install.get("kb") if install else None}
                )  # fmt: skip
        updates = _updates_in_scope(scan, subscription, new_updates)
        if not any(deltas.values()) and not updates:
            continue
        counts = {delta: len(servers) for delta, servers in deltas.items()}
        payload = {
            "type": "scan.deltas", "scan": scan.pk, "as_of": scan.as_of.isoformat() if scan.as_of else None,
            "trigger": scan.trigger, "scope": _scope_label(subscription), "counts": counts, **deltas,
            "new_updates": updates,
        }  # fmt: skip
        parts = [f"{n} {label}" for label, n in _delta_phrases(counts) if n]
        if updates:
            parts.append(f"{len(updates)} new update(s)")
        subject = f"ExchangePatch: {', '.join(parts)} (scan {scan.pk}, {_scope_label(subscription)})"
        messages.append(_message(subscription, NotificationKind.SCAN_DELTAS, f"scan:{scan.pk}", subject, payload))
    return _create(messages)


def _delta_phrases(counts: dict[str, int]):
    yield "newly non-compliant", counts.get(Delta.NEWLY_NONCOMPLIANT, 0)
    yield "newly compliant", counts.get(Delta.NEWLY_COMPLIANT, 0)
    yield "newly excepted", counts.get(Delta.NEWLY_EXCEPTED, 0)


def _new_updates(scan: ScanRun) -> list[CatalogChange]:
    """The updates a catalog refresh added, when this scan is its recompute."""
    return list(CatalogChange.objects.filter(refresh__scan_id=scan.pk, action="created").order_by("pk"))


def _updates_in_scope(scan: ScanRun, subscription: Subscription, changes: list[CatalogChange]) -> list[dict]:
    """New updates, each with how many of the subscription's servers need it (from the scan's gaps: one query)."""
    if not changes:
        return []
    results = ServerResult.objects.filter(scan=scan)
    if subscription.site_id:
        results = results.filter(server__site_id=subscription.site_id)
    elif subscription.organisation_id:
        results = results.filter(server__organisation_id=subscription.organisation_id)
    keys = {change.kb or change.title for change in changes}
    needing = dict(
        VerdictGap.objects.filter(scan=scan, kind="update", kb__in=keys, verdict__results__in=results)
        .values_list("kb")
        .annotate(n=Count("verdict__results"))
    )
    return [
        {"kb": c.kb or None, "title": c.title, "build": c.build, "product": c.product, "level": c.level,
         "is_security": c.is_security, "servers_needing": needing.get(c.kb or c.title, 0)}
        for c in changes
    ]  # fmt: skip


def notifications_for_waivers(*, now: datetime | None = None) -> list[int]:
    """Waivers expiring within the warning window, each told once to every subscription that covers it."""
    now = now or timezone.now()
    days = settings.EXCHANGEPATCH_WAIVER_WARNING_DAYS
    subscriptions = _subscriptions(wants_deltas=True)
    if not subscriptions:
        return []
    waivers = list(
        Waiver.objects.filter(expires_at__gt=now, expires_at__lte=now + timedelta(days=days))
        .select_related("server__site", "site__organisation")
        .order_by("expires_at", "pk")
    )
    told: dict[int, set] = defaultdict(set)
    recent = Notification.objects.filter(
        kind=NotificationKind.WAIVERS_EXPIRING, created__gte=now - timedelta(days=days + 1)
    ).values_list("subscription_id", "payload")
    for subscription_id, payload in recent:
        told[subscription_id] |= {(w["id"], w["expires_at"]) for w in payload.get("waivers", [])}
    messages = []
    for subscription in subscriptions:
        fresh = [_waiver_dict(w) for w in waivers if _waiver_in_scope(subscription, w)]
        fresh = [w for w in fresh if (w["id"], w["expires_at"]) not in told[subscription.pk]]
        if not fresh:
            continue
        key = "waivers:" + ",".join(f"{w['id']}@{w['expires_at']}" for w in fresh)
        key = key if len(key) <= 100 else f"waivers:{uuid.uuid5(uuid.NAMESPACE_OID, key)}"
        payload = {"type": "waivers.expiring", "within_days": days, "scope": _scope_label(subscription),
                   "waivers": fresh}  # fmt: skip
        subject = f"ExchangePatch: {len(fresh)} waiver(s) expire within {days} days ({_scope_label(subscription)})"
        messages.append(_message(subscription, NotificationKind.WAIVERS_EXPIRING, key, subject, payload))
    return _create(messages)


def _waiver_in_scope(subscription: Subscription, waiver: Waiver) -> bool:
    if waiver.server_id is not None:
        return _in_scope(subscription, waiver.server.organisation_id, waiver.server.site_id)
    if waiver.site_id is not None:
        return _in_scope(subscription, waiver.site.organisation_id, waiver.site_id)
    return True  # a waiver for every server concerns every subscription


def _waiver_dict(waiver: Waiver) -> dict:
    scope = waiver.server.fqdn if waiver.server_id else (f"site {waiver.site.name}" if waiver.site_id else "all")
    return {"id": waiver.pk, "kb": waiver.target_kb, "kind": waiver.target_kind, "scope": scope,
            "expires_at": waiver.expires_at.isoformat(), "approver": waiver.approver, "ticket": waiver.ticket}  # fmt: skip


def notifications_digest(*, day: date | None = None) -> list[int]:
    """The daily digest per subscription: where its servers stand, what changed in the last day, new updates,
    waivers about to expire."""
    day = day or timezone.localdate()
    subscriptions = _subscriptions(wants_digest=True)
    latest = ScanRun.objects.filter(status=ScanStatus.SUCCEEDED).order_by("-pk").first()
    if not subscriptions:
        return []
    since = timezone.now() - timedelta(days=1)
    recent_scans = list(
        ScanRun.objects.filter(status=ScanStatus.SUCCEEDED, finished_at__gte=since).values_list("pk", flat=True)
    )
    changes = list(
        CatalogChange.objects.filter(refresh__started_at__gte=since, action="created").values(
            "title", "kb", "build", "is_security"
        )
    )
    soon = timezone.now() + timedelta(days=settings.EXCHANGEPATCH_WAIVER_WARNING_DAYS)
    waivers = list(
        Waiver.objects.filter(expires_at__gt=timezone.now(), expires_at__lte=soon).select_related(
            "server__site", "site__organisation"
        )
    )
    messages = []
    for subscription in subscriptions:
        states = _scoped(ServerResult.objects.filter(scan=latest), subscription) if latest else None
        by_state = dict(states.values_list("state").annotate(n=Count("pk")).order_by("state")) if states else {}
        deltas = _scoped(ServerResult.objects.filter(scan_id__in=recent_scans), subscription).exclude(delta="")
        by_delta = dict(deltas.values_list("delta").annotate(n=Count("pk")).order_by("delta"))
        expiring = [_waiver_dict(w) for w in waivers if _waiver_in_scope(subscription, w)]
        payload = {
            "type": "digest", "day": day.isoformat(), "scope": _scope_label(subscription),
            "scan": latest.pk if latest else None, "by_state": by_state, "changes_last_day": by_delta,
            "new_updates": changes, "waivers_expiring": expiring,
        }  # fmt: skip
        servers = sum(by_state.values())
        behind = servers - by_state.get("current", 0) - by_state.get("excepted", 0)
        subject = f"ExchangePatch digest {day}: {behind} of {servers} server(s) behind ({_scope_label(subscription)})"
        messages.append(_message(subscription, NotificationKind.DIGEST, f"digest:{day.isoformat()}", subject, payload))
    return _create(messages)


def _scoped(results, subscription: Subscription):
    if subscription.site_id:
        return results.filter(server__site_id=subscription.site_id)
    if subscription.organisation_id:
        return results.filter(server__organisation_id=subscription.organisation_id)
    return results


def _message(subscription: Subscription, kind: str, key: str, subject: str, payload: dict) -> Notification:
    return Notification(subscription=subscription, kind=kind, key=key, subject=subject[:300], payload=payload)


# -- delivering ------------------------------------------------------------------------------------


def notification_deliver(*, notification_id: int) -> str:
    """One delivery attempt, logged: "sent", "retry" (the caller retries after `delivery_backoff`), "failed" (no
    attempts left) or "skipped" (already sent, or the subscription was disabled)."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update().select_related("subscription").filter(pk=notification_id).first()
        )
        if notification is None or notification.status != DeliveryStatus.PENDING:
            return "skipped"
        if not notification.subscription.is_enabled:
            return "skipped"
        number = notification.attempts + 1
        Notification.objects.filter(pk=notification.pk).update(attempts=F("attempts") + 1)
    started = time.monotonic()
    status_code, error = _send(notification)
    ok = error == "" and (status_code is None or 200 <= status_code < 300)
    last = number >= settings.EXCHANGEPATCH_DELIVERY_ATTEMPTS
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            notification=notification, number=number, at=timezone.now(), status_code=status_code,
            error=error or ("" if ok else f"HTTP {status_code}"),
            duration_ms=int((time.monotonic() - started) * 1000),
        )  # fmt: skip
        if ok:
            Notification.objects.filter(pk=notification.pk).update(status=DeliveryStatus.SENT, sent_at=timezone.now())
        elif last:
            Notification.objects.filter(pk=notification.pk).update(status=DeliveryStatus.FAILED)
    return "sent" if ok else ("failed" if last else "retry")


def delivery_backoff(attempt: int) -> float:
    """Seconds before retrying after failed attempt n (1-based): BACKOFF, 2 * BACKOFF, 4 * BACKOFF, …"""
    return settings.EXCHANGEPATCH_DELIVERY_BACKOFF * 2 ** (attempt - 1)


def _send(notification: Notification) -> tuple[int | None, str]:
    """(HTTP status code or None for e-mail, error text or "")."""
    subscription = notification.subscription
    if subscription.channel == ChannelKind.EMAIL:
        recipients = [address.strip() for address in subscription.target.split(",") if address.strip()]
        try:
            send_mail(notification.subject, email_body(notification), None, recipients)
        except Exception as error:  # any backend failure is a failed attempt, logged and retried
            return None, f"{type(error).__name__}: {error}"[:2000]
        return None, ""
    body = json.dumps(
        {"id": notification.pk, "kind": notification.kind, "subject": notification.subject, **notification.payload}
    )
    message_id = f"msg_{notification.pk}"  # the same for every attempt: receivers drop repeats by it
    sent_at = datetime.now(tz=UTC)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ExchangePatch webhook",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(subscription.secret).sign(message_id, sent_at, body),
    }
    request = urllib.request.Request(subscription.target, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=settings.EXCHANGEPATCH_WEBHOOK_TIMEOUT) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
        return None, f"{type(error).__name__}: {getattr(error, 'reason', error)}"[:2000]


def email_body(notification: Notification) -> str:
    payload = notification.payload
    lines = [notification.subject, ""]
    for delta, label in ((d, d.replace("_", " ")) for d in Delta.values if d):
        servers = payload.get(delta) or []
        if servers:
            lines.append(f"{label.capitalize()} ({len(servers)}):")
            lines += [
                f"  {s['fqdn']} ({s.get('site') or 'no site'}): {s['state']}"
                + (f", install {s['install']}" if s.get("install") else "")
                for s in servers[:EMAIL_LIST_LIMIT]
            ]
            if len(servers) > EMAIL_LIST_LIMIT:
                lines.append(f"  … and {len(servers) - EMAIL_LIST_LIMIT} more (GET /api/v1/scans/{payload['scan']}/)")
            lines.append("")
    for update in payload.get("new_updates") or []:
        needing = update.get("servers_needing")
        lines.append(
            f"New update: {update['title']} {update.get('kb') or ''} {update.get('build') or ''}".rstrip()
            + (f", needed by {needing} server(s)" if needing is not None else "")
        )
    for waiver in payload.get("waivers") or payload.get("waivers_expiring") or []:
        lines.append(f"Waiver {waiver['kb']} for {waiver['scope']} expires {waiver['expires_at'][:10]}")
    if payload.get("by_state"):
        lines.append("")
        lines += [f"  {state:<24} {count}" for state, count in payload["by_state"].items()]
    return "\n".join(lines).rstrip() + "\n"
