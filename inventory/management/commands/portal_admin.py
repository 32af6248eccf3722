"""Make sure the portal has an administrator; prints a generated password once, when it creates the account."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the portal administrator (EXCHANGEPATCH_ADMIN_USER / EXCHANGEPATCH_ADMIN_PASSWORD) if missing."

    def handle(self, *args, **options):
        username = os.environ.get("EXCHANGEPATCH_ADMIN_USER", "admin")
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"portal administrator {username!r} exists")
            return
        password = os.environ.get("EXCHANGEPATCH_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        shown = "from EXCHANGEPATCH_ADMIN_PASSWORD" if os.environ.get("EXCHANGEPATCH_ADMIN_PASSWORD") else password
        self.stdout.write(f"portal administrator {username!r} created; password: {shown}")
