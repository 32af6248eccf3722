"""Checks behind /healthz (django-health-check): broker, workers, catalog age. The database check is the library's.

Each check's name is fixed and its message holds no host name or inventory data: /healthz answers without login.
"""

from __future__ import annotations

import dataclasses

from django.conf import settings
from django.db import connection
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable, ServiceWarning
from redis.asyncio import Redis as RedisClient

from inventory.jobs import WORKER_ALIVE_SECONDS, workers_alive
from kb.models import CatalogSource
from kb.selectors import catalog_staleness


def _broker_client() -> RedisClient:
    return RedisClient.from_url(
        settings.CELERY_BROKER_URL,
        socket_connect_timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT,
        socket_timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT,
    )


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker answers a ping (Redis); passes without a broker (tasks run in-process)."""

    def __repr__(self) -> str:
        return "Broker"

    async def run(self):
        if not settings.CELERY_BROKER_URL:
            return
        await Redis(client_factory=_broker_client).run()


@dataclasses.dataclass
class Worker(HealthCheck):
    """A Celery worker wrote its heartbeat in the last minute; passes without a broker (no workers needed)."""

    def __repr__(self) -> str:
        return "Worker"

    def run(self):
        try:
            if settings.CELERY_BROKER_URL and not workers_alive():
                raise ServiceUnavailable(f"no worker heartbeat in the last {WORKER_ALIVE_SECONDS} s")
        finally:
            connection.close()  # checks run in the library's threads: leave no connection behind


@dataclasses.dataclass
class CatalogAge(HealthCheck):
    """The catalog is loaded, and no configured source has failed for longer than EXCHANGEPATCH_CATALOG_STALE_DAYS."""

    def __repr__(self) -> str:
        return "CatalogAge"

    def run(self):
        try:
            latest = CatalogSource.objects.order_by("-imported_at").values_list("imported_at", flat=True).first()
            stale = catalog_staleness()
        finally:
            connection.close()  # checks run in the library's threads: leave no connection behind
        if latest is None:
            raise ServiceUnavailable("no catalog loaded")
        if stale:
            days = (timezone.now() - latest).days
            raise ServiceWarning(f"{len(stale)} catalog source(s) failing; newest import {days} day(s) old")
