# Existing clients get the emails and phones every write path now stores.
#
# A row whose normalized email another client already has (alice@ａｃｍｅ.io
# beside alice@acme.io) is left exactly as it is, and reported: nothing is
# merged or deleted by a migration. Merge such clients in the admin.

import logging
from collections import defaultdict

from django.core.exceptions import ValidationError
from django.db import IntegrityError, migrations, transaction

logger = logging.getLogger("crm.migrations")


def normalize_clients(apps, schema_editor):
    from crm.rules import normalize_email, normalize_phone, validate_phone

    Client = apps.get_model("crm", "Client")
    db = schema_editor.connection.alias
    rows = Client.objects.using(db).order_by("pk").values_list("pk", "email", "phone")
    by_email = defaultdict(list)
    phones, invalid = [], []
    for pk, email, phone in rows.iterator(chunk_size=10_000):
        by_email[normalize_email(email)].append((pk, email))
        normalized = normalize_phone(phone or "")
        if normalized != (phone or ""):
            phones.append((normalized, pk))
        try:
            validate_phone(normalized)
        except ValidationError:
            invalid.append(pk)

    emails, collisions = [], []
    for key, holders in by_email.items():
        stale = [(pk, email) for pk, email in holders if email != key]
        if len(holders) == 1:
            emails.extend((key, pk) for pk, _ in stale)
        else:
            collisions.extend((pk, email, key) for pk, email in stale)

    table = schema_editor.quote_name(Client._meta.db_table)
    with schema_editor.connection.cursor() as cursor:
        for email, pk in emails:
            try:
                # The database's LOWER() may fold a letter Python does not.
                with transaction.atomic(using=db):
                    cursor.execute(
                        f"UPDATE {table} SET email = %s WHERE id = %s", [email, pk]
                    )
            except IntegrityError:
                stored = Client.objects.using(db).get(pk=pk).email
                collisions.append((pk, stored, email))
        cursor.executemany(f"UPDATE {table} SET phone = %s WHERE id = %s", phones)

    if collisions:
        logger.warning(
            "%d client email(s) were left as they were: normalized, each is the "
            "address of another client. Merge the clients in the admin: %s",
            len(collisions),
            "; ".join(
                f"id {pk} {email!r} is {key!r}" for pk, email, key in sorted(collisions)
            ),
        )
    if invalid:
        logger.warning(
            "%d client phone(s) still hold more than a + and digits; the client "
            "page asks for a fix on the next save: ids %s",
            len(invalid),
            ", ".join(map(str, invalid)),
        )
    return {"emails": len(emails), "phones": len(phones), "collisions": collisions}


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0003_client_field_rules_email_index'),
    ]

    operations = [
        migrations.RunPython(normalize_clients, migrations.RunPython.noop),
    ]
