# Trigram indexes for the substring searches, on PostgreSQL only (see
# crm/trigram.py). On SQLite both operations do nothing.

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


def create_indexes(apps, schema_editor):
    from crm.trigram import create_indexes

    create_indexes(schema_editor)


def drop_indexes(apps, schema_editor):
    from crm.trigram import drop_indexes

    drop_indexes(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0006_jobs_and_reports'),
    ]

    operations = [
        # CREATE EXTENSION IF NOT EXISTS pg_trgm: a trusted extension since
        # PostgreSQL 13, so the database's owner may create it.
        TrigramExtension(),
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
