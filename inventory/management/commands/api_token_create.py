"""Create an API token for a user and print it once (django-rest-knox stores only its hash)."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from inventory.choices import TokenScope
from inventory.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token (printed once); --read-only tokens get 403 on writes. Revoke a token by deleting it."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="NAME", help="an existing user")
        parser.add_argument("--read-only", action="store_true", help="GET only: every write gets 403")
        parser.add_argument("--name", default="", help="what the token is for, e.g. servicenow")
        parser.add_argument("--create-user", action="store_true", help="create the user if it does not exist")
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=settings.TOKEN_TTL_DAYS,
            metavar="DAYS",
            help="days until the token stops working; 0 for never (default EXCHANGEPATCH_TOKEN_TTL_DAYS, 365)",
        )

    def handle(self, *args, user, read_only, name, create_user, expires_in_days, **options):
        if expires_in_days < 0:
            raise CommandError(f"--expires-in-days: {expires_in_days} is negative (0 means the token never expires)")
        if len(name) > ApiToken._meta.get_field("name").max_length:
            raise CommandError(f"--name: longer than {ApiToken._meta.get_field('name').max_length} characters")
        User = get_user_model()
        account = User.objects.filter(username=user).first()
        if account is None:
            if not create_user:
                raise CommandError(f"--user: {user!r} does not exist (add --create-user to create it)")
            account = User.objects.create_user(username=user)
        _token, key = ApiToken.objects.create(
            user=account,
            expiry=timedelta(days=expires_in_days) if expires_in_days else None,
            name=name,
            scope=TokenScope.READ_ONLY if read_only else TokenScope.READ_WRITE,
        )
        self.stdout.write(key)
