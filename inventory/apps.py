"""The server inventory app."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self):
        from inventory.jobs import schedules_install

        # Data, not domain flow: the schedules declared in settings exist after `migrate` (missing ones only).
        post_migrate.connect(schedules_install, sender=self, dispatch_uid="inventory.schedules_install")
