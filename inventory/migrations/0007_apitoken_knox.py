"""API tokens move to django-rest-knox's token model (inventory.ApiToken, KNOX_TOKEN_MODEL).

Existing tokens keep working: their SHA-256 hash and 8-character prefix are copied into knox's `digest` and
`token_key`; the first request with such a key stores it again under knox's own hash and 15-character key
(exchangepatch.authentication). They never expire (they did not before); re-issue them with `api_token_create`
to give them an expiry. Read-only tokens keep their scope.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def tokens_copy(apps, schema_editor):
    Legacy = apps.get_model("inventory", "LegacyApiToken")
    ApiToken = apps.get_model("inventory", "ApiToken")
    ApiToken.objects.bulk_create(
        ApiToken(
            digest=token.key_hash,
            token_key=token.prefix,
            user_id=token.user_id,
            expiry=None,
            name=token.name,
            scope="read-only" if token.is_read_only else "read-write",
            last_used=token.last_used,
        )
        for token in Legacy.objects.all()
    )
    # auto_now_add set `created` to now on insert: keep the original dates.
    for token in Legacy.objects.all():
        ApiToken.objects.filter(digest=token.key_hash).update(created=token.created)


def tokens_copy_back(apps, schema_editor):
    """Knox's hashes cannot become the old ones again: migrating back leaves no token (re-issue them)."""


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0006_legacy_state"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameModel("ApiToken", "LegacyApiToken"),
        migrations.AlterField(
            model_name="legacyapitoken",
            name="user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("digest", models.CharField(max_length=128, primary_key=True, serialize=False)),
                ("token_key", models.CharField(db_index=True, max_length=25)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("expiry", models.DateTimeField(blank=True, null=True)),
                (
                    "name",
                    models.CharField(blank=True, help_text="What the token is for, e.g. servicenow", max_length=100),
                ),
                (
                    "scope",
                    models.CharField(
                        choices=[("read-only", "Read only (GET)"), ("read-write", "Read and write")],
                        default="read-write",
                        max_length=16,
                    ),
                ),
                ("last_used", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="auth_token_set",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"verbose_name": "API token", "ordering": ("user", "created")},
        ),
        migrations.RunPython(tokens_copy, tokens_copy_back),
        migrations.DeleteModel("LegacyApiToken"),
    ]
