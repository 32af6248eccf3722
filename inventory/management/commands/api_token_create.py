"""Create an API token for a user and print it once (only its hash is stored)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from exchangepatch.authentication import token_generate, token_hash
from inventory.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token (printed once); --read-only tokens get 403 on writes."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="NAME", help="an existing user")
        parser.add_argument("--read-only", action="store_true")
        parser.add_argument("--name", default="", help="what the token is for, e.g. servicenow")
        parser.add_argument("--create-user", action="store_true", help="create the user if it does not exist")

    def handle(self, *args, user, read_only, name, create_user, **options):
        User = get_user_model()
        account = User.objects.filter(username=user).first()
        if account is None:
            if not create_user:
                raise CommandError(f"--user: {user!r} does not exist (add --create-user to create it)")
            account = User.objects.create_user(username=user)
        key = token_generate()
        ApiToken.objects.create(
            user=account, name=name, prefix=key[:8], key_hash=token_hash(key), is_read_only=read_only
        )
        self.stdout.write(key)
