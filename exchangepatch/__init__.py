"""ExchangePatch: patch and update-rollup inventory for Microsoft Exchange estates."""

from .celery import app as celery_app

__all__ = ("celery_app",)
