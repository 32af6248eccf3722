"""Load the invented demo estate (idempotent): every state, clusters, a DAG, Edge servers, waivers, windows."""

from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from inventory.demo import DEMO_AS_OF, DEMO_NOTE, WINDOWS, demo_items
from inventory.models import MaintenanceWindow, Server, Site, Waiver
from inventory.records import server_record_from_mapping
from inventory.services import server_upsert_many


class Command(BaseCommand):
    help = f"Load an INVENTED demo estate (a June 2024 snapshot: scan it with `scan --as-of {DEMO_AS_OF}`)."

    @transaction.atomic
    def handle(self, *args, **options):
        records = []
        for item in demo_items():
            record, errors = server_record_from_mapping(item)
            if errors:
                raise CommandError(f"demo data for {item['fqdn']}: {errors}")
            records.append(record)
        results = server_upsert_many(records, source="demo")
        for name, zone, weekdays, week, start, minutes, sites in WINDOWS:
            window, _ = MaintenanceWindow.objects.update_or_create(
                name=name,
                defaults={"time_zone": zone, "weekdays": weekdays, "week_of_month": week, "start_time": start,
                          "duration_minutes": minutes},
            )  # fmt: skip
            window.sites.set(Site.objects.filter(name__in=sites))
        as_of = timezone.make_aware(datetime.fromisoformat(DEMO_AS_OF))
        Waiver.objects.update_or_create(
            server=Server.objects.get(fqdn="mbx-ex19-02.contoso.example"),
            target_kind="update",
            target_kb="KB5036386",
            defaults={
                "reason": f"Vendor archiving agent not yet certified for Mar24SU ({DEMO_NOTE})",
                "approver": "Change advisory board (invented)", "ticket": "CHG-0042",
                "expires_at": as_of + timedelta(days=30),
            },
        )  # fmt: skip
        counts = {action: sum(r.action == action for r in results) for action in ("created", "updated", "unchanged")}
        self.stdout.write(
            f"demo estate ({DEMO_NOTE}): {len(results)} servers ({counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged), {len(WINDOWS)} maintenance windows, 1 waiver; "
            f"scan it with `python manage.py scan --as-of {DEMO_AS_OF}`"
        )
