# Names, emails and phones checked and normalized by their fields, avatars
# re-encoded under random names, and a plain index for exact email lookups.

import crm.models
from django.db import migrations, models


def reinstall_sqlite_triggers(apps, schema_editor):
    # SQLite rebuilds crm_client to alter its fields, which drops the totals
    # triggers on it; PostgreSQL alters in place and keeps them.
    if schema_editor.connection.vendor != "sqlite":
        return
    from crm.totals import drop_triggers, install_triggers

    drop_triggers(schema_editor)
    install_triggers(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0002_client_totals'),
    ]

    operations = [
        # Unapplying rebuilds the table again: this runs last then.
        migrations.RunPython(migrations.RunPython.noop, reinstall_sqlite_triggers),
        migrations.AlterField(
            model_name='client',
            name='avatar',
            field=crm.models.AvatarField(blank=True, upload_to='avatars/', validators=[crm.models.validate_avatar]),
        ),
        migrations.AlterField(
            model_name='client',
            name='name',
            field=models.CharField(max_length=100, validators=[crm.models.validate_no_hidden_characters, crm.models.validate_visible]),
        ),
        migrations.AlterField(
            model_name='client',
            name='phone',
            field=crm.models.PhoneField(blank=True, max_length=15),
        ),
        migrations.AddIndex(
            model_name='client',
            index=models.Index(fields=['email'], name='crm_client_email_idx'),
        ),
        migrations.RunPython(reinstall_sqlite_triggers, migrations.RunPython.noop),
    ]
