"""One index on the server's FQDN instead of three: unique on the column itself, lower case as a check (the FQDN was
always stored lower-case, so uniqueness still holds regardless of case). Rows written in another case by hand are
lower-cased first: the unique index on lower(fqdn) they had means no two collide."""

import django.db.models.functions.text
from django.db import migrations, models


def fqdns_lower(apps, schema_editor):
    Server = apps.get_model("inventory", "Server")
    lower = django.db.models.functions.text.Lower("fqdn")
    Server.objects.exclude(fqdn=lower).update(fqdn=lower)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0010_result_fewer_indexes_no_waiver_fk"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="server",
            name="inventory_server_unique_fqdn_ci",
        ),
        migrations.AlterField(
            model_name="server",
            name="fqdn",
            field=models.CharField(help_text="Stored lower-case; unique regardless of case", max_length=255),
        ),
        migrations.RunPython(fqdns_lower, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="server",
            constraint=models.UniqueConstraint(fields=("fqdn",), name="inventory_server_unique_fqdn"),
        ),
        migrations.AddConstraint(
            model_name="server",
            constraint=models.CheckConstraint(
                condition=models.Q(("fqdn", django.db.models.functions.text.Lower("fqdn"))),
                name="inventory_server_fqdn_lower_case",
            ),
        ),
    ]
