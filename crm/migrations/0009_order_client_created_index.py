# Each client's orders newest first, on PostgreSQL only: the order search reads
# the orders of the clients it matched off this index, without the table (see
# OrderQuerySet._first_of_branches). SQLite searches with a plain filter: there
# the index would only cost every insert.

from django.db import migrations

INDEX = "crm_order_client_created"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON crm_order "
        "(client_id, created_at DESC, id DESC)",
        params=None,
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0008_history_undo_duplicates"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
