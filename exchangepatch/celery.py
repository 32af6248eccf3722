"""Celery application; eager (in-process) when no broker is configured. Workers write a heartbeat and, when they
start, ask the scan watchdog to resume scans a dead worker left behind."""

import logging
import os

from celery import Celery, bootsteps
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchangepatch.settings")

logger = logging.getLogger(__name__)

app = Celery("exchangepatch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Heartbeat(bootsteps.StartStopStep):
    """Record this worker in the database every few seconds (jobs_status, /healthz), on the worker's own timer."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_ref = None

    def start(self, worker):
        from django.utils import timezone

        from inventory.jobs import HEARTBEAT_SECONDS

        started = timezone.now()
        self._beat(worker.hostname, started)
        self.timer_ref = worker.timer.call_repeatedly(HEARTBEAT_SECONDS, self._beat, (worker.hostname, started))

    def stop(self, worker):
        if self.timer_ref is not None:
            self.timer_ref.cancel()
        try:
            from inventory.jobs import worker_heartbeat_forget

            worker_heartbeat_forget(hostname=worker.hostname)
        except Exception:  # shutting down: the database may be gone; the heartbeat simply ages
            logger.warning("could not remove the heartbeat of %s", worker.hostname, exc_info=True)

    @staticmethod
    def _beat(hostname, started):
        from inventory.jobs import worker_heartbeat_record

        try:
            worker_heartbeat_record(hostname=hostname, started_at=started)
        except Exception:  # a database hiccup must not stop the worker; the next beat tries again
            logger.warning("heartbeat of %s not recorded", hostname, exc_info=True)


app.steps["worker"].add(Heartbeat)


@worker_ready.connect
def _resume_orphaned_scans(sender=None, **_kwargs):
    """A worker that starts (often a restart after a crash) resumes scans left with chunks to do at once, rather than
    waiting for their lease to expire."""
    if not app.conf.task_always_eager:
        app.send_task("inventory.scan_watchdog", kwargs={"resume_all": True})
