"""Show the health of the background jobs: each job's last run, the queue, the workers, the catalog's age."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from inventory.jobs import jobs_overview


class Command(BaseCommand):
    help = (
        "Last run, duration and outcome of each job; queue length; whether a worker answered in the last minute; "
        "catalog age. Exits non-zero when no worker is alive (with a broker) or a job's last run failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        overview = jobs_overview()
        data = {
            "jobs": [
                {
                    "job": job.job,
                    "task": job.task,
                    "schedule": job.schedule,
                    "enabled": job.is_enabled,
                    "last_started": _iso(job.last_started),
                    "last_finished": _iso(job.last_finished),
                    "duration_seconds": round(job.duration, 3) if job.duration is not None else None,
                    "outcome": job.last_outcome,
                    "detail": job.last_detail,
                }
                for job in overview.jobs
            ],
            "queue_length": overview.queue_length,
            "queue_error": overview.queue_error,
            "workers": [{"hostname": w.hostname, "last_seen": _iso(w.last_seen)} for w in overview.workers],
            "catalog_imported_at": _iso(overview.catalog_imported_at),
            "catalog_age_days": round(overview.catalog_age_days, 2) if overview.catalog_age_days is not None else None,
            "catalog_warnings": overview.catalog_warnings,
        }
        problems = _problems(overview)
        if options["json"]:
            self.stdout.write(json.dumps(data | {"problems": problems}, indent=2))
        else:
            self._text(data)
        if problems:
            raise CommandError("; ".join(problems))

    def _text(self, data):
        header = ("JOB", "ENABLED", "LAST RUN", "DURATION", "OUTCOME", "SCHEDULE")
        rows = [
            (
                job["job"],
                "yes" if job["enabled"] else "no",
                (job["last_started"] or "-")[:19].replace("T", " "),
                f"{job['duration_seconds']:.1f} s" if job["duration_seconds"] is not None else "-",
                job["outcome"],
                job["schedule"],
            )
            for job in data["jobs"]
        ]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        for job in data["jobs"]:
            if job["outcome"] == "failed" and job["detail"]:
                self.stdout.write(f"  {job['job']}: {job['detail']}")
        queue = data["queue_length"] if data["queue_length"] is not None else f"unknown ({data['queue_error']})"
        self.stdout.write(f"queue: {queue}")
        workers = ", ".join(w["hostname"] for w in data["workers"]) or "none"
        self.stdout.write(f"workers seen in the last minute: {workers}")
        age = data["catalog_age_days"]
        self.stdout.write(
            f"catalog: imported {(data['catalog_imported_at'] or 'never')[:19].replace('T', ' ')}"
            + (f" ({age:.1f} days ago)" if age is not None else "")
        )
        for warning in data["catalog_warnings"]:
            self.stdout.write(f"  warning: {warning}")


def _problems(overview) -> list[str]:
    from django.conf import settings

    problems = []
    if settings.CELERY_BROKER_URL and not overview.workers:
        problems.append("no worker answered in the last minute")
    if settings.CELERY_BROKER_URL and overview.queue_length is None:
        problems.append(f"the broker cannot be reached ({overview.queue_error})")
    problems += [f"{job.job}: last run failed" for job in overview.jobs if job.last_outcome == "failed"]
    if overview.catalog_imported_at is None:
        problems.append("no catalog loaded")
    problems += overview.catalog_warnings
    return problems


def _iso(value) -> str | None:
    return timezone.localtime(value).isoformat() if value else None
